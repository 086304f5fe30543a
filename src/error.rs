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
    pub fn code(&self) -> &'static str {
        match self {
            AppError::ValidationFailed(_) => "validation_failed",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::EmailTaken => "email_taken",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::NotLoggedIn => "not_logged_in",
            AppError::TokenInvalid => "token_invalid",
            AppError::TokenExpired => "token_expired",
            AppError::SessionRevoked => "session_revoked",
            AppError::RefreshReused => "refresh_reused",
            AppError::OriginForbidden => "origin_forbidden",
            AppError::Forbidden => "forbidden",
            AppError::ServiceUnavailable { .. } => "service_unavailable",
            AppError::NotFound | AppError::NoSuchSession => "not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Internal { .. } => "internal_error",
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
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::ValidationFailed(_) => StatusCode::BAD_REQUEST,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::EmailTaken => StatusCode::CONFLICT,
            AppError::InvalidCredentials
            | AppError::NotLoggedIn
            | AppError::TokenInvalid
            | AppError::TokenExpired
            | AppError::SessionRevoked
            | AppError::RefreshReused => StatusCode::UNAUTHORIZED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::OriginForbidden | AppError::Forbidden => StatusCode::FORBIDDEN,
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
