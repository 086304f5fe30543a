//! /api/auth: register, login, refresh, logout.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use validator::{Validate, ValidationErrors};

use crate::domain::{self, Email};
use crate::error::{AppError, FieldError, Result};
use crate::http::body::{Fields, JsonObject};
use crate::http::client;
use crate::http::cookies::{ACCESS_COOKIE, REFRESH_COOKIE};
use crate::http::credentials::{bearer_token, cookie};
use crate::http::metrics::CodeNeeded;
use crate::http::schema::{self, Ambiguous, BodyRefused, CrossSite, ServerErrors};
use crate::http::state::AppState;
use crate::http::{no_store, success};
use crate::service::accounts::{Registered, Registration};
use crate::service::sessions::{LoginStep, SessionTokens};

const DEFAULT_PHOTO: &str = "default.png";

/// Register's answer when verification is required, for a new and a taken address alike.
pub const REGISTER_PENDING: &str =
    "Check your inbox: the next step is in the mail we sent to this address.";

#[derive(Validate)]
struct RegisterForm {
    #[validate(custom(function = "domain::name_length_rule"))]
    name: String,
    #[validate(
        length(max = 254, message = "must be at most 254 characters"),
        email(message = "must be a valid email address")
    )]
    email: String,
    #[validate(custom(function = "domain::password_rule"))]
    password: String,
    #[validate(must_match(other = "password", message = "must match password"))]
    password_confirm: String,
    #[validate(custom(function = "domain::photo_length_rule"))]
    photo: Option<String>,
}

/// validator names fields as in Rust; clients know the JSON names.
fn json_name(field: &str) -> &str {
    match field {
        "password_confirm" => "passwordConfirm",
        "new_password" => "newPassword",
        "new_password_confirm" => "newPasswordConfirm",
        other => other,
    }
}

fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut list: Vec<FieldError> = errors
        .field_errors()
        .into_iter()
        .flat_map(|(field, errs)| {
            errs.iter().map(move |e| {
                let message = e.message.as_deref().unwrap_or("is invalid");
                FieldError::new(json_name(&field), message.to_string())
            })
        })
        .collect();
    list.sort_by(|a, b| a.field.cmp(&b.field));
    list.dedup_by(|a, b| a.field == b.field);
    list
}

fn parse_registration(body: &Value) -> Result<Registration> {
    let mut fields = Fields::of(body)?;
    // Read in the order of the form, so that errors are listed in that order.
    let sent_name = fields.required("name");
    let email = Email::normalize(fields.required("email"));
    let form = RegisterForm {
        name: sent_name.trim().to_owned(),
        email: email.as_str().to_owned(),
        password: fields.required("password").to_owned(),
        password_confirm: fields.required("passwordConfirm").to_owned(),
        photo: fields.optional("photo").map(str::to_owned),
    };
    let mut errors = std::mem::take(&mut fields.errors);
    refuse_unsafe(&mut errors, Some(sent_name), form.photo.as_deref());
    refuse_nul(&mut errors, &[("email", &form.email)]);
    add_rule_errors(&mut errors, form.validate());
    if !errors.is_empty() {
        return Err(AppError::ValidationFailed(errors));
    }
    Ok(Registration {
        name: form.name,
        email,
        password: form.password,
        photo: form.photo.unwrap_or_else(|| DEFAULT_PHOTO.to_owned()),
    })
}

fn fields_has(errors: &[FieldError], field: &str) -> bool {
    errors.iter().any(|e| e.field == field)
}

/// The name and photo rules of `domain` beyond lengths, for the fields that were sent and
/// have no error yet: register and a profile change.
pub(crate) fn refuse_unsafe(errors: &mut Vec<FieldError>, name: Option<&str>, photo: Option<&str>) {
    if name.is_some_and(|n| !domain::name_is_clean(n)) && !fields_has(errors, "name") {
        errors.push(FieldError::new(
            "name",
            "must not contain control characters or bidirectional overrides",
        ));
    }
    if photo.is_some_and(|p| !domain::photo_is_allowed(p)) && !fields_has(errors, "photo") {
        errors.push(FieldError::new(
            "photo",
            "must be a file name, a relative path or an http(s) URL",
        ));
    }
}

/// Postgres text cannot hold NUL; refuse it at the edge rather than fail at the write. A
/// field that already has its error gets no second one.
pub(crate) fn refuse_nul(errors: &mut Vec<FieldError>, fields: &[(&str, &str)]) {
    for (field, value) in fields {
        if value.contains('\0') && !fields_has(errors, field) {
            errors.push(FieldError::new(field, "must not contain NUL characters"));
        }
    }
}

