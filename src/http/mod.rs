//! The route table, in one place.

pub mod account;
pub mod admin;
pub mod auth;
pub mod body;
pub mod client;
pub mod cookies;
pub mod credentials;
pub mod email;
pub mod guard;
pub mod health;
pub mod jwks;
pub mod metrics;
pub mod mfa;
pub mod middleware;
pub mod openapi;
pub mod origin;
pub mod schema;
pub mod state;
pub mod users;

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{HttpResponse, Route, web};
use serde_json::{Value, json};

use crate::error::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/livez")
            .route(web::get().to(health::live))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/healthchecker")
            .route(web::get().to(health::check))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/auth/register")
            .wrap(from_fn(origin::same_site_only))
            .route(web::post().to(auth::register))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/login")
            .wrap(from_fn(origin::same_site_only))
            .route(web::post().to(auth::login))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/refresh")
            .wrap(from_fn(origin::same_site_only))
            .route(web::post().to(auth::refresh))
            .route(web::get().to(auth::refresh))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/api/auth/logout")
            .wrap(from_fn(origin::same_site_only))
            .route(web::post().to(auth::logout))
            .route(web::get().to(auth::logout))
            .default_service(not_allowed("GET, POST")),
    )
    .service(post_route("/api/auth/verify-email", email::verify))
    .service(post_route("/api/auth/verify-email/resend", email::resend))
    .service(post_route("/api/auth/forgot-password", email::forgot))
    .service(post_route("/api/auth/reset-password", email::reset))
    .service(post_route("/api/auth/confirm-email", email::confirm))
    .service(post_route("/api/users/me/email", email::change_address))
    .service(post_route("/api/auth/login/mfa", mfa::login_with_code))
    .service(
        web::resource("/api/users/me/mfa/totp")
            .wrap(from_fn(origin::same_site_only))
            .wrap(DefaultHeaders::new().add((CACHE_CONTROL, "no-store")))
            .route(web::post().to(mfa::enroll))
            .route(web::delete().to(mfa::disable))
            .default_service(not_allowed("POST, DELETE")),
    )
    .service(post_route(
        "/api/users/me/mfa/totp/confirm",
        mfa::confirm_enrollment,
    ))
    .service(post_route(
        "/api/users/me/mfa/recovery-codes",
        mfa::regenerate,
    ))
    .service(
        web::resource("/api/users/me")
            .route(web::get().to(users::me))
            .route(
                web::patch()
                    .to(users::update_me)
                    .wrap(from_fn(origin::same_site_only)),
            )
            .route(
                web::delete()
                    .to(account::delete_account)
                    .wrap(from_fn(origin::same_site_only)),
            )
            .default_service(not_allowed("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/api/admin/users")
            .route(web::get().to(admin::users))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/users/me/sessions")
            .route(web::get().to(account::sessions))
            .route(
                web::delete()
                    .to(account::end_other_sessions)
                    .wrap(from_fn(origin::same_site_only)),
            )
            .default_service(not_allowed("GET, DELETE")),
    )
    .service(
        web::resource("/api/users/me/sessions/{id}")
            .wrap(from_fn(origin::same_site_only))
            .route(web::delete().to(account::end_session))
            .default_service(not_allowed("DELETE")),
    )
    .service(
        web::resource("/api/users/me/password")
            .wrap(from_fn(origin::same_site_only))
            .route(web::post().to(account::change_password))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .route(web::get().to(jwks::jwks))
            .default_service(not_allowed("GET")),
    )
    .configure(openapi::docs);
}

/// A POST-only route (most of `email` and `mfa`): behind the origin check of login, and
/// never cached, its errors included.
fn post_route<F, Args>(path: &str, handler: F) -> impl actix_web::dev::HttpServiceFactory
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .wrap(from_fn(origin::same_site_only))
        .wrap(DefaultHeaders::new().add((CACHE_CONTROL, "no-store")))
        .route(web::post().to(handler))
        .default_service(not_allowed("POST"))
}

/// `/metrics`, on the main port or on `METRICS_PORT`'s.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(metrics::render))
            .default_service(not_allowed("GET")),
    );
}

pub(crate) fn not_allowed(allow: &'static str) -> Route {
    web::to(move || async move { Err::<HttpResponse, _>(AppError::MethodNotAllowed { allow }) })
}

pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// The success envelope: `{"status": "success"}` and the fields of `body` (an object).
pub fn success(body: Value) -> Value {
    let mut envelope = json!({"status": "success"});
    if let (Some(envelope), Value::Object(fields)) = (envelope.as_object_mut(), body) {
        envelope.extend(fields);
    }
    envelope
}

/// Responses that carry or clear tokens must not be cached by anything on the way.
pub fn no_store(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
