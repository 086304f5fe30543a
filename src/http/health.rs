//! /api/healthchecker: readiness of the stores in use.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::http::state::AppState;

/// A store that does not answer this fast is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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
            "code": "service_unavailable",
            "message": format!("unavailable: {}", down.join(", ")),
            "checks": checks,
        }))
    }
}
