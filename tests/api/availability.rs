//! The healthchecker, and the service short of something: with Redis down, 503s that keep
//! the cookies (these tests need Postgres and Redis); under a flood of logins, a queue that
//! still lets other requests through.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// A client that gives up instead of hanging, for the outage tests.
fn impatient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_healthchecker_reports_both_stores_up() {
    let app = spawn_app().await;

    let response = app.get("/api/healthchecker").await;

    assert_eq!(response.status(), 200);
    assert_json(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(body["checks"], app.healthy_checks());
}

/// An app whose Redis is a closed port. It shares its database with a healthy twin, which
/// issued `session`, so the token's user exists for the broken app too.
struct Outage {
    address: String,
    session: Session,
    _healthy: TestApp,
}

impl Outage {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

async fn app_without_redis() -> Outage {
    require_production();
    let healthy = spawn_app().await;
    let email = healthy.register_user().await;
    let response = healthy.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let session = session_from(&response);
    let address = healthy
        .sibling(&[("REDIS_URL", "redis://127.0.0.1:1")])
        .await;
    Outage {
        address,
        session,
        _healthy: healthy,
    }
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn the_healthchecker_answers_503_when_redis_is_down() {
    let outage = app_without_redis().await;
    let app = &outage;

    let response = impatient_client()
        .get(app.url("/api/healthchecker"))
        .send()
        .await
        .unwrap();

    let body = assert_error(response, 503, "service_unavailable").await;
    assert_eq!(body["checks"], json!({"postgres": "up", "redis": "down"}));
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn without_redis_register_works_but_login_and_me_answer_503() {
    let outage = app_without_redis().await;
    let (app, session) = (&outage, &outage.session);
    let client = impatient_client();
    let email = unique_email();

    let register = client
        .post(app.url("/api/auth/register"))
        .json(&registration(&email))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);

    let login = client
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(login.headers().get("set-cookie").is_none());
    let body = assert_error(login, 503, "service_unavailable").await;
    assert!(!body.to_string().to_lowercase().contains("redis"), "{body}");

    let me = client
        .get(app.url("/api/users/me"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap();
    assert_error(me, 503, "service_unavailable").await;
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn without_redis_refresh_and_logout_answer_503_and_keep_the_cookies() {
    let outage = app_without_redis().await;
    let (app, session) = (&outage, &outage.session);
    let client = impatient_client();

    let refresh = client
        .post(app.url("/api/auth/refresh"))
        .header("cookie", format!("refresh_token={}", session.refresh))
        .send()
        .await
        .unwrap();
    assert!(
        refresh.headers().get("set-cookie").is_none(),
        "{:?}",
        refresh.headers()
    );
    assert_error(refresh, 503, "service_unavailable").await;

    let logout = client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap();
    assert!(
        logout.headers().get("set-cookie").is_none(),
        "{:?}",
        logout.headers()
    );
    assert_error(logout, 503, "service_unavailable").await;
}

#[tokio::test]
async fn a_flood_of_logins_queues_without_starving_other_requests() {
    let app = spawn_app_with(&[("HASH_CONCURRENCY", "1")]).await;
    let (_, session) = app.logged_in_user().await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let request = plain_client()
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": unique_email(), "password": PASSWORD}));
        let done = done.clone();
        logins.spawn(async move {
            let status = request.send().await.unwrap().status();
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            status
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    let me = app.me_with(&session.access).await;

    assert_eq!(me.status(), 200);
    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
    assert!(finished < 16, "/me waited for {finished} logins");
    for status in logins.join_all().await {
        assert_eq!(status, 401);
    }
}
