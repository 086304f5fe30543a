//! `spawn_app()`: fresh stores per test, the app on port 0, and a client with its own cookie
//! jar. The stores are removed when the app drops.
//!
//! The stores are the embedded SQLite file (a new file in a temporary folder per test) unless
//! `TEST_POSTGRES_URL` and `TEST_REDIS_URL` are both set: then a new Postgres database and a
//! new Redis key prefix per test. Tests that only make sense on Postgres and Redis are
//! `#[ignore]`d with the reason below and run with `--include-ignored` in that mode.
//!
//! Beside this file: `cookies.rs` and `responses.rs` read answers, `store.rs` reads and
//! changes what the app stored, `smtp.rs` is a real SMTP server that keeps what it receives
//! and `mail.rs` starts apps that mail it and makes the mail routes' requests; all are in
//! `use crate::helpers::*`, as is `mfa.rs` (an authenticator app's codes, and the requests of
//! the second factor's routes). `cluster.rs` (a Redis Cluster of local processes), `history.rs`
//! (a history of calls and a checker of the session properties), `jwt.rs` (tokens made and checked by hand), `settings.rs`
//! (settings from a map) and `smtp_tls.rs` (an SMTP server with TLS and a password, and a CA
//! for it) serve a few test files, which import them by name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use reqwest::Response;
use rs256_auth::config::Settings;
use rs256_auth::startup::Application;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

mod accounts;
pub mod cluster;
mod cookies;
pub mod history;
pub mod jwt;
mod mail;
mod mfa;
pub mod replicated;
mod responses;
mod rng;
pub mod settings;
mod smtp;
pub mod smtp_tls;
mod store;

pub use accounts::*;
pub use cookies::*;
pub use mail::*;
pub use mfa::*;
pub use responses::*;
pub use rng::Rng;
pub use smtp::*;
pub use store::*;

pub const PASSWORD: &str = "correct horse battery";

/// The Postgres server and Redis of the production mode, when both are set.
fn production_servers() -> Option<(String, String)> {
    let postgres = std::env::var("TEST_POSTGRES_URL").ok();
    let redis = std::env::var("TEST_REDIS_URL").ok();
    match (postgres, redis) {
        (Some(postgres), Some(redis)) => Some((postgres, redis)),
        (None, None) => None,
        _ => panic!("set both TEST_POSTGRES_URL and TEST_REDIS_URL, or neither"),
    }
}

/// For the tests that need Postgres and Redis themselves: a clear failure, not a silent pass,
/// when they are run (with `--include-ignored`) without them.
pub fn require_production() -> (String, String) {
    production_servers().unwrap_or_else(|| {
        panic!("this test needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL")
    })
}

/// A port that was free a moment ago, for a process that needs its port in advance.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

pub fn key_path(name: &str) -> String {
    format!("{}/keys/dev/{name}.pem", env!("CARGO_MANIFEST_DIR"))
}

pub fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).expect("dev key")
}

/// The settings every test app starts with, apart from its stores: the dev keys, port 0,
/// nothing from app.env.
pub fn base_settings() -> HashMap<String, String> {
    HashMap::from([
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("CLIENT_ORIGIN".into(), "http://localhost:3000".into()),
        (
            "ACCESS_TOKEN_PRIVATE_KEY_FILE".into(),
            key_path("access_private"),
        ),
        (
            "ACCESS_TOKEN_PUBLIC_KEY_FILE".into(),
            key_path("access_public"),
        ),
        (
            "REFRESH_TOKEN_PRIVATE_KEY_FILE".into(),
            key_path("refresh_private"),
        ),
        (
            "REFRESH_TOKEN_PUBLIC_KEY_FILE".into(),
            key_path("refresh_public"),
        ),
        ("HASH_CONCURRENCY".into(), "2".into()),
    ])
}

/// The origin `base_settings` allows (`CLIENT_ORIGIN`): the SPA's.
pub const SPA_ORIGIN: &str = "http://localhost:3000";

/// A temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("rs256-auth-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The stores of one test app.
pub enum TestStore {
    /// A SQLite file of its own, in a folder removed with it; mail as files beside it.
    Embedded { dir: TempDir, file: String },
    /// A Postgres database and a Redis key prefix of its own; mail as files in `mail`.
    Production {
        mail: TempDir,
        postgres: String,
        redis: String,
        db_name: String,
        prefix: String,
    },
}

impl TestStore {
    /// The stores of the mode the run is in.
    pub async fn fresh() -> Self {
        match production_servers() {
            Some((postgres, redis)) => {
                let db_name = format!("test_{}", Uuid::new_v4().simple());
                let mut server = PgConnection::connect(&format!("{postgres}/postgres"))
                    .await
                    .expect("postgres");
                server
                    .execute(sqlx::AssertSqlSafe(format!(
                        r#"CREATE DATABASE "{db_name}""#
                    )))
                    .await
                    .expect("create db");
                TestStore::Production {
                    mail: TempDir::new(),
                    postgres,
                    redis,
                    db_name,
                    prefix: format!("test-{}:", Uuid::new_v4().simple()),
                }
            }
            None => Self::embedded(),
        }
    }

    /// A SQLite file of its own, whatever the mode.
    pub fn embedded() -> Self {
        let dir = TempDir::new();
        let file = dir.file("data/rs256-auth.db");
        TestStore::Embedded { dir, file }
    }

