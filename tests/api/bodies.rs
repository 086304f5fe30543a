//! Request bodies and headers that are not what they should be: no JSON content type, JSON
//! that is not an object or nests deeply, the 64 KiB limit (chunked or not), NUL and
//! non-UTF-8 bytes, a compressed body, huge headers. Each gets a 4xx JSON answer, never a 5xx.

use std::time::Duration;

use reqwest::Response;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

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
