//! The auth endpoints end to end: register, login, /users/me, refresh, logout, and the
//! sessions they leave in Redis.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::Response;
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

// ---------------------------------------------------------------------------------------
// Private helpers
// ---------------------------------------------------------------------------------------

const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer error="invalid_token""#;

fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The cookie attributes a configuration should produce.
#[derive(Clone, Copy)]
struct Policy {
    secure: bool,
    same_site: &'static str,
    domain: Option<&'static str>,
}

const DEFAULT_POLICY: Policy = Policy {
    secure: false,
    same_site: "Lax",
    domain: None,
};
const STRICT_POLICY: Policy = Policy {
    secure: true,
    same_site: "Strict",
    domain: Some("example.test"),
};
const STRICT_SETTINGS: [(&str, &str); 3] = [
    ("COOKIE_SECURE", "true"),
    ("COOKIE_SAMESITE", "Strict"),
    ("COOKIE_DOMAIN", "example.test"),
];

/// Path and HttpOnly of each of the three cookies.
const COOKIE_SHAPES: [(&str, &str, bool); 3] = [
    ("access_token", "/", true),
    ("refresh_token", "/api/auth", true),
    ("logged_in", "/", false),
];

/// Every attribute a cookie must carry, and nothing else (Expires aside).
fn expected_attributes(
    path: &str,
    http_only: bool,
    max_age: u64,
    policy: Policy,
) -> HashMap<String, String> {
    let mut attributes = HashMap::from([
        ("path".to_owned(), path.to_owned()),
        ("max-age".to_owned(), max_age.to_string()),
        ("samesite".to_owned(), policy.same_site.to_owned()),
    ]);
    if http_only {
        attributes.insert("httponly".into(), String::new());
    }
    if policy.secure {
        attributes.insert("secure".into(), String::new());
    }
    if let Some(domain) = policy.domain {
        attributes.insert("domain".into(), domain.to_owned());
    }
    attributes
}

fn without_expires(cookie: &SetCookie) -> HashMap<String, String> {
    let mut attributes = cookie.attributes.clone();
    attributes.remove("expires");
    attributes
}

/// The three session cookies are set, each with exactly the attributes of the policy.
fn assert_cookies_set(
    response: &Response,
    policy: Policy,
    access_max_age: u64,
    refresh_max_age: u64,
) {
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for (name, path, http_only) in COOKIE_SHAPES {
        let cookie = cookie(&cookies, name);
        let max_age = if name == "access_token" {
            access_max_age
        } else {
            refresh_max_age
        };
        assert_eq!(
            without_expires(cookie),
            expected_attributes(path, http_only, max_age, policy),
            "{name}"
        );
        assert!(!cookie.value.is_empty(), "{name} has a value");
    }
    assert_eq!(cookie(&cookies, "logged_in").value, "true");
}

/// The three session cookies are expired with the same attributes they were set with.
fn assert_cookies_cleared(response: &Response, policy: Policy) {
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for (name, path, http_only) in COOKIE_SHAPES {
        let cookie = cookie(&cookies, name);
        assert_eq!(
            without_expires(cookie),
            expected_attributes(path, http_only, 0, policy),
            "{name}"
        );
        assert!(
            cookie.value.is_empty() || name == "logged_in",
            "{name} keeps a value: {cookie:?}"
        );
    }
}

fn assert_no_store(response: &Response) {
    assert_eq!(
        header(response, "cache-control").as_deref(),
        Some("no-store")
    );
}

/// Logs a registered user in through a client without cookies; returns the tokens.
async fn login_session(app: &TestApp, email: &str) -> Session {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    session_from(&response)
}

