//! Faults of the production stores: Redis stopped, Redis frozen, Postgres cut, and a start
//! without Redis. Each test owns the store it breaks: a private `redis-server` on a free
//! port, or a TCP forwarder in front of Postgres. The shared servers are never stopped or
//! slowed. These run with the production stores only (`--include-ignored`); the embedded
//! store's faults are in `embedded.rs`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::helpers::*;

/// A hang fails the test instead of blocking CI.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// How fast a 503 must come: the no-hang property, not a benchmark.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);
/// How fast the service must recover by itself once the store is back.
const RECOVER_WITHIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Private helpers: a Redis of our own, a Postgres forwarder, timed requests
// ---------------------------------------------------------------------------------------

/// A `redis-server` child on a free port, killed when dropped, even after a panic.
struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("faults-redis-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = PrivateRedis {
            port: free_port(),
            dir,
            child: None,
        };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers PING.
    async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.answers_ping().await {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    async fn answers_ping(&self) -> bool {
        match self.connection().await {
            Ok(mut conn) => redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Connections from others (the app's), not counting the one asking.
    async fn other_clients(&self) -> usize {
        let mut conn = self.connection().await.unwrap();
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        list.lines().count() - 1
    }

    /// Kills the server: its port refuses connections and open ones are reset.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// SIGSTOP: connections stay open and the kernel still accepts new ones, but nothing answers.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Blocks every write, as a failover does: PING and reads still answer, so pooled
    /// connections pass their check and then wait on the write itself.
    async fn pause_writes(&self, pause: Duration) {
        let mut conn = self.connection().await.unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(pause.as_millis().to_string())
            .arg("WRITE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    async fn unpause(&self) {
        let mut conn = self.connection().await.unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // SIGKILL ends a frozen process too.
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP forwarder to the Postgres server, so a test can cut Postgres off from one app.
struct PgForwarder {
    port: u16,
    upstream: String,
    accept_loop: Option<JoinHandle<()>>,
}

impl PgForwarder {
    async fn start(upstream: String) -> Self {
        let mut forwarder = PgForwarder {
            port: free_port(),
            upstream,
            accept_loop: None,
        };
        forwarder.up().await;
        forwarder
    }

    /// Listens (again) on the same port.
    async fn up(&mut self) {
        assert!(self.accept_loop.is_none(), "already up");
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let upstream = self.upstream.clone();
        self.accept_loop = Some(tokio::spawn(async move {
            // Owned by this task: aborting it drops the set, which cuts every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Refuses new connections and cuts the open ones, as if Postgres went away.
    async fn down(&mut self) {
        if let Some(accept_loop) = self.accept_loop.take() {
            accept_loop.abort();
            let _ = accept_loop.await;
        }
    }
}

impl Drop for PgForwarder {
    fn drop(&mut self) {
        if let Some(accept_loop) = self.accept_loop.take() {
            accept_loop.abort();
        }
    }
}

/// The harness's URL of database `name` on the Postgres server: `postgres://user@host:port/name`.
fn direct_database_url(name: &str) -> String {
    format!("{}/{name}", require_production().0)
}

/// The `host:port` of a Postgres URL.
fn host_port(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// A database the app creates for itself through the forwarder; dropped with this guard.
struct OwnDatabase {
    name: String,
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime cannot block on async work: use another, as the harness does.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut server) =
                    PgConnection::connect(&direct_database_url("postgres")).await
                {
                    let _ = server
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// An app whose Postgres connections all pass through a forwarder the test controls.
async fn app_behind_forwarder() -> (TestApp, PgForwarder, OwnDatabase) {
    app_behind_forwarder_with(&[]).await
}

async fn app_behind_forwarder_with(
    overrides: &[(&str, &str)],
) -> (TestApp, PgForwarder, OwnDatabase) {
    let database = OwnDatabase {
        name: format!("test_{}", Uuid::new_v4().simple()),
    };
    let direct = direct_database_url(&database.name);
    let upstream = host_port(&direct);
    let forwarder = PgForwarder::start(upstream.clone()).await;
    let proxied = direct.replacen(&upstream, &format!("127.0.0.1:{}", forwarder.port), 1);
    let mut settings = vec![("DATABASE_URL", proxied.as_str())];
    settings.extend_from_slice(overrides);
    let app = spawn_app_with(&settings).await;
    (app, forwarder, database)
}

/// Gives up instead of hanging.
fn bounded_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .unwrap()
}

fn me(app: &TestApp, access: &str) -> RequestBuilder {
    bounded_client()
        .get(app.url("/api/users/me"))
        .bearer_auth(access)
}

fn login(app: &TestApp, email: &str) -> RequestBuilder {
    bounded_client()
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
}

fn refresh(app: &TestApp, refresh_token: &str) -> RequestBuilder {
    bounded_client()
        .post(app.url("/api/auth/refresh"))
        .bearer_auth(refresh_token)
}

fn logout(app: &TestApp, access: &str) -> RequestBuilder {
    bounded_client()
        .post(app.url("/api/auth/logout"))
        .bearer_auth(access)
}

fn register(app: &TestApp) -> RequestBuilder {
    bounded_client()
        .post(app.url("/api/auth/register"))
        .json(&registration(&unique_email()))
}

fn health(app: &TestApp) -> RequestBuilder {
    bounded_client().get(app.url("/api/healthchecker"))
}

async fn send_timed(what: &str, request: RequestBuilder) -> (Response, Duration) {
    let started = Instant::now();
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let took = started.elapsed();
    eprintln!("faults: {what} answered {} in {took:?}", response.status());
    (response, took)
}

/// Asserts a fast 503 `service_unavailable` that leaves the cookies alone; returns the body.
async fn assert_unavailable(what: &str, request: RequestBuilder) -> Value {
    let (response, took) = send_timed(what, request).await;
    assert!(took < ANSWER_WITHIN, "{what} took {took:?}");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "{what} touched cookies: {:?}",
        response.headers()
    );
    assert_error(response, 503, "service_unavailable").await
}

/// The healthchecker answers 503 fast, naming the store that is down.
async fn assert_health_says(app: &TestApp, postgres: &str, redis: &str) {
    let body = assert_unavailable("healthchecker", health(app)).await;
    assert_eq!(
        body["checks"],
        json!({"postgres": postgres, "redis": redis})
    );
}

/// Polls the healthchecker until it answers 200; returns how long that took.
async fn wait_until_healthy(app: &TestApp) -> Duration {
    let started = Instant::now();
    loop {
        let response = health(app).send().await.unwrap();
        if response.status() == 200 {
            eprintln!("faults: healthy again after {:?}", started.elapsed());
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RECOVER_WITHIN,
            "still {} after {:?}",
            response.status(),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn assert_status(what: &str, request: RequestBuilder, status: u16) -> Response {
    let (response, _) = send_timed(what, request).await;
    assert_eq!(response.status(), status, "{what}");
    response
}

/// Puts 64 concurrent requests through the app's Redis connection; returns how many
/// connections the app holds to Redis (one: every request shares it).
async fn load_redis_connection(app: &TestApp, redis: &PrivateRedis) -> usize {
    let mut burst = JoinSet::new();
    for _ in 0..64 {
        burst.spawn(health(app).send());
    }
    while let Some(sent) = burst.join_next().await {
        assert_eq!(sent.unwrap().unwrap().status(), 200);
    }
    redis.other_clients().await
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_stopped_redis_answers_503_fast_and_the_service_recovers_when_it_returns() {
    require_production();
    let mut redis = PrivateRedis::start().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url())]).await;
    let (email, session) = app.logged_in_user().await;

    redis.stop();

    assert_unavailable("me", me(&app, &session.access)).await;
    assert_unavailable("login", login(&app, &email)).await;
    assert_unavailable("refresh", refresh(&app, &session.refresh)).await;
    assert_unavailable("logout", logout(&app, &session.access)).await;
    assert_health_says(&app, "up", "down").await;
    assert_eq!(
        app.get("/api/livez").await.status(),
        200,
        "alive all the same"
    );
    let metrics = metrics_text(&app.url("/metrics")).await;
    let unavailable = [("store", "redis"), ("kind", "unavailable")];
    assert_eq!(
        metric(&metrics, "store_errors_total", &unavailable),
        Some(4.0)
    );

    redis.restart().await;
    wait_until_healthy(&app).await;
    let response = assert_status("login", login(&app, &email), 200).await;
    let fresh = session_from(&response);
    assert_status("me", me(&app, &fresh.access), 200).await;
    // The restarted Redis keeps nothing: the older session is gone, which is a 401, not a 5xx.
    assert_error(
        me(&app, &session.access).send().await.unwrap(),
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_frozen_redis_answers_503_fast_and_sessions_survive_the_thaw() {
    require_production();
    let redis = PrivateRedis::start().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url())]).await;
    let (email, kept) = app.logged_in_user().await;
    let (_, logged_out) = app.logged_in_user().await;
    assert_eq!(load_redis_connection(&app, &redis).await, 1);

    redis.freeze();

    // Every request waiting on the shared connection gets its answer in time.
    let mut burst = JoinSet::new();
    for _ in 0..64 {
        burst.spawn(assert_unavailable("me", me(&app, &kept.access)));
    }
    burst.join_all().await;
    assert_unavailable("login", login(&app, &email)).await;
    assert_unavailable("refresh", refresh(&app, &kept.refresh)).await;
    assert_unavailable("logout", logout(&app, &logged_out.access)).await;
    assert_health_says(&app, "up", "down").await;

    redis.thaw();
    wait_until_healthy(&app).await;
    assert_status(
        "me with the session from before",
        me(&app, &kept.access),
        200,
    )
    .await;
    assert_status("login", login(&app, &email), 200).await;
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_write_that_redis_never_answers_gives_503_fast() {
    require_production();
    let redis = PrivateRedis::start().await;
    let app = spawn_app_with(&[("REDIS_URL", &redis.url())]).await;
    let (email, session) = app.logged_in_user().await;

    redis.pause_writes(Duration::from_secs(30)).await;

    assert_unavailable("login", login(&app, &email)).await;
    assert_unavailable("logout", logout(&app, &session.access)).await;

    redis.unpause().await;
    assert_status("login", login(&app, &email), 200).await;
}

/// An admin connection to a Redis that requires `password`.
async fn admin(redis: &PrivateRedis, password: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://:{password}@127.0.0.1:{}", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn set_password(conn: &mut redis::aio::MultiplexedConnection, password: &str) {
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(password)
        .query_async(conn)
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_redis_that_refuses_the_password_answers_503_and_the_service_recovers_when_it_accepts_it()
{
    require_production();
    let redis = PrivateRedis::start().await;
    set_password(&mut redis.connection().await.unwrap(), "first").await;
    let url = format!("redis://:first@127.0.0.1:{}", redis.port);
    let app = spawn_app_with(&[("REDIS_URL", &url)]).await;
    let email = app.register_user().await;
    assert_status("login", login(&app, &email), 200).await;

    // The password changes under the service and its connection drops: reconnecting fails
    // with an authentication error, not an I/O one.
    let mut conn = admin(&redis, "first").await;
    set_password(&mut conn, "second").await;
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_unavailable("login", login(&app, &email)).await;
    assert_unavailable("login again", login(&app, &email)).await;

    set_password(&mut conn, "first").await;
    wait_until_healthy(&app).await;
    assert_status("login", login(&app, &email), 200).await;
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn the_service_starts_without_redis_and_works_once_it_appears() {
    require_production();
    let mut redis = PrivateRedis::start().await;
    redis.stop();
    let app = spawn_app_with(&[("REDIS_URL", &redis.url())]).await;
    let email = app.register_user().await;

    assert_unavailable("login", login(&app, &email)).await;
    assert_health_says(&app, "up", "down").await;

    redis.restart().await;
    wait_until_healthy(&app).await;
    let response = assert_status("login", login(&app, &email), 200).await;
    assert_status("me", me(&app, &session_from(&response).access), 200).await;
}

// ---------------------------------------------------------------------------------------
// Postgres
// ---------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_lost_postgres_answers_503_fast_and_the_service_recovers_when_it_returns() {
    require_production();
    let (app, mut forwarder, _database) = app_behind_forwarder().await;
    let (email, session) = app.logged_in_user().await;

    forwarder.down().await;

    assert_unavailable("register", register(&app)).await;
    assert_unavailable("login", login(&app, &email)).await;
    assert_unavailable("me", me(&app, &session.access)).await;
    assert_health_says(&app, "down", "up").await;

    forwarder.up().await;
    wait_until_healthy(&app).await;
    assert_status("me", me(&app, &session.access), 200).await;
    assert_status("login", login(&app, &email), 200).await;
    assert_status("register", register(&app), 201).await;
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_query_stuck_behind_a_lock_answers_503_fast_and_the_service_recovers() {
    require_production();
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let mut locker = app.postgres().await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    assert_unavailable("me", me(&app, &session.access)).await;

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_status("me", me(&app, &session.access), 200).await;
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_refresh_that_failed_on_postgres_can_be_retried_after_the_grace_window() {
    require_production();
    let (app, mut forwarder, _database) =
        app_behind_forwarder_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let (_, session) = app.logged_in_user().await;
    forwarder.down().await;
    assert_unavailable("refresh", refresh(&app, &session.refresh)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    forwarder.up().await;
    wait_until_healthy(&app).await;

    // The failed attempt rotated nothing, so this is no replay.
    assert_status("refresh", refresh(&app, &session.refresh), 200).await;
}
