//! Turning the second factor on: the password starts an enrollment that answers a secret and
//! an `otpauth://` URI, a code of that secret confirms it, and the confirm answers ten
//! recovery codes, ends every other session and shows as `mfa` on the user.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use totp_rs::{Secret, Totp};

use crate::helpers::*;

/// The query parameters of a URI, undecoded.
fn query_of(uri: &str) -> Vec<(String, String)> {
    let (_, query) = uri.split_once('?').expect("a query");
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn enrollment_needs_the_right_password() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;

    let response = app
        .start_enrollment(&session.access, "not my password")
        .await;

    assert_no_store(&response);
    assert_error(response, 401, "invalid_credentials").await;
    // Nothing is pending: a confirm has nothing to confirm.
    let confirm = app.confirm_totp(&session.access, "123456").await;
    assert_error(confirm, 409, "mfa_not_pending").await;
    assert_eq!(app.me_user(&session.access).await["mfa"], false);
    assert!(app.login(&email, PASSWORD).await.status().is_success());
}

#[tokio::test]
async fn enrollment_answers_a_base32_secret_and_an_otpauth_uri_that_carries_it() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;

    let response = app.start_enrollment(&session.access, PASSWORD).await;

    assert_no_store(&response);
    assert_json(&response);
    let body = success(response, 200).await;
    assert_eq!(keys_of(&body), set_of(&["status", "data"]), "{body}");
    let data = &body["data"];
    assert_eq!(keys_of(data), set_of(&["secret", "otpauth_uri"]), "{body}");
    let secret = data["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "RFC 4648 base32 without padding: {secret}"
    );
    assert_eq!(Secret::try_from_base32(secret).unwrap().len(), 20);

    let uri = data["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/rs256-auth:"), "{uri}");
    let query = query_of(uri);
    assert_eq!(param(&query, "secret"), Some(secret), "{uri}");
    assert_eq!(param(&query, "issuer"), Some("rs256-auth"), "{uri}");
    // Left out when they are the defaults every app assumes (Key Uri Format), else those.
    for (name, default) in [("digits", "6"), ("period", "30"), ("algorithm", "SHA1")] {
        let value = param(&query, name);
        assert!(value.is_none() || value == Some(default), "{name} in {uri}");
    }
    // As an authenticator app reads it.
    let totp = Totp::from_url(uri).expect("an otpauth URI an app accepts");
    assert_eq!(totp.issuer(), Some("rs256-auth"));
    assert_eq!(totp.account_name(), email);
    assert_eq!((totp.digits(), totp.step(), totp.skew()), (6, 30, 1));
    assert_eq!(totp.secret(), &Secret::try_from_base32(secret).unwrap());
    assert_eq!(
        totp.generate(unix_now()).to_string(),
        code_at(secret, unix_now())
    );
}

#[tokio::test]
async fn a_started_enrollment_changes_nothing_until_it_is_confirmed() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;

    app.enrollment(&session.access).await;

    assert_eq!(app.me_user(&session.access).await["mfa"], false);
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    let fresh = session_from(&login);
    let body: Value = login.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        set_of(&["status", "access_token"]),
        "{body}"
    );
    assert_eq!(claims_of(&fresh.access)["amr"], json!(["pwd"]));
    // The session that started it, and the new one, both live.
    assert_eq!(app.me_with(&session.access).await.status(), 200);
    assert_eq!(app.me_with(&fresh.access).await.status(), 200);
}

#[tokio::test]
async fn a_second_enrollment_replaces_the_unconfirmed_secret() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;
    let first = Authenticator::new(
        app.enrollment(&session.access).await["secret"]
            .as_str()
            .unwrap(),
    );
    let mut second = Authenticator::new(
        app.enrollment(&session.access).await["secret"]
            .as_str()
            .unwrap(),
    );
    assert_ne!(first.secret, second.secret);

    // The first secret's current code, unless it happens to be a code of the second's too.
    let now = step_now();
    let second_codes: Vec<String> = (now - 1..=now + 2)
        .map(|s| second.code_of_step(s))
        .collect();
    let stale = (now..=now + 1)
        .map(|s| first.code_of_step(s))
        .find(|c| !second_codes.contains(c))
        .expect("the secrets' codes differ");
    let refused = app.confirm_totp(&session.access, &stale).await;
    assert_error(refused, 401, "invalid_code").await;
    assert_eq!(app.me_user(&session.access).await["mfa"], false);

    let confirmed = app.confirm_totp(&session.access, &second.next_code()).await;

    success(confirmed, 200).await;
    let mut user = MfaUser {
        email,
        session,
        authenticator: second,
        recovery_codes: Vec::new(),
    };
    app.login_both_steps(&mut user).await;
}

