//! Register, log in, refresh, log out, and authenticate a request's token.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use crate::domain::{Email, NewUser, User};
use crate::error::{AppError, Result};
use crate::service::password::Passwords;
use crate::service::tokens::{Claims, TokenType, Tokens, entry_expiry, has_expired};
use crate::store::Stores;
use crate::store::attempts::{LoginAttempts, Verdict};
use crate::store::rotation::{Rotate, Rotation, Successor};
use crate::store::sessions::{NewSession, SessionStore, TokenEntry, TokenRef};
use crate::store::users::UserStore;

/// Longest password we hash; longer ones can never match, so login refuses them unhashed.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A fresh access and refresh token of one session, signed.
pub struct SessionTokens {
    pub access: String,
    pub refresh: String,
}

/// Input already checked at the edge (trimmed, lowercased, lengths).
pub struct Registration {
    pub name: String,
    pub email: Email,
    pub password: String,
    pub photo: String,
}

/// A store and its state, for the healthchecker.
pub struct StoreCheck {
    pub name: &'static str,
    pub up: bool,
}

/// The flows, with everything they use.
pub struct AuthService {
    users: UserStore,
    sessions: SessionStore,
    attempts: LoginAttempts,
    tokens: Tokens,
    passwords: Passwords,
    /// `REFRESH_REUSE_GRACE`.
    grace: Duration,
}

fn entry(claims: &Claims) -> TokenEntry {
    TokenEntry {
        token_uuid: claims.token_uuid,
        expires_at: entry_expiry(claims),
    }
}

/// A verified token that the store no longer knows: revoked, unless it expired meanwhile.
/// Its entry outlives it by a second, but a slow store can take longer than that to answer,
/// and an SPA must see expiry (refresh) rather than revocation (log out) for a live session.
fn gone(claims: &Claims) -> AppError {
    if has_expired(claims) {
        AppError::TokenExpired
    } else {
        AppError::SessionRevoked
    }
}

fn token_ref(claims: &Claims) -> TokenRef {
    TokenRef {
        user: claims.sub,
        sid: claims.sid,
        token_uuid: claims.token_uuid,
    }
}

impl AuthService {
    pub fn new(stores: Stores, tokens: Tokens, passwords: Passwords, grace: Duration) -> Self {
        AuthService {
            users: stores.users,
            sessions: stores.sessions,
            attempts: stores.attempts,
            tokens,
            passwords,
            grace,
        }
    }

    /// The access keys as a JWK Set.
    pub fn jwks_json(&self) -> &str {
        self.tokens.jwks_json()
    }

    pub async fn register(&self, input: Registration) -> Result<User> {
        let password_hash = self.passwords.hash(input.password).await?;
        let new = NewUser {
            name: input.name,
            email: input.email,
            password_hash,
            photo: input.photo,
        };
        self.users.insert(&new).await?.ok_or(AppError::EmailTaken)
    }

