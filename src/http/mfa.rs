//! The second factor: the second step of a login, and the user's authenticator app and
//! recovery codes.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::error::{AppError, Result};
use crate::http::auth::session_answer;
use crate::http::body::{Fields, JsonObject};
use crate::http::guard::AuthUser;
use crate::http::schema::{self, BodyRefused, CrossSite, LoginLimits, ServerErrors};
use crate::http::state::AppState;
use crate::http::{client, no_store, success};

const WRONG_CODE: &str = "`invalid_code`: the code is wrong, was used already (each 30-second \
    step's code works once), or is missing; counted as a failed login. Or, as for \
    `/api/users/me`, no live token.";
const PASSWORD_AND_CODE_REFUSED: &str = "`validation_failed`: `password` missing, `password` \
    or `code` not a string, or an ambiguous request.";
const NOT_ENABLED: &str = "`mfa_not_enabled`: no second factor is on.";
const PASSWORD_THEN_CODE: &str = "`invalid_credentials`: a wrong `password` (checked first); \
    `invalid_code`: the code is wrong, used or missing; both count as a failed login. Or, as \
    for `/api/users/me`, no live token.";

/// Reads the fields a route takes, every one a string: 400 if any is missing or not one.
fn strings<'a, const N: usize>(
    body: &'a serde_json::Value,
    names: [&str; N],
) -> Result<[&'a str; N]> {
    let mut fields = Fields::of(body)?;
    let values = names.map(|name| fields.required(name));
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    Ok(values)
}

/// The password, required, and the code, which may be missing: as on a step-up, the password
/// is checked first, and a missing code is then `invalid_code`.
fn password_and_code(body: &serde_json::Value) -> Result<(&str, Option<&str>)> {
    let mut fields = Fields::of(body)?;
    let password = fields.required("password");
    let code = fields.optional("code");
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    Ok((password, code))
}

#[utoipa::path(
    post,
    path = "/api/auth/login/mfa",
    tag = "auth",
    summary = "Finish a login with a code",
    description = "The second step of a login whose user has a second factor: the `mfa_token` \
        that login answered, and a code from the authenticator app or a recovery code. Each \
        try uses one of the token's five; the right code starts the session, as login does.",
    request_body = schema::MfaLoginRequest,
    responses(
        (status = 200, description = "Logged in; with a recovery code, how many are left.",
            body = schema::MfaLoggedIn,
            headers(
                ("Set-Cookie" = String, description = "The three cookies, as login sets them."),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, description = "`validation_failed`: `mfa_token` or `code` missing or \
            not a string, or an ambiguous request.", body = schema::Error),
        (status = 401, description = "`invalid_code`: a wrong or used code (counted as a \
            failed login for the email and the client IP), or an `mfa_token` that is unknown, \
            used, expired (5 minutes) or has had its 5 tries.", body = schema::Error),
        CrossSite,
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn login_with_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let [token, code] = strings(&body, ["mfa_token", "code"])?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let device = client::device(&req, ip);
    let sessions = &state.auth.sessions;
    let finished = sessions.finish_login(token, code, ip, device).await?;
    let mut body = json!({"access_token": finished.tokens.access});
    if let Some(left) = finished.recovery_codes_left {
        body["data"] = json!({"recovery_codes_left": left});
    }
    Ok(session_answer(&state, &finished.tokens, body))
}

#[utoipa::path(
    post,
    path = "/api/users/me/mfa/totp",
    tag = "users",
    summary = "Start turning on the second factor",
    description = "Checks the password and makes a new authenticator secret, answered this \
        once. It is not active until a code of it is confirmed; starting again replaces an \
        unconfirmed secret.",
    request_body = schema::PasswordOnly,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The secret, as text and as an `otpauth://` URI for a QR \
            code.", body = schema::Enrollment,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`validation_failed`: `password` missing or not a string, \
            or an ambiguous request.", body = schema::Error),
        (status = 401, description = "`invalid_credentials`: a wrong `password` (counted as a \
            failed login); or, as for `/api/users/me`, no live token.", body = schema::Error),
        CrossSite,
        (status = 409, description = "`mfa_enabled`: a second factor is already on.",
            body = schema::Error),
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn enroll(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let [password] = strings(&body, ["password"])?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let mfa = &state.auth.mfa;
    let started = mfa.enroll(&auth.user, password.to_owned(), ip).await?;
    Ok(no_store(HttpResponse::Ok().json(success(json!({
        "data": {"secret": started.secret, "otpauth_uri": started.uri},
    })))))
}

#[utoipa::path(
    post,
    path = "/api/users/me/mfa/totp/confirm",
    tag = "users",
    summary = "Turn on the second factor",
    description = "A code of the secret just made turns the second factor on: every later \
        login asks for a code. Answers ten recovery codes, this once. Every other session of \
        the user ends; this one goes on.",
    request_body = schema::CodeOnly,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "On; the recovery codes.", body = schema::RecoveryCodes,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`validation_failed`: `code` missing or not a string, or \
            an ambiguous request.", body = schema::Error),
        (status = 401, description = WRONG_CODE, body = schema::Error),
        CrossSite,
        (status = 409, description = "`mfa_not_pending`: no enrollment was started; \
            `mfa_enabled`: the second factor is already on.", body = schema::Error),
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn confirm_enrollment(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let [code] = strings(&body, ["code"])?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let keep = auth.claims.sid;
    let mfa = &state.auth.mfa;
    let codes = mfa.confirm(&auth.user, Some(code), keep, ip).await?;
    Ok(no_store(HttpResponse::Ok().json(success(json!({
        "data": {"recovery_codes": codes},
    })))))
}

#[utoipa::path(
    delete,
    path = "/api/users/me/mfa/totp",
    tag = "users",
    summary = "Turn off the second factor",
    description = "With the password and a code (or a recovery code): logins no longer ask \
        for a code, and the recovery codes are gone.",
    request_body = schema::PasswordAndCode,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Off.", body = schema::Success,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = PASSWORD_AND_CODE_REFUSED, body = schema::Error),
        (status = 401, description = PASSWORD_THEN_CODE, body = schema::Error),
        CrossSite,
        (status = 409, description = NOT_ENABLED, body = schema::Error),
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let (password, code) = password_and_code(&body)?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let mfa = &state.auth.mfa;
    mfa.disable(&auth.user, password.to_owned(), code, ip)
        .await?;
    Ok(no_store(HttpResponse::Ok().json(success(json!({})))))
}

#[utoipa::path(
    post,
    path = "/api/users/me/mfa/recovery-codes",
    tag = "users",
    summary = "New recovery codes",
    description = "With the password and a code (or a recovery code): ten new recovery \
        codes, answered this once; the old ones stop working.",
    request_body = schema::PasswordAndCode,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The new codes.", body = schema::RecoveryCodes,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = PASSWORD_AND_CODE_REFUSED, body = schema::Error),
        (status = 401, description = PASSWORD_THEN_CODE, body = schema::Error),
        CrossSite,
        (status = 409, description = NOT_ENABLED, body = schema::Error),
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn regenerate(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let (password, code) = password_and_code(&body)?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let mfa = &state.auth.mfa;
    let codes = mfa
        .regenerate(&auth.user, password.to_owned(), code, ip)
        .await?;
    Ok(no_store(HttpResponse::Ok().json(success(json!({
        "data": {"recovery_codes": codes},
    })))))
}
