//! Register, log in, refresh, log out, and authenticate a request's token.

use uuid::Uuid;

use crate::domain::{NewUser, User};
use crate::error::{AppError, Result};
use crate::service::tokens::{Claims, Issued, TokenType};
use crate::state::AppState;
use crate::store::sessions::TokenEntry;

/// Longest password we hash; longer ones can never match, so login refuses them unhashed.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A fresh access and refresh token of one session.
pub struct SessionTokens {
    pub access: Issued,
    pub refresh: Issued,
}

fn entry(issued: &Issued) -> TokenEntry {
    TokenEntry {
        token_uuid: issued.token_uuid,
        ttl: issued.ttl,
    }
}

fn issue_pair(state: &AppState, user: Uuid, sid: Uuid) -> Result<SessionTokens> {
    Ok(SessionTokens {
        access: state.tokens.issue(user, sid, TokenType::Access)?,
        refresh: state.tokens.issue(user, sid, TokenType::Refresh)?,
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

/// `email` is normalized. Unknown email and wrong password fail alike, after one argon2 run each.
pub async fn login(state: &AppState, email: &str, password: String) -> Result<SessionTokens> {
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
    let sid = Uuid::new_v4();
    let tokens = issue_pair(state, user, sid)?;
    state
        .sessions
        .create(user, sid, entry(&tokens.access), entry(&tokens.refresh))
        .await?;
    Ok(tokens)
}

/// Consumes the refresh token and issues the next pair of the same session.
pub async fn refresh(state: &AppState, token: &str) -> Result<SessionTokens> {
    let claims = state.tokens.verify(token, TokenType::Refresh)?;
    if !state.users.exists(claims.sub).await? {
        return Err(AppError::SessionRevoked);
    }
    let tokens = issue_pair(state, claims.sub, claims.sid)?;
    let rotated = state
        .sessions
        .rotate(
            claims.sub,
            claims.sid,
            claims.token_uuid,
            entry(&tokens.access),
            entry(&tokens.refresh),
            state.refresh_grace,
        )
        .await?;
    if !rotated {
        return Err(AppError::SessionRevoked);
    }
    Ok(tokens)
}

/// Ends the session named by the first of `candidates` that verifies, as an access or a
/// refresh token. Dead or absent tokens are fine: logging out is idempotent.
pub async fn logout(state: &AppState, candidates: &[&str]) -> Result<()> {
    let named = candidates.iter().find_map(|token| {
        [TokenType::Access, TokenType::Refresh]
            .into_iter()
            .find_map(|typ| state.tokens.verify(token, typ).ok())
    });
    if let Some(claims) = named {
        state.sessions.end(claims.sid, claims.token_uuid).await?;
    }
    Ok(())
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