#[tokio::test]
async fn a_wrong_confirm_code_is_invalid_code_and_the_enrollment_stays_pending() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;
    let mut authenticator = Authenticator::new(
        app.enrollment(&session.access).await["secret"]
            .as_str()
            .unwrap(),
    );

    let wrong = app
        .confirm_totp(&session.access, &authenticator.wrong_code())
        .await;

    assert_no_store(&wrong);
    assert_error(wrong, 401, "invalid_code").await;
    assert_eq!(app.me_user(&session.access).await["mfa"], false);
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    session_from(&login); // One step still: the cookies are set.

    let right = app
        .confirm_totp(&session.access, &authenticator.next_code())
        .await;
    success(right, 200).await;
    assert_eq!(app.me_user(&session.access).await["mfa"], true);
}

#[tokio::test]
async fn confirm_with_nothing_pending_is_mfa_not_pending() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;

    let response = app.confirm_totp(&session.access, "123456").await;

    assert_no_store(&response);
    assert_error(response, 409, "mfa_not_pending").await;
}

#[tokio::test]
async fn enrolling_or_confirming_again_while_on_is_mfa_enabled() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;

    let again = app.start_enrollment(&user.session.access, PASSWORD).await;
    assert_error(again, 409, "mfa_enabled").await;
    let confirm = app
        .confirm_totp(&user.session.access, &user.authenticator.wrong_code())
        .await;
    assert_error(confirm, 409, "mfa_enabled").await;

    // The factor in place is still the first one.
    app.login_both_steps(&mut user).await;
}

#[tokio::test]
async fn confirm_answers_ten_distinct_recovery_codes_once() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let data = app.enrollment(&session.access).await;
    let mut authenticator = Authenticator::new(data["secret"].as_str().unwrap());

    let response = app
        .confirm_totp(&session.access, &authenticator.next_code())
        .await;

    assert_no_store(&response);
    let body = success(response, 200).await;
    assert_eq!(keys_of(&body), set_of(&["status", "data"]), "{body}");
    assert_eq!(
        keys_of(&body["data"]),
        set_of(&["recovery_codes"]),
        "{body}"
    );
    let codes = recovery_codes_of(&body);
    assert_eq!(codes.len(), 10, "{codes:?}");
    for code in &codes {
        assert!(is_recovery_code(code), "{code:?} is not xxxxx-xxxxx");
    }
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), 10, "{codes:?}");
}

#[tokio::test]
async fn confirming_ends_every_other_session_and_keeps_the_current_one() {
    let app = spawn_app().await;
    let (email, phone) = app.logged_in_user().await;
    let laptop = login_session(&app, &email).await;
    let tablet = login_session(&app, &email).await;

    app.turn_on_mfa(&phone.access).await;

    assert_session_ended(&app, &laptop).await;
    assert_session_ended(&app, &tablet).await;
    assert_eq!(app.me_with(&phone.access).await.status(), 200);
    let refreshed = app.refresh_with(&phone.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let next = session_from(&refreshed);
    assert_eq!(app.me_with(&next.access).await.status(), 200);
}

#[tokio::test]
async fn mfa_shows_on_the_user_in_register_me_and_the_admin_list() {
    let app = spawn_app().await;
    let (email, body) = new_registration();
    let registered = app.register(&body).await;
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["data"]["user"]["mfa"], false, "{registered}");
    let session = login_session(&app, &email).await;
    assert_eq!(app.me_user(&session.access).await["mfa"], false);
    let plain = app.register_user().await;

    app.turn_on_mfa(&session.access).await;

    assert_eq!(app.me_user(&session.access).await["mfa"], true);
    let (_, admin) = admin(&app).await;
    let listed = admin_users(&app.address, &admin.access, "limit=100").await;
    let listed = success(listed, 200).await;
    let users = listed["data"]["users"].as_array().unwrap();
    let mfa_of = |email: &str| {
        users
            .iter()
            .find(|u| u["email"] == email)
            .map(|u| u["mfa"].clone())
    };
    assert_eq!(mfa_of(&email), Some(json!(true)), "{listed}");
    assert_eq!(mfa_of(&plain), Some(json!(false)), "{listed}");
}

#[tokio::test]
async fn mfa_issuer_names_the_service_in_the_uri() {
    let app = spawn_app_with(&[("MFA_ISSUER", "Acme Login")]).await;
    let (email, session) = app.logged_in_user().await;

    let data = app.enrollment(&session.access).await;

    let uri = data["otpauth_uri"].as_str().unwrap();
    let totp = Totp::from_url(uri).expect("an otpauth URI an app accepts");
    assert_eq!(totp.issuer(), Some("Acme Login"), "{uri}");
    assert_eq!(totp.account_name(), email);
}
