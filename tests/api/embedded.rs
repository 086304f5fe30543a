//! The embedded store, whatever mode the run is in: the default file and its folder, sessions
//! that survive a restart, a file that cannot be written, many writers at once, and SQLite
//! users beside Redis sessions (that one on the production stores).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Executor;
use tokio::task::JoinSet;

use crate::binary::Binary;
use crate::helpers::*;

#[tokio::test]
async fn with_no_store_configured_the_binary_serves_from_a_file_it_creates() {
    let dir = TempDir::new();

    let binary = Binary::start(&dir).await;

    let file = dir.path().join("data/rs256-auth.db");
    assert!(
        file.is_file(),
        "the default file, and its folder, are created"
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&file),
        0o600,
        "password hashes are for the service's user only"
    );
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    let health = get_json(&format!("{}/api/healthchecker", binary.address)).await;
    assert_eq!(health["checks"], json!({"sqlite": "up"}));
    let says_so: Vec<String> = binary
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("embedded store"))
        .collect();
    assert_eq!(says_so.len(), 1, "one line at start: {says_so:?}");
    assert!(says_so[0].contains("single-instance"), "{says_so:?}");
}

#[tokio::test]
async fn sessions_survive_a_restart_even_after_a_crash() {
    let dir = TempDir::new();
    let binary = Binary::start(&dir).await;
    let client = plain_client();
    let url = |path: &str| format!("{}{path}", binary.address);
    let email = unique_email();
    let registered = client
        .post(url("/api/auth/register"))
        .json(&registration(&email))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let login = client
        .post(url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session = session_from(&login);

    drop(binary); // SIGKILL: nothing is flushed on the way out.
    let binary = Binary::start(&dir).await;

    assert_eq!(me_at(&binary.address, &session.access).await.status(), 200);
    let refreshed = refresh_at(&binary.address, &session.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let next = session_from(&refreshed);
    assert_eq!(me_at(&binary.address, &next.access).await.status(), 200);
}

#[tokio::test]
async fn a_folder_that_cannot_be_created_stops_the_start_naming_database_url() {
    let dir = TempDir::new();
    let not_a_folder = dir.file("file");
    std::fs::write(&not_a_folder, "").unwrap();
    let mut vars = base_settings();
    vars.insert(
        "DATABASE_URL".into(),
        format!("sqlite:{not_a_folder}/data/users.db"),
    );
    let settings =
        rs256_auth::config::Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");

    let refused = rs256_auth::startup::Application::build(settings).await;

    let Err(message) = refused else {
        panic!("started on an impossible path");
    };
    assert!(message.starts_with("DATABASE_URL: "), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[tokio::test]
async fn a_file_another_process_keeps_locked_answers_503_fast_and_recovers() {
    let app = spawn_app_on(TestStore::embedded(), &[]).await;
    let (email, session) = app.logged_in_user().await;
    let mut other_process = app.hold_write_lock().await;

    let started = Instant::now();
    let login = app.login(&email, PASSWORD).await;
    let waited = started.elapsed();
    let me = app.me_with(&session.access).await;
    let refresh = app.refresh_with(&session.refresh).await;
    let health = app.get("/api/healthchecker").await;

    assert!(login.headers().get("set-cookie").is_none());
    let body = assert_error(login, 503, "service_unavailable").await;
    assert!(
        !body.to_string().contains("lock"),
        "no internal detail: {body}"
    );
    assert!(waited < Duration::from_secs(8), "answered in {waited:?}");
    assert_eq!(me.status(), 200, "reads go on beside a writer");
    assert!(
        refresh.headers().get("set-cookie").is_none(),
        "a 503 keeps the cookies"
    );
    assert_error(refresh, 503, "service_unavailable").await;
    let health = assert_error(health, 503, "service_unavailable").await;
    assert_eq!(health["checks"], json!({"sqlite": "down"}));
    assert_eq!(
        app.get("/api/livez").await.status(),
        200,
        "alive all the same"
    );
    let metrics = metrics_text(&app.url("/metrics")).await;
    let unavailable = [("store", "sqlite"), ("kind", "unavailable")];
    assert_eq!(
        metric(&metrics, "store_errors_total", &unavailable),
        Some(2.0),
        "login and refresh"
    );

    other_process.execute("ROLLBACK").await.unwrap();

    assert_eq!(app.get("/api/healthchecker").await.status(), 200);
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
    assert_eq!(app.refresh_with(&session.refresh).await.status(), 200);
}

#[tokio::test]
async fn racing_tabs_and_a_login_flood_on_two_instances_never_meet_a_locked_file() {
    let app = spawn_app_on(TestStore::embedded(), &[]).await;
    let other = app.sibling(&[]).await;
    let mut emails = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let (email, session) = app.logged_in_user().await;
        emails.push(email);
        sessions.push(session);
    }

    let mut requests = JoinSet::new();
    for (i, session) in sessions.iter().enumerate() {
        for tab in 0..4 {
            let base = if (i + tab) % 2 == 0 {
                &app.address
            } else {
                &other
            };
            let request = plain_client()
                .post(format!("{base}/api/auth/refresh"))
                .header("cookie", format!("refresh_token={}", session.refresh));
            requests.spawn(async move { ("refresh", request.send().await.unwrap().status()) });
        }
    }
    for round in 0..6 {
        for (i, email) in emails.iter().enumerate() {
            let base = if (round + i) % 2 == 0 {
                &app.address
            } else {
                &other
            };
            let password = if round % 3 == 0 {
                "wrong password"
            } else {
                PASSWORD
            };
            let request = plain_client()
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"email": email, "password": password}));
            requests.spawn(async move { ("login", request.send().await.unwrap().status()) });
        }
        let request = plain_client()
            .post(format!("{}/api/auth/register", app.address))
            .json(&registration(&unique_email()));
        requests.spawn(async move { ("register", request.send().await.unwrap().status()) });
    }

    let answers = requests.join_all().await;

    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, status)| !matches!(status.as_u16(), 200 | 201 | 401))
        .collect();
    assert!(failed.is_empty(), "{failed:?} of {}", answers.len());
    let refreshed = answers.iter().filter(|(what, _)| *what == "refresh");
    assert!(
        refreshed.clone().all(|(_, s)| *s == 200),
        "every tab stays logged in"
    );
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn sqlite_users_beside_redis_sessions_work_together() {
    let (_, redis) = require_production();
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_on(
        TestStore::embedded(),
        &[("REDIS_URL", &redis), ("REDIS_KEY_PREFIX", &prefix)],
    )
    .await;

    let health: Value = app.get("/api/healthchecker").await.json().await.unwrap();
    let (_, session) = app.logged_in_user().await;

    assert_eq!(health["checks"], json!({"sqlite": "up", "redis": "up"}));
    assert_eq!(app.me_with(&session.access).await.status(), 200);
    let claims = claims_of(&session.access);
    let (user, sid) = (
        claims["sub"].as_str().unwrap(),
        claims["sid"].as_str().unwrap(),
    );
    let mut conn = redis::Client::open(redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{prefix}{{{user}}}:{sid}:sess");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(exists, "the session is in Redis");
    let rows = app.store_entries().await;
    assert!(
        rows.iter().all(|e| !e.key.contains(":sess")),
        "and not in the file: {rows:?}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_error(app.me_with(&session.access).await, 401, "session_revoked").await;

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refresh_token_that_expires_while_the_file_is_locked_answers_token_expired() {
    // The refresh verifies just before exp, then waits for the write lock until its entry
    // (which outlives the token by a second) is gone: that is expiry, not revocation.
    let app = spawn_app_on(
        TestStore::embedded(),
        &[
            ("ACCESS_TOKEN_EXPIRED_IN", "2s"),
            ("REFRESH_TOKEN_EXPIRED_IN", "2s"),
        ],
    )
    .await;
    let (_, session) = app.logged_in_user().await;
    let exp = claims_of(&session.refresh)["exp"].as_i64().unwrap();
    let mut other_process = app.hold_write_lock().await;
    sleep_until_unix_ms(exp * 1000 - 300).await;

    let refresh = tokio::spawn(refresh_at_owned(
        app.address.clone(),
        session.refresh.clone(),
    ));
    sleep_until_unix_ms(exp * 1000 + 1600).await;
    other_process.execute("ROLLBACK").await.unwrap();
    let response = refresh.await.unwrap();

    assert_error(response, 401, "token_expired").await;
}

async fn refresh_at_owned(base: String, refresh: String) -> reqwest::Response {
    refresh_at(&base, &refresh).await
}

async fn sleep_until_unix_ms(unix_ms: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    let wait = u64::try_from(unix_ms - now).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}
