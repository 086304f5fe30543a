//! An SMTP server that speaks TLS and wants a password, for mail_tls.rs: STARTTLS, TLS from
//! the first byte (smtps), or no TLS at all. It is mailin's SMTP state machine (the one that
//! mailin-embedded runs in `smtp.rs`) driven by a tokio task through tokio-rustls, so that the
//! test sees each connection's TLS handshake, each login and every byte the client sent in the
//! clear. It ends with the test, on drop.
//!
//! Its certificate is for `localhost`, signed by a CA made for the test (`TestCa`, with
//! rcgen), whose PEM file the service is given as `SSL_CERT_FILE`.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use mailin::AuthMechanism;
use mailin::{Action, Handler, Response, Session, SessionBuilder, response};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::smtp::envelope_address;
use super::{MAIL_WAIT, Mail, Received, TempDir};

/// The login the server takes, and nothing else.
pub const SMTP_USER: &str = "mailer";
/// Unlike anything else in a log line, so that a search for it finds only a leak.
pub const SMTP_PASSWORD: &str = "tls-only-Secret-7341";

/// A CA made for one test, and a certificate for `localhost` that it signed.
pub struct TestCa {
    dir: TempDir,
    server: Arc<ServerConfig>,
}

impl TestCa {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        // A name of its own: a certificate from another test's CA is from an unknown issuer.
        let name = format!("rs256-auth test CA {}", uuid::Uuid::new_v4().simple());
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("parameters");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        let cert = leaf.signed_by(&key, &issuer).expect("server certificate");

        let dir = TempDir::new();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).expect("the CA's PEM file");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("the server's TLS settings");
        TestCa {
            dir,
            server: Arc::new(server),
        }
    }

    /// The CA's certificate, PEM, for `SSL_CERT_FILE`.
    pub fn pem_file(&self) -> String {
        self.dir.file("ca.pem")
    }
}

/// How the server offers TLS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Security {
    /// Plain at first; offers STARTTLS, and AUTH only once TLS is on.
    StartTls,
    /// TLS from the first byte (smtps); offers AUTH.
    Implicit,
    /// Never TLS: offers no STARTTLS, and offers AUTH in the clear (a client that insists on
    /// TLS must not take it up on that).
    None,
}

/// What the server saw of one connection.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The client asked for STARTTLS (and was told to go ahead).
    pub starttls: bool,
    /// A TLS handshake completed: after STARTTLS, or first thing for `Security::Implicit`.
    pub tls: bool,
    /// Every byte the client sent in the clear: before TLS, or all of them without.
    pub clear: Vec<u8>,
    pub logins: Vec<Login>,
    pub mails: Vec<Delivered>,
}

/// One AUTH command, as the server decoded it.
#[derive(Debug, Clone)]
pub struct Login {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: &'static str,
    pub user: String,
    pub password: String,
    /// Whether TLS was on when it came.
    pub tls: bool,
    pub accepted: bool,
}

/// A message the server accepted, and how.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub received: Received,
    /// TLS was on when the message came.
    pub tls: bool,
    /// The user the connection had logged in as.
    pub user: Option<String>,
}

type Log = Arc<Mutex<Vec<Connection>>>;

/// mailin's callbacks for one connection: they write to its entry in the log.
struct Recorder {
    log: Log,
    at: usize,
    user: Option<String>,
    recipients: Vec<String>,
    data: Vec<u8>,
}

impl Recorder {
    fn connection<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        f(&mut self.log.lock().expect("connection log")[self.at])
    }

    fn login(&mut self, mechanism: &'static str, user: &str, password: &str) -> Response {
        let accepted = user == SMTP_USER && password == SMTP_PASSWORD;
        self.connection(|c| {
            c.logins.push(Login {
                mechanism,
                user: user.to_owned(),
                password: password.to_owned(),
                tls: c.tls,
                accepted,
            });
        });
        if accepted {
            self.user = Some(user.to_owned());
            response::AUTH_OK
        } else {
            response::INVALID_CREDENTIALS
        }
    }
}

impl Handler for Recorder {
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
        let user = self.user.clone();
        self.connection(|c| {
            let tls = c.tls;
            c.mails.push(Delivered {
                received,
                tls,
                user,
            });
        });
        response::OK
    }

    fn auth_plain(&mut self, _authorization: &str, user: &str, password: &str) -> Response {
        self.login("PLAIN", user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.login("LOGIN", user, password)
    }
}

/// The server of one test, on 127.0.0.1 (which is what `localhost` names here). Stops on drop.
pub struct TlsSmtpServer {
    pub port: u16,
    log: Log,
    task: JoinHandle<()>,
}

