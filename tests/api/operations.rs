//! What operations rely on: `/api/livez`, `/metrics` (on the main port or `METRICS_PORT`), and
//! a stop on SIGTERM or SIGINT that lets requests in flight finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::binary::Binary;
use crate::helpers::*;

#[tokio::test]
async fn livez_answers_success_and_nothing_else() {
    let app = spawn_app().await;

    let response = app.get("/api/livez").await;

    assert_eq!(response.status(), 200);
    assert_json(&response);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "success"})
    );
    let post = app.post_json("/api/livez", &json!({})).await;
    assert_error(post, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_logins_and_refreshes_by_outcome() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;
    assert_eq!(app.login(&email, "a wrong password").await.status(), 401);
    assert_eq!(app.me_with(&session.access).await.status(), 200);
    assert_eq!(app.refresh_with(&session.refresh).await.status(), 200);
    // The same token again, within the grace window: the same successors.
    assert_eq!(app.refresh_with(&session.refresh).await.status(), 200);
    assert_eq!(app.get("/no/such/path/eyJhbGciOi").await.status(), 404);

    let text = metrics_text(&app.url("/metrics")).await;

    let requests = |route: &str, method: &str, status: &str| {
        metric(
            &text,
            "http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/api/auth/register", "POST", "201"), Some(1.0));
    assert_eq!(requests("/api/auth/login", "POST", "200"), Some(1.0));
    assert_eq!(requests("/api/auth/login", "POST", "401"), Some(1.0));
    assert_eq!(requests("/api/users/me", "GET", "200"), Some(1.0));
    assert_eq!(requests("/api/auth/refresh", "POST", "200"), Some(2.0));
    assert_eq!(requests("unmatched", "GET", "404"), Some(1.0));
    assert!(!text.contains("/no/such/path"), "a path is never a label");
    let login = |outcome| metric(&text, "auth_logins_total", &[("outcome", outcome)]);
    assert_eq!(login("success"), Some(1.0));
    assert_eq!(login("invalid_credentials"), Some(1.0));
    let refresh = |outcome| metric(&text, "auth_refreshes_total", &[("outcome", outcome)]);
    assert_eq!(refresh("rotated"), Some(1.0));
    assert_eq!(refresh("in_grace"), Some(1.0));
    let latency = metric(
        &text,
        "http_request_duration_seconds_count",
        &[
            ("route", "/api/users/me"),
            ("method", "GET"),
            ("status", "200"),
        ],
    );
    assert_eq!(latency, Some(1.0));
    // register, and two logins: three hashes went through the argon2 queue.
    assert_eq!(
        metric(&text, "argon2_queue_wait_seconds_count", &[]),
        Some(3.0)
    );
    assert_eq!(metric(&text, "argon2_queue_depth", &[]), Some(0.0));
}

#[tokio::test]
async fn metrics_count_reuse_revocation_and_rate_limit_refusals() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s"), ("LOGIN_ATTEMPTS_LIMIT", "1")]).await;
    let (email, session) = app.logged_in_user().await;
    let next = session_from(&app.refresh_with(&session.refresh).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "refresh_reused",
    )
    .await;
    // The successor died with the session.
    assert_error(
        app.refresh_with(&next.refresh).await,
        401,
        "session_revoked",
    )
    .await;
    assert_error(app.refresh_with("not.a.token").await, 401, "token_invalid").await;
    assert_eq!(app.login(&email, "a wrong password").await.status(), 401);
    assert_error(
        app.login(&email, "a wrong password").await,
        429,
        "rate_limited",
    )
    .await;

    let text = metrics_text(&app.url("/metrics")).await;

    let refresh = |outcome| metric(&text, "auth_refreshes_total", &[("outcome", outcome)]);
    assert_eq!(refresh("rotated"), Some(1.0));
    assert_eq!(refresh("reused"), Some(1.0));
    assert_eq!(refresh("revoked"), Some(1.0));
    assert_eq!(refresh("invalid"), Some(1.0));
    let login = |outcome| metric(&text, "auth_logins_total", &[("outcome", outcome)]);
    assert_eq!(login("rate_limited"), Some(1.0));
    let refused = [("route", "/api/auth/login")];
    assert_eq!(
        metric(&text, "auth_rate_limited_total", &refused),
        Some(1.0)
    );
}

#[tokio::test]
async fn with_metrics_port_set_metrics_are_served_there_and_not_on_the_main_port() {
    let app = spawn_app_with(&[("METRICS_PORT", "0")]).await;
    assert_eq!(app.get("/api/livez").await.status(), 200);
    let port = app.metrics_port.expect("a metrics port");
    assert_ne!(port, app.port);

    let main = app.get("/metrics").await;
    let text = metrics_text(&format!("http://127.0.0.1:{port}/metrics")).await;

    assert_error(main, 404, "not_found").await;
    let livez = [
        ("route", "/api/livez"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(metric(&text, "http_requests_total", &livez), Some(1.0));
    let other = plain_client()
        .get(format!("http://127.0.0.1:{port}/api/livez"))
        .send()
        .await
        .unwrap();
    assert_error(other, 404, "not_found").await;
}

/// Sends a login's headers and half its body, so that the request is in flight until
/// `finish` sends the rest.
struct SlowLogin {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowLogin {
    fn start(port: u16) -> Self {
        let body = json!({"email": "nobody@example.com", "password": PASSWORD}).to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let head = format!(
            "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.as_bytes().split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).expect("head");
        stream.write_all(first).expect("half a body");
        SlowLogin {
            stream,
            rest: rest.to_vec(),
        }
    }

    fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).expect("the rest");
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).expect("an answer");
        answer
    }
}

#[tokio::test]
async fn sigterm_stops_accepting_finishes_the_request_in_flight_and_exits_0() {
    let dir = TempDir::new();
    let mut binary = Binary::start(&dir).await;
    let slow = SlowLogin::start(binary.port());
    tokio::time::sleep(Duration::from_millis(200)).await;

    binary.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let refused = plain_client().get(binary.url("/api/livez")).send().await;
    assert!(refused.is_err(), "no new connections: {refused:?}");
    let answer = tokio::task::spawn_blocking(move || slow.finish())
        .await
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the request in flight is answered: {answer}"
    );
    assert!(answer.contains("invalid_credentials"), "{answer}");
    let status = binary.exit_status(Duration::from_secs(10)).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{:?}",
        binary.log_lines()
    );
    let log = binary.log_lines().join("\n");
    assert!(log.contains("SIGTERM"), "{log}");
}

#[tokio::test]
async fn sigint_stops_the_service_with_exit_0() {
    let dir = TempDir::new();
    let mut binary = Binary::start(&dir).await;

    binary.signal(libc::SIGINT);

    let status = binary.exit_status(Duration::from_secs(10)).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{:?}",
        binary.log_lines()
    );
}
