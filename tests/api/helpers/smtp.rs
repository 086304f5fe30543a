//! A real SMTP server for the mail tests, in this process: mailin-embedded speaks SMTP and
//! keeps every message it accepts (the raw RFC 5322 bytes and the envelope recipients).
//!
//! mailin-embedded serves forever, with no way to stop it, so it listens on a port of its own
//! and the app is given the port of a gate in front of it: a TCP relay that the test can shut
//! (the port refuses connections and the open ones are cut, as when a mail server goes down)
//! and open again on the same port. While shut, the port stays bound without listening, so
//! nothing else takes it and a connect is refused at once.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How long `wait_for` polls by default: mail normally arrives within a second.
pub const MAIL_WAIT: Duration = Duration::from_secs(10);

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope's `RCPT TO` addresses, lowercased, without angle brackets.
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// mailin's callbacks for one SMTP session (the handler is cloned per connection).
#[derive(Clone)]
struct Collector {
    inbox: Inbox,
    recipients: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.recipients = to.iter().map(|r| envelope_address(r)).collect();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let received = Received {
            recipients: std::mem::take(&mut self.recipients),
            raw: std::mem::take(&mut self.data),
        };
        self.inbox.lock().expect("inbox").push(received);
        response::OK
    }
}

pub(super) fn envelope_address(path: &str) -> String {
    path.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

/// The SMTP server of one test. Shut on drop.
pub struct SmtpServer {
    pub port: u16,
    inner_port: u16,
    inbox: Inbox,
    gate: Mutex<Option<Gate>>,
}

enum Gate {
    /// Listening; the task accepts and relays, and its connections die with it.
    Open(JoinHandle<()>),
    /// The port, bound and not listening: connections are refused.
    Shut(TcpSocket),
}

impl SmtpServer {
    /// A server on 127.0.0.1 at a free port, accepting mail.
    pub async fn start() -> Self {
        let inbox: Inbox = Arc::default();
        let inner_port = start_mailin(inbox.clone());
        let socket = reserve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let port = socket.local_addr().expect("gate address").port();
        SmtpServer {
            port,
            inner_port,
            inbox,
            gate: Mutex::new(Some(Gate::Open(open_gate(socket, inner_port)))),
        }
    }

    /// `SMTP_URL` for an app that sends here. Plain SMTP: the server offers no STARTTLS, so
    /// the app's opportunistic STARTTLS stays off.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Goes down: connections are refused, and the open ones are cut.
    pub async fn stop(&self) {
        let open = self.gate.lock().expect("gate").take();
        let Some(Gate::Open(task)) = open else {
            *self.gate.lock().expect("gate") = open;
            return;
        };
        task.abort();
        // Once the task is gone, so is its listener: the port can be bound again.
        let _ = task.await;
        *self.gate.lock().expect("gate") = Some(Gate::Shut(reserve(self.address())));
    }

    /// Comes back on the same port.
    pub fn start_again(&self) {
        let mut gate = self.gate.lock().expect("gate");
        *gate = match gate.take() {
            Some(Gate::Shut(socket)) => Some(Gate::Open(open_gate(socket, self.inner_port))),
            other => other,
        };
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().expect("inbox").clone()
    }

    /// The messages to `recipient` (envelope, case-insensitive) of `kind` (`X-Mail-Kind`), in
    /// the order they arrived.
    pub fn mails(&self, recipient: &str, kind: &str) -> Vec<Mail> {
        let recipient = recipient.to_ascii_lowercase();
        self.received()
            .into_iter()
            .filter(|r| r.recipients.contains(&recipient))
            .map(Mail::parse)
            .filter(|m| m.kind == kind)
            .collect()
    }

    pub fn count(&self, recipient: &str, kind: &str) -> usize {
        self.mails(recipient, kind).len()
    }

    /// The first message to `recipient` of `kind`, once there is one (up to `MAIL_WAIT`).
    pub async fn wait_for(&self, recipient: &str, kind: &str) -> Mail {
        self.wait_for_nth(recipient, kind, 1, MAIL_WAIT).await
    }

    /// The `n`-th message (from 1) to `recipient` of `kind`, once it is there (up to `within`).
    pub async fn wait_for_nth(
        &self,
        recipient: &str,
        kind: &str,
        n: usize,
        within: Duration,
    ) -> Mail {
        let deadline = Instant::now() + within;
        loop {
            let mails = self.mails(recipient, kind);
            if let Some(mail) = mails.get(n - 1) {
                return mail.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} mail #{n} for {recipient} within {within:?}; got {} of that kind, and {:?}",
                mails.len(),
                self.summary()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `(recipients, kind)` of every message, for failure messages.
    pub fn summary(&self) -> Vec<(Vec<String>, String)> {
        self.received()
            .into_iter()
            .map(|r| {
                let recipients = r.recipients.clone();
                (recipients, Mail::parse(r).kind)
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Ok(gate) = self.gate.lock()
            && let Some(Gate::Open(task)) = &*gate
        {
            task.abort();
        }
    }
}

/// mailin-embedded on a port of its own, in threads that live as long as the process.
fn start_mailin(inbox: Inbox) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("SMTP port");
    let port = listener.local_addr().expect("SMTP address").port();
    let mut server = Server::new(Collector {
        inbox,
        recipients: Vec::new(),
        data: Vec::new(),
    });
    server
        .with_name("smtp.tests.localhost")
        .with_num_threads(8)
        .with_tcp_listener(listener)
        .with_ssl(SslConfig::None)
        .expect("no TLS");
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

/// A socket bound to `address` (port 0: a free one), not listening yet.
fn reserve(address: SocketAddr) -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("socket");
    // The cut connections leave the port in TIME_WAIT; binding it again must still work.
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(address).expect("bind the SMTP port");
    socket
}

/// Listens on `socket` and relays every connection to mailin; aborting the task closes the
/// port and every relayed connection.
fn open_gate(socket: TcpSocket, inner_port: u16) -> JoinHandle<()> {
    let listener = socket.listen(128).expect("listen on the SMTP port");
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((mut outside, _)) = listener.accept().await else {
                continue;
            };
            connections.spawn(async move {
                if let Ok(mut inside) = TcpStream::connect(("127.0.0.1", inner_port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut outside, &mut inside).await;
                }
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

/// A received message, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
    /// `X-Mail-Kind`, trimmed.
    pub kind: String,
    /// Every header by lowercased name, unfolded and trimmed (the last one of a name wins).
    pub headers: HashMap<String, String>,
    /// `From`'s display name and address.
    pub from: (Option<String>, Option<String>),
    pub to: Vec<String>,
    /// The top-level content type, e.g. `multipart/alternative`.
    pub content_type: String,
    /// The content types of the leaf parts, e.g. `["text/plain", "text/html"]`.
    pub part_types: Vec<String>,
    /// The text/plain parts, decoded from their transfer encoding.
    pub text: String,
    /// The text/html parts, decoded.
    pub html: String,
}

impl Mail {
    pub fn parse(received: Received) -> Self {
        let message = MessageParser::default()
            .parse(&received.raw)
            .expect("an RFC 5322 message");
        let headers: HashMap<String, String> = message
            .headers_raw()
            .map(|(name, value)| (name.to_ascii_lowercase(), unfold(value)))
            .collect();
        let content_type = |part: &mail_parser::MessagePart| {
            part.content_type()
                .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()))
                .unwrap_or_else(|| "text/plain".into())
                .to_ascii_lowercase()
        };
        let mut part_types = Vec::new();
        let (mut text, mut html) = (String::new(), String::new());
        for part in &message.parts {
            match &part.body {
                PartType::Text(body) => {
                    part_types.push(content_type(part));
                    text.push_str(body);
                }
                PartType::Html(body) => {
                    part_types.push(content_type(part));
                    html.push_str(body);
                }
                PartType::Multipart(_) => {}
                _ => part_types.push(content_type(part)),
            }
        }
        let from = message.from().and_then(|a| a.first()).map(|a| {
            (
                a.name().map(str::to_owned),
                a.address().map(str::to_ascii_lowercase),
            )
        });
        let to = message
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        Mail {
            kind: headers.get("x-mail-kind").cloned().unwrap_or_default(),
            content_type: content_type(message.root_part()),
            from: from.unwrap_or_default(),
            to,
            headers,
            part_types,
            text,
            html,
            recipients: received.recipients,
            raw: received.raw,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The link's token: `token=([A-Za-z0-9_-]{43})` in the text part, exactly 43 characters.
    pub fn token(&self) -> String {
        self.tokens()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no token in the {} mail: {}", self.kind, self.text))
    }

    /// Every token in the text part.
    pub fn tokens(&self) -> Vec<String> {
        tokens_in(&self.text)
    }

    /// The `http://` and `https://` URLs in the text part.
    pub fn links(&self) -> Vec<String> {
        urls_in(&self.text)
    }
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The values of `token=` in `text` that are exactly 43 base64url characters.
pub fn tokens_in(text: &str) -> Vec<String> {
    text.match_indices("token=")
        .map(|(at, key)| {
            let rest = &text[at + key.len()..];
            let end = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|t| t.len() == 43)
        .map(str::to_owned)
        .collect()
}

pub fn urls_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')'))
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_owned)
        .collect()
}
