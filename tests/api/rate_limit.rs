//! Failed-login limits per email and per client IP, counted in Redis.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Response;
use serde_json::json;

use crate::helpers::*;

async fn login_from(app: &TestApp, email: &str, password: &str, forwarded_for: &str) -> Response {
    plain_client()
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &Response) -> u64 {
    header(response, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds")
}

#[tokio::test]
async fn unknown_emails_are_limited_like_known_ones() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "2")]).await;
    let nobody = unique_email();

    for _ in 0..2 {
        assert_error(
            app.login(&nobody, PASSWORD).await,
            401,
            "invalid_credentials",
        )
        .await;
    }

    assert_error(app.login(&nobody, PASSWORD).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_limit_ends_with_its_window() {
    let app = spawn_app_with(&[
        ("LOGIN_ATTEMPTS_LIMIT", "2"),
        ("LOGIN_ATTEMPTS_WINDOW", "2s"),
    ])
    .await;
    let email = app.register_user().await;
    for _ in 0..2 {
        assert_eq!(app.login(&email, "wrong password").await.status(), 401);
    }
    let limited = app.login(&email, PASSWORD).await;
    assert_eq!(limited.status(), 429);
    // Further attempts while limited must not push the end of the window back.
    assert!((1..=2).contains(&retry_after(&limited)));
    assert_eq!(app.login(&email, PASSWORD).await.status(), 429);

    tokio::time::sleep(Duration::from_millis(2200)).await;

    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn parallel_guesses_cannot_get_past_the_limit() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let email = app.register_user().await;
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = plain_client()
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": email, "password": "wrong password"}));
        guesses.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for status in guesses.join_all().await {
        *statuses.entry(status).or_default() += 1;
    }

    assert_eq!(statuses, HashMap::from([(401, 3), (429, 7)]));
}

#[tokio::test]
async fn every_instance_shares_the_counters() {
    let overrides = [("LOGIN_ATTEMPTS_LIMIT", "2")];
    let app = spawn_app_with(&overrides).await;
    let other = app.sibling(&overrides).await;
    let email = app.register_user().await;
    let login_at = |base: String| {
        let email = email.clone();
        async move {
            plain_client()
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"email": email, "password": "wrong password"}))
                .send()
                .await
                .unwrap()
        }
    };

    assert_eq!(login_at(app.address.clone()).await.status(), 401);
    assert_eq!(login_at(other.clone()).await.status(), 401);

    assert_error(login_at(other).await, 429, "rate_limited").await;
    assert_error(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_ip_limit_counts_failures_across_emails() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_IP_LIMIT", "3")]).await;
    let email = app.register_user().await;
    // Successes do not count as failures.
    for _ in 0..3 {
        assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
    }
    for _ in 0..3 {
        let status = app.login(&unique_email(), "wrong password").await.status();
        assert_eq!(status, 401);
    }

    let response = app.login(&email, PASSWORD).await;

    assert!(retry_after(&response) > 0);
    assert!(response.headers().get("set-cookie").is_none());
    assert_error(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_dodge_the_ip_limit() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_IP_LIMIT", "2")]).await;

    for n in 0..2 {
        let response =
            login_from(&app, &unique_email(), PASSWORD, &format!("198.51.100.{n}")).await;
        assert_eq!(response.status(), 401);
    }

    let response = login_from(&app, &unique_email(), PASSWORD, "198.51.100.99").await;
    assert_error(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count() {
    let app = spawn_app_with(&[
        ("LOGIN_ATTEMPTS_IP_LIMIT", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1/32, ::1/128"),
    ])
    .await;
    for _ in 0..2 {
        let response = login_from(&app, &unique_email(), PASSWORD, "198.51.100.1").await;
        assert_eq!(response.status(), 401);
    }

    let limited = login_from(&app, &unique_email(), PASSWORD, "198.51.100.1").await;
    let other_client = login_from(&app, &unique_email(), PASSWORD, "198.51.100.2").await;
    // A client that writes its own X-Forwarded-For gets it appended to, not replaced.
    let spoofed = login_from(&app, &unique_email(), PASSWORD, "203.0.113.7, 198.51.100.1").await;

    assert_error(limited, 429, "rate_limited").await;
    assert_error(other_client, 401, "invalid_credentials").await;
    assert_error(spoofed, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_counters_keep_no_email_in_clear() {
    let app = spawn_app().await;
    let email = unique_email();
    assert_eq!(app.login(&email, "wrong password").await.status(), 401);

    let keys = app.store_keys().await;

    assert!(
        keys.iter().any(|k| k.starts_with("login:email:")),
        "{keys:?}"
    );
    let local_part = email.split('@').next().unwrap();
    assert!(keys.iter().all(|k| !k.contains(local_part)), "{keys:?}");
}

#[tokio::test]
async fn a_client_over_its_ip_limit_cannot_lock_out_other_peoples_emails() {
    let app = spawn_app_with(&[
        ("LOGIN_ATTEMPTS_LIMIT", "3"),
        ("LOGIN_ATTEMPTS_IP_LIMIT", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let victim = app.register_user().await;
    for _ in 0..2 {
        let response = login_from(&app, &unique_email(), PASSWORD, "198.51.100.1").await;
        assert_eq!(response.status(), 401);
    }
    for _ in 0..5 {
        let response = login_from(&app, &victim, "wrong password", "198.51.100.1").await;
        assert_error(response, 429, "rate_limited").await;
    }

    let response = login_from(&app, &victim, PASSWORD, "198.51.100.2").await;

    assert_eq!(response.status(), 200);
}
