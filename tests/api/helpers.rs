//! `spawn_app()`: a fresh database and Redis prefix per test, the app on port 0, and a
//! client with its own cookie jar. The database and keys are removed when the app drops.

use std::collections::HashMap;
use std::sync::Once;

use deadpool_redis::redis;
use reqwest::Response;
use reqwest::header::HeaderMap;
use rs256_auth::config::Settings;
use rs256_auth::startup::Application;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";

/// Postgres server for test databases; `TEST_POSTGRES_URL` overrides.
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn key_path(name: &str) -> String {
    format!("{}/keys/dev/{name}.pem", env!("CARGO_MANIFEST_DIR"))
}

pub fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).expect("dev key")
}

/// The settings a test app starts with: the dev keys, unique names, nothing from app.env.
pub fn base_settings(db_name: &str, prefix: &str) -> HashMap<String, String> {
    HashMap::from([
        (
            "DATABASE_URL".into(),
            format!("{}/{db_name}", postgres_server()),
        ),
        ("REDIS_URL".into(), redis_url()),
        ("REDIS_KEY_PREFIX".into(), prefix.into()),
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

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// Keeps cookies like a browser.
    pub client: reqwest::Client,
    pub db_name: String,
    pub redis_prefix: String,
    database_url: String,
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
            rs256_auth::telemetry::init();
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with some settings changed, e.g. `&[("ACCESS_TOKEN_EXPIRED_IN", "1s")]`.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    init_logs();
    let db_name = format!("test_{}", Uuid::new_v4().simple());
    let redis_prefix = format!("test-{}:", Uuid::new_v4().simple());
    let mut vars = base_settings(&db_name, &redis_prefix);
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    let mut server = PgConnection::connect(&format!("{}/postgres", postgres_server()))
        .await
        .expect("postgres");
    server
        .execute(sqlx::AssertSqlSafe(format!(
            r#"CREATE DATABASE "{db_name}""#
        )))
        .await
        .expect("create db");
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let database_url = settings.database_url.clone();
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: cookie_client(),
        db_name,
        redis_prefix,
        database_url,
    }
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

impl TestApp {
    /// A connection of its own to the app's database. Not a pool: a pool's connections
    /// belong to the test's runtime, which is blocked while `Drop` cleans up.
    pub async fn db(&self) -> PgConnection {
        PgConnection::connect(&self.database_url)
            .await
            .expect("test database")
    }

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

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(redis_url())
            .expect("redis")
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    /// A second instance of the service on the same database and Redis prefix, as behind a
    /// load balancer. It stops with the test; the first app owns the cleanup.
    pub async fn sibling(&self, overrides: &[(&str, &str)]) -> String {
        let mut vars = base_settings(&self.db_name, &self.redis_prefix);
        for (k, v) in overrides {
            vars.insert((*k).into(), (*v).into());
        }
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
        let app = Application::build(settings).await.expect("sibling builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// Every Redis key of this app, without the prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        let mut conn = self.redis().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis_prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        keys.into_iter()
            .map(|k| k[self.redis_prefix.len()..].to_owned())
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let db_name = self.db_name.clone();
        let prefix = self.redis_prefix.clone();
        // Drop runs inside the test's runtime, which cannot block on async work: use another.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut server) =
                    PgConnection::connect(&format!("{}/postgres", postgres_server())).await
                {
                    let _ = server
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#
                        )))
                        .await;
                }
                if let Ok(client) = redis::Client::open(redis_url())
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

/// One `Set-Cookie` header, split into name, value and attributes (lowercased names).
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: HashMap<String, String>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.attributes.contains_key(&name.to_ascii_lowercase())
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|raw| {
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts
                .next()
                .and_then(|p| p.split_once('='))
                .unwrap_or(("", ""));
            let attributes = parts
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                    None => (p.to_ascii_lowercase(), String::new()),
                })
                .collect();
            SetCookie {
                name: name.into(),
                value: value.into(),
                attributes,
            }
        })
        .collect()
}

pub fn cookie<'a>(cookies: &'a [SetCookie], name: &str) -> &'a SetCookie {
    cookies
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no Set-Cookie for {name} in {cookies:?}"))
}

/// The tokens of a login or refresh response, from its cookies.
pub fn session_from(response: &Response) -> Session {
    let cookies = set_cookies(response.headers());
    Session {
        access: cookie(&cookies, "access_token").value.clone(),
        refresh: cookie(&cookies, "refresh_token").value.clone(),
    }
}

/// Both tokens of `session` are refused as revoked: by the guard and by refresh.
pub async fn assert_session_ended(app: &TestApp, session: &Session) {
    assert_error(app.me_with(&session.access).await, 401, "session_revoked").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "session_revoked",
    )
    .await;
}

/// Asserts the failure envelope and returns the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status; headers {:?}",
        response.headers()
    );
    assert_json(&response);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], "fail", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

pub fn assert_json(response: &Response) {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}"
    );
}

pub fn www_authenticate(response: &Response) -> Option<String> {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The JSON of one part (0: header, 1: claims) of a compact JWS, unverified.
fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let segment = token.split('.').nth(index).expect("JWT segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

pub fn jose_header(token: &str) -> Value {
    jwt_part(token, 0)
}

pub fn claims_of(token: &str) -> Value {
    jwt_part(token, 1)
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