    /// The settings that point an app at these stores.
    pub fn vars(&self) -> Vec<(String, String)> {
        match self {
            TestStore::Embedded { dir, file } => vec![
                ("DATABASE_URL".into(), format!("sqlite:{file}")),
                ("MAIL_DIR".into(), dir.file("mail")),
            ],
            TestStore::Production {
                mail,
                postgres,
                redis,
                db_name,
                prefix,
            } => vec![
                ("MAIL_DIR".into(), mail.file("mail")),
                ("DATABASE_URL".into(), format!("{postgres}/{db_name}")),
                ("REDIS_URL".into(), redis.clone()),
                ("REDIS_KEY_PREFIX".into(), prefix.clone()),
            ],
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// `METRICS_PORT`'s port, when the test set it.
    pub metrics_port: Option<u16>,
    /// Keeps cookies like a browser.
    pub client: reqwest::Client,
    pub store: TestStore,
}

pub struct Session {
    pub access: String,
    pub refresh: String,
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

pub fn registration(email: &str) -> Value {
    json!({"name": "Test User", "email": email, "password": PASSWORD, "passwordConfirm": PASSWORD})
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            rs256_auth::telemetry::init(rs256_auth::config::LogFormat::Text);
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with some settings changed, e.g. `&[("ACCESS_TOKEN_EXPIRED_IN", "1s")]`.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestStore::fresh().await, overrides).await
}

/// Starts the app on the given stores.
pub async fn spawn_app_on(store: TestStore, overrides: &[(&str, &str)]) -> TestApp {
    init_logs();
    let (address, metrics_port) = start(&store, overrides).await;
    let port = address.rsplit(':').next().and_then(|p| p.parse().ok());
    TestApp {
        address,
        port: port.expect("port"),
        metrics_port,
        client: cookie_client(),
        store,
    }
}

/// Builds and starts an app on `store`; returns its `http://host:port`, and its metrics port
/// when it has one of its own.
async fn start(store: &TestStore, overrides: &[(&str, &str)]) -> (String, Option<u16>) {
    let mut vars = base_settings();
    vars.extend(store.vars());
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    (address, metrics_port)
}

pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// A client without cookies, like curl or a backend.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The JSON body of a GET without cookies.
pub async fn get_json(url: &str) -> Value {
    plain_client()
        .get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON body")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, body: &Value) -> Response {
        self.post_json("/api/auth/register", body).await
    }

    /// Registers a new user and returns the email.
    pub async fn register_user(&self) -> String {
        let email = unique_email();
        let response = self.register(&registration(&email)).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        email
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers and logs in a user through `self.client`; returns the email and tokens.
    pub async fn logged_in_user(&self) -> (String, Session) {
        let email = self.register_user().await;
        let response = self.login(&email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let session = session_from(&response);
        (email, session)
    }

    pub async fn me_with(&self, access: &str) -> Response {
        me_at(&self.address, access).await
    }

    /// Refresh as a non-browser client: the refresh token in the Authorization header.
    pub async fn refresh_with(&self, refresh: &str) -> Response {
        refresh_at(&self.address, refresh).await
    }

    /// A second instance of the service on the same stores, as behind a load balancer. It
    /// stops with the test; the first app owns the cleanup.
    pub async fn sibling(&self, overrides: &[(&str, &str)]) -> String {
        start(&self.store, overrides).await.0
    }

    /// The expected healthchecker `checks` of this app's stores.
    pub fn healthy_checks(&self) -> Value {
        match self.store {
            TestStore::Embedded { .. } => json!({"sqlite": "up"}),
            TestStore::Production { .. } => json!({"postgres": "up", "redis": "up"}),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let TestStore::Production {
            postgres,
            redis,
            db_name,
            prefix,
            ..
        } = &self.store
        else {
            return; // The temporary folder removes itself.
        };
        let (postgres, redis, db_name, prefix) = (
            postgres.clone(),
            redis.clone(),
            db_name.clone(),
            prefix.clone(),
        );
        // Drop runs inside the test's runtime, which cannot block on async work: use another.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut server) = PgConnection::connect(&format!("{postgres}/postgres")).await
                {
                    let _ = server
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#
                        )))
                        .await;
                }
                if let Ok(client) = redis::Client::open(redis.as_str())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// `GET /api/users/me` with a Bearer token, at any instance (`http://host:port`).
pub async fn me_at(base: &str, access: &str) -> Response {
    plain_client()
        .get(format!("{base}/api/users/me"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
}

/// Refresh with the refresh token as Bearer, at any instance.
pub async fn refresh_at(base: &str, refresh: &str) -> Response {
    plain_client()
        .post(format!("{base}/api/auth/refresh"))
        .bearer_auth(refresh)
        .send()
        .await
        .expect("request")
}

/// A login at the instance at `base`, by JSON body, with no cookie jar.
pub async fn login_at(base: &str, email: &str, password: &str) -> Response {
    plain_client()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

/// A logout at the instance at `base`, by Bearer token.
pub async fn logout_at(base: &str, token: &str) -> Response {
    plain_client()
        .post(format!("{base}/api/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Logs a registered user in; returns the tokens the answer sets as cookies.
pub async fn login_session(app: &TestApp, email: &str) -> Session {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    session_from(&response)
}

/// Logout as a non-browser client: one token in the Authorization header, no cookies.
pub async fn logout_by_bearer(app: &TestApp, token: &str) -> Response {
    post_plain(app, "/api/auth/logout")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A POST to `path` from a client without cookies.
pub fn post_plain(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    plain_client().post(app.url(path))
}

/// Sleeps until the wall clock passes `unix_secs`, for tests of `exp`.
pub async fn sleep_until_unix(unix_secs: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let wait = (unix_secs as f64 - now).max(0.0) + 0.05;
    tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
}
