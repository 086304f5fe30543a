//! Sessions: one per login, with an entry per issued token. A token is live while both its
//! entry and its session exist, so ending a session ends all of its tokens at once.

use uuid::Uuid;

use crate::error::Result;
use crate::store::rotation::{Rotate, Rotation};
use crate::store::{ExpiresAt, redis, sqlite};

/// One token's entry: which token, and when its entry may end (never before the token
/// itself stops verifying).
#[derive(Debug, Clone, Copy)]
pub struct TokenEntry {
    pub token_uuid: Uuid,
    pub expires_at: ExpiresAt,
}

/// A login: its session and its first two tokens. The session lives as long as its newest
/// refresh token.
#[derive(Debug, Clone, Copy)]
pub struct NewSession {
    pub user: Uuid,
    pub sid: Uuid,
    pub access: TokenEntry,
    pub refresh: TokenEntry,
}

/// A token as its claims name it.
#[derive(Debug, Clone, Copy)]
pub struct TokenRef {
    pub user: Uuid,
    pub sid: Uuid,
    pub token_uuid: Uuid,
}

pub enum SessionStore {
    Redis(redis::sessions::Sessions),
    Sqlite(sqlite::sessions::Sessions),
}

impl SessionStore {
    /// For the healthchecker: which store holds the sessions.
    pub fn name(&self) -> &'static str {
        match self {
            SessionStore::Redis(_) => "redis",
            SessionStore::Sqlite(_) => "sqlite",
        }
    }

    pub async fn create(&self, session: &NewSession) -> Result<()> {
        match self {
            SessionStore::Redis(s) => s.create(session).await,
            SessionStore::Sqlite(s) => s.create(session).await,
        }
    }

    /// Whether this token of this user's session is still live.
    pub async fn is_live(&self, token: &TokenRef) -> Result<bool> {
        match self {
            SessionStore::Redis(s) => s.is_live(token).await,
            SessionStore::Sqlite(s) => s.is_live(token).await,
        }
    }

    /// Consumes the presented refresh token and stores its successors, atomically: of
    /// several racing refreshes with one token exactly one rotates, the others get its result.
    pub async fn rotate(&self, rotate: &Rotate) -> Result<Rotation> {
        match self {
            SessionStore::Redis(s) => s.rotate(rotate).await,
            SessionStore::Sqlite(s) => s.rotate(rotate).await,
        }
    }

    /// Ends the session of each token: every token of it stops working at once.
    pub async fn end(&self, tokens: &[TokenRef]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        match self {
            SessionStore::Redis(s) => s.end(tokens).await,
            SessionStore::Sqlite(s) => s.end(tokens).await,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        match self {
            SessionStore::Redis(s) => s.ping().await,
            SessionStore::Sqlite(s) => s.ping().await,
        }
    }
}
