//! The second factor: enrollment, the codes that every sensitive step asks for, and the
//! second step of a login (`SessionFlows::finish_login`). The codes themselves are `codes`.
//!
//! Every use of a code is one conditional write in the user database (`MfaStore`): a TOTP
//! step only if it is later than the last one used, a recovery code by deleting it. Two
//! instances given one code at once accept it once.

pub mod codes;

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::clock::now_ms;
use crate::domain::{Email, User};
use crate::error::{AppError, Result};
use crate::service::attempts::Verdict;
use crate::service::core::{Core, gone_user};
use crate::service::mail::Kind;
use crate::store::mfa::{Begun, Factor, MfaStore};

pub use codes::{Codes, Presented};

/// What every outcome of `auth_mfa_total` is called, so that each shows from the start.
const OUTCOMES: [&str; 7] = [
    "challenged",
    "passed",
    "recovery_used",
    "invalid_code",
    "enrolled",
    "disabled",
    "regenerated",
];

/// A code that was accepted, and spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUsed {
    Totp,
    /// A recovery code; this many are left.
    Recovery {
        left: u32,
    },
}

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
        let Some(used) = self.spend_code(user.id, code).await? else {
            self.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        };
        self.attempts.forgive(&email, ip).await?;
        Ok(used)
    }

    /// Spends `code` if it is a good one of `user`'s confirmed factor; `None` if not.
    pub(crate) async fn spend_code(
        &self,
        user: Uuid,
        code: Option<&str>,
    ) -> Result<Option<CodeUsed>> {
        let mfa = &self.stores.mfa;
        match code.and_then(Presented::parse) {
            None => Ok(None),
            Some(Presented::Totp(digits)) => {
                let Some(stored) = mfa.totp(user).await?.filter(|t| t.confirmed) else {
                    return Ok(None);
                };
                let totp = self.open_secret(user, &stored.sealed)?;
                let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
                let Some(step) = codes::matching_step(&totp, &digits, now, stored.last_step) else {
                    return Ok(None);
                };
                let step = i64::try_from(step).map_err(AppError::internal)?;
                Ok((mfa.use_step(user, step).await? == Factor::Done).then_some(CodeUsed::Totp))
            }
            Some(Presented::Recovery(compact)) => {
                let hash = self.codes.recovery_hash(user, &compact);
                let left = mfa.use_recovery_code(user, &hash).await?;
                Ok(left.map(|left| CodeUsed::Recovery { left }))
            }
        }
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
        let totp = core.open_secret(user.id, &stored.sealed)?;
        let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let step = match code.and_then(Presented::parse) {
            Some(Presented::Totp(digits)) => {
                codes::matching_step(&totp, &digits, now, stored.last_step)
            }
            _ => None,
        };
        let Some(step) = step else {
            core.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        };
        let step = i64::try_from(step).map_err(AppError::internal)?;
        let made = core.codes.new_recovery_codes(user.id);
        let (shown, hashes) = made.ok_or_else(|| AppError::internal("no codes were made"))?;
        // Only the secret that was checked, still unconfirmed: a second enrollment started
        // meanwhile replaced it, and its code is no code of this one.
        let confirmed = core
            .stores
            .mfa
            .confirm(user.id, &stored.sealed, step, &hashes)
            .await?;
        if confirmed == Factor::Moved {
            core.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        }
        core.attempts.forgive(&email, ip).await?;
        core.mfa_event("enrolled");
        core.mail.notice(Kind::MfaOn, &user.email).await?;
        // A thief already signed in (with the password) loses the session that would outlive
        // the new factor.
        core.sweep(user.id, Some(keep)).await?;
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
        if core.stores.mfa.disable(fresh.id).await? == Factor::Moved {
            return Err(AppError::MfaNotEnabled);
        }
        core.user_changed(fresh.id).await?;
        core.mfa_event("disabled");
        core.mail.notice(Kind::MfaOff, &fresh.email).await
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
