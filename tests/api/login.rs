//! Login: the access token it answers and the three cookies it sets (as the cookie settings
//! say), the email matched whatever its case and spacing, wrong passwords and unknown emails
//! refused alike, and the per-email limit; and the walk through register, login, me, refresh
//! and logout.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn register_login_me_refresh_logout_walk() {
    let app = spawn_app().await;
    let (email, first) = app.logged_in_user().await;

    let me = app.get("/api/users/me").await;
    assert_eq!(me.status(), 200);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["data"]["user"]["email"], email.as_str());

    let refreshed = app
        .client
        .post(app.url("/api/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let second = session_from(&refreshed);
    assert_ne!(second.refresh, first.refresh);

    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert_session_ended(&app, &second).await;
}

#[tokio::test]
async fn login_answers_an_access_token_that_is_not_cached() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    let response = app.login(&email, PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_json(&response);
    assert_no_store(&response);
    let cookies = set_cookies(response.headers());
    let body: Value = response.json().await.unwrap();
    assert_eq!(keys_of(&body), set_of(&["status", "access_token"]));
    assert_eq!(body["status"], "success");
    let token = body["access_token"].as_str().unwrap();
    let jose = jsonwebtoken::decode_header(token).expect("a JWT");
    assert_eq!(jose.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(cookie(&cookies, "access_token").value, token);
    assert_eq!(claims_of(token)["typ"], "access");
}

#[tokio::test]
async fn login_sets_three_cookies_with_the_default_attributes() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    let response = app.login(&email, PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
    // The same, spelled out: the SPA may read logged_in, never the tokens; no Secure or
    // Domain unless configured.
    let cookies = set_cookies(response.headers());
    assert!(cookie(&cookies, "access_token").has("HttpOnly"));
    assert!(cookie(&cookies, "refresh_token").has("HttpOnly"));
    assert!(!cookie(&cookies, "logged_in").has("HttpOnly"));
    assert_eq!(
        cookie(&cookies, "refresh_token").attr("Path"),
        Some("/api/auth")
    );
    for set in &cookies {
        assert_eq!(set.attr("SameSite"), Some("Lax"), "{set:?}");
        assert!(!set.has("Secure") && !set.has("Domain"), "{set:?}");
    }
}

/// Logs a new user in on an app with `settings` and checks the cookies it sets.
async fn assert_login_cookies(
    settings: &[(&str, &str)],
    policy: Policy,
    access: u64,
    refresh: u64,
) {
    let app = spawn_app_with(settings).await;
    let email = app.register_user().await;

    let response = app.login(&email, PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_cookies_set(&response, policy, access, refresh);
}

#[tokio::test]
async fn login_cookies_follow_the_secure_samesite_and_domain_settings() {
    assert_login_cookies(&STRICT_SETTINGS, STRICT_POLICY, 900, 3600).await;
}

#[tokio::test]
async fn cookie_max_age_settings_win_over_the_token_lifetimes() {
    let settings = [
        ("ACCESS_TOKEN_EXPIRED_IN", "20m"),
        ("REFRESH_TOKEN_EXPIRED_IN", "2h"),
        ("ACCESS_TOKEN_MAXAGE", "5"),
        ("REFRESH_TOKEN_MAXAGE", "30"),
    ];
    assert_login_cookies(&settings, DEFAULT_POLICY, 300, 1800).await;
}

#[tokio::test]
async fn cookie_max_age_follows_the_token_lifetimes_when_not_set() {
    let settings = [
        ("ACCESS_TOKEN_EXPIRED_IN", "20m"),
        ("REFRESH_TOKEN_EXPIRED_IN", "2h"),
    ];
    assert_login_cookies(&settings, DEFAULT_POLICY, 1200, 7200).await;
}

#[tokio::test]
async fn login_matches_the_email_case_insensitively_and_trimmed() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    for variant in [email.to_uppercase(), format!("  {email}\t")] {
        let response = app.login(&variant, PASSWORD).await;
        assert_eq!(response.status(), 200, "{variant:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "success");
        assert!(body["access_token"].is_string());
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_byte_identical_answers() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    let wrong_password = app.login(&email, "not the password").await;
    let unknown_email = app.login(&unique_email(), PASSWORD).await;

    for response in [&wrong_password, &unknown_email] {
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("set-cookie").is_none());
    }
    let first = wrong_password.bytes().await.unwrap();
    let second = unknown_email.bytes().await.unwrap();
    assert_eq!(first, second);
    let body: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["code"], "invalid_credentials");
}

#[tokio::test]
async fn a_password_over_128_characters_is_invalid_credentials() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    for password in [
        format!("{PASSWORD}{}", "x".repeat(129)),
        "ü".repeat(129),
        "x".repeat(10_000),
    ] {
        assert_error(
            app.login(&email, &password).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
}

#[tokio::test]
async fn login_without_string_email_and_password_is_validation_failed() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let cases = [
        (json!({"password": PASSWORD}), "email"),
        (json!({"email": email}), "password"),
        (json!({"email": null, "password": PASSWORD}), "email"),
        (json!({"email": 42, "password": PASSWORD}), "email"),
        (json!({"email": email, "password": ["x"]}), "password"),
        (json!({"email": email, "password": 12345678}), "password"),
    ];

    for (body, field) in cases {
        let response = app.post_json("/api/auth/login", &body).await;
        let error = assert_error(response, 400, "validation_failed").await;
        let fields: Vec<&str> = error["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, [field], "{body}");
    }
}

#[tokio::test]
async fn login_is_rate_limited_per_email_after_the_configured_failures() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let email = app.register_user().await;

    // A success clears the counter.
    for _ in 0..2 {
        assert_error(
            app.login(&email, "wrong password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
    for _ in 0..3 {
        assert_error(
            app.login(&email.to_uppercase(), "wrong password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }

    let response = app.login(&email, PASSWORD).await;

    let retry_after = header(&response, "retry-after").expect("Retry-After");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s > 0),
        "{retry_after}"
    );
    assert!(response.headers().get("set-cookie").is_none());
    assert_error(response, 429, "rate_limited").await;
}
