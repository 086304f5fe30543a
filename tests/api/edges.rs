//! The edges every client meets: request ids, 404/405, bodies that are not what they should
//! be, validation limits, store outages, CORS, cross-site requests and the JWKS.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// Private helpers
// ---------------------------------------------------------------------------------------

const SPA_ORIGIN: &str = "http://localhost:3000";
const EVIL_ORIGIN: &str = "https://evil.example";

fn request_id(response: &Response) -> String {
    header(response, "x-request-id").expect("x-request-id")
}

/// What the service itself may hand out as a request id.
fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The fields named in a validation failure's `errors`.
fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

/// A client that gives up instead of hanging, for the outage tests.
fn impatient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends raw bytes as a JSON body (no Content-Length games, just the bytes).
async fn post_bytes(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let mut request = plain_client().post(app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

/// Asserts a 4xx answer in the JSON failure envelope (never a 5xx) and returns the body.
async fn assert_client_error(response: Response) -> Value {
    let status = response.status();
    assert!(status.is_client_error(), "status {status}");
    assert_json(&response);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], "fail", "{body}");
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    body
}

/// A raw HTTP/1.1 request whose body is sent chunked, without Content-Length.
/// Returns the status code and the raw response text.
async fn post_chunked(app: &TestApp, path: &str, chunks: &[Vec<u8>]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.port
    );
    let mut request = head.into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

// ---------------------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let client = plain_client();
    let requests = [
        client.get(app.url("/api/healthchecker")),
        client.get(app.url("/.well-known/jwks.json")),
        client.get(app.url("/api/users/me")),
        client.get(app.url("/nowhere")),
        client.delete(app.url("/api/auth/login")),
        client.post(app.url("/api/auth/login")).body("x"),
        client.post(app.url("/api/auth/register")).json(&json!({})),
        client.post(app.url("/api/auth/logout")),
        client
            .request(Method::OPTIONS, app.url("/api/auth/login"))
            .header("origin", SPA_ORIGIN)
            .header("access-control-request-method", "POST"),
    ];

    let mut ids = BTreeSet::new();
    for request in requests {
        let response = request.send().await.unwrap();
        let id = request_id(&response);
        assert!(is_plain_id(&id), "{id:?} from {}", response.url());
        ids.insert(id);
    }
    assert_eq!(ids.len(), 9, "each response has its own id: {ids:?}");
}

