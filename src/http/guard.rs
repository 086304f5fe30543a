//! The deserialize-user guard: `AuthUser` as an extractor, so a handler that names it
//! runs only for a live session of an existing user; `AdminUser`, only for an admin's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::domain::{Role, User};
use crate::error::AppError;
use crate::http::cookies::ACCESS_COOKIE;
use crate::http::credentials::{bearer_token, cookie};
use crate::http::state::AppState;
use crate::service::tokens::Claims;

pub struct AuthUser {
    /// Without its password hash: read the user from the store for that.
    pub user: Arc<User>,
    pub claims: Arc<Claims>,
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
            let (user, claims) = state.auth.sessions.authenticate(&token).await?;
            Ok(AuthUser { user, claims })
        })
    }
}

/// `AuthUser` whose stored role is `admin`; any other role is 403 `forbidden`. The role is
/// the stored user's, as `AuthUser` loads it (never the token's claim), so a demotion takes
/// effect at the next request on every instance.
pub struct AdminUser(pub AuthUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let auth = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let auth = auth.await?;
            match auth.user.role() {
                Role::Admin => Ok(AdminUser(auth)),
                Role::User => Err(AppError::Forbidden),
            }
        })
    }
}
