//! Sessions: one per login, with an entry per issued token. A token is live while both its
//! entry and its session exist, so ending a session ends all of its tokens at once.

use chrono::{DateTime, Utc};
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

/// A login: its session, its first two tokens, and the device it came from. The session
/// lives as long as its newest refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user: Uuid,
    pub sid: Uuid,
    pub access: TokenEntry,
    pub refresh: TokenEntry,
    pub device: Device,
}

/// What the login request said about its client, kept for the user's list of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// At most 256 characters.
    pub user_agent: String,
    /// The client IP by the rate limit's rule; empty when unknown.
    pub ip: String,
}

/// One live session as the user's list shows it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub sid: Uuid,
    pub created_at: i64,
    pub last_used_at: i64,
    pub device: Device,
}

/// A token as its claims name it.
#[derive(Debug, Clone, Copy)]
pub struct TokenRef {
    pub user: Uuid,
    pub sid: Uuid,
    pub token_uuid: Uuid,
}

/// What the session store says about a request's token, in one read: whether it is live,
/// and the user's stamp where the store keeps one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub live: bool,
    pub stamp: Stamp,
}

/// A value that changes whenever a user changes. A copy of a user is good for exactly as
/// long as the stamp it was read under is the current one, on every instance at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// This store keeps no stamps (the embedded file): read the user each time.
    Unkept,
    /// None is set (never yet, or it expired): set one before reading the user.
    Missing,
    Is(String),
}

/// The user as a password check found them. A session is written only while this still holds,
/// checked in the same atomic step as the write: a password change, a deletion or any other
/// change to the user committed after the check refuses the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The user's stamp, read before the user was (where the store keeps stamps).
    pub stamp: Stamp,
    /// The user's `updated_at` as read (where the same store holds the users).
    pub updated_at: DateTime<Utc>,
}

/// What came of writing a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The user changed since it was vouched for: nothing was written.
    UserChanged,
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

    /// Writes the session of a login, unless the user changed since `vouched` was read.
    pub async fn create(&self, session: &NewSession, vouched: &Vouched) -> Result<Created> {
        match self {
            SessionStore::Redis(s) => s.create(session, vouched).await,
            SessionStore::Sqlite(s) => s.create(session, vouched).await,
        }
    }

    /// Whether this token of this user's session is still live, and the user's stamp.
    pub async fn check(&self, token: &TokenRef) -> Result<Check> {
        match self {
            SessionStore::Redis(s) => s.check(token).await,
            SessionStore::Sqlite(s) => Ok(Check {
                live: s.is_live(token).await?,
                stamp: Stamp::Unkept,
            }),
        }
    }

    /// The user's current stamp, set now if none is: `Unkept` where the store keeps none.
    /// Read the user only after this, so a change committed meanwhile moves the stamp past it.
    pub async fn stamp(&self, user: Uuid) -> Result<Stamp> {
        match self {
            SessionStore::Redis(s) => s.stamp(user).await.map(Stamp::Is),
            SessionStore::Sqlite(_) => Ok(Stamp::Unkept),
        }
    }

    /// Moves the user's stamp: every instance drops its copy of the user at its next
    /// request. Call it after a change to the user is committed.
    pub async fn user_changed(&self, user: Uuid) -> Result<()> {
        match self {
            SessionStore::Redis(s) => s.user_changed(user).await,
            SessionStore::Sqlite(_) => Ok(()),
        }
    }

    /// Consumes the presented refresh token and stores its successors, atomically: of
    /// several racing refreshes with one token exactly one rotates, the others get its result.
    /// With `stamp`, nothing happens (`UserChanged`) unless it is still the user's stamp.
    pub async fn rotate(&self, rotate: &Rotate, stamp: Option<&str>) -> Result<Rotation> {
        match self {
            SessionStore::Redis(s) => s.rotate(rotate, stamp).await,
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

    /// The user's live sessions, newest first. An ended or expired session is never listed.
    pub async fn list(&self, user: Uuid) -> Result<Vec<SessionInfo>> {
        let mut sessions = match self {
            SessionStore::Redis(s) => s.list(user).await?,
            SessionStore::Sqlite(s) => s.list(user).await?,
        };
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.sid.cmp(&a.sid)));
        Ok(sessions)
    }

    /// Ends one session of the user: false if it is not a live session of this user.
    pub async fn end_one(&self, user: Uuid, sid: Uuid) -> Result<bool> {
        match self {
            SessionStore::Redis(s) => s.end_one(user, sid).await,
            SessionStore::Sqlite(s) => s.end_one(user, sid).await,
        }
    }

    /// Ends every live session of the user but `keep`, in one atomic step (a session written
    /// meanwhile is either ended or written after it); returns how many ended.
    pub async fn end_all(&self, user: Uuid, keep: Option<Uuid>) -> Result<usize> {
        match self {
            SessionStore::Redis(s) => s.end_all(user, keep).await,
            SessionStore::Sqlite(s) => s.end_all(user, keep).await,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        match self {
            SessionStore::Redis(s) => s.ping().await,
            SessionStore::Sqlite(s) => s.ping().await,
        }
    }
}
