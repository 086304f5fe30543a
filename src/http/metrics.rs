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
    let (status, error) = match &result {
        Ok(response) => (
            response.status(),
            response.response().error().and_then(|e| e.as_error()),
        ),
        Err(error) => (error.as_response_error().status_code(), error.as_error()),
    };
    count(&metrics, &route, method, status, error);
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
) {
    metrics
        .requests
        .with_label_values(&[route, method, status.as_str()])
        .inc();
    if route == LOGIN && method == "POST" {
        let outcome = match error {
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
