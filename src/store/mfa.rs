//! The second factor, beside the users in the user database: a factor's change and the user's
//! `mfa` flag are written in one transaction, and every use of a code is one conditional
//! write, so that a code works once however many instances it reaches at once.

use enum_dispatch::enum_dispatch;
use uuid::Uuid;

use crate::store::error::Result;

/// A user's authenticator secret as stored: sealed, and whether it was confirmed.
#[derive(Clone)]
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

impl Factor {
    pub fn from_rows(rows: u64) -> Self {
        if rows == 1 {
            Factor::Done
        } else {
            Factor::Moved
        }
    }
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
#[derive(Debug, Clone)]
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
    /// codes `codes` (hashes) and the user's `mfa` flag, in one transaction; `Moved` if the
    /// secret is no longer that one, unconfirmed.
    async fn confirm(
        &self,
        user: Uuid,
        sealed: &[u8],
        step: i64,
        codes: &[[u8; 32]],
    ) -> Result<Factor>;

    /// Records `step` as used, if the confirmed factor's last step is older; `Moved` if it
    /// is not (a replay, or the factor is gone).
    async fn use_step(&self, user: Uuid, step: i64) -> Result<Factor>;

    /// Deletes the recovery code `hash`: `Some(codes left)` if it was the user's, else `None`.
    async fn use_recovery_code(&self, user: Uuid, hash: &[u8; 32]) -> Result<Option<u32>>;

    /// Replaces the recovery codes, if the confirmed factor is on.
    async fn replace_codes(&self, user: Uuid, codes: &[[u8; 32]]) -> Result<Factor>;

    /// Deletes the secret and the recovery codes, and clears the user's `mfa` flag; `Moved`
    /// if no confirmed factor was on.
    async fn disable(&self, user: Uuid) -> Result<Factor>;

    /// Stores a challenge (and deletes the ended ones).
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

    /// Deletes the challenge: `true` for the one request that does.
    async fn spend_challenge(&self, hash: &[u8; 32]) -> Result<bool>;
}
