//! Sessions: log in, refresh, log out, authenticate a request's token, and the user's list of
//! sessions.

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Email, User};
use crate::error::{AppError, Result};
use crate::service::core::{Core, MAX_STAMP_TRIES, entry, gone, token_ref};
use crate::service::tokens::{Claims, TokenType, entry_expiry, login_amr};
use crate::store::rotation::{Rotate, Rotation, Successor};
use crate::store::sessions::{
    Created, Device, Ended, NewSession, SessionInfo, SessionStore, TokenRef, Vouched,
};
use crate::store::users::UserStore;

/// A fresh access and refresh token of one session, signed.
pub struct SessionTokens {
    pub access: String,
    pub refresh: String,
}

pub struct SessionFlows {
    pub(super) core: Arc<Core>,
}

/// What a login proved: this user, at this address, with this password hash, and whether a
/// code of a second factor was asked. A session is written only while the user still is so.
pub(super) struct Proven {
    pub user: Uuid,
    pub email: String,
    pub password_hash: String,
    pub mfa: bool,
}

impl Proven {
    /// Whether `now` still has what the login proved. A factor turned on meanwhile stops a
    /// password-only login: it must not write a session after the confirm swept the others.
    /// A change of anything else (a name, a role) does not undo a login.
    fn holds_for(&self, now: &User) -> bool {
        now.password_hash == self.password_hash && now.email == self.email && now.mfa == self.mfa
    }
}

/// What the password step of a login came to.
pub enum LoginStep {
    Session(SessionTokens),
    /// The user has a second factor: the `mfa_token` that `finish_login` (service::mfa::login)
    /// takes with a code.
    CodeNeeded(String),
}

impl SessionFlows {
    pub(super) fn new(core: Arc<Core>) -> Self {
        SessionFlows { core }
    }

    /// Unknown email and wrong password fail alike, after one argon2 run each. Every attempt
    /// counts against the email and the client IP before anything costly. A user with a
    /// second factor gets an `mfa_token` instead of a session.
    pub async fn login(
        &self,
        email: &Email,
        password: String,
        ip: Option<IpAddr>,
        device: Device,
    ) -> Result<LoginStep> {
        let core = &self.core;
        let checked = core.check_password(email, password, ip).await?;
        // After the password: without it, the answer tells nothing of the account.
        if core.mail.require_verified && !checked.verified {
            return Err(AppError::EmailNotVerified);
        }
        let proven = Proven {
            user: checked.id,
            email: checked.email,
            password_hash: checked.password_hash,
            mfa: checked.mfa,
        };
        if proven.mfa {
            return self.challenge(proven).await.map(LoginStep::CodeNeeded);
        }
        let amr = login_amr(false);
        let tokens = self.open_session(&proven, device, amr).await?;
        Ok(LoginStep::Session(tokens))
    }

    /// Writes the session of a login, only for the user as proven: the stamp is read first,
    /// then the user again, and the write holds only while neither moved. A password change
    /// or a deletion committed meanwhile refuses the login; any other change (a new name) is
    /// read again and the write tried again.
    pub(super) async fn open_session(
        &self,
        proven: &Proven,
        device: Device,
        amr: Vec<String>,
    ) -> Result<SessionTokens> {
        let core = &self.core;
        let sid = Uuid::new_v4();
        for _ in 0..MAX_STAMP_TRIES {
            let stamp = core.stores.sessions.stamp(proven.user).await?;
            let user = core.stores.users.by_id(proven.user).await?;
            let Some(user) = user.filter(|now| proven.holds_for(now)) else {
                return Err(AppError::InvalidCredentials);
            };
            let (mut access, mut refresh) = core.tokens.pair(user.id, sid)?;
            access.role = Some(user.role());
            access.amr.clone_from(&amr);
            refresh.amr.clone_from(&amr);
            let session = NewSession {
                user: user.id,
                sid,
                access: entry(&access),
                refresh: entry(&refresh),
                device: device.clone(),
            };
            let vouched = Vouched {
                stamp,
                updated_at: user.updated_at,
            };
            if core.stores.sessions.create(&session, &vouched).await? == Created::Created {
                return self.sign_pair(&access, &refresh);
            }
        }
        Err(AppError::unavailable(
            "login",
            "the user changed at every try of a login",
        ))
    }

    /// Consumes the refresh token and issues the next pair of the same session. The session is
    /// checked before anything costly: a dead token costs no signature.
    /// A token rotated moments ago (another tab's race) gets the very same successors; one
    /// rotated before the grace window is a replay, and ends the session.
    pub async fn refresh(&self, token: &str) -> Result<SessionTokens> {
        let result = self.rotate(token).await;
        let outcome = match &result {
            Ok((_, outcome)) => *outcome,
            Err(AppError::RefreshReused) => "reused",
            Err(AppError::SessionRevoked) => "revoked",
            Err(AppError::TokenExpired) => "expired",
            Err(AppError::TokenInvalid | AppError::NotLoggedIn) => "invalid",
            Err(AppError::ServiceUnavailable { .. }) => "unavailable",
            Err(_) => "error",
        };
        self.core.refreshes.with_label_values(&[outcome]).inc();
        result.map(|(tokens, _)| tokens)
    }

