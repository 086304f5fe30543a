//! Token attacks against the deserialize-user guard, and the shape of issued tokens.
//!
//! Forged tokens carry the claims of a live session (its `sub`, `sid` and `token_uuid`), so
//! that the defect under test is the only thing wrong with them: a service that skipped the
//! check would answer 200, not some other 401.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RS256 over `claims` with a PEM private key and an optional `kid`.
fn sign_rs256(claims: &Value, private_pem: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(private_pem).expect("RSA private key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// Another RSA algorithm over `claims`, with the given key and `kid`.
fn sign_with(algorithm: Algorithm, claims: &Value, private_pem: &[u8], kid: &str) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(private_pem).expect("RSA private key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// The claims without one field.
fn without(claims: &Value, name: &str) -> Value {
    let mut claims = claims.clone();
    claims.as_object_mut().expect("object").remove(name);
    claims
}

/// The claims with some fields replaced.
fn with(claims: &Value, changes: &[(&str, Value)]) -> Value {
    let mut claims = claims.clone();
    for (name, value) in changes {
        claims[*name] = value.clone();
    }
    claims
}

async fn jwks(app: &TestApp) -> JwkSet {
    let response = plain_client()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JWK Set")
}

/// The `kid` of the only access key the JWKS lists.
async fn access_kid(app: &TestApp) -> String {
    let set = jwks(app).await;
    assert_eq!(set.keys.len(), 1, "one access key in the JWKS");
    set.keys[0].common.key_id.clone().expect("kid in the JWKS")
}

/// Logs a new user in and returns the tokens of the login response (body and cookies).
async fn login(app: &TestApp) -> Session {
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
enum Endpoint {
    Me,
    Refresh,
}

enum Expect {
    Success,
    /// 401 with this code and the matching `WWW-Authenticate`.
    Unauthorized(&'static str),
}

struct Row {
    label: &'static str,
    endpoint: Endpoint,
    authorization: HeaderValue,
    expect: Expect,
}

fn row(label: &'static str, token: &str, expect: Expect) -> Row {
    row_bytes(
        label,
        Endpoint::Me,
        format!("Bearer {token}").as_bytes(),
        expect,
    )
}

fn row_bytes(label: &'static str, endpoint: Endpoint, authorization: &[u8], expect: Expect) -> Row {
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
fn expected_www_authenticate(code: &str) -> &'static str {
    if code == "not_logged_in" {
        "Bearer"
    } else {
        INVALID_TOKEN
    }
}

/// Sends one row's request; `Err` describes how the answer differs from the row's.
async fn check(app: &TestApp, row: &Row) -> Result<(), String> {
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
async fn run_matrix(app: &TestApp, rows: &[Row]) {
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

#[tokio::test]
async fn forged_and_misused_tokens_are_refused() {
    let app = spawn_app().await;
    let kid = access_kid(&app).await;
    let session = login(&app).await;
    let live = claims_of(&session.access);
    let access_private = read_key("access_private");
    let access_public = read_key("access_public");
    let refresh_private = read_key("refresh_private");
    let foreign = rs256_auth::service::keygen::generate_pair(2048).expect("foreign key");
    let refresh_kid = jose_header(&session.refresh)["kid"]
        .as_str()
        .expect("refresh kid")
        .to_owned();
    let t = now();

    let alg_none = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64_json(&live)
    );
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &live, &EncodingKey::from_secret(&access_public))
            .expect("HS256")
    };
    let tampered = |changes: &[(&str, Value)]| {
        let mut segments = session.access.split('.');
        let (header, _, signature) = (
            segments.next().unwrap(),
            segments.next(),
            segments.next().unwrap(),
        );
        format!("{header}.{}.{signature}", b64_json(&with(&live, changes)))
    };
    let garbage = "x".repeat(10 * 1024);

    let rows = vec![
        row(
            "the login's access token (control)",
            &session.access,
            Expect::Success,
        ),
        row(
            "the live claims re-signed with the access key and kid (control)",
            &sign_rs256(&live, &access_private, Some(&kid)),
            Expect::Success,
        ),
        row(
            "alg none, real kid, empty signature",
            &alg_none,
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "HS256 keyed with the access public key PEM",
            &hs256,
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "PS256 with the access key and kid",
            &sign_with(Algorithm::PS256, &live, &access_private, &kid),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "RS512 with the access key and kid",
            &sign_with(Algorithm::RS512, &live, &access_private, &kid),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "no exp claim (a token that never expires)",
            &sign_rs256(&without(&live, "exp"), &access_private, Some(&kid)),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "no typ claim",
            &sign_rs256(&without(&live, "typ"), &access_private, Some(&kid)),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "RS256 with a foreign key and the real kid",
            &sign_rs256(&live, foreign.private_pem.as_bytes(), Some(&kid)),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "RS256 with the access key and an unknown kid",
            &sign_rs256(&live, &access_private, Some("not-a-known-kid")),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "RS256 with the access key and no kid",
            &sign_rs256(&live, &access_private, None),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "tampered sub, original signature",
            &tampered(&[("sub", json!(Uuid::new_v4()))]),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "tampered exp (an hour later), original signature",
            &tampered(&[("exp", json!(live["exp"].as_i64().unwrap() + 3600))]),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "wrong iss",
            &sign_rs256(
                &with(&live, &[("iss", json!("someone-else"))]),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "wrong aud",
            &sign_rs256(
                &with(&live, &[("aud", json!("another-api"))]),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "typ refresh signed with the access key",
            &sign_rs256(
                &with(&live, &[("typ", json!("refresh"))]),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "the login's refresh token as an access token",
            &session.refresh,
            Expect::Unauthorized("token_invalid"),
        ),
        row_bytes(
            "the login's access token presented to refresh",
            Endpoint::Refresh,
            format!("Bearer {}", session.access).as_bytes(),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "access claims signed with the refresh key and refresh kid",
            &sign_rs256(&live, &refresh_private, Some(&refresh_kid)),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "expired 10 s ago",
            &sign_rs256(
                &with(
                    &live,
                    &[
                        ("iat", json!(t - 100)),
                        ("nbf", json!(t - 100)),
                        ("exp", json!(t - 10)),
                    ],
                ),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("token_expired"),
        ),
        row(
            "expired 2 s ago (expiry is exact; at most 1 s late would be allowed)",
            &sign_rs256(
                &with(
                    &live,
                    &[
                        ("iat", json!(t - 100)),
                        ("nbf", json!(t - 100)),
                        ("exp", json!(t - 2)),
                    ],
                ),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("token_expired"),
        ),
        row(
            "nbf 30 s in the future",
            &sign_rs256(
                &with(&live, &[("nbf", json!(t + 30))]),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "malformed: abc",
            "abc",
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "malformed: a.b.c",
            "a.b.c",
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "malformed: 10 KiB of garbage",
            &garbage,
            Expect::Unauthorized("token_invalid"),
        ),
        row(
            "malformed: a real token with its signature cut off",
            session.access.rsplit_once('.').unwrap().0,
            Expect::Unauthorized("token_invalid"),
        ),
        row_bytes(
            "empty Bearer: no token",
            Endpoint::Me,
            b"Bearer ",
            Expect::Unauthorized("not_logged_in"),
        ),
        row_bytes(
            "bare Bearer: no token",
            Endpoint::Me,
            b"Bearer",
            Expect::Unauthorized("not_logged_in"),
        ),
        row(
            "valid signature, unknown token_uuid",
            &sign_rs256(
                &with(&live, &[("token_uuid", json!(Uuid::new_v4()))]),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("session_revoked"),
        ),
        row(
            "valid signature, unknown sid",
            &sign_rs256(
                &with(&live, &[("sid", json!(Uuid::new_v4()))]),
                &access_private,
                Some(&kid),
            ),
            Expect::Unauthorized("session_revoked"),
        ),
    ];
    run_matrix(&app, &rows).await;

    // Nothing above hurt the session: the control still passes.
    let me = app.me_with(&session.access).await;
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn an_access_token_expires_end_to_end() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_EXPIRED_IN", "1s")]).await;
    let (_, session) = app.logged_in_user().await;
    let claims = claims_of(&session.access);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1
    );

    // Until the wall clock reads exp + 2 s, past any lateness the service may allow (1 s);
    // expiry.rs pins the exact instant.
    sleep_until_unix(claims["exp"].as_i64().unwrap() + 2).await;
    let response = app.me_with(&session.access).await;
    assert_eq!(www_authenticate(&response).as_deref(), Some(INVALID_TOKEN));
    assert_error(response, 401, "token_expired").await;
}

/// Sends raw bytes as the `Authorization` value over a bare TCP connection (reqwest refuses
/// control characters) and returns the status line and the rest of the response.
async fn raw_me(app: &TestApp, authorization: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let mut request =
        b"GET /api/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: "
            .to_vec();
    request.extend_from_slice(authorization);
    request.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&request).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    (status.to_owned(), rest.to_owned())
}

#[tokio::test]
async fn a_nul_byte_in_the_authorization_header_is_refused_without_harm() {
    let app = spawn_app().await;
    let session = login(&app).await;
    let mut value = format!("Bearer {}", session.access).into_bytes();
    value.insert(20, 0);
    let (status, rest) = raw_me(&app, &value).await;
    // A NUL is not a legal field-value byte (RFC 9110 §5.5): the HTTP layer may refuse the
    // request outright (400) or the guard may (401); it is never let through, never a 5xx.
    assert!(
        status.starts_with("HTTP/1.1 400") || status.starts_with("HTTP/1.1 401"),
        "{status}\r\n{rest}"
    );
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(session.access.as_bytes());
    let (status, _) = raw_me(&app, &value).await;
    assert_eq!(
        status, "HTTP/1.1 200 OK",
        "the service still answers afterwards"
    );
}

#[tokio::test]

async fn a_token_with_a_non_ascii_char_is_invalid() {
    let app = spawn_app().await;
    let session = login(&app).await;
    let mut value = format!("Bearer {}", session.access).into_bytes();
    value.extend_from_slice("é".as_bytes());
    let rows = [row_bytes(
        "a real token plus é",
        Endpoint::Me,
        &value,
        Expect::Unauthorized("token_invalid"),
    )];
    run_matrix(&app, &rows).await;
}

#[tokio::test]
async fn issued_tokens_have_rs256_headers_with_distinct_kids() {
    let app = spawn_app().await;
    let session = login(&app).await;
    let raw_jwks = get_json(&app.url("/.well-known/jwks.json")).await;
    let keys = raw_jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{raw_jwks}");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["use"], "sig");
    let jwks_kid = keys[0]["kid"].as_str().expect("kid");

    let access = jose_header(&session.access);
    assert_eq!(access["alg"], "RS256", "{access}");
    assert_eq!(access["typ"], "JWT", "{access}");
    assert_eq!(access["kid"], jwks_kid, "{access}");

    let refresh = jose_header(&session.refresh);
    assert_eq!(refresh["alg"], "RS256", "{refresh}");
    assert_eq!(refresh["typ"], "JWT", "{refresh}");
    let refresh_kid = refresh["kid"].as_str().expect("refresh kid");
    assert!(!refresh_kid.is_empty());
    assert_ne!(
        refresh_kid, jwks_kid,
        "access and refresh are signed with different keys"
    );
}

/// Checks the claim set of an issued token; returns it.
fn assert_claims(token: &str, typ: &str, lifetime_secs: i64, iss: &str, aud: &str) -> Value {
    let claims = claims_of(token);
    let mut names: Vec<&str> = claims
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    let mut expected = vec![
        "aud",
        "exp",
        "iat",
        "iss",
        "nbf",
        "sid",
        "sub",
        "token_uuid",
        "typ",
    ];
    // Access tokens carry the user's role too; refresh tokens do not.
    if typ == "access" {
        expected.insert(5, "role");
        assert_eq!(claims["role"], "user", "{claims}");
    }
    assert_eq!(names, expected, "{claims}");
    assert_eq!(claims["typ"], typ, "{claims}");
    assert_eq!(claims["iss"], iss, "{claims}");
    assert_eq!(claims["aud"], aud, "{claims}");
    for uuid in ["sub", "sid", "token_uuid"] {
        assert!(
            claims[uuid]
                .as_str()
                .is_some_and(|v| Uuid::parse_str(v).is_ok()),
            "{uuid}: {claims}"
        );
    }
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["nbf"].as_i64().expect("nbf"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, lifetime_secs, "{claims}");
    assert!(nbf <= iat, "usable as soon as issued: {claims}");
    assert!(
        (iat - now()).abs() < 60,
        "iat is the time of issue: {claims}"
    );
    claims
}

#[tokio::test]
async fn issued_claims_are_exactly_the_documented_set() {
    let app = spawn_app().await;
    let session = login(&app).await;
    let access = assert_claims(
        &session.access,
        "access",
        15 * 60,
        "rs256-auth",
        "rs256-auth",
    );
    let refresh = assert_claims(
        &session.refresh,
        "refresh",
        60 * 60,
        "rs256-auth",
        "rs256-auth",
    );

    let me: Value = app.me_with(&session.access).await.json().await.unwrap();
    assert_eq!(
        access["sub"], me["data"]["user"]["id"],
        "sub is the user id"
    );
    assert_eq!(refresh["sub"], access["sub"]);
    assert_eq!(refresh["sid"], access["sid"], "one login, one session");
    assert_ne!(
        refresh["token_uuid"], access["token_uuid"],
        "each token has its own id"
    );
    assert_ne!(access["token_uuid"], access["sid"]);

    // Another login is another session.
    let other = claims_of(&login(&app).await.access);
    assert_ne!(other["sid"], access["sid"]);
}

#[tokio::test]
async fn issuer_and_audience_come_from_the_settings() {
    let (iss, aud) = ("https://issuer.example.test", "spa.example.test");
    let custom = spawn_app_with(&[
        ("JWT_ISSUER", iss),
        ("JWT_AUDIENCE", aud),
        ("REFRESH_TOKEN_EXPIRED_IN", "2h"),
    ])
    .await;
    let session = login(&custom).await;
    assert_claims(&session.access, "access", 15 * 60, iss, aud);
    assert_claims(&session.refresh, "refresh", 2 * 3600, iss, aud);
    assert_eq!(custom.me_with(&session.access).await.status(), 200);

    // Same keys, default iss and aud: a token of the default app is not one of this app's.
    let default = spawn_app().await;
    let foreign = login(&default).await;
    let rows = [row(
        "a token for another issuer and audience",
        &foreign.access,
        Expect::Unauthorized("token_invalid"),
    )];
    run_matrix(&custom, &rows).await;
}

#[tokio::test]
async fn only_access_tokens_verify_with_the_jwks() {
    let app = spawn_app().await;
    let session = login(&app).await;
    let set = jwks(&app).await;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["rs256-auth"]);
    validation.set_audience(&["rs256-auth"]);
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).expect("RSA JWK");
        jsonwebtoken::decode::<Value>(&session.access, &key, &validation)
            .expect("the access token verifies");
        let refused = jsonwebtoken::decode::<Value>(&session.refresh, &key, &validation)
            .expect_err("the refresh token must not verify with a JWKS key");
        assert_eq!(
            *refused.kind(),
            jsonwebtoken::errors::ErrorKind::InvalidSignature
        );
    }
}

// ---- key rotation -------------------------------------------------------------------------

fn b64_key(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(read_key(name))
}

/// The RFC 7638 `kid` of a public key PEM, as the service names it.
fn kid_of(public_pem: &[u8]) -> String {
    let key = DecodingKey::from_rsa_pem(public_pem).expect("RSA public key");
    let jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).expect("JWK");
    jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .expect("thumbprint")
}

fn kid_in(token: &str) -> String {
    jose_header(token)["kid"].as_str().expect("kid").to_owned()
}

/// The `kid`s the JWKS lists, in its order.
async fn jwks_kids(base: &str) -> Vec<String> {
    let response = plain_client()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let set: Value = response.json().await.expect("JWK Set");
    let keys = set["keys"].as_array().expect("keys");
    for key in keys {
        assert_eq!(key["kty"], "RSA", "{key}");
        assert_eq!(key["alg"], "RS256", "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key["n"].is_string() && key["e"].is_string(), "{key}");
    }
    keys.iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// An app that signs with the dev keys and also accepts the next pair of each kind.
async fn spawn_app_accepting_next_keys() -> TestApp {
    spawn_app_with(&[
        (
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS",
            &b64_key("access_next_public"),
        ),
        (
            "REFRESH_TOKEN_EXTRA_PUBLIC_KEYS",
            &b64_key("refresh_next_public"),
        ),
    ])
    .await
}

/// Owned settings as the `(name, value)` pairs `sibling` takes.
fn refs<'a>(settings: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Refreshes at `base`, which must succeed; the new tokens.
async fn refreshed_at(base: &str, refresh: &str) -> Session {
    let response = refresh_at(base, refresh).await;
    assert_eq!(response.status(), 200, "refresh at {base}");
    session_from(&response)
}

/// Settings for signing with the `next` dev pairs of both kinds.
fn signing_with_next_keys() -> Vec<(&'static str, String)> {
    vec![
        (
            "ACCESS_TOKEN_PRIVATE_KEY_FILE",
            key_path("access_next_private"),
        ),
        (
            "ACCESS_TOKEN_PUBLIC_KEY_FILE",
            key_path("access_next_public"),
        ),
        (
            "REFRESH_TOKEN_PRIVATE_KEY_FILE",
            key_path("refresh_next_private"),
        ),
        (
            "REFRESH_TOKEN_PUBLIC_KEY_FILE",
            key_path("refresh_next_public"),
        ),
    ]
}

#[tokio::test]
async fn keys_rotate_as_keys_readme_says_with_no_logout() {
    let old_access_kid = kid_of(&read_key("access_public"));
    let old_refresh_kid = kid_of(&read_key("refresh_public"));
    let next_access_kid = kid_of(&read_key("access_next_public"));
    let next_refresh_kid = kid_of(&read_key("refresh_next_public"));

    // keys/README.md step 2, publish: every instance accepts the next public keys, and still signs
    // with the old keys.
    let published = spawn_app_accepting_next_keys().await;
    assert_eq!(
        jwks_kids(&published.address).await,
        [old_access_kid.clone(), next_access_kid.clone()]
    );
    let refreshed_later = login(&published).await;
    let never_refreshed = login(&published).await;
    assert_eq!(kid_in(&refreshed_later.access), old_access_kid);
    assert_eq!(kid_in(&refreshed_later.refresh), old_refresh_kid);

    // Step 3, switch: sign with the next keys; the old public keys verify as extras.
    let mut switched_settings = signing_with_next_keys();
    switched_settings.push(("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", b64_key("access_public")));
    switched_settings.push(("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", b64_key("refresh_public")));
    let switched = published.sibling(&refs(&switched_settings)).await;
    assert_eq!(
        jwks_kids(&switched).await,
        [next_access_kid.clone(), old_access_kid.clone()],
        "the signing key first"
    );
    assert_eq!(
        me_at(&switched, &refreshed_later.access).await.status(),
        200
    );
    let rotated = refreshed_at(&switched, &refreshed_later.refresh).await;
    assert_eq!(kid_in(&rotated.access), next_access_kid);
    assert_eq!(kid_in(&rotated.refresh), next_refresh_kid);
    assert_eq!(me_at(&switched, &rotated.access).await.status(), 200);

    // Mid-restart, an instance not yet switched accepts what a switched one signs, both kinds.
    assert_eq!(
        me_at(&published.address, &rotated.access).await.status(),
        200
    );
    let back_on_published = refreshed_at(&published.address, &rotated.refresh).await;
    assert_eq!(kid_in(&back_on_published.access), old_access_kid);
    let switched_again = refreshed_at(&switched, &back_on_published.refresh).await;

    // Step 4, retire: the old public keys are removed. (Here before their tokens expire, to
    // show that they are really gone.)
    let retired = published.sibling(&refs(&signing_with_next_keys())).await;
    assert_eq!(jwks_kids(&retired).await, [next_access_kid]);
    assert_eq!(me_at(&retired, &switched_again.access).await.status(), 200);
    refreshed_at(&retired, &switched_again.refresh).await;
    // A live session of the old keys, still accepted where they are extras, is refused here.
    assert_eq!(
        me_at(&switched, &never_refreshed.access).await.status(),
        200
    );
    assert_error(
        me_at(&retired, &never_refreshed.access).await,
        401,
        "token_invalid",
    )
    .await;
    assert_error(
        refresh_at(&retired, &never_refreshed.refresh).await,
        401,
        "token_invalid",
    )
    .await;
}

/// The live claims of `token`, signed again with another key under its `kid`.
fn resigned(token: &str, private_name: &str, public_name: &str) -> String {
    sign_rs256(
        &claims_of(token),
        &read_key(private_name),
        Some(&kid_of(&read_key(public_name))),
    )
}

#[tokio::test]
async fn the_jwks_lists_every_access_key_current_first_and_no_refresh_key() {
    let app = spawn_app_accepting_next_keys().await;
    let session = login(&app).await;
    let kids = jwks_kids(&app.address).await;
    assert_eq!(
        kids,
        [
            kid_of(&read_key("access_public")),
            kid_of(&read_key("access_next_public"))
        ]
    );
    assert_eq!(kids[0], kid_in(&session.access), "the signing key first");
    for refresh_kid in [
        kid_in(&session.refresh),
        kid_of(&read_key("refresh_next_public")),
    ] {
        assert!(!kids.contains(&refresh_kid), "{refresh_kid} in {kids:?}");
    }
    // No JWKS key verifies the refresh token.
    let set = jwks(&app).await;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["rs256-auth"]);
    validation.set_audience(&["rs256-auth"]);
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).expect("RSA JWK");
        assert!(jsonwebtoken::decode::<Value>(&session.refresh, &key, &validation).is_err());
    }

    let rows = [
        row(
            "access claims signed with the extra access key",
            &resigned(&session.access, "access_next_private", "access_next_public"),
            Expect::Success,
        ),
        row(
            "access claims signed with the extra refresh key",
            &resigned(
                &session.access,
                "refresh_next_private",
                "refresh_next_public",
            ),
            Expect::Unauthorized("token_invalid"),
        ),
        row_bytes(
            "refresh claims signed with the extra access key, to refresh",
            Endpoint::Refresh,
            format!(
                "Bearer {}",
                resigned(
                    &session.refresh,
                    "access_next_private",
                    "access_next_public"
                )
            )
            .as_bytes(),
            Expect::Unauthorized("token_invalid"),
        ),
        row_bytes(
            "refresh claims signed with the extra refresh key, to refresh",
            Endpoint::Refresh,
            format!(
                "Bearer {}",
                resigned(
                    &session.refresh,
                    "refresh_next_private",
                    "refresh_next_public"
                )
            )
            .as_bytes(),
            Expect::Success,
        ),
    ];
    run_matrix(&app, &rows).await;
}

#[tokio::test]
async fn extra_keys_from_a_directory_merge_with_the_list() {
    let dir = TempDir::new();
    let (first, second) = (
        rs256_auth::service::keygen::generate_pair(2048).expect("key"),
        rs256_auth::service::keygen::generate_pair(2048).expect("key"),
    );
    let write = |name: &str, contents: &[u8]| {
        std::fs::write(dir.path().join(name), contents).expect("write")
    };
    write("b.pem", second.public_pem.as_bytes());
    write("a.pem", first.public_pem.as_bytes());
    // The current key again: accepted, listed once.
    write("current.pem", &read_key("access_public"));
    write("README.txt", b"not a key, and not a .pem: ignored");
    write("a.pem.bak", b"not a .pem either");
    write(".hidden.pem", b"hidden, as the shell's *.pem would skip it");
    std::fs::create_dir(dir.path().join("old")).expect("subfolder");
    let app = spawn_app_with(&[
        (
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS",
            &b64_key("access_next_public"),
        ),
        (
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR",
            &dir.path().to_string_lossy(),
        ),
    ])
    .await;
    assert_eq!(
        jwks_kids(&app.address).await,
        [
            kid_of(&read_key("access_public")),
            kid_of(&read_key("access_next_public")),
            kid_of(first.public_pem.as_bytes()),
            kid_of(second.public_pem.as_bytes()),
        ],
        "current, the list, then the folder by file name"
    );
    let session = login(&app).await;
    let live = claims_of(&session.access);
    let signed_by = |pair: &rs256_auth::service::keygen::PemPair| {
        sign_rs256(
            &live,
            pair.private_pem.as_bytes(),
            Some(&kid_of(pair.public_pem.as_bytes())),
        )
    };
    let rows = [
        row(
            "signed with a.pem's key",
            &signed_by(&first),
            Expect::Success,
        ),
        row(
            "signed with b.pem's key",
            &signed_by(&second),
            Expect::Success,
        ),
        row(
            "signed with the listed key",
            &resigned(&session.access, "access_next_private", "access_next_public"),
            Expect::Success,
        ),
    ];
    run_matrix(&app, &rows).await;
}
