//! /api/livez: the process serves. /api/healthchecker: readiness of the stores in use.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::error::ErrorCode;
use crate::http::schema::{self, Ambiguous};
use crate::http::state::AppState;

/// A store that does not answer this fast is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Touches no store: an orchestrator restarts a process that fails this, and an outage of
/// Postgres or Redis is no reason to restart every instance.
#[utoipa::path(
    get,
    path = "/api/livez",
    tag = "operations",
    summary = "Liveness",
    description = "The process serves requests. Touches no store, so a store outage does not \
        make an orchestrator restart every instance.",
    responses(
        (status = 200, description = "The process is alive.", body = schema::Success),
        Ambiguous,
    )
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "success"}))
}

#[utoipa::path(
    get,
    path = "/api/healthchecker",
    tag = "operations",
    summary = "Readiness",
    description = "Asks every store of the configured storage mode for an answer within 2 s, \
        at once. The SQLite check takes the file's write lock and releases it at once.",
    responses(
        (status = 200, description = "Every store answered.", body = schema::Health),
        Ambiguous,
        (status = 503, description = "`service_unavailable`: a store is down; `checks` says which.",
            body = schema::HealthDown),
    )
)]
pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    let stores = state.auth.check_stores(CHECK_TIMEOUT).await;
    let checks: Map<String, Value> = stores
        .iter()
        .map(|s| (s.name.to_owned(), json!(if s.up { "up" } else { "down" })))
        .collect();
    let down: Vec<&str> = stores.iter().filter(|s| !s.up).map(|s| s.name).collect();
    if down.is_empty() {
        HttpResponse::Ok()
            .json(json!({"status": "success", "message": "rs256-auth is up", "checks": checks}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "fail",
            "code": ErrorCode::ServiceUnavailable,
            "message": format!("unavailable: {}", down.join(", ")),
            "checks": checks,
        }))
    }
}