    /// Unknown email and wrong password fail alike, after one argon2 run each. Every attempt
    /// counts against the email and the client IP before anything costly.
    pub async fn login(
        &self,
        email: &Email,
        password: String,
        ip: Option<IpAddr>,
    ) -> Result<SessionTokens> {
        if let Verdict::Limited { retry_after } = self.attempts.begin(email, ip).await? {
            let retry_after_secs = retry_after.as_millis().div_ceil(1000).max(1);
            return Err(AppError::RateLimited {
                retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(u64::MAX),
            });
        }
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(AppError::InvalidCredentials);
        }
        let (id, hash) = match self.users.by_email(email).await? {
            Some(u) => (Some(u.id), Some(u.password_hash)),
            None => (None, None),
        };
        let verified = self.passwords.verify(password, hash).await?;
        let Some(user) = id.filter(|_| verified) else {
            return Err(AppError::InvalidCredentials);
        };
        self.attempts.succeeded(email, ip).await?;
        let sid = Uuid::new_v4();
        let (access, refresh) = self.tokens.pair(user, sid)?;
        let session = NewSession {
            user,
            sid,
            access: entry(&access),
            refresh: entry(&refresh),
        };
        self.sessions.create(&session).await?;
        self.sign_pair(&access, &refresh)
    }

    /// Consumes the refresh token and issues the next pair of the same session. The session is
    /// checked before anything costly: a dead token costs no signature.
    /// A token rotated moments ago (another tab's race) gets the very same successors; one
    /// rotated before the grace window is a replay, and ends the session.
    pub async fn refresh(&self, token: &str) -> Result<SessionTokens> {
        let old = self.tokens.verify(token, TokenType::Refresh)?;
        let (mut access, mut refresh) = self.tokens.pair(old.sub, old.sid)?;
        // Before rotating: a rotation whose answer never reaches the client (Postgres down)
        // would make the client's retry after the grace window look like reuse.
        if !self.users.exists(old.sub).await? {
            self.sessions.end(&[token_ref(&old)]).await?;
            return Err(gone(&old));
        }
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
            grace: self.grace,
        };
        match self.sessions.rotate(&rotate).await? {
            Rotation::Rotated => {}
            Rotation::InGrace(won) => {
                let tokens = &self.tokens;
                access =
                    tokens.claims_at(old.sub, old.sid, TokenType::Access, won.access, won.iat)?;
                refresh =
                    tokens.claims_at(old.sub, old.sid, TokenType::Refresh, won.refresh, won.iat)?;
            }
            Rotation::Reused => {
                tracing::warn!(sid = %old.sid, "refresh token reused after rotation; session revoked");
                return Err(AppError::RefreshReused);
            }
            Rotation::Revoked => return Err(gone(&old)),
        }
        self.sign_pair(&access, &refresh)
    }

    /// Ends the session of every one of `candidates` that verifies, as an access or a refresh
    /// token: a stale token of an old session must not shield the live one sent beside it.
    /// Dead or absent tokens are fine: logging out is idempotent.
    pub async fn logout(&self, candidates: &[&str]) -> Result<()> {
        let sessions: Vec<TokenRef> = candidates
            .iter()
            .filter_map(|token| {
                [TokenType::Access, TokenType::Refresh]
                    .into_iter()
                    .find_map(|typ| self.tokens.verify(token, typ).ok())
            })
            .map(|claims| token_ref(&claims))
            .collect();
        self.sessions.end(&sessions).await
    }

    /// The deserialize-user guard's work: a live access token of an existing user.
    pub async fn authenticate(&self, token: &str) -> Result<(User, Claims)> {
        let claims = self.tokens.verify(token, TokenType::Access)?;
        if !self.sessions.is_live(&token_ref(&claims)).await? {
            return Err(gone(&claims));
        }
        let user = self.users.by_id(claims.sub).await?;
        let user = user.ok_or_else(|| gone(&claims))?;
        Ok((user, claims))
    }

    /// Each store in use, pinged at once. The embedded file holds users and sessions alike:
    /// it is named, and pinged, once.
    pub async fn check_stores(&self, within: Duration) -> Vec<StoreCheck> {
        let users = StoreCheck {
            name: self.users.name(),
            up: false,
        };
        if self.sessions.name() == users.name {
            let up = answers(self.sessions.ping(), within).await;
            return vec![StoreCheck { up, ..users }];
        }
        let (users_up, sessions_up) = tokio::join!(
            answers(self.users.ping(), within),
            answers(self.sessions.ping(), within)
        );
        vec![
            StoreCheck {
                up: users_up,
                ..users
            },
            StoreCheck {
                name: self.sessions.name(),
                up: sessions_up,
            },
        ]
    }

    fn sign_pair(&self, access: &Claims, refresh: &Claims) -> Result<SessionTokens> {
        Ok(SessionTokens {
            access: self.tokens.sign(access)?,
            refresh: self.tokens.sign(refresh)?,
        })
    }
}

async fn answers(check: impl Future<Output = Result<()>>, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, check).await, Ok(Ok(())))
}
