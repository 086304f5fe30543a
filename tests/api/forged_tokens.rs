//! Forged and misused tokens against the deserialize-user guard: other algorithms, foreign
//! keys and `kid`s, tampered or missing claims, the wrong kind of token, malformed tokens, and
//! bytes in the `Authorization` header that are not a token.
//!
//! Forged tokens carry the claims of a live session (its `sub`, `sid` and `token_uuid`), so
//! that the defect under test is the only thing wrong with them: a service that skipped the
//! check would answer 200, not some other 401.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::jwt::*;
use crate::helpers::*;

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"))
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

/// The `kid` of the only access key the JWKS lists.
async fn access_kid(app: &TestApp) -> String {
    let set = jwks(app).await;
    assert_eq!(set.keys.len(), 1, "one access key in the JWKS");
    set.keys[0].common.key_id.clone().expect("kid in the JWKS")
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
