//! What every flow shares: the stores, the keys, argon2, the instance's copies of verified
//! tokens and users, and the few steps several flows take (check a password, read a user
//! under its stamp, announce a change).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounterVec;
use uuid::Uuid;

use crate::domain::{Email, PASSWORD_MAX_CHARS, User};
use crate::error::{AppError, Result};
use crate::service::attempts::{LoginAttempts, Verdict};
use crate::service::cache::{Users as UserCopies, VerifiedTokens};
use crate::service::mail::Mailer;
use crate::service::mfa::Codes;
use crate::service::password::Passwords;
use crate::service::tokens::{Claims, Tokens, entry_expiry, has_expired};
use crate::store::Stores;
use crate::store::sessions::{SessionStore, Stamp, TokenEntry, TokenRef};
use crate::store::users::UserStore;

/// How many verified tokens and user copies an instance keeps (each well under 2 KB).
const CACHE_ENTRIES: usize = 10_000;

/// How long a copy of a user serves at most, even under an unchanged stamp: a change whose
/// announcement Redis lost (a failover, a restore) or a hand edit in SQL reaches every
/// instance within this time.
const COPY_MAX_AGE: Duration = Duration::from_secs(60);

/// A refresh rotates, and a login writes its session, only for the user as last read; a user
/// changing faster than this many reads is answered 503.
pub(super) const MAX_STAMP_TRIES: usize = 3;

pub(super) struct Core {
    pub stores: Arc<Stores>,
    pub attempts: LoginAttempts,
    pub tokens: Tokens,
    pub passwords: Passwords,
    /// `REFRESH_REUSE_GRACE`.
    pub grace: Duration,
    pub verified: VerifiedTokens,
    pub user_copies: UserCopies,
    /// `auth_refreshes_total{outcome}`.
    pub refreshes: IntCounterVec,
    /// `auth_mfa_total{outcome}`.
    pub mfa_events: IntCounterVec,
    pub mail: Mailer,
    /// The second factor's keys.
    pub codes: Codes,
}

/// What `Core` is made of, besides the copies it keeps itself.
pub(super) struct Parts {
    pub stores: Arc<Stores>,
    pub attempts: LoginAttempts,
    pub tokens: Tokens,
    pub passwords: Passwords,
    pub grace: Duration,
    pub refreshes: IntCounterVec,
    pub mfa_events: IntCounterVec,
    pub mail: Mailer,
    pub codes: Codes,
}

impl Core {
    pub fn new(parts: Parts) -> Self {
        Core {
            stores: parts.stores,
            attempts: parts.attempts,
            tokens: parts.tokens,
            passwords: parts.passwords,
            grace: parts.grace,
            verified: VerifiedTokens::new(CACHE_ENTRIES),
            user_copies: UserCopies::new(CACHE_ENTRIES, COPY_MAX_AGE),
            refreshes: parts.refreshes,
            mfa_events: parts.mfa_events,
            mail: parts.mail,
            codes: parts.codes,
        }
    }

    /// The user of `email` if `password` is theirs, hash included (a login compares it again
    /// before it writes its session). Whatever asks for a password (login, a password change,
    /// a deletion) counts against the same limits, per email and per client IP, before
    /// anything costly, and fails alike for every wrong answer.
    pub async fn check_password(
        &self,
        email: &Email,
        password: String,
        ip: Option<IpAddr>,
    ) -> Result<User> {
        if let Verdict::Limited { retry_after } = self.attempts.begin(email, ip).await? {
            return Err(AppError::rate_limited(retry_after));
        }
        // Longer ones can never match: refused unhashed.
        if password.chars().count() > PASSWORD_MAX_CHARS {
            return Err(AppError::InvalidCredentials);
        }
        let found = self.stores.users.by_email(email).await?;
        let hash = found.as_ref().map(|u| u.password_hash.clone());
        let verified = self.passwords.verify(password, hash).await?;
        let Some(user) = found.filter(|_| verified) else {
            return Err(AppError::InvalidCredentials);
        };
        // With a second factor, only a finished login (password and code) forgives earlier
        // failures: otherwise a thief with the password could guess codes without end.
        if user.mfa {
            self.attempts.forgive(email, ip).await?;
        } else {
            self.attempts.succeeded(email, ip).await?;
        }
        Ok(user)
    }

