//! Refuses state-changing requests that another site made a browser send (login CSRF, a
//! cross-site link to logout). Browsers send `Origin` on cross-origin POSTs and
//! `Sec-Fetch-Site` on everything; clients that are not browsers send neither, and pass.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};

use crate::error::AppError;
use crate::http::client;
use crate::http::state::AppState;

/// Middleware for the state-changing routes, whatever the method.
pub async fn same_site_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal("AppState is not registered"))?;
    if is_cross_site(req.request(), state) {
        // From the error, so that the metrics see what it was.
        let refused = HttpResponse::from_error(AppError::OriginForbidden);
        return Ok(req.into_response(refused).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn is_cross_site(req: &HttpRequest, state: &AppState) -> bool {
    let headers = req.headers();
    let Some(origin) = headers.get(header::ORIGIN) else {
        let site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
        return site.is_some_and(|v| v.eq_ignore_ascii_case(b"cross-site"));
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let allowed = |o: &str| o.eq_ignore_ascii_case(origin);
    // "null" (sandboxed frames, some redirects) matches neither list.
    !(state.client_origins.iter().any(|o| allowed(o))
        || own_origin(req, state).is_some_and(|o| allowed(&o)))
}

/// This service's origin as the client addressed it: scheme and `Host`.
fn own_origin(req: &HttpRequest, state: &AppState) -> Option<String> {
    let host = match req.headers().get(header::HOST) {
        Some(host) => host.to_str().ok()?.to_owned(),
        // HTTP/2 carries the host in the URI instead.
        None => req.uri().authority()?.to_string(),
    };
    let scheme = client::scheme(req, &state.trusted_proxies);
    Some(format!("{scheme}://{host}"))
}
