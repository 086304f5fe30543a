//! The deserialize-user guard: `AuthUser` as an extractor, so a handler that names it
//! runs only for a live session of an existing user.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::domain::User;
use crate::error::AppError;
use crate::http::cookies::ACCESS_COOKIE;
use crate::service::auth;
use crate::service::tokens::Claims;
use crate::state::AppState;

pub struct AuthUser {
    pub user: User,
    pub claims: Claims,
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).or_else(|| cookie(req, ACCESS_COOKIE));
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("AppState is not registered"))?;
            let token = token.ok_or(AppError::NotLoggedIn)?;
            let (user, claims) = auth::authenticate(&state, &token).await?;
            Ok(AuthUser { user, claims })
        })
    }
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive). Bytes that are
/// not text are kept (lossily), so that such a token fails verification instead of being
/// mistaken for no token at all.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = String::from_utf8_lossy(req.headers().get(header::AUTHORIZATION)?.as_bytes());
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}
