//! The second factor, beside the users in the user database: a factor's change and the user's
//! `mfa` flag are written in one transaction, and every use of a code is one conditional
//! write, so that a code works once however many instances it reaches at once.

use enum_dispatch::enum_dispatch;
use uuid::Uuid;

use crate::store::error::Result;
use crate::store::mail::Outgoing;

/// A user's authenticator secret as stored: sealed, and whether it was confirmed.
pub struct StoredTotp {
    pub sealed: Vec<u8>,
    pub confirmed: bool,
    /// The step of the last code accepted (-1: none yet).
    pub last_step: i64,
}

/// What came of starting an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// The new secret waits for its confirming code (any older unconfirmed one is gone).
    Pending,
    /// A confirmed factor is on: nothing was written.
    AlreadyOn,
    NoSuchUser,
}

/// What came of a write that needs a factor in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Done,
    /// The factor was not as the write needed (confirmed meanwhile, replaced, turned off, or
    /// the step already used): nothing was written.
    Moved,
}

/// What spending a code writes: the step of a TOTP code, for the sealed secret it was checked
/// against; or a recovery code's hash.
pub enum Spend {
    Step { step: i64, sealed: Vec<u8> },
    Recovery([u8; 32]),
}

/// What came of spending a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spending {
    Done(CodeUsed),
    /// The challenge is gone, or its user no longer has what it was issued for.
    LoginChanged,
    /// The step was used already (by a later or racing code), or the recovery code is not
    /// (or no longer) the user's, or the factor changed.
    CodeTaken,
}

/// A code that was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUsed {
    Totp,
    /// A recovery code; this many are left.
    Recovery {
        left: u32,
    },
}

/// A password step waiting for its code.
pub struct NewChallenge {
    /// SHA-256 of the `mfa_token`.
    pub hash: [u8; 32],
    pub user: Uuid,
    /// What the user must still be for the login to finish.
    pub bound_email: String,
    pub bound_password: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// A live challenge, as read.
/// No `Debug`: it holds a password hash, which no log line may carry.
pub struct Challenge {
    pub user: Uuid,
    pub bound_email: String,
    pub bound_password: String,
}

#[enum_dispatch]
#[allow(async_fn_in_trait)] // Only ever called on the concrete enum, never through `dyn`.
pub trait MfaStore {
    /// Stores a new unconfirmed secret, replacing an unconfirmed one, unless a confirmed
    /// factor is on.
    async fn begin(&self, user: Uuid, sealed: &[u8]) -> Result<Begun>;

    /// The user's secret, confirmed or not.
    async fn totp(&self, user: Uuid) -> Result<Option<StoredTotp>>;

    /// Turns the unconfirmed secret `sealed` on, with its first code's `step`, the recovery
    /// codes `codes` (hashes), the user's `mfa` flag and the `notice` for the outbox, in one
    /// transaction; `Moved` if the secret is no longer that one, unconfirmed.
    async fn confirm(
        &self,
        user: Uuid,
        sealed: &[u8],
        step: i64,
        codes: &[[u8; 32]],
        notice: &Outgoing,
    ) -> Result<Factor>;

    /// Spends a code of the user's confirmed factor, all or nothing, in one transaction: a
    /// step only if it is later than the last one used and of the secret it was checked
    /// against; a recovery code by deleting it. With `challenge` (a login's second step), that
    /// challenge is deleted too, and only while its user still has the password hash, the
    /// address and the factor it was issued for. Unless `Done`, nothing was written.
    async fn spend(
        &self,
        user: Uuid,
        spend: &Spend,
        challenge: Option<&[u8; 32]>,
    ) -> Result<Spending>;

    /// Replaces the recovery codes, if the confirmed factor is on.
    async fn replace_codes(&self, user: Uuid, codes: &[[u8; 32]]) -> Result<Factor>;

    /// Deletes the secret and the recovery codes, clears the user's `mfa` flag and queues the
    /// `notice`, in one transaction; `Moved` if no confirmed factor was on.
    async fn disable(&self, user: Uuid, notice: &Outgoing) -> Result<Factor>;

    /// Stores a challenge (and, where the store has no purge of its own, deletes the ended
    /// ones).
    async fn add_challenge(&self, new: &NewChallenge, now: i64) -> Result<()>;

    /// Takes one try of the live challenge of `hash` (not expired, fewer than `tries` taken):
    /// its login, or `None` if it has none left. A try is taken before its code is checked,
    /// so that requests at once cannot share one.
    async fn claim_challenge(
        &self,
        hash: &[u8; 32],
        now: i64,
        tries: u32,
    ) -> Result<Option<Challenge>>;
}
