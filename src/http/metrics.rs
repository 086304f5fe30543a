//! `/metrics`, and the middleware that counts every answer into it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use crate::error::AppError;
use crate::http::middleware::{UNMATCHED, method_label};
use crate::metrics::{self, Metrics};

const LOGIN: &str = "/api/auth/login";
const LOGIN_WITH_CODE: &str = "/api/auth/login/mfa";

/// Marks a login's answer that asks for a code instead of starting a session, for
/// `auth_logins_total{outcome="mfa_required"}`.
pub struct CodeNeeded;

pub async fn render(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, metrics::CONTENT_TYPE))
        .body(metrics.render())
}

/// Outermost middleware: sees every answer, the ones other middleware made included.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let Some(metrics) = req.app_data::<web::Data<Metrics>>().cloned() else {
        return next.call(req).await;
    };
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned());
    let method = method_label(req.method());
    let result = next.call(req).await;
    let (status, error, code_needed) = match &result {
        Ok(response) => (
            response.status(),
            response.response().error().and_then(|e| e.as_error()),
            response.response().extensions().contains::<CodeNeeded>(),
        ),
        Err(error) => (
            error.as_response_error().status_code(),
            error.as_error(),
            false,
        ),
    };
    count(&metrics, &route, method, status, error, code_needed);
    let labels = [route.as_str(), method, status.as_str()];
    metrics
        .latency
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

fn count(
    metrics: &Metrics,
    route: &str,
    method: &str,
    status: StatusCode,
    error: Option<&AppError>,
    code_needed: bool,
) {
    metrics
        .requests
        .with_label_values(&[route, method, status.as_str()])
        .inc();
    // A login with a second factor is counted at each step: `mfa_required`, then `success`
    // (a session started) or the code step's error.
    if (route == LOGIN || route == LOGIN_WITH_CODE) && method == "POST" {
        let outcome = match error {
            _ if code_needed => "mfa_required",
            _ if status.is_success() => "success",
            Some(error) => error.code().as_str(),
            None => "error",
        };
        metrics.logins.with_label_values(&[outcome]).inc();
    }
    match error {
        Some(AppError::RateLimited { .. }) => {
            metrics.rate_limited.with_label_values(&[route]).inc();
        }
        Some(error) => {
            if let Some((store, kind)) = error.store_error() {
                metrics.store_errors.with_label_values(&[store, kind]).inc();
            }
        }
        None => {}
    }
}
