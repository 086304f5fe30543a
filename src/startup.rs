//! Builds the app: stores, keys, listener, middleware.

use std::net::TcpListener;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, http, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::http::cookies::CookiePolicy;
use crate::http::credentials::refuse_ambiguous;
use crate::http::metrics::record;
use crate::http::middleware::{RequestSpan, request_id};
use crate::http::state::AppState;
use crate::http::{body, metrics_route, not_found, routes};
use crate::metrics::Metrics;
use crate::service::auth::AuthService;
use crate::service::cursor::CursorSeal;

/// How long requests in flight may take to finish once a stop is asked for.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
}

impl Application {
    /// Everything that can fail at start fails here, with a message naming the cause.
    pub async fn build(settings: Settings) -> Result<Self, String> {
        let metrics = web::Data::new(Metrics::new()?);
        let auth = AuthService::from_settings(&settings, &metrics).await?;
        let state = web::Data::new(AppState {
            cursors: CursorSeal::new(auth.cursor_key()),
            auth,
            cookies: CookiePolicy::new(settings.cookies.clone()),
            client_origins: settings.client_origins.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
        });
        let (listener, port) = listen(&settings.host, settings.port, "HOST/PORT")?;
        let separate_metrics = settings.metrics_port.is_some();
        let origins = settings.client_origins.clone();
        let app_metrics = metrics.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(app_metrics.clone())
                .app_data(body::json_config())
                .configure(routes)
                .configure(|cfg| {
                    if !separate_metrics {
                        metrics_route(cfg);
                    }
                })
                .default_service(web::to(not_found))
                // Inside CORS, so that a browser can read the refusal.
                .wrap(from_fn(refuse_ambiguous))
                .wrap(cors(&origins))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(request_id))
                .wrap(from_fn(record))
        })
        // main.rs stops the servers on SIGTERM and SIGINT; the tests must keep their signals.
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen(listener)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?
        .run();
        let (metrics_server, metrics_port) = match settings.metrics_port {
            None => (None, None),
            Some(wanted) => {
                let (listener, port) = listen(&settings.host, wanted, "HOST/METRICS_PORT")?;
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(metrics.clone())
                        .configure(metrics_route)
                        .default_service(web::to(not_found))
                        .wrap(from_fn(request_id))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
                .listen(listener)
                .map_err(|e| format!("cannot start the metrics server: {e}"))?
                .run();
                (Some(server), Some(port))
            }
        };
        Ok(Application {
            port,
            metrics_port,
            server,
            metrics_server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when it has one of its own (`METRICS_PORT`).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Stops both servers: no new connections, requests in flight finish (up to 30 s).
    pub fn stopper(&self) -> Stopper {
        let mut handles = vec![self.server.handle()];
        handles.extend(self.metrics_server.as_ref().map(Server::handle));
        Stopper(handles)
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics_server {
            None => self.server.await,
            Some(metrics) => {
                let (main, metrics) = tokio::join!(self.server, metrics);
                main.and(metrics)
            }
        }
    }
}

pub struct Stopper(Vec<ServerHandle>);

impl Stopper {
    pub async fn stop(self) {
        for handle in self.0 {
            handle.stop(true).await;
        }
    }
}

fn listen(host: &str, port: u16, names: &str) -> Result<(TcpListener, u16), String> {
    let address = format!("{host}:{port}");
    let listener = TcpListener::bind(&address)
        .map_err(|e| format!("{names}: cannot listen on {address}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    Ok((listener, port))
}

fn cors(origins: &[String]) -> Cors {
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
    cors.allowed_methods([
        http::Method::GET,
        http::Method::POST,
        http::Method::PATCH,
        http::Method::DELETE,
    ])
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
