//! /api/users: the logged-in user.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::guard::AuthUser;
use crate::http::{no_store, openapi, success};

#[utoipa::path(
    get,
    path = "/api/users/me",
    tag = "users",
    summary = "The logged-in user",
    description = "Needs a live access token: `Authorization: Bearer`, or else the \
        `access_token` cookie. A Bearer header that is present but invalid is not replaced by \
        the cookie.",
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The user.", body = openapi::UserAnswer,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = openapi::AMBIGUOUS, body = openapi::Error),
        (status = 401, description = "`not_logged_in` (no token), `token_invalid`, \
            `token_expired` (refresh, then retry) or `session_revoked` (the session ended, or \
            the user was deleted: log in again).", body = openapi::Error,
            headers(("WWW-Authenticate" = String, description = "`Bearer` for \
                `not_logged_in`, `Bearer error=\"invalid_token\"` for the others."))),
        (status = 500, description = openapi::INTERNAL, body = openapi::Error),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::Error),
    )
)]
pub async fn me(auth: AuthUser) -> HttpResponse {
    no_store(HttpResponse::Ok().json(success(json!({"data": {"user": auth.user.view()}}))))
}
