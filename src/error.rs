//! Every failure the service answers with: one variant per code of docs/api.md.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

/// One bad field of a `validation_failed` answer.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    /// As named in the JSON body (`passwordConfirm`), or `body`, `Authorization`, a cookie.
    #[schema(example = "passwordConfirm")]
    pub field: String,
    #[schema(example = "must match password")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

// The one list of the codes: `AppError::code` answers with them, and the OpenAPI description's
// `Error` schema takes its enum from here.
/// Every code a failure can carry (docs/api.md, Errors). Switch on it; the message may be
/// reworded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a body that is not a JSON object, a missing or wrong field, an ambiguous request.
    ValidationFailed,
    /// 415: register or login without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 413: a body over 64 KiB.
    PayloadTooLarge,
    /// 409: register with an email already registered.
    EmailTaken,
    /// 401: login with an unknown email or a wrong password.
    InvalidCredentials,
    /// 429: too many login attempts; see `Retry-After`.
    RateLimited,
    /// 401: no token at all.
    NotLoggedIn,
    /// 401: a token that does not verify or is of the wrong kind.
    TokenInvalid,
    /// 401: a genuine token past its `exp`.
    TokenExpired,
    /// 401: the token's session has ended.
    SessionRevoked,
    /// 401: a rotated refresh token presented again after the grace window.
    RefreshReused,
    /// 403: a cross-site request on a state-changing route.
    OriginForbidden,
    /// 403: the logged-in user's role does not allow the request (an admin route).
    Forbidden,
    /// 400: a mailed link's token that is unknown, used, expired or superseded.
    LinkInvalid,
    /// 403: login with the right password to an unverified address, when verification is
    /// required.
    EmailNotVerified,
    /// 401: a wrong, missing or used second-factor code, or a dead `mfa_token`.
    InvalidCode,
    /// 409: enrollment while a second factor is already on.
    MfaEnabled,
    /// 409: a change to a second factor that is not on.
    MfaNotEnabled,
    /// 409: a confirming code with no enrollment started.
    MfaNotPending,
    /// 503: a store cannot be reached in time; retry later.
    ServiceUnavailable,
    /// 404: an unknown path.
    NotFound,
    /// 405: a method the path does not take.
    MethodNotAllowed,
    /// 500: a defect.
    InternalError,
}

