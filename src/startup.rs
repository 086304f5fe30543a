//! Builds the app: migrations, pools, keys, listener, middleware.

use std::net::TcpListener;
use std::str::FromStr;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, http, web};
use deadpool_redis::redis::AsyncConnectionConfig;
use deadpool_redis::{Manager, Pool, PoolConfig, Runtime, Timeouts};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::http::cookies::CookiePolicy;
use crate::http::middleware::{RequestSpan, request_id};
use crate::http::{body, not_found, routes};
use crate::service::password::Passwords;
use crate::service::tokens::Tokens;
use crate::state::AppState;
use crate::store::attempts::{Limits, LoginAttempts};
use crate::store::{RedisPool, SessionStore, UserStore};

/// How long a request waits for a store before answering 503.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);
/// Postgres' own limit on one statement (its units: `3s`).
const STATEMENT_TIMEOUT: &str = "3s";
/// A Redis command takes well under a millisecond; no answer this late means a frozen server.
/// deadpool's timeouts cover only the checkout, not the commands sent afterwards.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Everything that can fail at start fails here, with a message naming the cause.
    pub async fn build(settings: Settings) -> Result<Self, String> {
        let tokens = Tokens::from_settings(&settings)?;
        create_database_if_missing(&settings.database_url).await?;
        migrate(&settings.database_url).await?;
        let postgres = postgres_pool(&settings)?;
        let redis = redis_pool(&settings)?;
        let limits = Limits {
            per_email: settings.login_attempts_limit,
            per_ip: settings.login_attempts_ip_limit,
            window: settings.login_attempts_window,
        };
        let state = web::Data::new(AppState {
            users: UserStore::new(postgres),
            sessions: SessionStore::new(redis.clone(), settings.redis_key_prefix.clone()),
            attempts: LoginAttempts::new(redis, settings.redis_key_prefix.clone(), limits),
            client_origins: settings.client_origins.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            tokens,
            passwords: Passwords::new(settings.hash_concurrency)?,
            cookies: CookiePolicy::new(settings.cookies.clone()),
            refresh_grace: settings.refresh_reuse_grace,
        });
        if let Err(e) = state.sessions.ping().await {
            tracing::warn!(error = %e, "Redis is not reachable yet; requests that need it answer 503 until it is");
        }
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

/// So that a first `cargo run` needs no manual `createdb`.
async fn create_database_if_missing(url: &str) -> Result<(), String> {
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|e| format!("DATABASE_URL: cannot reach Postgres: {e}"))?;
    if !exists {
        Postgres::create_database(url)
            .await
            .map_err(|e| format!("DATABASE_URL: cannot create the database: {e}"))?;
        tracing::info!("created the database");
    }
    Ok(())
}

/// On a connection of its own: the request pool's statement timeout must not cut a long
/// migration short.
async fn migrate(url: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| format!("DATABASE_URL: cannot reach Postgres: {e}"))?;
    sqlx::migrate!("./migrations")
        .run(&mut conn)
        .await
        .map_err(|e| format!("DATABASE_URL: cannot apply migrations: {e}"))?;
    conn.close().await.map_err(|e| format!("DATABASE_URL: {e}"))
}

fn postgres_pool(settings: &Settings) -> Result<PgPool, String> {
    let options = PgConnectOptions::from_str(&settings.database_url)
        .map_err(|e| format!("DATABASE_URL: {e}"))?
        // A query stuck behind a lock, or on a Postgres that accepts but never answers,
        // must end too: the pool's acquire timeout covers only getting a connection.
        .options([("statement_timeout", STATEMENT_TIMEOUT)]);
    // A few connections serve this workload best (measured: 4 beat 64 on two cores).
    Ok(PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(STORE_TIMEOUT)
        .connect_lazy_with(options))
}

fn redis_pool(settings: &Settings) -> Result<RedisPool, String> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
    let manager = Manager::new_with_config(settings.redis_url.as_str(), connection)
        .map_err(|e| format!("REDIS_URL: {e}"))?;
    let mut config = PoolConfig::new(32);
    config.timeouts = Timeouts {
        wait: Some(STORE_TIMEOUT),
        create: Some(STORE_TIMEOUT),
        recycle: Some(STORE_TIMEOUT),
    };
    let pool = Pool::builder(manager)
        .config(config)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| format!("REDIS_URL: {e}"))?;
    Ok(RedisPool::new(pool, STORE_TIMEOUT))
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
