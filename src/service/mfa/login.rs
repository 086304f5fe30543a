//! The two steps of a login with a second factor: the password step leaves an `mfa_token`
//! (only its SHA-256 is stored, with what the password proved), and the code step spends the
//! token and the code in one transaction before it writes the session.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::{millis, now_ms};
use crate::domain::Email;
use crate::error::{AppError, Result};
use crate::service::attempts::Verdict;
use crate::service::opaque::{hash_of, new_token};
use crate::service::sessions::{Proven, SessionFlows, SessionTokens};
use crate::service::tokens::login_amr;
use crate::store::mfa::{CodeUsed, MfaStore, NewChallenge};
use crate::store::sessions::Device;

/// How long an `mfa_token` waits for its code.
pub const MFA_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// How many codes an `mfa_token` takes: five wrong ones end it.
pub const MFA_TOKEN_TRIES: u32 = 5;

/// A login finished with a code: its session, and the recovery codes left if one was used.
pub struct Finished {
    pub tokens: SessionTokens,
    pub recovery_codes_left: Option<u32>,
}

impl SessionFlows {
    /// A new `mfa_token` for a password step of a user with a second factor.
    pub(in crate::service) async fn challenge(&self, proven: Proven) -> Result<String> {
        let core = &self.core;
        let (token, hash) = new_token().map_err(|_| AppError::internal("no mfa_token was made"))?;
        let now = now_ms();
        let challenge = NewChallenge {
            hash,
            user: proven.user,
            bound_email: proven.email,
            bound_password: proven.password_hash,
            expires_at: now + millis(MFA_TOKEN_TTL),
        };
        core.stores.mfa.add_challenge(&challenge, now).await?;
        core.mfa_event("challenged");
        Ok(token)
    }

    /// The second step of a login: the `mfa_token` of the password step and a code. Each
    /// try uses one of the token's `MFA_TOKEN_TRIES`, and a wrong code counts as a failed
    /// login for the email and the client IP. The right code and the token are spent together
    /// or not at all, and only while the user still has the password, address and factor the
    /// password step saw; only then is the session written, and the email's failures forgiven.
    pub async fn finish_login(
        &self,
        mfa_token: &str,
        code: &str,
        ip: Option<IpAddr>,
        device: Device,
    ) -> Result<Finished> {
        let core = &self.core;
        let mut claimed = None;
        if let Some(hash) = hash_of(mfa_token) {
            let challenge = core
                .stores
                .mfa
                .claim_challenge(&hash, now_ms(), MFA_TOKEN_TRIES)
                .await?;
            claimed = challenge.map(|c| (hash, c));
        }
        let Some((hash, challenge)) = claimed else {
            // Guessing tokens costs the client IP, as guessing passwords does.
            if let Verdict::Limited { retry_after } = core.attempts.begin_ip(ip).await? {
                return Err(AppError::rate_limited(retry_after));
            }
            core.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        };
        let email = Email::normalize(&challenge.bound_email);
        if let Verdict::Limited { retry_after } = core.attempts.begin(&email, ip).await? {
            return Err(AppError::rate_limited(retry_after));
        }
        let spent = core
            .spend_code(challenge.user, Some(code), Some(&hash))
            .await?;
        let Some(used) = spent else {
            core.mfa_event("invalid_code");
            return Err(AppError::InvalidCode);
        };
        let proven = Proven {
            user: challenge.user,
            email: challenge.bound_email,
            password_hash: challenge.bound_password,
            mfa: true,
        };
        let amr = login_amr(true);
        let tokens = match self.open_session(&proven, device, amr).await {
            // The password, the address or the factor changed since the code was spent.
            Err(AppError::InvalidCredentials) => return Err(AppError::InvalidCode),
            other => other?,
        };
        // The login is done: a counter that cannot be cleared now must not undo it.
        if let Err(e) = core.attempts.succeeded(&email, ip).await {
            tracing::warn!(error = %e, "a finished login's failures could not be cleared");
        }
        let recovery_codes_left = match used {
            CodeUsed::Totp => {
                core.mfa_event("passed");
                None
            }
            CodeUsed::Recovery { left } => {
                core.mfa_event("recovery_used");
                Some(left)
            }
        };
        Ok(Finished {
            tokens,
            recovery_codes_left,
        })
    }
}
