//! Builds the app: stores, keys, listener, middleware.

use std::net::TcpListener;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, http, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::http::cookies::CookiePolicy;
use crate::http::credentials::refuse_ambiguous;
use crate::http::middleware::{RequestSpan, request_id};
use crate::http::state::AppState;
use crate::http::{body, not_found, routes};
use crate::service::auth::AuthService;
use crate::service::password::Passwords;
use crate::service::tokens::Tokens;
use crate::store::Stores;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Everything that can fail at start fails here, with a message naming the cause.
    pub async fn build(settings: Settings) -> Result<Self, String> {
        let tokens = Tokens::from_settings(&settings)?;
        let stores = Stores::open(&settings).await?;
        let passwords = Passwords::new(settings.hash_concurrency)?;
        let state = web::Data::new(AppState {
            auth: AuthService::new(stores, tokens, passwords, settings.refresh_reuse_grace),
            cookies: CookiePolicy::new(settings.cookies.clone()),
            client_origins: settings.client_origins.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
        });
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address)
            .map_err(|e| format!("HOST/PORT: cannot listen on {address}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let origins = settings.client_origins.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(body::json_config())
                .configure(routes)
                .default_service(web::to(not_found))
                // Inside CORS, so that a browser can read the refusal.
                .wrap(from_fn(refuse_ambiguous))
                .wrap(cors(&origins))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(request_id))
        })
        .listen(listener)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?
        .run();
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn cors(origins: &[String]) -> Cors {
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
    cors.allowed_methods([http::Method::GET, http::Method::POST])
        .allowed_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            http::header::ACCEPT,
        ])
        .allowed_header("x-request-id")
        .expose_headers(["x-request-id"])
        .supports_credentials()
        .block_on_origin_mismatch(false)
        .max_age(3600)
}