    /// Call after a change to a user is committed, before ending any session for it: every
    /// instance reads the user again at its next request, and a login that checked the user
    /// before the change writes no session (see `SessionFlows::login`).
    pub async fn user_changed(&self, user: Uuid) -> Result<()> {
        Ok(self.stores.sessions.user_changed(user).await?)
    }

    /// After a change that ends sessions (a new password, a reset, a deletion): moves the
    /// stamp, then ends every session of the user but `keep`. The sweep runs even if moving
    /// the stamp failed: with `REDIS_WAIT_REPLICAS`, a stamp the replicas did not confirm in
    /// time is on the master all the same, and a thief's sessions must not outlive it. The
    /// first error is the answer.
    pub async fn sweep(&self, user: Uuid, keep: Option<Uuid>) -> Result<()> {
        let moved = self.user_changed(user).await;
        self.stores.sessions.end_all(user, keep).await?;
        moved
    }

    /// Reads the user of a refresh token under a fresh stamp: the stamp it was read under
    /// (`None` where the store keeps none), and the user. A user that is gone ends the session.
    pub async fn check_user(&self, old: &Claims) -> Result<(Option<String>, Arc<User>)> {
        let stamp = self.stores.sessions.stamp(old.sub).await?;
        let under = match &stamp {
            Stamp::Is(stamp) => Some(stamp.clone()),
            Stamp::Missing | Stamp::Unkept => None,
        };
        let Some(user) = self.user_under(old.sub, stamp).await? else {
            self.stores.sessions.end(&[token_ref(old)]).await?;
            return Err(gone(old));
        };
        Ok((under, user))
    }

    /// The user as of `stamp`: the copy held under it, or read now and kept under it.
    pub async fn user_under(&self, id: Uuid, stamp: Stamp) -> Result<Option<Arc<User>>> {
        let stamp = match stamp {
            Stamp::Is(stamp) => stamp,
            // The stamp is set before the user is read: a change committed after this
            // read moves the stamp past the copy.
            Stamp::Missing => match self.stores.sessions.stamp(id).await? {
                Stamp::Is(stamp) => stamp,
                _ => return self.read_user(id).await,
            },
            Stamp::Unkept => return self.read_user(id).await,
        };
        if let Some(user) = self.user_copies.get(id, &stamp) {
            return Ok(Some(user));
        }
        let user = self.stores.users.by_id(id).await?;
        Ok(user.map(|user| self.user_copies.insert(&stamp, user)))
    }

    async fn read_user(&self, id: Uuid) -> Result<Option<Arc<User>>> {
        let user = self.stores.users.by_id(id).await?;
        Ok(user.map(|user| Arc::new(user.without_hash())))
    }
}

/// The store entry of a token: which token, and until when.
pub(super) fn entry(claims: &Claims) -> TokenEntry {
    TokenEntry {
        token_uuid: claims.token_uuid,
        expires_at: entry_expiry(claims),
    }
}

pub(super) fn token_ref(claims: &Claims) -> TokenRef {
    TokenRef {
        user: claims.sub,
        sid: claims.sid,
        token_uuid: claims.token_uuid,
    }
}

/// A verified token that the store no longer knows: revoked, unless it expired meanwhile.
/// Its entry outlives it by a second, but a slow store can take longer than that to answer,
/// and an SPA must see expiry (refresh) rather than revocation (log out) for a live session.
pub(super) fn gone(claims: &Claims) -> AppError {
    if has_expired(claims) {
        AppError::TokenExpired
    } else {
        AppError::SessionRevoked
    }
}

/// The user went away between the guard and the change (deleted meanwhile).
pub(super) fn gone_user() -> AppError {
    AppError::SessionRevoked
}
