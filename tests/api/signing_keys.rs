//! The signing keys as clients see them: the JWKS (the access keys only, the signing key
//! first), key rotation with no logout as keys/README.md describes it, and extra public keys
//! from a list and from a folder.

use std::collections::BTreeSet;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::jwt::*;
use crate::helpers::*;

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
