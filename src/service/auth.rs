//! Register, log in, refresh, log out, and authenticate a request's token.

use std::net::IpAddr;

use uuid::Uuid;

use crate::domain::{NewUser, User};
use crate::error::{AppError, Result};
use crate::service::tokens::{Claims, TokenType};
use crate::state::AppState;
use crate::store::attempts::Verdict;
use crate::store::sessions::{Rotation, Successor, TokenEntry};

/// Longest password we hash; longer ones can never match, so login refuses them unhashed.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A fresh access and refresh token of one session, signed.
pub struct SessionTokens {
    pub access: String,
    pub refresh: String,
}

fn entry(state: &AppState, claims: &Claims) -> TokenEntry {
    TokenEntry {
        token_uuid: claims.token_uuid,
        ttl: state.tokens.ttl(claims.typ),
    }
}

fn sign_pair(state: &AppState, access: &Claims, refresh: &Claims) -> Result<SessionTokens> {
    Ok(SessionTokens {
        access: state.tokens.sign(access)?,
        refresh: state.tokens.sign(refresh)?,
    })
}

/// Input already checked at the edge (trimmed, lowercased, lengths).
pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
    pub photo: String,
}

pub async fn register(state: &AppState, input: Registration) -> Result<User> {
    let password_hash = state.passwords.hash(input.password).await?;
    let new = NewUser {
        name: input.name,
        email: input.email,
        password_hash,
        photo: input.photo,
    };
    state.users.insert(&new).await?.ok_or(AppError::EmailTaken)
}

/// `email` is normalized. Unknown email and wrong password fail alike, after one argon2 run
/// each. Every attempt counts against the email and the client IP before anything costly.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    ip: Option<IpAddr>,
) -> Result<SessionTokens> {
    if let Verdict::Limited { retry_after } = state.attempts.begin(email, ip).await? {
        let retry_after_secs = retry_after.as_millis().div_ceil(1000).max(1);
        return Err(AppError::RateLimited {
            retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(u64::MAX),
        });
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AppError::InvalidCredentials);
    }
    let user = state.users.by_email(email).await?;
    let (id, hash) = match user {
        Some(u) => (Some(u.id), Some(u.password_hash)),
        None => (None, None),
    };
    let verified = state.passwords.verify(password, hash).await?;
    let Some(user) = id.filter(|_| verified) else {
        return Err(AppError::InvalidCredentials);
    };
    state.attempts.succeeded(email, ip).await?;
    let sid = Uuid::new_v4();
    let (access, refresh) = state.tokens.pair(user, sid)?;
    state
        .sessions
        .create(user, sid, entry(state, &access), entry(state, &refresh))
        .await?;
    sign_pair(state, &access, &refresh)
}

/// Consumes the refresh token and issues the next pair of the same session. The session is
/// checked before anything costly: a dead token costs no signature.
/// A token rotated moments ago (another tab's race) gets the very same successors; one
/// rotated before the grace window is a replay, and ends the session.
pub async fn refresh(state: &AppState, token: &str) -> Result<SessionTokens> {
    let old = state.tokens.verify(token, TokenType::Refresh)?;
    let (mut access, mut refresh) = state.tokens.pair(old.sub, old.sid)?;
    let next = Successor {
        access: access.token_uuid,
        refresh: refresh.token_uuid,
        iat: access.iat,
    };
    let ttl = (state.tokens.ttl(access.typ), state.tokens.ttl(refresh.typ));
    // Before rotating: a rotation whose answer never reaches the client (Postgres down) would
    // make the client's retry after the grace window look like reuse.
    if !state.users.exists(old.sub).await? {
        state.sessions.end(&[(old.sid, old.token_uuid)]).await?;
        return Err(AppError::SessionRevoked);
    }
    let rotation = state
        .sessions
        .rotate(
            old.sub,
            old.sid,
            old.token_uuid,
            next,
            ttl,
            state.refresh_grace,
        )
        .await?;
    match rotation {
        Rotation::Rotated => {}
        Rotation::InGrace(won) => {
            let tokens = &state.tokens;
            access = tokens.claims_at(old.sub, old.sid, TokenType::Access, won.access, won.iat)?;
            refresh =
                tokens.claims_at(old.sub, old.sid, TokenType::Refresh, won.refresh, won.iat)?;
        }
        Rotation::Reused => {
            tracing::warn!(sid = %old.sid, "refresh token reused after rotation; session revoked");
            return Err(AppError::RefreshReused);
        }
        Rotation::Revoked => return Err(AppError::SessionRevoked),
    }
    sign_pair(state, &access, &refresh)
}

/// Ends the session of every one of `candidates` that verifies, as an access or a refresh
/// token: a stale token of an old session must not shield the live one sent beside it.
/// Dead or absent tokens are fine: logging out is idempotent.
pub async fn logout(state: &AppState, candidates: &[&str]) -> Result<()> {
    let sessions: Vec<(Uuid, Uuid)> = candidates
        .iter()
        .filter_map(|token| {
            [TokenType::Access, TokenType::Refresh]
                .into_iter()
                .find_map(|typ| state.tokens.verify(token, typ).ok())
        })
        .map(|claims| (claims.sid, claims.token_uuid))
        .collect();
    state.sessions.end(&sessions).await
}

/// The deserialize-user guard's work: a live access token of an existing user.
pub async fn authenticate(state: &AppState, token: &str) -> Result<(User, Claims)> {
    let claims = state.tokens.verify(token, TokenType::Access)?;
    if !state
        .sessions
        .is_live(claims.sub, claims.sid, claims.token_uuid)
        .await?
    {
        return Err(AppError::SessionRevoked);
    }
    let user = state
        .users
        .by_id(claims.sub)
        .await?
        .ok_or(AppError::SessionRevoked)?;
    Ok((user, claims))
}
