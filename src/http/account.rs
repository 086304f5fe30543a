//! The user's controls over their account: the sessions they are logged in with, their
//! password, and the account itself.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::DateTime;
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::error::{AppError, Result};
use crate::http::auth::add_rule_errors;
use crate::http::body::{Fields, JsonObject};
use crate::http::guard::AuthUser;
use crate::http::schema::{
    self, Ambiguous, BodyRefused, CrossSite, LoginLimits, NoLiveToken, ServerErrors, SessionView,
};
use crate::http::state::AppState;
use crate::http::{client, no_store, success};
use crate::service::accounts::PasswordChange;
use crate::store::sessions::SessionInfo;

fn view(session: SessionInfo, current: Uuid) -> SessionView {
    let time = |ms| DateTime::from_timestamp_millis(ms).unwrap_or_default();
    SessionView {
        id: session.sid,
        created_at: time(session.created_at),
        last_used_at: time(session.last_used_at),
        user_agent: session.device.user_agent,
        ip: session.device.ip,
        current: session.sid == current,
    }
}

#[utoipa::path(
    get,
    path = "/api/users/me/sessions",
    tag = "users",
    summary = "The user's live sessions",
    description = "Every session the user is logged in with, newest first. A session that \
        ended (logout, a password change, ended from here) or expired is never listed.",
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The sessions.", body = schema::SessionList,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        Ambiguous,
        NoLiveToken,
        ServerErrors,
    )
)]
pub async fn sessions(state: web::Data<AppState>, auth: AuthUser) -> Result<HttpResponse> {
    let current = auth.claims.sid;
    let sessions: Vec<SessionView> = state
        .auth
        .sessions
        .list(auth.user.id)
        .await?
        .into_iter()
        .map(|s| view(s, current))
        .collect();
    Ok(no_store(
        HttpResponse::Ok().json(success(json!({"data": {"sessions": sessions}}))),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/users/me/sessions/{id}",
    tag = "users",
    summary = "End one session",
    description = "Ends one of the user's sessions at once, on every instance: its access and \
        refresh tokens stop working (a refresh answers `session_revoked`). Ending the current \
        session clears the cookies, as logout does.",
    params(("id" = Uuid, Path, description = "The session's id, from the list.",
        example = "0b6f6a38-5c1e-4d5e-9a47-2f7f1f0c9b1e")),
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Ended.", body = schema::Success,
            headers(("Cache-Control" = String, description = "`no-store`"),
                ("Set-Cookie" = String, description = "Only when the current session ended: the \
                    three cookies, cleared."))),
        Ambiguous,
        NoLiveToken,
        CrossSite,
        (status = 404, description = "`not_found`: not a live session of this user (another \
            user's sessions included).", body = schema::Error),
        ServerErrors,
    )
)]
pub async fn end_session(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let sid: Uuid = id.parse().map_err(|_| AppError::NoSuchSession)?;
    state.auth.sessions.end_one(auth.user.id, sid).await?;
    let mut response = no_store(HttpResponse::Ok().json(success(json!({}))));
    if sid == auth.claims.sid {
        state.cookies.clear(&mut response);
    }
    Ok(response)
}

#[utoipa::path(
    delete,
    path = "/api/users/me/sessions",
    tag = "users",
    summary = "End every other session",
    description = "Ends every session of the user except the current one, at once, on every \
        instance.",
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "How many sessions ended.", body = schema::Ended,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        Ambiguous,
        NoLiveToken,
        CrossSite,
        ServerErrors,
    )
)]
pub async fn end_other_sessions(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<HttpResponse> {
    let ended = state
        .auth
        .sessions
        .end_others(auth.user.id, auth.claims.sid)
        .await?;
    Ok(no_store(
        HttpResponse::Ok().json(success(json!({"data": {"ended": ended}}))),
    ))
}

#[derive(Validate)]
struct NewPassword<'a> {
    #[validate(custom(function = "crate::domain::password_rule"))]
    new_password: &'a str,
    #[validate(must_match(other = "new_password", message = "must match newPassword"))]
    new_password_confirm: &'a str,
}

#[utoipa::path(
    post,
    path = "/api/users/me/password",
    tag = "users",
    summary = "Change the password",
    description = "Checks the current password (a wrong one counts as a failed login for the \
        user's email and the client IP, with the same limits), sets the new one, and ends \
        every other session of the user. The current session keeps working.",
    request_body = schema::PasswordChangeRequest,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Changed.", body = schema::Success,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`validation_failed`: a field missing or not a string, \
            `newPassword` outside 8 to 128 characters, `newPasswordConfirm` different, or an \
            ambiguous request.", body = schema::Error),
        (status = 401, description = "`invalid_credentials`: a wrong `currentPassword`; or, as \
            for `/api/users/me`, no live token.", body = schema::Error),
        CrossSite,
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let mut fields = Fields::of(&body)?;
    let current = fields.required("currentPassword").to_owned();
    let code = fields.optional("code").map(str::to_owned);
    let form = NewPassword {
        new_password: fields.required("newPassword"),
        new_password_confirm: fields.required("newPasswordConfirm"),
    };
    let mut errors = std::mem::take(&mut fields.errors);
    add_rule_errors(&mut errors, form.validate());
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(AppError::ValidationFailed(errors));
    }
    let change = PasswordChange {
        current,
        new: form.new_password.to_owned(),
        code,
        keep: auth.claims.sid,
    };
    let ip = client::client_ip(&req, &state.trusted_proxies);
    state
        .auth
        .accounts
        .change_password(&auth.user, change, ip)
        .await?;
    Ok(no_store(HttpResponse::Ok().json(success(json!({})))))
}

#[utoipa::path(
    delete,
    path = "/api/users/me",
    tag = "users",
    summary = "Delete the account",
    description = "Checks the password (a wrong one counts as a failed login, with the same \
        limits), deletes the user and ends all of their sessions: their tokens answer \
        `session_revoked`, and the email can register again.",
    request_body = schema::DeleteAccountRequest,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Deleted.", body = schema::Success,
            headers(("Cache-Control" = String, description = "`no-store`"),
                ("Set-Cookie" = String, description = "The three cookies, cleared."))),
        (status = 400, description = "`validation_failed`: `password` missing or not a string, \
            or an ambiguous request.", body = schema::Error),
        (status = 401, description = "`invalid_credentials`: a wrong `password`; or, as for \
            `/api/users/me`, no live token.", body = schema::Error),
        CrossSite,
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn delete_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let mut fields = Fields::of(&body)?;
    let password = fields.required("password").to_owned();
    let code = fields.optional("code");
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let accounts = &state.auth.accounts;
    accounts.delete(&auth.user, password, code, ip).await?;
    let mut response = no_store(HttpResponse::Ok().json(success(json!({}))));
    state.cookies.clear(&mut response);
    Ok(response)
}
