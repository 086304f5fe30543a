//! Email: verify an address, resend the link, forgot and reset the password, change the
//! address and confirm it. Every answer is `no-store` (the route table adds it). No route
//! takes a token in a GET: a mail scanner that opens a link spends nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use validator::Validate;

use crate::domain::{self, Email};
use crate::error::{AppError, FieldError, Result};
use crate::http::auth::{add_rule_errors, refuse_nul};
use crate::http::body::{Fields, JsonObject};
use crate::http::client;
use crate::http::guard::AuthUser;
use crate::http::schema::{
    self, BodyRefused, CrossSite, IpLimit, LinkRefused, LoginLimits, NoLiveToken, ServerErrors,
};
use crate::http::state::AppState;
use crate::http::success;

/// Longer than any token the service makes (43), short enough to refuse junk unread.
const TOKEN_MAX_CHARS: usize = 100;

pub const RESEND_SENT: &str =
    "If the address has an account that is not verified yet, a new link is on its way.";
pub const RESET_SENT: &str = "If the address has an account, a reset link is on its way.";
pub const CHANGE_SENT: &str = "A confirmation link is on its way to the new address; the \
                               address changes once it is used.";

#[derive(Validate)]
struct AddressForm<'a> {
    #[validate(
        length(max = 254, message = "must be at most 254 characters"),
        email(message = "must be a valid email address")
    )]
    email: &'a str,
}

/// A link's token from the body, or the body's `validation_failed`.
fn token_of(body: &serde_json::Value) -> Result<String> {
    let mut fields = Fields::of(body)?;
    let token = required_token(&mut fields);
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    Ok(token.to_owned())
}

/// `fields`' `token`, with an error added if it is missing, not a string, or of a length no
/// token has.
fn required_token<'a>(fields: &mut Fields<'a>) -> &'a str {
    let token = fields.required("token");
    if !fields.errors.iter().any(|e| e.field == "token")
        && (token.is_empty() || token.chars().count() > TOKEN_MAX_CHARS)
    {
        fields.errors.push(FieldError::new(
            "token",
            format!("must be 1 to {TOKEN_MAX_CHARS} characters"),
        ));
    }
    token
}

/// A valid address from `fields`' `email`, or its error added to `fields`.
fn address_of(fields: &mut Fields<'_>) -> Email {
    let email = Email::normalize(fields.required("email"));
    if !fields.errors.iter().any(|e| e.field == "email") {
        let form = AddressForm {
            email: email.as_str(),
        };
        refuse_nul(&mut fields.errors, &[("email", email.as_str())]);
        add_rule_errors(&mut fields.errors, form.validate());
    }
    email
}

fn only_address(body: &serde_json::Value) -> Result<Email> {
    let mut fields = Fields::of(body)?;
    let email = address_of(&mut fields);
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    Ok(email)
}

fn accepted(message: &str) -> HttpResponse {
    HttpResponse::Accepted().json(success(json!({"message": message})))
}

fn user_answer(user: &domain::User) -> HttpResponse {
    HttpResponse::Ok().json(success(json!({"data": {"user": user.view()}})))
}

#[utoipa::path(
    post,
    path = "/api/auth/verify-email",
    tag = "email",
    summary = "Verify an address",
    description = "Spends the token of a verification link: the address is verified. Does not \
        log in. An address already verified answers 200 and stays as it is.",
    request_body = schema::TokenRequest,
    responses(
        (status = 200, description = "The user, `verified` true.", body = schema::UserAnswer),
        LinkRefused,
        CrossSite,
        BodyRefused,
        IpLimit,
        ServerErrors,
    )
)]
pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let token = token_of(&body.into_inner().0)?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let user = state.auth.email.verify(&token, ip).await?;
    Ok(user_answer(&user))
}

#[utoipa::path(
    post,
    path = "/api/auth/verify-email/resend",
    tag = "email",
    summary = "Send a new verification link",
    description = "Mails a new verification link if the address has an account that is not \
        verified; older links stop working. The answer is the same for every address, and so \
        is its time. At most 3 link mails per address per 15 minutes (from this route, \
        forgot-password and address changes); beyond that, no mail and the same answer.",
    request_body = schema::EmailRequest,
    responses(
        (status = 202, description = "Taken.", body = schema::Accepted),
        (status = 400, description = "`validation_failed`: not one JSON object, `email` \
            missing or not a valid address, or an ambiguous request.", body = schema::Error),
        CrossSite,
        BodyRefused,
        IpLimit,
        ServerErrors,
    )
)]
pub async fn resend(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let email = only_address(&body.into_inner().0)?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    state.auth.email.resend(email, ip).await?;
    Ok(accepted(RESEND_SENT))
}

