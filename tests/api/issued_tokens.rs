//! The tokens the service issues: RS256 headers with a `kid` per kind, exactly the documented
//! claims, `iss` and `aud` from the settings, and an access token that expires end to end.

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::jwt::*;
use crate::helpers::*;

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
    // `amr`: how the login was proven (RFC 8176), `["pwd"]` without a second factor.
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");
    let mut expected = vec![
        "amr",
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
        expected.insert(6, "role");
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