/// Adds the errors of a form's rules (validator) for the fields that have none yet: a field
/// that is missing or of the wrong type already has its error.
pub(crate) fn add_rule_errors(
    errors: &mut Vec<FieldError>,
    checked: std::result::Result<(), ValidationErrors>,
) {
    if let Err(invalid) = checked {
        let fresh: Vec<FieldError> = field_errors(&invalid)
            .into_iter()
            .filter(|e| !fields_has(errors, &e.field))
            .collect();
        errors.extend(fresh);
    }
}

#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    summary = "Register",
    description = "Creates a user and mails a verification link. Does not log in and sets no \
        cookie.",
    request_body = schema::RegisterRequest,
    responses(
        (status = 201, description = "The new user, `verified` false; a verification link \
            is mailed to the address.", body = schema::UserAnswer),
        (status = 202, description = "Only with `REQUIRE_VERIFIED_EMAIL=true`, for a new and a \
            taken address alike: a new address gets a verification link, the owner of a taken \
            one a notice with a reset link. No user in the answer.", body = schema::Accepted),
        (status = 400, description = "`validation_failed`: a body that is not one JSON object \
            or repeats a key (`errors[0].field` is `body`), fields that are missing, of the \
            wrong type or break a rule (one `errors` entry per field), or an ambiguous request.",
            body = schema::Error),
        CrossSite,
        (status = 409, description = "`email_taken`: an account with this email already exists, \
            in any letter case (never with `REQUIRE_VERIFIED_EMAIL=true`).",
            body = schema::Error),
        BodyRefused,
        ServerErrors,
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let input = parse_registration(&body)?;
    Ok(match state.auth.accounts.register(input).await? {
        Registered::Created(user) => {
            HttpResponse::Created().json(success(json!({"data": {"user": user.view()}})))
        }
        Registered::Pending => {
            HttpResponse::Accepted().json(success(json!({"message": REGISTER_PENDING})))
        }
    })
}

