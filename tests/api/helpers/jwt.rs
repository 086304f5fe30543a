//! Tokens made and checked by hand, for the token tests: signing claims, the JWKS, a login
//! that checks its body against its cookie, and a matrix of one request per token, which
//! reports every row that failed at once.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::{PASSWORD, Session, TestApp, plain_client, session_from, www_authenticate};

/// `INVALID_TOKEN_CHALLENGE`, by the name the token tests use.
pub const INVALID_TOKEN: &str = super::INVALID_TOKEN_CHALLENGE;

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RS256 over `claims` with a PEM private key and an optional `kid`.
pub fn sign_rs256(claims: &Value, private_pem: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(private_pem).expect("RSA private key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

pub async fn jwks(app: &TestApp) -> JwkSet {
    let response = plain_client()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JWK Set")
}

/// Logs a new user in and returns the tokens of the login response (body and cookies).
pub async fn login(app: &TestApp) -> Session {
    let email = app.register_user().await;
    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let session = session_from(&response);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body["access_token"],
        session.access.as_str(),
        "body and cookie carry the same access token"
    );
    session
}

#[derive(Clone, Copy)]
pub enum Endpoint {
    Me,
    Refresh,
}

pub enum Expect {
    Success,
    /// 401 with this code and the matching `WWW-Authenticate`.
    Unauthorized(&'static str),
}

pub struct Row {
    label: &'static str,
    endpoint: Endpoint,
    authorization: HeaderValue,
    expect: Expect,
}

pub fn row(label: &'static str, token: &str, expect: Expect) -> Row {
    row_bytes(
        label,
        Endpoint::Me,
        format!("Bearer {token}").as_bytes(),
        expect,
    )
}

pub fn row_bytes(
    label: &'static str,
    endpoint: Endpoint,
    authorization: &[u8],
    expect: Expect,
) -> Row {
    let authorization =
        HeaderValue::from_bytes(authorization).expect("a header value reqwest can send");
    Row {
        label,
        endpoint,
        authorization,
        expect,
    }
}

/// What a 401 must carry for `code` (RFC 6750 §3.1, as docs/api.md words it).
pub fn expected_www_authenticate(code: &str) -> &'static str {
    if code == "not_logged_in" {
        "Bearer"
    } else {
        INVALID_TOKEN
    }
}

/// Sends one row's request; `Err` describes how the answer differs from the row's.
pub async fn check(app: &TestApp, row: &Row) -> Result<(), String> {
    let client = plain_client();
    let request = match row.endpoint {
        Endpoint::Me => client.get(app.url("/api/users/me")),
        Endpoint::Refresh => client.post(app.url("/api/auth/refresh")),
    };
    let response = request
        .header(AUTHORIZATION, row.authorization.clone())
        .send()
        .await
        .map_err(|e| format!("{}: request failed: {e}", row.label))?;
    let status = response.status().as_u16();
    let www = www_authenticate(&response);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let ok = match row.expect {
        Expect::Success => status == 200 && body["status"] == "success",
        Expect::Unauthorized(code) => {
            status == 401
                && content_type.starts_with("application/json")
                && body["status"] == "fail"
                && body["code"] == code
                && www.as_deref() == Some(expected_www_authenticate(code))
        }
    };
    if ok {
        return Ok(());
    }
    let wanted = match row.expect {
        Expect::Success => "200 success".to_owned(),
        Expect::Unauthorized(code) => format!(
            "401 {code} with WWW-Authenticate: {}",
            expected_www_authenticate(code)
        ),
    };
    Err(format!(
        "{}: wanted {wanted}; got {status}, WWW-Authenticate {www:?}, body {text}",
        row.label
    ))
}

/// Runs every row and reports all the rows that failed at once.
pub async fn run_matrix(app: &TestApp, rows: &[Row]) {
    let mut failures = Vec::new();
    for row in rows {
        if let Err(failure) = check(app, row).await {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
