//! Mail: the links' tokens and the outbox, beside the users in the user database, so that a
//! token and its mail are written in one transaction, and a token is spent in the same
//! transaction as the change it grants.

use enum_dispatch::enum_dispatch;
use uuid::Uuid;

use crate::domain::User;
use crate::store::error::Result;

/// What a link proves or grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The address is the user's: mark it verified.
    Verify,
    /// Set a new password (and the address is proven).
    Reset,
    /// Move the user to the new address the link was sent to.
    Confirm,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
            Purpose::Confirm => "confirm",
        }
    }
}

/// A link's token as stored: its SHA-256 only, and what it was issued for. The user must
/// still be at `bound_email`, and where `bound_password` is given still have that password
/// hash, for the link to be issued and to work: a link dies with the address, and a reset or
/// confirm link with the password, it was asked for under.
pub struct NewLink {
    pub hash: [u8; 32],
    pub purpose: Purpose,
    pub user: Uuid,
    /// Where the link was sent: the user's address, or the new one for a confirm.
    pub address: String,
    pub bound_email: String,
    pub bound_password: Option<String>,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// When the link was asked for (Unix microseconds).
    pub requested_at: i64,
}

/// A message for the outbox. The token (if any) travels sealed: a copy of the database
/// opens no mailbox (`service::opaque::Seal`).
#[derive(Clone)]
pub struct Outgoing {
    pub id: Uuid,
    pub kind: &'static str,
    pub recipient: String,
    pub sealed: Option<Vec<u8>>,
}

/// A message taken from the outbox to send, leased to this instance until `lease_until`.
#[derive(Clone)]
pub struct Queued {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub sealed: Option<Vec<u8>>,
    /// Tries so far, this one included.
    pub attempts: i32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The lease this claim wrote: `remove` and `retry` act only while it is still ours.
    pub lease_until: i64,
}

/// A notice written with a change: its id and kind; the store addresses it.
pub struct Notice {
    pub id: Uuid,
    pub kind: &'static str,
}

impl Notice {
    pub fn new(kind: &'static str) -> Self {
        Notice {
            id: Uuid::new_v4(),
            kind,
        }
    }

    pub fn to(&self, recipient: &str) -> Outgoing {
        Outgoing {
            id: self.id,
            kind: self.kind,
            recipient: recipient.to_owned(),
            sealed: None,
        }
    }
}

/// What came of issuing a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// The token and its mail are stored; older links of the purpose are gone.
    Done,
    /// The user changed (or went) since it was read: nothing was written.
    Stale,
    /// A link of the purpose asked for later already exists: nothing was written.
    Superseded,
}

/// What came of spending a link.
#[derive(Debug)]
pub enum Spent {
    /// The user after the change the link granted; `changed` is false where there was
    /// nothing to change (an address already verified).
    Done { user: User, changed: bool },
    /// Unknown, used, expired, superseded, of another purpose, or the user changed since.
    Invalid,
    /// Confirm only: another user took the address meanwhile. Nothing was written.
    EmailTaken,
}

/// The links and the outbox of one backend. Instants are Unix milliseconds.
#[enum_dispatch]
#[allow(async_fn_in_trait)] // Only ever called on the concrete enum, never through `dyn`.
pub trait MailStore {
    /// Stores `link` and queues `mail`, in one transaction, if the user is still as the link
    /// requires (see `NewLink`) and has no link of the purpose asked for later; the user's
    /// older links of the same purpose die with it.
    async fn issue(&self, link: &NewLink, mail: &Outgoing) -> Result<Issued>;

    /// Queues a message that carries no link (a notice).
    async fn queue(&self, mail: &Outgoing) -> Result<()>;

    /// Whether a live link of `purpose` has this hash (spends nothing): a reset checks it
    /// before it hashes the new password.
    async fn is_live(&self, hash: &[u8; 32], purpose: Purpose, now: i64) -> Result<bool>;

    /// Spends a verify link: the address is marked verified.
    async fn verify(&self, hash: &[u8; 32], now: i64) -> Result<Spent>;

    /// Spends a reset link: the password becomes `password_hash`, the address is verified,
    /// and a notice of `notice` kind goes to the user's address, in one transaction.
    async fn reset(
        &self,
        hash: &[u8; 32],
        password_hash: &str,
        now: i64,
        notice: &Notice,
    ) -> Result<Spent>;

    /// Spends a confirm link: the user moves to the new address, verified, and a notice of
    /// `notice` kind goes to the old address, in one transaction.
    async fn confirm(&self, hash: &[u8; 32], now: i64, notice: &Notice) -> Result<Spent>;

    /// Up to `limit` messages due at `now`, leased to the caller until `lease_until`: while
    /// the lease runs no other instance takes them, and if the caller dies they come back.
    async fn claim(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Queued>>;

    /// The message is delivered, or given up: it leaves the outbox, if the lease `claim`
    /// gave is still this sender's (`false` otherwise: another sender has it now).
    async fn remove(&self, mail: &Queued) -> Result<bool>;

    /// The message is tried again at `at`, if the lease is still this sender's.
    async fn retry(&self, mail: &Queued, at: i64) -> Result<bool>;

    /// Messages waiting in the outbox.
    async fn depth(&self) -> Result<i64>;

    /// Deletes links past their end.
    async fn purge(&self, now: i64) -> Result<()>;
}
