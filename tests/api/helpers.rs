//! `spawn_app()`: fresh stores per test, the app on port 0, and a client with its own cookie
//! jar. The stores are removed when the app drops.
//!
//! The stores are the embedded SQLite file (a new file in a temporary folder per test) unless
//! `TEST_POSTGRES_URL` and `TEST_REDIS_URL` are both set: then a new Postgres database and a
//! new Redis key prefix per test. Tests that only make sense on Postgres and Redis are
//! `#[ignore]`d with the reason below and run with `--include-ignored` in that mode.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use reqwest::Response;
use reqwest::header::HeaderMap;
use rs256_auth::config::Settings;
use rs256_auth::startup::Application;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, Row, SqliteConnection};
use uuid::Uuid;

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
    /// A SQLite file of its own, in a folder removed with it.
    Embedded { _dir: TempDir, file: String },
    /// A Postgres database and a Redis key prefix of its own.
    Production {
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
        TestStore::Embedded { _dir: dir, file }
    }

    /// The settings that point an app at these stores.
    pub fn vars(&self) -> Vec<(String, String)> {
        match self {
            TestStore::Embedded { file, .. } => {
                vec![("DATABASE_URL".into(), format!("sqlite:{file}"))]
            }
            TestStore::Production {
                postgres,
                redis,
                db_name,
                prefix,
            } => vec![
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

/// One stored entry as Redis would list it: key without the prefix, milliseconds left, value.
/// The embedded store's rows are listed under the same names, so that one test pins both.
#[derive(Debug, Clone)]
pub struct StoreEntry {
    pub key: String,
    pub ttl_ms: i64,
    pub value: String,
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

    /// Runs `sql` (one `$1` parameter, bound to `param`) on the users' database.
    pub async fn execute(&self, sql: &str, param: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.store {
            TestStore::Embedded { file, .. } => {
                let mut conn = self.sqlite(file).await;
                sqlx::query(sql)
                    .bind(param)
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
            TestStore::Production { .. } => {
                let mut conn = self.postgres().await;
                sqlx::query(sql)
                    .bind(param)
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
        }
        .expect("SQL");
    }

    /// The text of `column` of the user `email`, read from the database.
    pub async fn user_column(&self, email: &str, column: &str) -> String {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT CAST({column} AS TEXT) AS v FROM users WHERE email = $1"
        ));
        match &self.store {
            TestStore::Embedded { file, .. } => {
                let mut conn = self.sqlite(file).await;
                let row = sqlx::query(sql).bind(email).fetch_one(&mut conn).await;
                row.expect("user row").get("v")
            }
            TestStore::Production { .. } => {
                let mut conn = self.postgres().await;
                let row = sqlx::query(sql).bind(email).fetch_one(&mut conn).await;
                row.expect("user row").get("v")
            }
        }
    }

    pub async fn users_count(&self) -> i64 {
        let sql = "SELECT count(*) FROM users";
        match &self.store {
            TestStore::Embedded { file, .. } => {
                let mut conn = self.sqlite(file).await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
            TestStore::Production { .. } => {
                let mut conn = self.postgres().await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
        }
        .expect("count")
    }

    /// A connection of its own to the app's SQLite file. Not a pool: a pool's connections
    /// belong to the test's runtime, which is blocked while `Drop` cleans up.
    pub async fn sqlite(&self, file: &str) -> SqliteConnection {
        SqliteConnection::connect(&format!("sqlite:{file}"))
            .await
            .expect("test database")
    }

    /// Another process's hold on the app's SQLite file: a connection inside `BEGIN IMMEDIATE`,
    /// so that nobody else can write until it runs `ROLLBACK` (or drops).
    pub async fn hold_write_lock(&self) -> SqliteConnection {
        let TestStore::Embedded { file, .. } = &self.store else {
            panic!("not on the SQLite file");
        };
        let mut conn = self.sqlite(file).await;
        conn.execute("BEGIN IMMEDIATE")
            .await
            .expect("the write lock");
        conn
    }

    /// A connection of its own to the app's Postgres database (production mode only).
    pub async fn postgres(&self) -> PgConnection {
        let TestStore::Production {
            postgres, db_name, ..
        } = &self.store
        else {
            panic!("not on Postgres");
        };
        PgConnection::connect(&format!("{postgres}/{db_name}"))
            .await
            .expect("test database")
    }

    /// A connection to the Redis of the app (production mode only).
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        let TestStore::Production { redis, .. } = &self.store else {
            panic!("not on Redis");
        };
        redis::Client::open(redis.as_str())
            .expect("redis")
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    /// Announces that the user changed, as the service does after changing one: every
    /// instance reads the user again. Only the Redis store keeps copies to announce it to.
    pub async fn user_changed(&self, user: &str) {
        if let TestStore::Production { prefix, .. } = &self.store {
            let user: Uuid = user.parse().expect("a user id");
            let key = rs256_auth::store::redis::sessions::stamp_key(prefix, user);
            let () = redis::AsyncCommands::set(&mut self.redis().await, key, "changed")
                .await
                .expect("SET");
        }
    }

    /// Removes the user's stamp, as a Redis that lost it (a restart, an eviction) would.
    pub async fn lose_user_stamp(&self, user: &str) {
        if let TestStore::Production { prefix, .. } = &self.store {
            let user: Uuid = user.parse().expect("a user id");
            let key = rs256_auth::store::redis::sessions::stamp_key(prefix, user);
            let () = redis::AsyncCommands::del(&mut self.redis().await, key)
                .await
                .expect("DEL");
        }
    }

    /// Every live entry of the session and counter store.
    pub async fn store_entries(&self) -> Vec<StoreEntry> {
        match &self.store {
            TestStore::Embedded { file, .. } => sqlite_entries(&mut self.sqlite(file).await).await,
            TestStore::Production { prefix, .. } => {
                redis_entries(&mut self.redis().await, prefix).await
            }
        }
    }

    /// The keys of `store_entries`.
    pub async fn store_keys(&self) -> Vec<String> {
        self.store_entries()
            .await
            .into_iter()
            .map(|e| e.key)
            .collect()
    }
}

async fn redis_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Vec<StoreEntry> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .expect("keys");
    let mut entries = Vec::new();
    for key in keys {
        // The strings only: a session's details (a hash) and a user's index of sessions (a
        // sorted set) are what the sessions list shows, and accounts_sessions tests them.
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("TYPE");
        if kind != "string" {
            continue;
        }
        let (ttl_ms, value): (i64, Option<String>) = redis::pipe()
            .cmd("PTTL")
            .arg(&key)
            .cmd("GET")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("PTTL, GET");
        // A key listed a moment ago may have expired since (a cut access entry).
        if let Some(value) = value {
            entries.push(StoreEntry {
                key: key[prefix.len()..].to_owned(),
                ttl_ms,
                value,
            });
        }
    }
    entries
}

/// The embedded store's rows, named and valued as the Redis store's keys.
async fn sqlite_entries(conn: &mut SqliteConnection) -> Vec<StoreEntry> {
    let now = chrono::Utc::now().timestamp_millis();
    let rows = sqlx::query(
        "SELECT '{' || user_id || '}:' || sid || ':sess' AS key, expires_at, user_id AS value
         FROM sessions
         UNION ALL
         SELECT '{' || user_id || '}:' || sid || ':tok:' || token_uuid, expires_at,
                user_id || coalesce('|' || access_uuid, '')
                || coalesce('|' || next_access || '|' || next_refresh || '|' || next_iat, '')
         FROM tokens
         UNION ALL
         SELECT '{' || user_id || '}:' || sid || ':grace:' || token_uuid, grace_until, '1'
         FROM tokens WHERE grace_until IS NOT NULL
         UNION ALL
         SELECT '{' || coalesce((SELECT t.user_id FROM tokens t WHERE t.token_uuid = r.token_uuid),
                                '?') || '}:' || sid || ':reused', expires_at, token_uuid
         FROM reused_sessions r
         UNION ALL
         SELECT key, expires_at, CAST(count AS TEXT) FROM login_attempts",
    )
    .fetch_all(conn)
    .await
    .expect("entries");
    rows.into_iter()
        .map(|row| StoreEntry {
            key: row.get("key"),
            ttl_ms: row.get::<i64, _>("expires_at") - now,
            value: row.get("value"),
        })
        .filter(|e| e.ttl_ms > 0)
        .collect()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let TestStore::Production {
            postgres,
            redis,
            db_name,
            prefix,
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

/// The Prometheus text at `url` (a `/metrics`).
pub async fn metrics_text(url: &str) -> String {
    let response = plain_client().get(url).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let kind = header(&response, "content-type").unwrap_or_default();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.expect("text")
}

/// The value of the sample `name` whose labels are exactly `labels` (in any order), if any.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut found: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            found.sort();
            (metric == name && found == wanted).then(|| value.parse().ok())?
        })
}