#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    summary = "Log in",
    description = "Checks the email and password and starts a new session (the user's other \
        sessions go on). The access token is in the body and in a cookie; the refresh token \
        only in its cookie. Attempts are limited per email and per client IP (see 429). A \
        user with a second factor gets no session yet: the answer asks for a code.",
    request_body = schema::LoginRequest,
    responses(
        (status = 200, description = "Logged in; or, for a user with a second factor, \
            `mfa_required` and the `mfa_token` to send with a code to `/api/auth/login/mfa` \
            (then no cookie is set).", body = schema::LoginAnswer,
            headers(
                ("Set-Cookie" = String, description = "Three cookies: `access_token` (HttpOnly, Path=/, \
                    Max-Age the access lifetime), `refresh_token` (HttpOnly, Path=/api/auth, \
                    Max-Age the refresh lifetime) and `logged_in=true` (readable by scripts, \
                    Path=/), with the configured SameSite, Secure and Domain."),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, description = "`validation_failed`: a body that is not one JSON object \
            or repeats a key, `email` or `password` missing or not a string (not counted as an \
            attempt), or an ambiguous request.", body = schema::Error),
        (status = 401, description = "`invalid_credentials`: an unknown email or a wrong \
            password (the same answer, in the same time), or a password over 128 characters.",
            body = schema::Error),
        CrossSite,
        BodyRefused,
        (status = 429, description = "`rate_limited`: over `LOGIN_ATTEMPTS_LIMIT` failed \
            attempts (default 10) for this email, or over `LOGIN_ATTEMPTS_IP_LIMIT` (default 100) \
            from this client IP (an IPv6 /64), within `LOGIN_ATTEMPTS_WINDOW` (default 15m); \
            the right password included. Sets no cookie.", body = schema::Error,
            headers(("Retry-After" = u64, description = "Whole seconds left in the window, at \
                least 1."))),
        ServerErrors,
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let mut fields = Fields::of(&body)?;
    let email = Email::normalize(fields.required("email"));
    let password = fields.required("password").to_owned();
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    if email.as_str().contains('\0') {
        // No stored email has one; the input's shape says nothing about who exists.
        return Err(AppError::InvalidCredentials);
    }
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let device = client::device(&req, ip);
    let sessions = &state.auth.sessions;
    Ok(match sessions.login(&email, password, ip, device).await? {
        LoginStep::Session(tokens) => session_response(&state, &tokens, false),
        LoginStep::CodeNeeded(mfa_token) => {
            let mut response = no_store(HttpResponse::Ok().json(success(json!({
                "mfa_required": true,
                "mfa_token": mfa_token,
            }))));
            response.extensions_mut().insert(CodeNeeded);
            response
        }
    })
}

/// POST (and, for older clients, GET) /api/auth/refresh.
#[utoipa::path(
    method(post, get),
    path = "/api/auth/refresh",
    tag = "auth",
    summary = "Refresh",
    description = "Turns a refresh token into a new access and refresh token of the same \
        session; the presented one is used up. Reads the `refresh_token` cookie, or, without \
        that cookie, `Authorization: Bearer <refresh token>`. No body is read. Within \
        `REFRESH_REUSE_GRACE` (default 10s) a second refresh with the same token (another tab) \
        gets the same new tokens; after it, the whole session ends (`refresh_reused`). \
        GET exists for older clients; prefer POST.",
    security(("refresh_cookie" = []), ("refresh_bearer" = [])),
    responses(
        (status = 200, description = "The session's new tokens; `refresh_token` in the body \
            only when the refresh token came as a Bearer header.", body = schema::Refreshed,
            headers(
                ("Set-Cookie" = String, description = "Three cookies: `access_token` (HttpOnly, Path=/, \
                    Max-Age the access lifetime), `refresh_token` (HttpOnly, Path=/api/auth, \
                    Max-Age the refresh lifetime) and `logged_in=true` (readable by scripts, \
                    Path=/), with the configured SameSite, Secure and Domain."),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        Ambiguous,
        (status = 401, description = "`not_logged_in` (no refresh token), `token_invalid` (not \
            a valid refresh token, an access token included), `token_expired`, \
            `session_revoked` (the session ended or the user no longer exists) or \
            `refresh_reused` (an already rotated refresh token after the grace window: the \
            session is ended now). The cookies are cleared.", body = schema::Error,
            headers(
                ("Set-Cookie" = String, description = "The three cookies, cleared: empty, `Max-Age=0`, \
                    an `Expires` in the past, with the attributes they were set with."),
                ("WWW-Authenticate" = String, description = "`Bearer` for `not_logged_in`, \
                    `Bearer error=\"invalid_token\"` for the others."),
            )),
        CrossSite,
        ServerErrors,
    )
)]
pub async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let from_cookie = cookie(&req, REFRESH_COOKIE);
    let (token, from_header) = match from_cookie {
        Some(token) => (Some(token), false),
        None => (bearer_token(&req), true),
    };
    let result = match token {
        Some(token) => state.auth.sessions.refresh(&token).await,
        None => Err(AppError::NotLoggedIn),
    };
    match result {
        Ok(tokens) => session_response(&state, &tokens, from_header),
        Err(e) => {
            let dead = e.is_dead_token();
            // From the error itself, so that the metrics see what it was.
            let mut response = no_store(HttpResponse::from_error(e));
            // Only a definitively dead token clears cookies; an outage must not log anyone out.
            if dead {
                state.cookies.clear(&mut response);
            }
            response
        }
    }
}

/// POST (and GET) /api/auth/logout: idempotent, always clears the cookies unless a store is down.
#[utoipa::path(
    method(post, get),
    path = "/api/auth/logout",
    tag = "auth",
    summary = "Log out",
    description = "Ends the session of every token the request carries that still verifies \
        (the Bearer token, the `access_token` and the `refresh_token` cookie, each taken as an \
        access or a refresh token), and clears the cookies. Safe to call without a token or \
        twice. GET exists for older clients; prefer POST.",
    params(
        ("all" = Option<bool>, Query, description = "`true` (or `1`): end every session of \
            the user of each token whose own session is live, the current one included. A \
            token of an ended session ends nothing. `false`, `0` or absent: this session only."),
    ),
    security((), ("access_cookie" = []), ("refresh_cookie" = []), ("access_bearer" = []),
        ("refresh_bearer" = [])),
    responses(
        (status = 200, description = "Logged out (or was not logged in).", body = schema::Success,
            headers(
                ("Set-Cookie" = String, description = "The three cookies, cleared: empty, `Max-Age=0`, \
                    an `Expires` in the past, with the attributes they were set with."),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, description = "`validation_failed`: `all` is not `true`, `false`, `1` \
            or `0`, or is sent twice; or an ambiguous request. Nothing ends.",
            body = schema::Error),
        CrossSite,
        (status = 500, description = schema::INTERNAL, body = schema::Error),
        (status = 503, description = "`service_unavailable`: a store cannot be reached; no \
            cookie is cleared, so the client can try again.", body = schema::Error),
    )
)]
pub async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let candidates: Vec<String> = [
        bearer_token(&req),
        cookie(&req, ACCESS_COOKIE),
        cookie(&req, REFRESH_COOKIE),
    ]
    .into_iter()
    .flatten()
    .collect();
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    if everywhere(&req)? {
        state.auth.sessions.logout_everywhere(&candidates).await?;
    } else {
        state.auth.sessions.logout(&candidates).await?;
    }
    let mut response = no_store(HttpResponse::Ok().json(success(json!({}))));
    state.cookies.clear(&mut response);
    Ok(response)
}

