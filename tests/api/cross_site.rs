//! Cross-site requests: CORS answers `CLIENT_ORIGIN` only, with credentials; the origin
//! check refuses register, login, refresh and logout from another site (403
//! `origin_forbidden`), and leaves reads to CORS.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

const EVIL_ORIGIN: &str = "https://evil.example";

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