impl ErrorCode {
    /// The code as it travels, for a metrics label or a log field (tests/api/openapi.rs checks
    /// that serde writes the same).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::SessionRevoked => "session_revoked",
            ErrorCode::RefreshReused => "refresh_reused",
            ErrorCode::OriginForbidden => "origin_forbidden",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::LinkInvalid => "link_invalid",
            ErrorCode::EmailNotVerified => "email_not_verified",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::MfaEnabled => "mfa_enabled",
            ErrorCode::MfaNotEnabled => "mfa_not_enabled",
            ErrorCode::MfaNotPending => "mfa_not_pending",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the request is invalid")]
    ValidationFailed(Vec<FieldError>),
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many failed attempts; try again later")]
    RateLimited { retry_after_secs: u64 },
    #[error("you are not logged in")]
    NotLoggedIn,
    #[error("the token is invalid")]
    TokenInvalid,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the session has ended; log in again")]
    SessionRevoked,
    #[error("the refresh token was already used; the session has been ended")]
    RefreshReused,
    #[error("cross-site request refused")]
    OriginForbidden,
    /// A logged-in user whose role does not allow the request.
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("this link is invalid or has expired")]
    LinkInvalid,
    #[error("confirm your email address first: use the link we sent you, or ask for a new one")]
    EmailNotVerified,
    #[error("the code is not valid; check your authenticator app and try again")]
    InvalidCode,
    #[error("a second factor is already on")]
    MfaEnabled,
    #[error("no second factor is on")]
    MfaNotEnabled,
    #[error("start the enrollment first")]
    MfaNotPending,
    /// `cause` names what was unavailable (a store, or `argon2`), for the metrics.
    #[error("the service is temporarily unavailable")]
    ServiceUnavailable { cause: &'static str },
    #[error("no such route")]
    NotFound,
    /// `not_found` too, for an id that is not a live session of the user.
    #[error("no such session")]
    NoSuchSession,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// Details go to the log (inside the request's span, with its id), never to the client.
    /// `store` names the store that failed, if one did, for the metrics.
    #[error("internal error")]
    Internal { store: Option<&'static str> },
}

const STORES: [&str; 3] = ["postgres", "redis", "sqlite"];

pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::ValidationFailed(_) => ErrorCode::ValidationFailed,
            AppError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            AppError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            AppError::EmailTaken => ErrorCode::EmailTaken,
            AppError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::NotLoggedIn => ErrorCode::NotLoggedIn,
            AppError::TokenInvalid => ErrorCode::TokenInvalid,
            AppError::TokenExpired => ErrorCode::TokenExpired,
            AppError::SessionRevoked => ErrorCode::SessionRevoked,
            AppError::RefreshReused => ErrorCode::RefreshReused,
            AppError::OriginForbidden => ErrorCode::OriginForbidden,
            AppError::Forbidden => ErrorCode::Forbidden,
            AppError::LinkInvalid => ErrorCode::LinkInvalid,
            AppError::EmailNotVerified => ErrorCode::EmailNotVerified,
            AppError::InvalidCode => ErrorCode::InvalidCode,
            AppError::MfaEnabled => ErrorCode::MfaEnabled,
            AppError::MfaNotEnabled => ErrorCode::MfaNotEnabled,
            AppError::MfaNotPending => ErrorCode::MfaNotPending,
            AppError::ServiceUnavailable { .. } => ErrorCode::ServiceUnavailable,
            AppError::NotFound | AppError::NoSuchSession => ErrorCode::NotFound,
            AppError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            AppError::Internal { .. } => ErrorCode::InternalError,
        }
    }

    /// No usable token, now or ever: a refresh answering this clears the cookies.
    pub fn is_dead_token(&self) -> bool {
        matches!(
            self,
            AppError::NotLoggedIn
                | AppError::TokenInvalid
                | AppError::TokenExpired
                | AppError::SessionRevoked
                | AppError::RefreshReused
        )
    }

    /// 429 with the whole seconds left in the window, at least 1.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_millis().div_ceil(1000).max(1);
        AppError::RateLimited {
            retry_after_secs: u64::try_from(secs).unwrap_or(u64::MAX),
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        AppError::ValidationFailed(vec![FieldError::new(field, message)])
    }

    /// Logs an unexpected failure and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        AppError::Internal { store: None }
    }

    /// Logs an outage (of a store, of argon2's queue, ...) and answers 503, so clients retry
    /// instead of giving up.
    pub fn unavailable(what: &'static str, error: impl std::fmt::Display) -> Self {
        tracing::error!(what, %error, "unavailable");
        AppError::ServiceUnavailable { cause: what }
    }

    /// The store a failure came from, and its kind (`unavailable` or `failed`).
    pub fn store_error(&self) -> Option<(&'static str, &'static str)> {
        match self {
            AppError::ServiceUnavailable { cause } if STORES.contains(cause) => {
                Some((cause, "unavailable"))
            }
            AppError::Internal { store: Some(store) } => Some((store, "failed")),
            _ => None,
        }
    }
}

/// A store's outage is 503, so that clients retry; its defect is 500. Either is logged here,
/// inside the request's span, with the store's name for the metrics.
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { store, cause } => AppError::unavailable(store, cause),
            StoreError::Failed { store, cause } => {
                tracing::error!(store, error = %cause, "store failed");
                AppError::Internal { store: Some(store) }
            }
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    status: &'static str,
    code: ErrorCode,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::ValidationFailed(_) | AppError::LinkInvalid => StatusCode::BAD_REQUEST,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::EmailTaken
            | AppError::MfaEnabled
            | AppError::MfaNotEnabled
            | AppError::MfaNotPending => StatusCode::CONFLICT,
            AppError::InvalidCredentials
            | AppError::InvalidCode
            | AppError::NotLoggedIn
            | AppError::TokenInvalid
            | AppError::TokenExpired
            | AppError::SessionRevoked
            | AppError::RefreshReused => StatusCode::UNAUTHORIZED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::OriginForbidden | AppError::Forbidden | AppError::EmailNotVerified => {
                StatusCode::FORBIDDEN
            }
            AppError::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NotFound | AppError::NoSuchSession => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            AppError::NotLoggedIn => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::TokenInvalid
            | AppError::TokenExpired
            | AppError::SessionRevoked
            | AppError::RefreshReused => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
            }
            AppError::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            _ => {}
        }
        let errors = match self {
            AppError::ValidationFailed(errors) => Some(errors.as_slice()),
            _ => None,
        };
        response.json(Envelope {
            status: "fail",
            code: self.code(),
            message: self.to_string(),
            errors,
        })
    }
}
