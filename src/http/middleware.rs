//! Request ids, the span that carries them into every log line of a request, and the
//! JSON envelope for the few errors that actix or a middleware answers on its own.

use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use serde_json::json;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use crate::error::ErrorCode;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct RequestId(pub String);

/// An incoming id is kept only if it is short and plain, so it cannot forge log lines.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    match next.call(req).await {
        Ok(response) => {
            let mut response = as_json(response.map_into_boxed_body());
            set_id(response.headers_mut(), &id);
            Ok(response)
        }
        // An error a middleware returned instead of a response: actix renders it later.
        Err(inner) => Err(Tagged { inner, id }.into()),
    }
}

fn set_id(headers: &mut actix_web::http::header::HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(REQUEST_ID, value);
    }
}

fn is_json(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The code (docs/api.md, Errors) for an error status that our handlers did not produce.
fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::NotLoggedIn,
        403 => ErrorCode::OriginForbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::ServiceUnavailable,
        500..=599 => ErrorCode::InternalError,
        _ => ErrorCode::ValidationFailed,
    }
}

fn envelope(status: StatusCode) -> String {
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    json!({"status": "fail", "code": code_for(status), "message": message}).to_string()
}

/// Every error body is JSON, even one that actix itself produced.
fn as_json(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let mut response = response.map_body(|_, _| BoxBody::new(envelope(status)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A middleware's error, rendered as our envelope with the request id.
struct Tagged {
    inner: Error,
    id: String,
}

impl fmt::Debug for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl ResponseError for Tagged {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.inner.error_response();
        if !is_json(response.headers()) {
            let status = response.status();
            response = response.set_body(BoxBody::new(envelope(status)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        set_id(response.headers_mut(), &self.id);
        response
    }
}

/// The span of a request, around every line it logs: our request id, the method, and the
/// route's pattern rather than the path, so that nothing a client typed into a URL (a token
/// in a query, say) reaches the log.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            request_id = %id,
            method = method_label(request.method()),
            route = request.match_pattern().as_deref().unwrap_or(UNMATCHED),
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
        tracing::debug!(parent: &span, "answered");
    }
}

/// The route label of a path that matches no route.
pub const UNMATCHED: &str = "unmatched";

/// The standard methods by name, anything else as `other`: a method is a client's free text.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn request_ids_are_short_and_plain() {
        assert!(acceptable("abc-123_x.y"));
        assert!(acceptable(&"a".repeat(64)));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("a\nb"));
    }
}