/// Logout as a non-browser client: one token in the Authorization header, no cookies.
async fn logout_by_bearer(app: &TestApp, token: &str) -> Response {
    post_plain(app, "/api/auth/logout")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn post_plain(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    plain_client().post(app.url(path))
}

// ---------------------------------------------------------------------------------------
// Register
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn register_answers_201_with_exactly_the_public_user_object() {
    let app = spawn_app().await;
    let email = unique_email();
    let mut body = registration(&format!("  {}  ", email.to_uppercase()));
    body["name"] = json!("  Ada Lovelace ");

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    assert_json(&response);
    let text = response.text().await.unwrap();
    for secret in ["password", "hash", "argon2", "token", PASSWORD] {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} in {text}"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys_of(&body), set_of(&["status", "data"]));
    assert_eq!(body["status"], "success");
    assert_eq!(keys_of(&body["data"]), set_of(&["user"]));
    let user = &body["data"]["user"];
    assert_eq!(
        keys_of(user),
        set_of(&[
            "id",
            "name",
            "email",
            "role",
            "photo",
            "verified",
            "provider",
            "created_at",
            "updated_at"
        ])
    );
    uuid::Uuid::parse_str(user["id"].as_str().unwrap()).expect("id is a UUID");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["role"], "user");
    assert_eq!(user["photo"], "default.png");
    assert_eq!(user["verified"], false);
    assert_eq!(user["provider"], "local");
    for field in ["created_at", "updated_at"] {
        chrono::DateTime::parse_from_rfc3339(user[field].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{field} is not RFC 3339: {e}"));
    }
}

#[tokio::test]
async fn register_stores_a_given_photo_as_given() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["photo"] = json!("https://cdn.example.com/Me Photo.PNG?v=2");

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["user"]["photo"],
        "https://cdn.example.com/Me Photo.PNG?v=2"
    );
}

#[tokio::test]
async fn register_ignores_role_and_verified_sent_in_the_body() {
    let app = spawn_app().await;
    let email = unique_email();
    let mut body = registration(&email);
    body["role"] = json!("admin");
    body["verified"] = json!(true);
    body["provider"] = json!("google");

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["role"], "user");
    assert_eq!(body["data"]["user"]["verified"], false);
    assert_eq!(body["data"]["user"]["provider"], "local");
    assert_eq!(app.user_column(&email, "role").await, "user");
    assert!(matches!(
        app.user_column(&email, "verified").await.as_str(),
        "false" | "0"
    ));
    assert_eq!(app.user_column(&email, "provider").await, "local");
}

#[tokio::test]
async fn register_does_not_log_in_or_set_cookies() {
    let app = spawn_app().await;

    let response = app.register(&registration(&unique_email())).await;

    assert_eq!(response.status(), 201);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "{:?}",
        response.headers()
    );
    assert_error(app.get("/api/users/me").await, 401, "not_logged_in").await;
}

#[tokio::test]
async fn register_refuses_a_taken_email_whatever_its_case_and_spacing() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    for variant in [
        email.clone(),
        email.to_uppercase(),
        format!("  {email} "),
        format!("\t{}\n", email.to_uppercase()),
    ] {
        let response = app.register(&registration(&variant)).await;
        let body = assert_error(response, 409, "email_taken").await;
        assert!(body.get("errors").is_none_or(|e| e.is_array()), "{body}");
    }
    assert_eq!(app.users_count().await, 1);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_one_201_and_only_409s() {
    let app = spawn_app().await;
    let email = unique_email();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..8 {
        let variant = if i % 2 == 0 {
            email.clone()
        } else {
            email.to_uppercase()
        };
        let request = plain_client()
            .post(app.url("/api/auth/register"))
            .json(&registration(&variant));
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }

    let mut statuses: Vec<u16> = requests.join_all().await;

    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.users_count().await, 1);
}

// ---------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// /api/users/me
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn me_accepts_a_bearer_token_whatever_the_scheme_case() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = plain_client()
            .get(app.url("/api/users/me"))
            .header("authorization", format!("{scheme} {}", session.access))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
        assert_no_store(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["user"]["email"], email.as_str());
        assert!(body["data"]["user"].get("password_hash").is_none());
    }
}

#[tokio::test]
async fn me_accepts_the_access_token_cookie() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = plain_client()
        .get(app.url("/api/users/me"))
        .header("cookie", format!("access_token={}", session.access))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["email"], email.as_str());
}

#[tokio::test]
async fn a_bearer_token_wins_over_the_cookie() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = plain_client()
        .get(app.url("/api/users/me"))
        .bearer_auth("garbage.not-a.jwt")
        .header("cookie", format!("access_token={}", session.access))
        .send()
        .await
        .unwrap();

    assert_eq!(
        www_authenticate(&response).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(response, 401, "token_invalid").await;
}