/// `?all=true` on logout: every session of the user, not just this one.
fn everywhere(req: &HttpRequest) -> Result<bool> {
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| AppError::validation("all", "must be true or false"))?;
    let mut values = query
        .iter()
        .filter(|(k, _)| k == "all")
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (None, _) | (Some("false" | "0"), None) => Ok(false),
        (Some("true" | "1"), None) => Ok(true),
        (Some(_), None) => Err(AppError::validation("all", "must be true or false")),
        (Some(_), Some(_)) => Err(AppError::validation("all", "must be sent once")),
    }
}

/// The body and cookies of a login or refresh. A client that sent its refresh token in a
/// header has no cookie jar, so it gets the new refresh token in the body too.
fn session_response(
    state: &AppState,
    tokens: &SessionTokens,
    refresh_in_body: bool,
) -> HttpResponse {
    let mut body = json!({"access_token": tokens.access});
    if refresh_in_body {
        body["refresh_token"] = json!(tokens.refresh);
    }
    session_answer(state, tokens, body)
}

/// 200 with `body` (which names the access token) and the session's three cookies.
pub(crate) fn session_answer(
    state: &AppState,
    tokens: &SessionTokens,
    body: Value,
) -> HttpResponse {
    let mut response = no_store(HttpResponse::Ok().json(success(body)));
    state.cookies.set(&mut response, tokens);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(body: Value) -> Vec<(String, String)> {
        match parse_registration(&body) {
            Err(AppError::ValidationFailed(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => Vec::new(),
        }
    }

    fn fields(body: Value) -> Vec<String> {
        errors_of(body).into_iter().map(|(f, _)| f).collect()
    }

    fn valid() -> Value {
        json!({"name": " Ada ", "email": " Ada@Example.COM ", "password": "password1", "passwordConfirm": "password1"})
    }

    #[test]
    fn a_valid_body_is_trimmed_and_lowercased() {
        let input = parse_registration(&valid()).unwrap();
        assert_eq!(input.name, "Ada");
        assert_eq!(input.email.as_str(), "ada@example.com");
        assert_eq!(input.password, "password1");
        assert_eq!(input.photo, "default.png");
    }

    #[test]
    fn each_bad_field_is_named_once() {
        assert_eq!(
            fields(json!({})),
            ["name", "email", "password", "passwordConfirm"]
        );
        let mut body = valid();
        body["passwordConfirm"] = json!("password2");
        assert_eq!(fields(body), ["passwordConfirm"]);
        let mut body = valid();
        body["email"] = json!(42);
        assert_eq!(
            errors_of(body),
            [("email".to_owned(), "must be a string".to_owned())]
        );
        let mut body = valid();
        body["name"] = json!("   ");
        assert_eq!(fields(body), ["name"]);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut body = valid();
        body["name"] = json!("é".repeat(100));
        assert!(fields(body).is_empty());
        let mut body = valid();
        body["name"] = json!("é".repeat(101));
        assert_eq!(fields(body), ["name"]);
        let mut body = valid();
        body["password"] = json!("ü".repeat(128));
        body["passwordConfirm"] = json!("ü".repeat(128));
        assert!(fields(body).is_empty());
        let mut body = valid();
        body["password"] = json!("ü".repeat(129));
        body["passwordConfirm"] = json!("ü".repeat(129));
        assert_eq!(fields(body), ["password"]);
        let mut body = valid();
        body["password"] = json!("1234567");
        body["passwordConfirm"] = json!("1234567");
        assert_eq!(fields(body), ["password"]);
    }

    #[test]
    fn nul_characters_are_refused_where_postgres_would_choke() {
        let mut body = valid();
        body["name"] = json!("Ada\u{0}");
        body["photo"] = json!("a\u{0}.png");
        assert_eq!(fields(body), ["name", "photo"]);
    }

    #[test]
    fn passwords_are_never_trimmed() {
        let mut body = valid();
        body["password"] = json!(" password1 ");
        body["passwordConfirm"] = json!(" password1 ");
        assert_eq!(parse_registration(&body).unwrap().password, " password1 ");
    }

    #[test]
    fn emails_over_254_characters_are_refused() {
        let mut body = valid();
        body["email"] = json!(format!("{}@example.com", "a".repeat(243)));
        assert_eq!(fields(body), ["email"]);
    }
}