#[utoipa::path(
    post,
    path = "/api/auth/forgot-password",
    tag = "email",
    summary = "Ask for a password reset link",
    description = "Mails a reset link (valid `EMAIL_TOKEN_TTL_RESET`, default 30 minutes) if \
        the address has an account; older reset links stop working. The answer is the same for \
        every address, and so is its time. At most 3 link mails per address per 15 minutes.",
    request_body = schema::EmailRequest,
    responses(
        (status = 202, description = "Taken.", body = schema::Accepted),
        (status = 400, description = "`validation_failed`: not one JSON object, `email` \
            missing or not a valid address, or an ambiguous request.", body = schema::Error),
        CrossSite,
        BodyRefused,
        IpLimit,
        ServerErrors,
    )
)]
pub async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let email = only_address(&body.into_inner().0)?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    state.auth.email.forgot(email, ip).await?;
    Ok(accepted(RESET_SENT))
}

#[derive(Validate)]
struct NewPassword<'a> {
    #[validate(custom(function = "domain::password_rule"))]
    password: &'a str,
    #[validate(must_match(other = "password", message = "must match password"))]
    password_confirm: &'a str,
}

#[utoipa::path(
    post,
    path = "/api/auth/reset-password",
    tag = "email",
    summary = "Set a new password with a reset link",
    description = "Spends the token of a reset link: the password is set, the address is \
        verified (the mailbox was proven), every session of the user ends, the failed-login \
        counter of the address is cleared, and a notice is mailed. Sets no cookie: log in with \
        the new password.",
    request_body = schema::ResetRequest,
    responses(
        (status = 200, description = "The password is set.", body = schema::Success),
        (status = 400, description = "`link_invalid` (see verify-email), or \
            `validation_failed`: `token` as for verify-email, `password` outside 8 to 128 \
            characters, `passwordConfirm` different.", body = schema::Error),
        CrossSite,
        BodyRefused,
        IpLimit,
        ServerErrors,
    )
)]
pub async fn reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let mut fields = Fields::of(&body)?;
    let token = required_token(&mut fields);
    let form = NewPassword {
        password: fields.required("password"),
        password_confirm: fields.required("passwordConfirm"),
    };
    let mut errors = std::mem::take(&mut fields.errors);
    add_rule_errors(&mut errors, form.validate());
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(AppError::ValidationFailed(errors));
    }
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let password = form.password.to_owned();
    state.auth.email.reset(token, password, ip).await?;
    Ok(HttpResponse::Ok().json(success(json!({}))))
}

#[utoipa::path(
    post,
    path = "/api/users/me/email",
    tag = "email",
    summary = "Change the address",
    description = "Checks the password (a wrong one counts as a failed login), then mails a \
        confirmation link to the new address; the address changes only when that link is \
        used. If the new address has an account, that address is told instead, and the \
        answer is the same.",
    request_body = schema::AddressChangeRequest,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 202, description = "Taken.", body = schema::Accepted),
        (status = 400, description = "`validation_failed`: not one JSON object, `email` \
            missing, not a valid address or the current one, `password` missing, or an \
            ambiguous request.", body = schema::Error),
        (status = 401, description = "`invalid_credentials` (the password is wrong), or as \
            for `/api/users/me`, no live token.", body = schema::Error),
        NoLiveToken,
        CrossSite,
        BodyRefused,
        LoginLimits,
        ServerErrors,
    )
)]
pub async fn change_address(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let mut fields = Fields::of(&body)?;
    let email = address_of(&mut fields);
    let password = fields.required("password").to_owned();
    let code = fields.optional("code");
    if !fields.errors.is_empty() {
        return Err(AppError::ValidationFailed(fields.errors));
    }
    let ip = client::client_ip(&req, &state.trusted_proxies);
    state
        .auth
        .email
        .change_address(&auth.user, email, password, code, ip)
        .await?;
    Ok(accepted(CHANGE_SENT))
}

#[utoipa::path(
    post,
    path = "/api/auth/confirm-email",
    tag = "email",
    summary = "Confirm a new address",
    description = "Spends the token of an address-change link: the user moves to the new \
        address, verified, and the old address is told. Does not log in; the user's sessions \
        go on.",
    request_body = schema::TokenRequest,
    responses(
        (status = 200, description = "The user at the new address.", body = schema::UserAnswer),
        LinkRefused,
        CrossSite,
        (status = 409, description = "`email_taken`: another account took the address since \
            the link was sent. Nothing changes.", body = schema::Error),
        BodyRefused,
        IpLimit,
        ServerErrors,
    )
)]
pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let token = token_of(&body.into_inner().0)?;
    let ip = client::client_ip(&req, &state.trusted_proxies);
    let user = state.auth.email.confirm(&token, ip).await?;
    Ok(user_answer(&user))
}