    async fn rotate(&self, token: &str) -> Result<(SessionTokens, &'static str)> {
        let core = &self.core;
        let old = core.tokens.verify(token, TokenType::Refresh)?;
        let (mut access, mut refresh) = core.tokens.pair(old.sub, old.sid)?;
        let rotate = Rotate {
            user: old.sub,
            sid: old.sid,
            presented: old.token_uuid,
            next: Successor {
                access: access.token_uuid,
                refresh: refresh.token_uuid,
                iat: access.iat,
            },
            access_expires: entry_expiry(&access),
            refresh_expires: entry_expiry(&refresh),
            grace: core.grace,
        };
        // The user is checked before rotating: a rotation whose answer never reaches the
        // client (its store down) would make the client's retry after the grace window look
        // like reuse. With a copy of the user held, the rotation checks the copy's stamp
        // itself, in the same round trip; otherwise the user is read first, under a stamp
        // that the rotation then checks, so a change in between stops it too. Either way the
        // user that the rotation vouched for gives the new access token its role.
        let mut held = core.user_copies.held(old.sub);
        let mut rotation = Rotation::UserChanged;
        let mut role = None;
        for _ in 0..MAX_STAMP_TRIES {
            let (checked, user) = match held.take() {
                Some((stamp, user)) => (Some(stamp.to_string()), user),
                None => core.check_user(&old).await?,
            };
            rotation = core
                .stores
                .sessions
                .rotate(&rotate, checked.as_deref())
                .await?;
            role = Some(user.role());
            if rotation != Rotation::UserChanged {
                break;
            }
        }
        let outcome = match rotation {
            Rotation::Rotated => "rotated",
            Rotation::InGrace(won) => {
                let tokens = &core.tokens;
                access =
                    tokens.claims_at(old.sub, old.sid, TokenType::Access, won.access, won.iat)?;
                refresh =
                    tokens.claims_at(old.sub, old.sid, TokenType::Refresh, won.refresh, won.iat)?;
                "in_grace"
            }
            Rotation::Reused => {
                tracing::warn!(sid = %old.sid, "refresh token reused after rotation; session revoked");
                return Err(AppError::RefreshReused);
            }
            Rotation::Revoked => return Err(gone(&old)),
            Rotation::UserChanged => {
                return Err(AppError::unavailable(
                    "refresh",
                    "the user changed at every try of a refresh",
                ));
            }
        };
        access.role = role;
        // The session's own: what its login proved, kept by every rotation.
        let amr = if old.amr.is_empty() {
            login_amr(false)
        } else {
            old.amr.clone()
        };
        access.amr.clone_from(&amr);
        refresh.amr = amr;
        Ok((self.sign_pair(&access, &refresh)?, outcome))
    }

    /// Ends the session of every one of `candidates` that verifies, as an access or a refresh
    /// token: a stale token of an old session must not shield the live one sent beside it.
    /// Dead or absent tokens are fine: logging out is idempotent.
    pub async fn logout(&self, candidates: &[&str]) -> Result<()> {
        let sessions: Vec<TokenRef> = self
            .verifying(candidates)
            .map(|claims| token_ref(&claims))
            .collect();
        // No token that verifies: nothing to end, and no store needed (an outage included).
        if sessions.is_empty() {
            return Ok(());
        }
        Ok(self.core.stores.sessions.end(&sessions).await?)
    }

    /// Logout everywhere: every session of the user of each token that still stands for a
    /// live session. A token of an ended session (ended from another device, revoked for
    /// reuse, swept by a password change), and a refresh token already exchanged for its
    /// successor, verify until they expire but speak for no one: they end nothing.
    pub async fn logout_everywhere(&self, candidates: &[&str]) -> Result<()> {
        let sessions = &self.core.stores.sessions;
        let mut users = Vec::new();
        for claims in self.verifying(candidates) {
            let check = sessions.check(&token_ref(&claims)).await?;
            if check.live && !check.rotated {
                users.push(claims.sub);
            }
        }
        users.sort_unstable();
        users.dedup();
        for user in users {
            sessions.end_all(user, None).await?;
        }
        Ok(())
    }

    /// The claims of each candidate that verifies as an access or a refresh token.
    fn verifying<'a>(&'a self, candidates: &'a [&str]) -> impl Iterator<Item = Claims> + 'a {
        candidates.iter().filter_map(|token| {
            [TokenType::Access, TokenType::Refresh]
                .into_iter()
                .find_map(|typ| self.core.tokens.verify(token, typ).ok())
        })
    }

    /// The deserialize-user guard's work: a live access token of an existing user. One
    /// store round trip when this instance holds a current copy of the user.
    pub async fn authenticate(&self, token: &str) -> Result<(Arc<User>, Arc<Claims>)> {
        let core = &self.core;
        let claims = core
            .verified
            .get_or_verify(token, || core.tokens.verify(token, TokenType::Access))?;
        let check = core.stores.sessions.check(&token_ref(&claims)).await?;
        if !check.live {
            return Err(gone(&claims));
        }
        let user = core.user_under(claims.sub, check.stamp).await?;
        let user = user.ok_or_else(|| gone(&claims))?;
        Ok((user, claims))
    }

    /// The user's live sessions, newest first.
    pub async fn list(&self, user: Uuid) -> Result<Vec<SessionInfo>> {
        let mut sessions = self.core.stores.sessions.list(user).await?;
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.sid.cmp(&a.sid)));
        Ok(sessions)
    }

    /// Ends one of the user's sessions: `not_found` unless it is a live session of theirs.
    pub async fn end_one(&self, user: Uuid, sid: Uuid) -> Result<()> {
        match self.core.stores.sessions.end_one(user, sid).await? {
            Ended::Ended => Ok(()),
            Ended::NoSuchSession => Err(AppError::NoSuchSession),
        }
    }

    /// Ends every session of the user but `keep`; returns how many ended.
    pub async fn end_others(&self, user: Uuid, keep: Uuid) -> Result<usize> {
        Ok(self.core.stores.sessions.end_all(user, Some(keep)).await?)
    }

    fn sign_pair(&self, access: &Claims, refresh: &Claims) -> Result<SessionTokens> {
        Ok(SessionTokens {
            access: self.core.tokens.sign(access)?,
            refresh: self.core.tokens.sign(refresh)?,
        })
    }
}