impl TlsSmtpServer {
    /// Requires a login with `SMTP_USER` and `SMTP_PASSWORD` before `MAIL`, offering only
    /// `mechanism` (PLAIN or LOGIN).
    pub async fn start(security: Security, mechanism: AuthMechanism, ca: &TestCa) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("SMTP port");
        let port = listener.local_addr().expect("SMTP address").port();
        let mut builder = SessionBuilder::new("smtp.tests.localhost");
        builder.enable_auth(mechanism);
        match security {
            Security::StartTls => {
                builder.enable_start_tls();
            }
            Security::None => {
                builder.insecure_enable_plaintext_auth();
            }
            Security::Implicit => {}
        }
        let log = Log::default();
        let acceptor = TlsAcceptor::from(ca.server.clone());
        let task = tokio::spawn(serve(listener, builder, acceptor, security, log.clone()));
        TlsSmtpServer { port, log, task }
    }

    /// Every connection so far.
    pub fn connections(&self) -> Vec<Connection> {
        self.log.lock().expect("connection log").clone()
    }

    /// Every message accepted so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.connections()
            .into_iter()
            .flat_map(|c| c.mails)
            .collect()
    }

    /// The first message to `recipient` of `kind`, once there is one (up to `MAIL_WAIT`),
    /// with the connection it came over.
    pub async fn wait_for(&self, recipient: &str, kind: &str) -> (Mail, Connection) {
        let recipient = recipient.to_ascii_lowercase();
        let deadline = Instant::now() + MAIL_WAIT;
        loop {
            for connection in self.connections() {
                for delivered in &connection.mails {
                    let mail = Mail::parse(delivered.received.clone());
                    if mail.kind == kind && mail.recipients.contains(&recipient) {
                        return (mail, connection);
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} mail for {recipient} within {MAIL_WAIT:?}; the server saw {:#?}",
                self.connections()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TlsSmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; its connections end with it.
async fn serve(
    listener: TcpListener,
    builder: SessionBuilder,
    acceptor: TlsAcceptor,
    security: Security,
    log: Log,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let at = {
            let mut log = log.lock().expect("connection log");
            log.push(Connection::default());
            log.len() - 1
        };
        let recorder = Recorder {
            log: log.clone(),
            at,
            user: None,
            recipients: Vec::new(),
            data: Vec::new(),
        };
        let session = builder.build(peer.ip(), recorder);
        let converse = converse(stream, session, acceptor.clone(), security, log.clone(), at);
        connections.spawn(async move {
            // A client that hangs up or fails its handshake ends its connection, no more.
            let _ = converse.await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// One connection, from the greeting to the client's last line.
async fn converse(
    stream: TcpStream,
    mut session: Session<Recorder>,
    acceptor: TlsAcceptor,
    security: Security,
    log: Log,
    at: usize,
) -> std::io::Result<()> {
    let tls_on = |session: &mut Session<Recorder>| {
        log.lock().expect("connection log")[at].tls = true;
        session.tls_active();
    };
    if security == Security::Implicit {
        let tls = acceptor.accept(stream).await?;
        tls_on(&mut session);
        exchange(&mut session, &mut BufStream::new(tls), true, None).await?;
        return Ok(());
    }
    let mut clear = BufStream::new(stream);
    let upgrade = exchange(&mut session, &mut clear, true, Some((&log, at))).await?;
    if upgrade {
        log.lock().expect("connection log")[at].starttls = true;
        // The client waits for the 220 before its handshake: nothing is left in the buffer.
        let tls = acceptor.accept(clear.into_inner()).await?;
        tls_on(&mut session);
        // No greeting after STARTTLS: the client starts again with EHLO.
        exchange(&mut session, &mut BufStream::new(tls), false, None).await?;
    }
    Ok(())
}

/// Reads the client's lines and answers them, from the greeting if `greet`; whether the
/// client asked for TLS (`STARTTLS` answered with 220). Lines read are added to the
/// connection's `clear` bytes when `clear` names it.
async fn exchange<S>(
    session: &mut Session<Recorder>,
    stream: &mut S,
    greet: bool,
    clear: Option<(&Log, usize)>,
) -> std::io::Result<bool>
where
    S: AsyncBufRead + AsyncWrite + Unpin,
{
    if greet {
        reply(stream, &session.greeting()).await?;
    }
    let mut line = Vec::with_capacity(80);
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(false);
        }
        if let Some((log, at)) = clear {
            log.lock().expect("connection log")[at]
                .clear
                .extend_from_slice(&line);
        }
        let answer = session.process(&line);
        match answer.action {
            Action::Reply => reply(stream, &answer).await?,
            Action::Close => {
                reply(stream, &answer).await?;
                return Ok(false);
            }
            Action::UpgradeTls => {
                reply(stream, &answer).await?;
                return Ok(true);
            }
            Action::NoReply => {}
        }
    }
}

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, answer: &Response) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    answer.write_to(&mut bytes)?;
    stream.write_all(&bytes).await?;
    stream.flush().await
}
