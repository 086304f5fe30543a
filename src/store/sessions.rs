//! Sessions: the contract every backend keeps, and its value types. One session per login, with an entry per issued token. A token is live while both its
//! entry and its session exist, so ending a session ends all of its tokens at once.

use chrono::{DateTime, Utc};
use enum_dispatch::enum_dispatch;
use uuid::Uuid;

use crate::clock::ExpiresAt;
use crate::store::error::Result;
use crate::store::rotation::{Rotate, Rotation};

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
/// whether it is a refresh token already exchanged for its successor (its entry is kept, to
/// answer a late tab or detect reuse, but it no longer stands for the session), and the
/// user's stamp where the store keeps one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub live: bool,
    pub rotated: bool,
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

/// What came of ending one session of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Ended,
    /// Not a live session of this user (another user's included): nothing was ended.
    NoSuchSession,
}

impl Ended {
    /// From how many of the user's live sessions the store deleted (0 or 1).
    pub fn from_count(ended: u64) -> Self {
        if ended == 1 {
            Ended::Ended
        } else {
            Ended::NoSuchSession
        }
    }
}

/// The sessions: Redis in production, the SQLite file when embedded.
#[enum_dispatch]
#[allow(async_fn_in_trait)] // Only ever called on the concrete enum, never through `dyn`.
pub trait SessionStore {
    /// For the healthchecker: which store holds the sessions.
    fn name(&self) -> &'static str;

    /// Writes the session of a login, unless the user changed since `vouched` was read.
    async fn create(&self, session: &NewSession, vouched: &Vouched) -> Result<Created>;

    /// Whether this token of this user's session is still live, and the user's stamp.
    async fn check(&self, token: &TokenRef) -> Result<Check>;

    /// The user's current stamp, set now if none is. Read the user only after this, so a
    /// change committed meanwhile moves the stamp past it. A store that keeps no stamps
    /// (its users live beside the sessions, and are read each time) answers `Unkept`.
    async fn stamp(&self, _user: Uuid) -> Result<Stamp> {
        Ok(Stamp::Unkept)
    }

    /// Moves the user's stamp: every instance drops its copy of the user at its next
    /// request. Call it after a change to the user is committed, and before ending sessions.
    async fn user_changed(&self, _user: Uuid) -> Result<()> {
        Ok(())
    }

    /// Consumes the presented refresh token and stores its successors, atomically: of
    /// several racing refreshes with one token exactly one rotates, the others get its result.
    /// With `stamp`, nothing happens (`UserChanged`) unless it is still the user's stamp
    /// (a store that keeps no stamps ignores it).
    async fn rotate(&self, rotate: &Rotate, stamp: Option<&str>) -> Result<Rotation>;

    /// Ends the session of each token: every token of it stops working at once.
    async fn end(&self, tokens: &[TokenRef]) -> Result<()>;

    /// The user's live sessions, in no particular order. An ended or expired session is
    /// never listed.
    async fn list(&self, user: Uuid) -> Result<Vec<SessionInfo>>;

    /// Ends one session of the user.
    async fn end_one(&self, user: Uuid, sid: Uuid) -> Result<Ended>;

    /// Ends every live session of the user but `keep`, in one atomic step (a session written
    /// meanwhile is either ended or written after it); returns how many ended.
    async fn end_all(&self, user: Uuid, keep: Option<Uuid>) -> Result<usize>;

    async fn ping(&self) -> Result<()>;
}