#[tokio::test]
async fn me_without_a_token_is_not_logged_in_with_a_bare_bearer_challenge() {
    let app = spawn_app().await;

    for request in [
        plain_client().get(app.url("/api/users/me")),
        plain_client()
            .get(app.url("/api/users/me"))
            .header("authorization", "Bearer "),
        plain_client()
            .get(app.url("/api/users/me"))
            .header("cookie", "access_token="),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(www_authenticate(&response).as_deref(), Some("Bearer"));
        assert_error(response, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn me_with_an_invalid_or_revoked_token_gets_an_invalid_token_challenge() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let garbage = app.me_with("abc.def.ghi").await;
    assert_eq!(
        www_authenticate(&garbage).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(garbage, 401, "token_invalid").await;

    let logout = logout_by_bearer(&app, &session.access).await;
    assert_eq!(logout.status(), 200);
    let revoked = app.me_with(&session.access).await;
    assert_eq!(
        www_authenticate(&revoked).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(revoked, 401, "session_revoked").await;
}

#[tokio::test]
async fn me_for_a_deleted_user_is_session_revoked() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    assert_eq!(app.me_with(&session.access).await.status(), 200);

    app.execute("DELETE FROM users WHERE email = $1", &email)
        .await;
    app.user_changed(claims_of(&session.access)["sub"].as_str().unwrap())
        .await;

    let response = app.me_with(&session.access).await;
    assert_eq!(
        www_authenticate(&response).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(response, 401, "session_revoked").await;
    let refresh = app.refresh_with(&session.refresh).await;
    assert_error(refresh, 401, "session_revoked").await;
}

async fn name_seen(app: &TestApp, access: &str) -> String {
    let response = app.me_with(access).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"]["user"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_changed_user_is_served_changed_once_announced_even_after_its_stamp_is_lost() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let user = claims_of(&session.access)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(name_seen(&app, &session.access).await, "Test User");

    app.execute("UPDATE users SET name = 'Renamed' WHERE email = $1", &email)
        .await;
    app.user_changed(&user).await;
    assert_eq!(name_seen(&app, &session.access).await, "Renamed");

    // A changed user is not logged out: the refresh reads it again and rotates.
    let refreshed = app.refresh_with(&session.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let next = session_from(&refreshed);

    // A lost stamp is set anew before the user is read again.
    app.lose_user_stamp(&user).await;
    app.execute(
        "UPDATE users SET name = 'Renamed twice' WHERE email = $1",
        &email,
    )
    .await;
    assert_eq!(name_seen(&app, &next.access).await, "Renamed twice");
    assert_eq!(app.refresh_with(&next.refresh).await.status(), 200);
}

// ---------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_by_cookie_with_post_or_get_rotates_the_tokens_and_sets_all_cookies() {
    let app = spawn_app().await;
    let (_, mut session) = app.logged_in_user().await;

    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let response = app
            .client
            .request(method.clone(), app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "{method}");
        assert_no_store(&response);
        assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
        let next = session_from(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            keys_of(&body),
            set_of(&["status", "access_token"]),
            "{method}: no refresh_token in the body"
        );
        assert_eq!(body["access_token"], next.access.as_str());
        assert_ne!(next.access, session.access);
        assert_ne!(next.refresh, session.refresh);
        assert_eq!(app.me_with(&next.access).await.status(), 200);
        session = next;
    }
}

#[tokio::test]
async fn refresh_by_bearer_header_also_returns_the_next_refresh_token_in_the_body() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = app.refresh_with(&session.refresh).await;

    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
    let cookies = session_from(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        set_of(&["status", "access_token", "refresh_token"])
    );
    let next_refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(next_refresh, cookies.refresh);
    assert_ne!(next_refresh, session.refresh);
    assert_eq!(claims_of(next_refresh)["typ"], "refresh");
    assert_eq!(
        app.me_with(body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let again = app.refresh_with(next_refresh).await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t != next_refresh)
    );
}

#[tokio::test]
async fn a_refresh_token_replayed_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();

    let replay = app.refresh_with(&session.refresh).await;

    assert_eq!(replay.status(), 200);
    assert_cookies_set(&replay, DEFAULT_POLICY, 900, 3600);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(
        replay["refresh_token"], first["refresh_token"],
        "the very same successor"
    );
    assert_eq!(replay["access_token"], first["access_token"]);
    assert_eq!(live_refresh_entries(&app).await, 1);
    let access = replay["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["sid"], claims_of(&session.access)["sid"]);
    assert_eq!(app.me_with(access).await.status(), 200);
    assert_eq!(
        app.me_with(first["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.refresh_with(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn tabs_refreshing_at_once_all_succeed_with_the_same_successor() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    // Two instances behind a load balancer: the race is decided in Redis, not in one process.
    let other = app.sibling(&[]).await;
    let mut tabs = tokio::task::JoinSet::new();
    for tab in 0..6 {
        let base = if tab % 2 == 0 { &app.address } else { &other };
        let request = plain_client()
            .post(format!("{base}/api/auth/refresh"))
            .header("cookie", format!("refresh_token={}", session.refresh));
        tabs.spawn(async move { request.send().await.unwrap() });
    }

    let responses = tabs.join_all().await;

    let mut successors = BTreeSet::new();
    for response in &responses {
        assert_eq!(response.status(), 200);
        assert_cookies_set(response, DEFAULT_POLICY, 900, 3600);
        successors.insert(session_from(response).refresh);
    }
    assert_eq!(
        successors.len(),
        1,
        "one successor refresh token: {successors:?}"
    );
    assert_eq!(live_refresh_entries(&app).await, 1);
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh_with(&successor).await.status(), 200);
}

/// Refresh entries that can still be rotated (`user|access`; a rotated one names its
/// successors too).
async fn live_refresh_entries(app: &TestApp) -> usize {
    app.store_entries()
        .await
        .into_iter()
        .filter(|e| e.key.contains(":tok:") && e.value.matches('|').count() == 1)
        .count()
}

#[tokio::test]
async fn reuse_ends_only_the_session_it_happened_in() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let stolen = login_session(&app, &email).await;
    let laptop = login_session(&app, &email).await;
    assert_eq!(app.refresh_with(&stolen.refresh).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_error(
        app.refresh_with(&stolen.refresh).await,
        401,
        "refresh_reused",
    )
    .await;

    assert_eq!(app.me_with(&laptop.access).await.status(), 200);
    assert_eq!(app.refresh_with(&laptop.refresh).await.status(), 200);
}

#[tokio::test]
async fn replays_after_the_grace_window_racing_each_other_all_fail() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    let successor = session_from(&first);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut replays = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let request = post_plain(&app, "/api/auth/refresh").bearer_auth(&session.refresh);
        replays.spawn(async move { request.send().await.unwrap() });
    }

    for response in replays.join_all().await {
        assert_error(response, 401, "refresh_reused").await;
    }
    assert_error(
        app.refresh_with(&successor.refresh).await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn a_tab_back_late_gets_the_newest_token_not_one_already_rotated() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let first = login_session(&app, &email).await;
    let second: Value = app.refresh_with(&first.refresh).await.json().await.unwrap();
    let third: Value = app
        .refresh_with(second["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();

    let late = app.refresh_with(&first.refresh).await;

    assert_eq!(late.status(), 200);
    let late: Value = late.json().await.unwrap();
    assert_eq!(late["refresh_token"], third["refresh_token"]);
    assert_eq!(late["access_token"], third["access_token"]);
    assert_eq!(live_refresh_entries(&app).await, 1);
}

#[tokio::test]
async fn a_rotated_token_shown_after_an_ordinary_logout_is_not_called_reuse() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let successor = session_from(&app.refresh_with(&session.refresh).await);
    assert_eq!(
        logout_by_bearer(&app, &successor.access).await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let replay = app.refresh_with(&session.refresh).await;

    assert_cookies_cleared(&replay, DEFAULT_POLICY);
    assert_error(replay, 401, "session_revoked").await;
}

#[tokio::test]
async fn an_in_grace_replay_after_logout_is_refused_and_clears_cookies() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    let successor = session_from(&first);
    assert_eq!(
        logout_by_bearer(&app, &successor.access).await.status(),
        200
    );

    let replay = app.refresh_with(&session.refresh).await;

    assert_cookies_cleared(&replay, DEFAULT_POLICY);
    assert_error(replay, 401, "session_revoked").await;
}

#[tokio::test]
async fn a_refresh_token_replayed_after_the_grace_window_is_refresh_reused_and_ends_the_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    assert_eq!(first.status(), 200);
    let successor: Value = first.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let replay = app.refresh_with(&session.refresh).await;

    assert_eq!(
        www_authenticate(&replay).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_cookies_cleared(&replay, DEFAULT_POLICY);
    assert_error(replay, 401, "refresh_reused").await;
    let access = successor["access_token"].as_str().unwrap();
    assert_error(app.me_with(access).await, 401, "session_revoked").await;
    let refresh = successor["refresh_token"].as_str().unwrap();
    assert_error(app.refresh_with(refresh).await, 401, "session_revoked").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "refresh_reused",
    )
    .await;
}

#[tokio::test]
async fn after_a_reuse_only_the_replayed_token_answers_refresh_reused() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let first = login_session(&app, &email).await;
    let second = session_from(&app.refresh_with(&first.refresh).await);
    let third = session_from(&app.refresh_with(&second.refresh).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_error(
        app.refresh_with(&first.refresh).await,
        401,
        "refresh_reused",
    )
    .await;

    // Another rotated token of the session, and its live one: revoked, not reused.
    assert_error(
        app.refresh_with(&second.refresh).await,
        401,
        "session_revoked",
    )
    .await;
    assert_session_ended(&app, &third).await;
    assert_error(
        app.refresh_with(&first.refresh).await,
        401,
        "refresh_reused",
    )
    .await;
}

#[tokio::test]
async fn the_previous_access_token_keeps_working_right_after_a_refresh() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = app.refresh_with(&session.refresh).await;
    assert_eq!(response.status(), 200);

    let me = app.me_with(&session.access).await;
    assert_eq!(me.status(), 200);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["data"]["user"]["email"], email.as_str());
}

#[tokio::test]
async fn the_previous_access_token_stops_working_after_the_grace_window() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let response = app.refresh_with(&session.refresh).await;
    assert_eq!(response.status(), 200);
    let next = session_from(&response);

    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_error(app.me_with(&session.access).await, 401, "session_revoked").await;
    assert_eq!(app.me_with(&next.access).await.status(), 200);
}

