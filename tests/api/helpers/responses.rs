//! What an answer must look like: the failure envelope, a session's revoked tokens, headers,
//! JSON keys, the parts of a token, and metrics.

use std::collections::BTreeSet;

use reqwest::Response;
use serde_json::Value;

use super::{Session, TestApp, plain_client};

/// The `WWW-Authenticate` of a 401 for a token that is invalid, expired or revoked.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer error="invalid_token""#;

/// Both tokens of `session` are refused as revoked: by the guard and by refresh.
pub async fn assert_session_ended(app: &TestApp, session: &Session) {
    assert_error(app.me_with(&session.access).await, 401, "session_revoked").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "session_revoked",
    )
    .await;
}

/// Asserts the failure envelope and returns the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status; headers {:?}",
        response.headers()
    );
    assert_json(&response);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], "fail", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

pub fn assert_json(response: &Response) {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}"
    );
}

pub fn www_authenticate(response: &Response) -> Option<String> {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub fn assert_no_store(response: &Response) {
    assert_eq!(
        header(response, "cache-control").as_deref(),
        Some("no-store")
    );
}

/// The keys of a JSON object, to compare with `set_of`.
pub fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

/// The set of `names`.
pub fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The fields named in a validation failure's `errors`.
pub fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

/// The JSON of one part (0: header, 1: claims) of a compact JWS, unverified.
fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let segment = token.split('.').nth(index).expect("JWT segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

pub fn jose_header(token: &str) -> Value {
    jwt_part(token, 0)
}

pub fn claims_of(token: &str) -> Value {
    jwt_part(token, 1)
}

/// The Prometheus text at `url` (a `/metrics`).
pub async fn metrics_text(url: &str) -> String {
    let response = plain_client().get(url).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let kind = header(&response, "content-type").unwrap_or_default();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.expect("text")
}

/// The value of the sample `name` whose labels are exactly `labels` (in any order), if any.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut found: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            found.sort();
            (metric == name && found == wanted).then(|| value.parse().ok())?
        })
}

/// Asserts a 400 `validation_failed` whose `errors` name exactly `fields`, in that order;
/// returns the body. `what` names the case in a failure.
pub async fn assert_invalid_fields(response: Response, fields: &[&str], what: &str) -> Value {
    let error = assert_error(response, 400, "validation_failed").await;
    let named: Vec<&str> = error["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(named, fields, "{what}: {error}");
    error
}
