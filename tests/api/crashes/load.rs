//! The clients: each registers, logs in and refreshes until the server stops answering, and
//! keeps what it was answered, and what it sent without an answer, for the checks.

use reqwest::{RequestBuilder, Response};
use serde_json::json;

use crate::helpers::*;

/// A refresh token as answered, and its `token_uuid` (its row in the file).
#[derive(Clone)]
pub struct Issued {
    pub token: String,
    pub uuid: String,
}

impl Issued {
    pub fn from(response: &Response) -> Self {
        let token = session_from(response).refresh;
        let uuid = claims_of(&token)["token_uuid"]
            .as_str()
            .expect("token_uuid")
            .to_owned();
        Issued { token, uuid }
    }
}

/// One login's refresh tokens as its client was answered them, oldest first: each was rotated
/// into the next, and the last is the one the client holds.
pub struct Chain {
    pub email: String,
    pub sid: String,
    pub refresh: Vec<Issued>,
}

impl Chain {
    pub fn newest(&self) -> &Issued {
        self.refresh
            .last()
            .expect("a chain starts with its login's token")
    }
}

/// A request sent before a kill that got no answer: it may or may not have committed.
pub enum Open {
    Register(String),
    Login(String),
    /// Of the client's chain, with its newest token.
    Refresh,
}

/// A client that goes on across restarts: its user, its session, and what it has not yet
/// handed to the checks.
pub struct Client {
    pub id: usize,
    pub rng: Rng,
    pub email: Option<String>,
    pub chain: Option<Chain>,
    pub open: Option<Open>,
    /// Registers answered 201 since the last check.
    pub registered: Vec<String>,
    /// Sessions the client left for a new user or a new login: still live, still checked.
    pub parked: Vec<Chain>,
    pub counts: Counts,
}

impl Client {
    pub fn new(id: usize, seed: u64) -> Self {
        Client {
            id,
            rng: Rng(seed ^ (id as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F)),
            email: None,
            chain: None,
            open: None,
            registered: Vec::new(),
            parked: Vec::new(),
            counts: Counts::default(),
        }
    }
}

#[derive(Default, Debug)]
pub struct Counts {
    pub registers: usize,
    pub logins: usize,
    pub refreshes: usize,
}

enum Sent {
    Answered(Response),
    /// No connection: the server never saw it.
    Refused,
    /// No answer on a connection: in flight at the kill, or written to a kept-alive
    /// connection that the kill had closed. The file says which.
    Lost,
}

async fn send(request: RequestBuilder) -> Sent {
    match request.send().await {
        Ok(response) => Sent::Answered(response),
        Err(e) if e.is_connect() => Sent::Refused,
        Err(_) => Sent::Lost,
    }
}

async fn unexpected(what: &str, response: Response) -> String {
    let status = response.status();
    format!(
        "{what}: {status} {}",
        response.text().await.unwrap_or_default()
    )
}

/// Registers, logs in and refreshes until the server stops answering; returns the client with
/// what it was answered, and what was in flight.
pub async fn load(mut client: Client, base: String) -> Result<Client, String> {
    let http = plain_client();
    loop {
        if client.email.is_none() || client.rng.one_in(40) {
            let email = unique_email();
            let request = http
                .post(format!("{base}/api/auth/register"))
                .json(&registration(&email));
            match send(request).await {
                Sent::Answered(r) if r.status() == 201 => {
                    client.counts.registers += 1;
                    client.registered.push(email.clone());
                    client.email = Some(email);
                    client.parked.extend(client.chain.take());
                }
                Sent::Answered(r) => return Err(unexpected("register", r).await),
                Sent::Refused => return Ok(client),
                Sent::Lost => {
                    client.open = Some(Open::Register(email));
                    return Ok(client);
                }
            }
        } else if client.chain.is_none() || client.rng.one_in(60) {
            let email = client.email.clone().expect("a user");
            let request = http
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"email": email, "password": PASSWORD}));
            match send(request).await {
                Sent::Answered(r) if r.status() == 200 => {
                    client.counts.logins += 1;
                    let first = Issued::from(&r);
                    let sid = claims_of(&first.token)["sid"].as_str().expect("sid").into();
                    client.parked.extend(client.chain.take());
                    client.chain = Some(Chain {
                        email,
                        sid,
                        refresh: vec![first],
                    });
                }
                Sent::Answered(r) => return Err(unexpected("login", r).await),
                Sent::Refused => return Ok(client),
                Sent::Lost => {
                    client.open = Some(Open::Login(email));
                    return Ok(client);
                }
            }
        } else {
            let chain = client.chain.as_mut().expect("a session");
            let request = http
                .post(format!("{base}/api/auth/refresh"))
                .bearer_auth(&chain.newest().token);
            match send(request).await {
                Sent::Answered(r) if r.status() == 200 => {
                    client.counts.refreshes += 1;
                    chain.refresh.push(Issued::from(&r));
                }
                Sent::Answered(r) => return Err(unexpected("refresh", r).await),
                Sent::Refused => return Ok(client),
                Sent::Lost => {
                    client.open = Some(Open::Refresh);
                    return Ok(client);
                }
            }
        }
    }
}
