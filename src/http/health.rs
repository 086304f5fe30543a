//! /api/healthchecker: liveness and readiness of both stores.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::AppError;
use crate::state::AppState;

/// A store that does not answer this fast is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn up(check: impl Future<Output = Result<(), AppError>>) -> bool {
    matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(())))
}

fn word(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    let (postgres, redis) = tokio::join!(up(state.users.ping()), up(state.sessions.ping()));
    let checks = json!({"postgres": word(postgres), "redis": word(redis)});
    if postgres && redis {
        HttpResponse::Ok()
            .json(json!({"status": "success", "message": "rs256-auth is up", "checks": checks}))
    } else {
        let down: Vec<&str> = [("postgres", postgres), ("redis", redis)]
            .into_iter()
            .filter(|(_, up)| !up)
            .map(|(name, _)| name)
            .collect();
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "fail",
            "code": "service_unavailable",
            "message": format!("unavailable: {}", down.join(", ")),
            "checks": checks,
        }))
    }
}