#[tokio::test]
async fn a_plain_incoming_request_id_is_echoed() {
    let app = spawn_app().await;

    for id in ["abc-123".to_owned(), "A.b_C-9".to_owned(), "x".repeat(64)] {
        let ok = plain_client()
            .get(app.url("/api/healthchecker"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&ok), id);
        let error = plain_client()
            .get(app.url("/api/users/me"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&error), id);
        assert_error(error, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn an_unacceptable_incoming_request_id_is_replaced() {
    let app = spawn_app().await;

    for id in [
        "bad id!".to_owned(),
        "x".repeat(65),
        "a/b".to_owned(),
        "é".to_owned(),
        String::new(),
    ] {
        let response = plain_client()
            .get(app.url("/api/healthchecker"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        let echoed = request_id(&response);
        assert_ne!(echoed, id);
        assert!(is_plain_id(&echoed), "{echoed:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    for path in [
        "/nowhere",
        "/api",
        "/api/auth",
        "/api/users/someone",
        "/api/auth/login/extra",
    ] {
        let response = plain_client().get(app.url(path)).send().await.unwrap();
        assert_error(response, 404, "not_found").await;
    }
    let post = plain_client()
        .post(app.url("/api/nowhere"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(post, 404, "not_found").await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_naming_the_allowed_ones() {
    let app = spawn_app().await;
    let cases = [
        (Method::DELETE, "/api/auth/login", "POST"),
        (Method::GET, "/api/auth/login", "POST"),
        (Method::GET, "/api/auth/register", "POST"),
        (Method::PUT, "/api/auth/register", "POST"),
        (Method::POST, "/api/users/me", "GET, PATCH, DELETE"),
        (Method::POST, "/api/users/me/sessions", "GET, DELETE"),
        (Method::GET, "/api/users/me/sessions/x", "DELETE"),
        (Method::GET, "/api/users/me/password", "POST"),
        (Method::POST, "/api/healthchecker", "GET"),
        (Method::POST, "/.well-known/jwks.json", "GET"),
    ];

    for (method, path, allow) in cases {
        let response = plain_client()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&response, "allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
        assert_error(response, 405, "method_not_allowed").await;
    }
    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        let response = plain_client().delete(app.url(path)).send().await.unwrap();
        let allow = header(&response, "allow").expect("Allow");
        let methods: BTreeSet<&str> = allow.split(',').map(str::trim).collect();
        assert_eq!(methods, BTreeSet::from(["GET", "POST"]), "{path}");
        assert_error(response, 405, "method_not_allowed").await;
    }
}

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&registration(&unique_email())).unwrap();

    for path in ["/api/auth/register", "/api/auth/login"] {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let response = post_bytes(&app, path, content_type, body.clone()).await;
            assert_error(response, 415, "unsupported_media_type").await;
        }
    }
    assert_eq!(app.store_keys().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&registration(&unique_email())).unwrap();

    let response = post_bytes(
        &app,
        "/api/auth/register",
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;

    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_400_validation_failed() {
    let app = spawn_app().await;
    let bodies: [&[u8]; 9] = [
        b"",
        b"{",
        b"{\"email\":}",
        b"not json",
        b"[]",
        b"[{\"email\":\"a@b.co\"}]",
        b"\"a string\"",
        b"42",
        b"null",
    ];

    for path in ["/api/auth/register", "/api/auth/login"] {
        for body in bodies {
            let response = post_bytes(&app, path, Some("application/json"), body.to_vec()).await;
            let error = assert_error(response, 400, "validation_failed").await;
            assert!(
                error["errors"].is_array(),
                "{path} {:?}: {error}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

#[tokio::test]
async fn deeply_nested_json_is_400_not_500() {
    let app = spawn_app().await;

    for body in ["[".repeat(10_000), "{\"a\":".repeat(10_000)] {
        let response = post_bytes(
            &app,
            "/api/auth/register",
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
        assert_error(response, 400, "validation_failed").await;
    }
    let balanced = format!("{{\"email\":{}1{}}}", "[".repeat(5_000), "]".repeat(5_000));
    let response = post_bytes(
        &app,
        "/api/auth/login",
        Some("application/json"),
        balanced.into_bytes(),
    )
    .await;
    assert_error(response, 400, "validation_failed").await;
}

fn oversized_registration() -> Vec<u8> {
    let mut body = registration(&unique_email());
    body["photo"] = json!("p".repeat(70 * 1024));
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app().await;

    for path in ["/api/auth/register", "/api/auth/login"] {
        let response = post_bytes(
            &app,
            path,
            Some("application/json"),
            oversized_registration(),
        )
        .await;
        assert_error(response, 413, "payload_too_large").await;
    }
}

#[tokio::test]
async fn a_body_just_under_64_kib_is_read() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["padding"] = json!("p".repeat(60 * 1024));

    let response = post_bytes(
        &app,
        "/api/auth/register",
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;

    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_chunked_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let chunks: Vec<Vec<u8>> = oversized_registration()
        .chunks(4096)
        .map(<[u8]>::to_vec)
        .collect();
    assert!(chunks.len() > 16);

    let (status, text) = post_chunked(&app, "/api/auth/register", &chunks).await;

    assert_eq!(status, 413, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    assert!(text.contains(r#""code":"payload_too_large""#), "{text}");
    let count: i64 = app.users_count().await;
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_small_chunked_body_is_read() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&registration(&unique_email())).unwrap();
    let chunks: Vec<Vec<u8>> = body.chunks(16).map(<[u8]>::to_vec).collect();

    let (status, text) = post_chunked(&app, "/api/auth/register", &chunks).await;

    assert_eq!(status, 201, "{text}");
}

#[tokio::test]
async fn raw_nul_and_non_utf8_bytes_are_a_json_400() {
    let app = spawn_app().await;
    let email = unique_email();
    let nul = format!(
        r#"{{"name":"Ada{}","email":"{email}","password":"{PASSWORD}","passwordConfirm":"{PASSWORD}"}}"#,
        '\0'
    );
    let mut latin1 = format!(r#"{{"name":"Ad","email":"{email}","password":"{PASSWORD}","passwordConfirm":"{PASSWORD}"}}"#).into_bytes();
    latin1.insert(11, 0xE9);
    let cases = [
        nul.into_bytes(),
        latin1,
        vec![0xFF, 0xFE, b'{', b'}'],
        b"\0".to_vec(),
    ];

    for body in cases {
        for path in ["/api/auth/register", "/api/auth/login"] {
            let response = post_bytes(&app, path, Some("application/json"), body.clone()).await;
            assert_error(response, 400, "validation_failed").await;
        }
    }
    assert_eq!(app.users_count().await, 0);
}

#[tokio::test]
async fn an_escaped_nul_in_a_stored_field_is_400_not_500() {
    let app = spawn_app().await;

    for field in ["name", "photo"] {
        let mut body = registration(&unique_email());
        body[field] = json!("Ada\u{0}Lovelace");
        let response = app.register(&body).await;
        let error = assert_error(response, 400, "validation_failed").await;
        assert_eq!(error_fields(&error), [field]);
    }
}

#[tokio::test]
async fn an_escaped_nul_in_the_login_email_is_invalid_credentials_not_500() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    let response = app.login(&format!("{email}\u{0}"), PASSWORD).await;

    assert_error(response, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn an_escaped_nul_never_answers_with_internal_detail() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["name"] = json!("Ada\u{0}Lovelace");

    let response = app.register(&body).await;

    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap().to_lowercase();
    for leak in [
        "sql",
        "postgres",
        "0x00",
        "utf8",
        "encoding",
        "invalid byte",
        "panicked",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

async fn assert_register_refuses(app: &TestApp, body: Value, field: &str) {
    let response = app.register(&body).await;
    let error = assert_error(response, 400, "validation_failed").await;
    assert_eq!(error_fields(&error), [field], "{body}");
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{error}"
    );
}

/// A unique, otherwise valid email of exactly `len` characters (labels of at most 60).
fn email_of_length(len: usize) -> String {
    let mut local = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let mut domain = "example.com".to_owned();
    let mut remaining = len - local.len() - 1 - domain.len();
    while remaining >= 2 {
        let label = (remaining - 1).min(60);
        domain = format!("{}.{domain}", "d".repeat(label));
        remaining -= label + 1;
    }
    local.push_str(&"x".repeat(remaining));
    let email = format!("{local}@{domain}");
    assert_eq!(email.chars().count(), len, "{email}");
    email
}

#[tokio::test]
async fn an_email_over_254_characters_is_refused_and_254_is_accepted() {
    let app = spawn_app().await;

    assert_register_refuses(&app, registration(&email_of_length(255)), "email").await;
    let longest = email_of_length(254);
    let response = app.register(&registration(&longest)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_malformed_email_is_refused() {
    let app = spawn_app().await;

    for email in ["not-an-email", "a@", "@example.com", "a b@example.com", ""] {
        assert_register_refuses(&app, registration(email), "email").await;
    }
}

#[tokio::test]
async fn a_name_over_100_characters_is_refused() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["name"] = json!("n".repeat(101));

    assert_register_refuses(&app, body, "name").await;
}

#[tokio::test]
async fn a_name_of_100_multibyte_characters_is_accepted() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["name"] = json!("é".repeat(100));

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["name"], "é".repeat(100));
}

#[tokio::test]
async fn a_blank_or_missing_name_is_refused() {
    let app = spawn_app().await;

    for name in [
        json!("   "),
        json!(""),
        json!("\t\n"),
        json!(null),
        json!(7),
    ] {
        let mut body = registration(&unique_email());
        body["name"] = name;
        assert_register_refuses(&app, body, "name").await;
    }
}

#[tokio::test]
async fn passwords_that_differ_are_refused_as_password_confirm() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["passwordConfirm"] = json!(format!("{PASSWORD} "));

    assert_register_refuses(&app, body, "passwordConfirm").await;
}

#[tokio::test]
async fn a_password_outside_8_to_128_characters_is_refused() {
    let app = spawn_app().await;

    for password in ["1234567".to_owned(), "ü".repeat(129)] {
        let mut body = registration(&unique_email());
        body["password"] = json!(password);
        body["passwordConfirm"] = json!(password);
        assert_register_refuses(&app, body, "password").await;
    }
    let mut body = registration(&unique_email());
    body["password"] = json!("ü".repeat(128));
    body["passwordConfirm"] = json!("ü".repeat(128));
    assert_eq!(app.register(&body).await.status(), 201);
}

#[tokio::test]
async fn a_photo_over_255_characters_is_refused() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["photo"] = json!("p".repeat(256));

    assert_register_refuses(&app, body, "photo").await;
}

#[tokio::test]
async fn every_bad_field_is_named_in_one_answer() {
    let app = spawn_app().await;

    let response = app.register(&json!({"photo": 5})).await;

    let error = assert_error(response, 400, "validation_failed").await;
    let fields: BTreeSet<String> = error_fields(&error).into_iter().collect();
    let expected: BTreeSet<String> = ["name", "email", "password", "passwordConfirm", "photo"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(fields, expected);
}

// ---------------------------------------------------------------------------------------
// Health and store outages
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// CORS and cross-site requests
// ---------------------------------------------------------------------------------------

fn varies_on_origin(response: &Response) -> bool {
    response
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin"))
}

#[tokio::test]
async fn the_spa_origin_is_allowed_with_credentials() {
    let app = spawn_app().await;

    let response = plain_client()
        .get(app.url("/api/healthchecker"))
        .header("origin", SPA_ORIGIN)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(SPA_ORIGIN)
    );
    assert_eq!(
        header(&response, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert!(varies_on_origin(&response), "{:?}", response.headers());
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = spawn_app().await;

    for origin in [EVIL_ORIGIN, "http://localhost:3001", "null"] {
        let response = plain_client()
            .get(app.url("/api/healthchecker"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}: {:?}",
            response.headers()
        );
        assert!(
            varies_on_origin(&response),
            "{origin}: {:?}",
            response.headers()
        );
    }
}

#[tokio::test]
async fn responses_without_an_origin_still_vary_on_origin() {
    let app = spawn_app().await;

    for path in [
        "/api/healthchecker",
        "/api/users/me",
        "/.well-known/jwks.json",
    ] {
        let response = plain_client().get(app.url(path)).send().await.unwrap();
        assert!(
            varies_on_origin(&response),
            "{path}: {:?}",
            response.headers()
        );
    }
}

async fn preflight(app: &TestApp, origin: &str) -> Response {
    plain_client()
        .request(Method::OPTIONS, app.url("/api/auth/login"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_the_spa_origin_is_allowed() {
    let app = spawn_app().await;

    let response = preflight(&app, SPA_ORIGIN).await;

    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(SPA_ORIGIN)
    );
    assert_eq!(
        header(&response, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let methods = header(&response, "access-control-allow-methods")
        .expect("allow methods")
        .to_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = header(&response, "access-control-allow-headers")
        .expect("allow headers")
        .to_lowercase();
    assert!(headers.contains("content-type"), "{headers}");
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_allow_headers() {
    let app = spawn_app().await;

    let response = preflight(&app, EVIL_ORIGIN).await;

    assert!(
        !response.status().is_server_error(),
        "{}",
        response.status()
    );
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert!(
            response.headers().get(name).is_none(),
            "{name}: {:?}",
            response.headers()
        );
    }
}

#[tokio::test]
async fn requests_from_the_spa_the_service_itself_or_no_browser_pass_the_origin_check() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let own = format!("http://127.0.0.1:{}", app.port);
    let body = json!({"email": email, "password": PASSWORD});

    let cases: [(Option<&str>, Option<&str>); 4] = [
        (None, None),
        (Some(SPA_ORIGIN), None),
        (Some(own.as_str()), Some("same-origin")),
        (None, Some("same-site")),
    ];
    for (origin, fetch_site) in cases {
        let mut request = plain_client().post(app.url("/api/auth/login")).json(&body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "origin {origin:?}, sec-fetch-site {fetch_site:?}"
        );
    }
}

#[tokio::test]
async fn state_changing_requests_from_another_site_are_403_origin_forbidden() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let response = app.login(&email, PASSWORD).await;
    let session = session_from(&response);
    let cookie_header = format!(
        "access_token={}; refresh_token={}",
        session.access, session.refresh
    );
    let cross_site: [(&str, &str); 3] = [
        ("origin", EVIL_ORIGIN),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ];

    for (name, value) in cross_site {
        let requests = [
            plain_client()
                .post(app.url("/api/auth/register"))
                .json(&registration(&unique_email())),
            plain_client()
                .post(app.url("/api/auth/login"))
                .json(&json!({"email": email, "password": PASSWORD})),
            plain_client()
                .post(app.url("/api/auth/refresh"))
                .header("cookie", &cookie_header),
            plain_client()
                .get(app.url("/api/auth/refresh"))
                .header("cookie", &cookie_header),
            plain_client()
                .post(app.url("/api/auth/logout"))
                .header("cookie", &cookie_header),
            plain_client()
                .get(app.url("/api/auth/logout"))
                .header("cookie", &cookie_header),
        ];
        for request in requests {
            let response = request.header(name, value).send().await.unwrap();
            let what = format!(
                "{} {} with {name}: {value}",
                response.url().path(),
                response.status()
            );
            assert!(response.headers().get("set-cookie").is_none(), "{what}");
            let body = assert_client_error(response).await;
            assert_eq!(body["code"], "origin_forbidden", "{what}");
        }
    }
    assert_eq!(
        app.me_with(&session.access).await.status(),
        200,
        "the session survived"
    );
}

#[tokio::test]
async fn https_is_the_own_scheme_only_when_a_trusted_proxy_says_so() {
    let trusting = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let direct = spawn_app().await;

    for (app, expected) in [(&trusting, 201), (&direct, 403)] {
        let response = plain_client()
            .post(app.url("/api/auth/register"))
            .header("x-forwarded-proto", "https")
            .header("origin", format!("https://127.0.0.1:{}", app.port))
            .json(&registration(&unique_email()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
    }
}

#[tokio::test]
async fn reads_from_another_site_are_left_to_cors() {
    // A cross-site page may send the request, but CORS keeps it from reading the answer.
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;

    let response = plain_client()
        .get(app.url("/api/users/me"))
        .bearer_auth(&session.access)
        .header("origin", EVIL_ORIGIN)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------
// JWKS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_jwks_lists_exactly_the_access_key_that_signs_access_tokens() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let login = app.login(&email, PASSWORD).await;
    let session = session_from(&login);

    let response = app.get("/.well-known/jwks.json").await;

    assert_eq!(response.status(), 200);
    assert_json(&response);
    let body: Value = response.json().await.unwrap();
    let keys = body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{body}");
    let key = &keys[0];
    let names: BTreeSet<&str> = key
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["kid", "kty", "n", "e", "alg", "use"]),
        "no private parts: {key}"
    );
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(
        key["n"].as_str().is_some_and(|n| n.len() >= 342),
        "at least 2048 bits: {key}"
    );
    assert_eq!(key["e"], "AQAB");
    let access_kid = jsonwebtoken::decode_header(&session.access).unwrap().kid;
    assert_eq!(key["kid"].as_str(), access_kid.as_deref());
    let refresh_kid = jsonwebtoken::decode_header(&session.refresh).unwrap().kid;
    assert_ne!(key["kid"].as_str(), refresh_kid.as_deref());
}

#[tokio::test]
async fn the_jwks_verifies_access_tokens_and_no_refresh_token() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = session_from(&app.login(&email, PASSWORD).await);
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["rs256-auth"]);
    validation.set_issuer(&["rs256-auth"]);

    let access =
        jsonwebtoken::decode::<Value>(&session.access, &key, &validation).expect("access verifies");
    assert_eq!(access.claims["typ"], "access");
    assert!(jsonwebtoken::decode::<Value>(&session.refresh, &key, &validation).is_err());
}

/// `{"email":"gzip@example.com","password":"correct horse battery"}`, gzip-compressed.
const GZIPPED_LOGIN: &[u8] = &[
    31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 171, 86, 74, 205, 77, 204, 204, 81, 178, 82, 74, 175, 202, 44,
    112, 72, 173, 72, 204, 45, 200, 73, 213, 75, 206, 207, 85, 210, 81, 42, 72, 44, 46, 46, 207,
    47, 74, 1, 202, 38, 231, 23, 21, 165, 38, 151, 40, 100, 228, 23, 21, 167, 42, 36, 37, 150, 148,
    164, 22, 85, 42, 213, 2, 0, 52, 115, 236, 229, 63, 0, 0, 0,
];

#[tokio::test]
async fn a_compressed_body_is_never_inflated() {
    // Inflating bodies would let a few hundred bytes become megabytes before the 64 KiB
    // limit is checked; so a gzip body is just bytes that are not JSON.
    let app = spawn_app().await;
    let registered = app.register(&registration("gzip@example.com")).await;
    assert_eq!(registered.status(), 201);

    let response = plain_client()
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(GZIPPED_LOGIN)
        .send()
        .await
        .unwrap();

    assert_error(response, 400, "validation_failed").await;
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

#[tokio::test]
async fn huge_headers_get_a_4xx_and_the_service_keeps_serving() {
    let app = spawn_app().await;

    let huge_cookie = plain_client()
        .get(app.url("/api/users/me"))
        .header("cookie", format!("access_token={}", "a".repeat(20 * 1024)))
        .send()
        .await
        .unwrap();
    let over_the_parser_limit = plain_client()
        .post(app.url("/api/auth/login"))
        .header("x-padding", "p".repeat(128 * 1024))
        .json(&json!({"email": unique_email(), "password": PASSWORD}))
        .send()
        .await;

    // Under the HTTP parser's limit: our own answer (a token over 4 KiB is not parsed).
    assert_error(huge_cookie, 401, "token_invalid").await;
    // Over it: actix refuses before any handler (431), or drops the connection.
    if let Ok(response) = over_the_parser_limit {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    assert_eq!(app.get("/api/healthchecker").await.status(), 200);
}
