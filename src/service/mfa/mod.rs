//! The second factor: enrollment, and the codes that every sensitive step asks for. The
//! second step of a login is `login`; the codes themselves are `codes`.
//!
//! Every use of a code is one transaction in the user database (`MfaStore::spend`): a TOTP
//! step only if it is later than the last one used (and of the secret it was checked
//! against), a recovery code by deleting it, and at a login the `mfa_token` with it. Two
//! instances given one code at once accept it once.

pub mod codes;
pub mod login;

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::clock::now_ms;
use crate::config::MfaSettings;
use crate::domain::{Email, User};
use crate::error::{AppError, Result};
use crate::service::attempts::Verdict;
use crate::service::core::{Core, gone_user};
use crate::service::mail::Kind;
use crate::service::tokens::Tokens;
use crate::store::mail::Notice;
use crate::store::mfa::{Begun, Factor, MfaStore, Spend, Spending, StoredTotp};

pub use crate::store::mfa::CodeUsed;

pub use codes::{Codes, Presented};

/// The key that seals second-factor secrets and keys the recovery codes' hashes:
/// `MFA_ENCRYPTION_KEY`, or, unset, one derived from the refresh signing key. `rs256-auth keys
/// mfa-key` prints it, so that it can be set before that signing key changes.
pub fn key_in_use(settings: &MfaSettings, tokens: &Tokens) -> [u8; 32] {
    settings
        .key
        .unwrap_or_else(|| tokens.derive_secret("rs256-auth mfa key v1"))
}

/// What every outcome of `auth_mfa_total` is called, so that each shows from the start.
const OUTCOMES: [&str; 8] = [
    "challenged",
    "passed",
    "recovery_used",
    "invalid_code",
    "replayed",
    "enrolled",
    "disabled",
    "regenerated",
];

/// A started enrollment: the secret to show once, and its `otpauth://` URI.
pub struct Enrollment {
    pub secret: String,
    pub uri: String,
}

pub struct MfaFlows {
    core: Arc<Core>,
}

impl Core {
    /// `auth_mfa_total{outcome}` one more.
    pub(crate) fn mfa_event(&self, outcome: &str) {
        self.mfa_events.with_label_values(&[outcome]).inc();
    }

    /// Checks and spends `code` (a TOTP or a recovery code) of `user`'s confirmed factor,
    /// counted as a login attempt for the user's email and the client IP: a wrong or missing
    /// code is 401 `invalid_code` and stays counted; a right one is taken back, without
    /// forgiving earlier failures (only a finished login does that).
    pub(crate) async fn check_code(
        &self,
        user: &User,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<CodeUsed> {
        let email = Email::normalize(&user.email);
        if let Verdict::Limited { retry_after } = self.attempts.begin(&email, ip).await? {
            return Err(AppError::rate_limited(retry_after));
        }
        let Some(used) = self.spend_code(user.id, code, None).await? else {
            self.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        };
        // The code is spent: a counter that cannot be taken back now must not waste it.
        if let Err(e) = self.attempts.forgive(&email, ip).await {
            tracing::warn!(error = %e, "a right code's attempt could not be taken back");
        }
        Ok(used)
    }

    /// Spends `code` if it is a good one of `user`'s confirmed factor, with the login's
    /// `challenge` if one is given, all or nothing (`MfaStore::spend`); `None` if not.
    pub(crate) async fn spend_code(
        &self,
        user: Uuid,
        code: Option<&str>,
        challenge: Option<&[u8; 32]>,
    ) -> Result<Option<CodeUsed>> {
        let mfa = &self.stores.mfa;
        let spend = match code.and_then(Presented::parse) {
            None => return Ok(None),
            Some(Presented::Totp(digits)) => {
                let Some(stored) = mfa.totp(user).await?.filter(|t| t.confirmed) else {
                    return Ok(None);
                };
                let Some(step) = self.totp_step(user, &stored, &digits)? else {
                    return Ok(None);
                };
                Spend::Step {
                    step,
                    sealed: stored.sealed,
                }
            }
            Some(Presented::Recovery(compact)) => {
                Spend::Recovery(self.codes.recovery_hash(user, &compact))
            }
        };
        Ok(match mfa.spend(user, &spend, challenge).await? {
            Spending::Done(used) => Some(used),
            Spending::CodeTaken if matches!(spend, Spend::Step { .. }) => {
                // A racing request spent this step (or a later one) first.
                self.replayed(user);
                None
            }
            Spending::CodeTaken | Spending::LoginChanged => None,
        })
    }

    /// The step of `digits` if they are a code of `stored`'s secret for a step later than
    /// its last used one (`codes::matching_step`).
    fn totp_step(&self, user: Uuid, stored: &StoredTotp, digits: &str) -> Result<Option<i64>> {
        let totp = self.open_secret(user, &stored.sealed)?;
        let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
        match codes::matching_step(&totp, digits, now, stored.last_step) {
            Some(step) => Ok(Some(i64::try_from(step).map_err(AppError::internal)?)),
            None => {
                if stored.confirmed && codes::matching_step(&totp, digits, now, -1).is_some() {
                    self.replayed(user);
                }
                Ok(None)
            }
        }
    }

    /// A right code of a step already used: someone saw the code (over a shoulder, through a
    /// phishing page) and raced its owner, or a client sent it twice. Logged, without the code.
    fn replayed(&self, user: Uuid) {
        tracing::warn!(%user, "a second-factor code was used again; refused");
        self.mfa_event("replayed");
    }

    /// A stored secret that does not open is a key that changed (`MFA_ENCRYPTION_KEY`, or
    /// the refresh key it is derived from): the operator's to fix, never the client's.
    fn open_secret(&self, user: Uuid, sealed: &[u8]) -> Result<totp_rs::Totp> {
        self.codes.open(user, sealed).ok_or_else(|| {
            AppError::internal("a second-factor secret does not open with the configured key")
        })
    }

    /// For the password change, the address change and the deletion: a code too, if `user`
    /// (as just read, with the password checked) has a second factor.
    pub(crate) async fn step_up(
        &self,
        user: &User,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        if user.mfa {
            self.check_code(user, code, ip).await?;
        }
        Ok(())
    }
}

impl MfaFlows {
    pub(super) fn new(core: Arc<Core>) -> Self {
        for outcome in OUTCOMES {
            core.mfa_events.with_label_values(&[outcome]);
        }
        MfaFlows { core }
    }