#[tokio::test]
async fn refresh_without_a_token_is_not_logged_in() {
    let app = spawn_app().await;

    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let response = plain_client()
            .request(method, app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap();
        assert_no_store(&response);
        assert_eq!(www_authenticate(&response).as_deref(), Some("Bearer"));
        assert_error(response, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn an_access_token_presented_for_refresh_is_token_invalid() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let by_header = app.refresh_with(&session.access).await;
    assert_error(by_header, 401, "token_invalid").await;

    let by_cookie = post_plain(&app, "/api/auth/refresh")
        .header("cookie", format!("refresh_token={}", session.access))
        .send()
        .await
        .unwrap();
    assert_cookies_cleared(&by_cookie, DEFAULT_POLICY);
    assert_error(by_cookie, 401, "token_invalid").await;
    assert_eq!(
        app.refresh_with(&session.refresh).await.status(),
        200,
        "the session is untouched"
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_token_expired_and_clears_the_cookies() {
    let app = spawn_app_with(&[
        ("ACCESS_TOKEN_EXPIRED_IN", "1s"),
        ("REFRESH_TOKEN_EXPIRED_IN", "1s"),
    ])
    .await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let exp = claims_of(&session.refresh)["exp"].as_i64().unwrap();
    // Past exp by far more than the at most 1 s the service may allow.
    sleep_until_unix(exp + 2).await;

    let response = post_plain(&app, "/api/auth/refresh")
        .header("cookie", format!("refresh_token={}", session.refresh))
        .send()
        .await
        .unwrap();

    assert_no_store(&response);
    assert_eq!(
        www_authenticate(&response).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_cookies_cleared(&response, DEFAULT_POLICY);
    assert_error(response, 401, "token_expired").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn refresh_of_an_ended_session_is_session_revoked_and_clears_cookies_like_they_were_set() {
    let app = spawn_app_with(&STRICT_SETTINGS).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let logout = logout_by_bearer(&app, &session.access).await;
    assert_eq!(logout.status(), 200);

    let response = post_plain(&app, "/api/auth/refresh")
        .header("cookie", format!("refresh_token={}", session.refresh))
        .send()
        .await
        .unwrap();

    assert_no_store(&response);
    assert_cookies_cleared(&response, STRICT_POLICY);
    assert_error(response, 401, "session_revoked").await;
}

// ---------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_by_post_or_get_answers_success_and_clears_the_cookies() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let login = app.login(&email, PASSWORD).await;
        assert_eq!(login.status(), 200);

        let response = app
            .client
            .request(method.clone(), app.url("/api/auth/logout"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "{method}");
        assert_json(&response);
        assert_cookies_cleared(&response, DEFAULT_POLICY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "success"}));
        assert_error(app.get("/api/users/me").await, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn logout_clears_the_cookies_with_the_configured_secure_samesite_and_domain() {
    let app = spawn_app_with(&STRICT_SETTINGS).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = plain_client()
        .get(app.url("/api/auth/logout"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_cookies_cleared(&response, STRICT_POLICY);
}

#[tokio::test]
async fn after_logout_the_access_and_refresh_tokens_of_the_session_are_revoked() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;

    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let me = app.me_with(&session.access).await;
    assert_eq!(
        www_authenticate(&me).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(me, 401, "session_revoked").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn logout_with_no_or_garbage_tokens_still_answers_200_and_clears_cookies() {
    let app = spawn_app().await;
    let requests = [
        plain_client().post(app.url("/api/auth/logout")),
        plain_client().get(app.url("/api/auth/logout")),
        plain_client()
            .post(app.url("/api/auth/logout"))
            .bearer_auth("garbage"),
        plain_client().post(app.url("/api/auth/logout")).header(
            "cookie",
            "access_token=abc.def.ghi; refresh_token=xyz; logged_in=true",
        ),
    ];

    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_cookies_cleared(&response, DEFAULT_POLICY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "success"}));
    }
}

#[tokio::test]
async fn logout_twice_with_the_same_tokens_answers_200_both_times() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    for _ in 0..2 {
        let response = logout_by_bearer(&app, &session.access).await;
        assert_eq!(response.status(), 200);
        assert_cookies_cleared(&response, DEFAULT_POLICY);
    }
}

#[tokio::test]
async fn logout_by_a_bearer_refresh_token_alone_ends_the_session() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = logout_by_bearer(&app, &session.refresh).await;

    assert_eq!(response.status(), 200);
    assert_cookies_cleared(&response, DEFAULT_POLICY);
    assert_session_ended(&app, &session).await;
}

#[tokio::test]
async fn logout_of_one_session_leaves_another_session_of_the_user_working() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let laptop = login_session(&app, &email).await;
    let phone = login_session(&app, &email).await;

    let response = logout_by_bearer(&app, &laptop.access).await;
    assert_eq!(response.status(), 200);

    assert_error(app.me_with(&laptop.access).await, 401, "session_revoked").await;
    assert_eq!(app.me_with(&phone.access).await.status(), 200);
    assert_eq!(app.refresh_with(&phone.refresh).await.status(), 200);
}

// ---------------------------------------------------------------------------------------
// Sessions in the store
// ---------------------------------------------------------------------------------------

/// This app's entries whose key names `needle` (a token or session id).
async fn entries_naming(app: &TestApp, needle: &str) -> Vec<StoreEntry> {
    app.store_entries()
        .await
        .into_iter()
        .filter(|e| e.key.contains(needle))
        .collect()
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An entry ends one second after its token's `exp`: never while the token still verifies,
/// and not long after.
fn assert_ends_after_exp(entry: &StoreEntry, exp: i64) {
    let ends_after_exp = unix_ms() + entry.ttl_ms - exp * 1000;
    assert!(
        (900..=1300).contains(&ends_after_exp),
        "{} ends {ends_after_exp} ms after its token's exp",
        entry.key
    );
}

#[tokio::test]
async fn login_stores_each_token_until_just_after_its_exp() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let access = claims_of(&session.access);
    let refresh = claims_of(&session.refresh);
    let user_id = access["sub"].as_str().unwrap();

    for claims in [&access, &refresh] {
        let entries = entries_naming(&app, claims["token_uuid"].as_str().unwrap()).await;
        assert_eq!(entries.len(), 1, "one entry per token: {entries:?}");
        assert_ends_after_exp(&entries[0], claims["exp"].as_i64().unwrap());
        let value = &entries[0].value;
        assert!(value.contains(user_id), "the entry names the user: {value}");
    }
}

#[tokio::test]
async fn no_entry_outlives_its_token_after_login_or_refresh() {
    let app = spawn_app_with(&[("REFRESH_TOKEN_EXPIRED_IN", "30m")]).await;
    let email = app.register_user().await;
    let first = login_session(&app, &email).await;
    let refresh_exp = claims_of(&first.refresh)["exp"].as_i64().unwrap();
    for entry in app.store_entries().await {
        if entry.key.contains(":tok:") || entry.key.ends_with(":sess") {
            assert!(
                unix_ms() + entry.ttl_ms <= refresh_exp * 1000 + 1300,
                "after login, {entry:?} outlives the refresh token"
            );
        }
    }

    let response = app.refresh_with(&first.refresh).await;
    assert_eq!(response.status(), 200);

    let second = session_from(&response);
    let old_access = claims_of(&first.access)["token_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_refresh = claims_of(&first.refresh)["token_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The used entry stays, to tell a replay (reuse) from another tab (grace), until the
    // token expires anyway; its grace marker lives only through the window.
    let used = entries_naming(&app, &old_refresh).await;
    assert_eq!(used.len(), 2, "{used:?}");
    for entry in used {
        if entry.key.contains(":grace:") {
            assert!((1..=10_000).contains(&entry.ttl_ms), "{entry:?}");
        } else {
            assert_ends_after_exp(&entry, refresh_exp);
        }
    }
    for entry in entries_naming(&app, &old_access).await {
        assert!(
            (1..=10_000).contains(&entry.ttl_ms),
            "the previous access entry lives only through the grace window: {entry:?}"
        );
    }
    for token in [&second.access, &second.refresh] {
        let claims = claims_of(token);
        let entries = entries_naming(&app, claims["token_uuid"].as_str().unwrap()).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_ends_after_exp(&entries[0], claims["exp"].as_i64().unwrap());
    }
    let sid = claims_of(&second.refresh)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = entries_naming(&app, &format!("}}:{sid}:sess")).await;
    assert_eq!(session.len(), 1, "{session:?}");
    assert_ends_after_exp(
        &session[0],
        claims_of(&second.refresh)["exp"].as_i64().unwrap(),
    );
}

#[tokio::test]
async fn logout_with_a_stale_token_beside_live_cookies_still_ends_the_live_session() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let old = login_session(&app, &email).await;
    let live = login_session(&app, &email).await;
    let ended = logout_by_bearer(&app, &old.access).await;
    assert_eq!(ended.status(), 200);

    // The dead session's Bearer token first, the live session's cookies after it.
    let response = post_plain(&app, "/api/auth/logout")
        .bearer_auth(&old.access)
        .header(
            "cookie",
            format!(
                "access_token={}; refresh_token={}",
                live.access, live.refresh
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    assert_session_ended(&app, &live).await;
}

#[tokio::test]
async fn logout_removes_the_session_from_the_store() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let access = claims_of(&session.access);
    let refresh = claims_of(&session.refresh);
    let sid = access["sid"].as_str().unwrap();
    let token_ids = [
        access["token_uuid"].as_str().unwrap(),
        refresh["token_uuid"].as_str().unwrap(),
    ];
    let session_entries = |entries: Vec<StoreEntry>| -> Vec<StoreEntry> {
        entries
            .into_iter()
            .filter(|e| !token_ids.iter().any(|t| e.key.contains(t)))
            .collect()
    };
    let before = session_entries(entries_naming(&app, sid).await);
    assert_eq!(before.len(), 1, "one session entry: {before:?}");
    assert_ends_after_exp(&before[0], refresh["exp"].as_i64().unwrap());

    let response = logout_by_bearer(&app, &session.access).await;
    assert_eq!(response.status(), 200);

    assert!(session_entries(entries_naming(&app, sid).await).is_empty());
    assert!(
        entries_naming(&app, token_ids[0]).await.is_empty(),
        "the access entry is gone"
    );
}