    /// Starts (or starts again) an enrollment: a new secret, not active until a code of it
    /// confirms it.
    pub async fn enroll(
        &self,
        user: &User,
        password: String,
        ip: Option<IpAddr>,
    ) -> Result<Enrollment> {
        let core = &self.core;
        let fresh = core
            .check_password(&Email::normalize(&user.email), password, ip)
            .await?;
        if fresh.mfa {
            return Err(AppError::MfaEnabled);
        }
        let made = core.codes.new_secret(fresh.id);
        let (secret, sealed) = made.ok_or_else(|| AppError::internal("no secret was made"))?;
        let uri = core.codes.uri(&secret, &fresh.email);
        let uri = uri.ok_or_else(|| AppError::internal("no otpauth URI was made"))?;
        match core.stores.mfa.begin(fresh.id, &sealed).await? {
            Begun::Pending => Ok(Enrollment { secret, uri }),
            Begun::AlreadyOn => Err(AppError::MfaEnabled),
            Begun::NoSuchUser => Err(gone_user()),
        }
    }

    /// Turns the factor on with a code of the pending secret; answers the recovery codes, and
    /// ends every session of the user but `keep`.
    pub async fn confirm(
        &self,
        user: &User,
        code: Option<&str>,
        keep: Uuid,
        ip: Option<IpAddr>,
    ) -> Result<Vec<String>> {
        let core = &self.core;
        let stored = core.stores.mfa.totp(user.id).await?;
        let stored = match stored {
            Some(stored) if stored.confirmed => return Err(AppError::MfaEnabled),
            Some(stored) => stored,
            None => return Err(AppError::MfaNotPending),
        };
        let email = Email::normalize(&user.email);
        if let Verdict::Limited { retry_after } = core.attempts.begin(&email, ip).await? {
            return Err(AppError::rate_limited(retry_after));
        }
        let step = match code.and_then(Presented::parse) {
            Some(Presented::Totp(digits)) => core.totp_step(user.id, &stored, &digits)?,
            _ => None,
        };
        let Some(step) = step else {
            core.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        };
        let made = core.codes.new_recovery_codes(user.id);
        let (shown, hashes) = made.ok_or_else(|| AppError::internal("no codes were made"))?;
        // The other sessions end before the factor goes on: a thief already signed in with the
        // password must not outlive it, and should the sweep fail, nothing is on yet (503, and
        // the user confirms again with the next code).
        core.sweep(user.id, Some(keep)).await?;
        // Only the secret that was checked, still unconfirmed: a second enrollment started
        // meanwhile replaced it, and its code is no code of this one.
        let notice = Notice::new(Kind::MfaOn.as_str()).to(&user.email);
        let confirmed = core
            .stores
            .mfa
            .confirm(user.id, &stored.sealed, step, &hashes, &notice)
            .await?;
        if confirmed == Factor::Moved {
            core.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        }
        core.mail.wake();
        core.mfa_event("enrolled");
        // Once more, for a password-only login that wrote its session between the first sweep
        // and the commit. The factor is on and the codes exist only in this answer: a failure
        // here is logged, not answered.
        if let Err(e) = core.sweep(user.id, Some(keep)).await {
            tracing::error!(error = %e, "the sessions could not be ended again after the factor went on");
        }
        if let Err(e) = core.attempts.forgive(&email, ip).await {
            tracing::warn!(error = %e, "a right code's attempt could not be taken back");
        }
        Ok(shown)
    }

    /// Turns the factor off, with the password and a code (or a recovery code).
    pub async fn disable(
        &self,
        user: &User,
        password: String,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let core = &self.core;
        let fresh = self.checked(user, password, code, ip).await?;
        let notice = Notice::new(Kind::MfaOff.as_str()).to(&fresh.email);
        if core.stores.mfa.disable(fresh.id, &notice).await? == Factor::Moved {
            return Err(AppError::MfaNotEnabled);
        }
        core.mail.wake();
        core.mfa_event("disabled");
        core.user_changed(fresh.id).await
    }

    /// Ten new recovery codes, with the password and a code; the old ones die.
    pub async fn regenerate(
        &self,
        user: &User,
        password: String,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Vec<String>> {
        let core = &self.core;
        let fresh = self.checked(user, password, code, ip).await?;
        let made = core.codes.new_recovery_codes(fresh.id);
        let (shown, hashes) = made.ok_or_else(|| AppError::internal("no codes were made"))?;
        if core.stores.mfa.replace_codes(fresh.id, &hashes).await? == Factor::Moved {
            return Err(AppError::MfaNotEnabled);
        }
        core.mfa_event("regenerated");
        Ok(shown)
    }

    /// The user as read with `password` checked, with a factor on and `code` spent.
    async fn checked(
        &self,
        user: &User,
        password: String,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<User> {
        let core = &self.core;
        let fresh = core
            .check_password(&Email::normalize(&user.email), password, ip)
            .await?;
        if !fresh.mfa {
            return Err(AppError::MfaNotEnabled);
        }
        core.check_code(&fresh, code, ip).await?;
        Ok(fresh)
    }
}
