//! Recovery codes: each finishes a login once and says how many are left, in any case and
//! with or without its hyphen; a new set (password and code) kills the old one.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

/// Both steps with a recovery code; asserts a 200 and returns `data.recovery_codes_left`.
async fn login_with_recovery(app: &TestApp, email: &str, code: &str) -> Value {
    let mfa_token = app.password_step(email).await;
    let response = app.login_mfa(&mfa_token, code).await;
    assert_eq!(response.status(), 200);
    assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
    let session = session_from(&response);
    assert_eq!(claims_of(&session.access)["amr"], json!(["pwd", "otp"]));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        set_of(&["status", "access_token", "data"]),
        "{body}"
    );
    body["data"]["recovery_codes_left"].clone()
}

#[tokio::test]
async fn a_recovery_code_finishes_a_login_once_and_says_how_many_are_left() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let codes = &user.recovery_codes;

    assert_eq!(login_with_recovery(&app, &user.email, &codes[0]).await, 9);
    assert_eq!(login_with_recovery(&app, &user.email, &codes[1]).await, 8);

    for used in &codes[..2] {
        let mfa_token = app.password_step(&user.email).await;
        let again = app.login_mfa(&mfa_token, used).await;
        assert_error(again, 401, "invalid_code").await;
    }
    assert_eq!(login_with_recovery(&app, &user.email, &codes[9]).await, 7);
}

#[tokio::test]
async fn recovery_codes_are_accepted_in_capitals_and_without_the_hyphen() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let codes = &user.recovery_codes;

    let capitals = codes[0].to_uppercase();
    assert_eq!(login_with_recovery(&app, &user.email, &capitals).await, 9);
    let bare = without_hyphen(&codes[1]);
    assert_eq!(login_with_recovery(&app, &user.email, &bare).await, 8);
    let both = without_hyphen(&codes[2]).to_uppercase();
    assert_eq!(login_with_recovery(&app, &user.email, &both).await, 7);

    // Spelled otherwise, a used code is still used.
    let mfa_token = app.password_step(&user.email).await;
    let again = app.login_mfa(&mfa_token, &without_hyphen(&codes[0])).await;
    assert_error(again, 401, "invalid_code").await;
}

#[tokio::test]
async fn a_new_set_of_recovery_codes_replaces_the_old_one() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    assert_eq!(
        login_with_recovery(&app, &user.email, &user.recovery_codes[0]).await,
        9
    );
    let body = json!({"password": PASSWORD, "code": user.authenticator.next_code()});

    let response = app.regenerate_codes(&user.session.access, &body).await;

    assert_no_store(&response);
    let answer = success(response, 200).await;
    assert_eq!(keys_of(&answer), set_of(&["status", "data"]), "{answer}");
    let fresh = recovery_codes_of(&answer);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| is_recovery_code(c)), "{fresh:?}");
    assert_eq!(fresh.iter().collect::<BTreeSet<_>>().len(), 10);
    let old: BTreeSet<&String> = user.recovery_codes.iter().collect();
    assert!(fresh.iter().all(|c| !old.contains(c)), "{fresh:?}");

    let mfa_token = app.password_step(&user.email).await;
    // Four of them: the token would die at its fifth wrong code.
    for dead in &user.recovery_codes[1..5] {
        let refused = app.login_mfa(&mfa_token, dead).await;
        assert_error(refused, 401, "invalid_code").await;
    }
    assert_eq!(login_with_recovery(&app, &user.email, &fresh[0]).await, 9);
}

#[tokio::test]
async fn a_new_set_needs_the_password_and_a_right_code() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let access = &user.session.access;
    let wrong = user.authenticator.wrong_code();

    let cases = [
        (
            json!({"password": "not my password", "code": wrong}),
            401,
            "invalid_credentials",
        ),
        (
            json!({"password": PASSWORD, "code": wrong}),
            401,
            "invalid_code",
        ),
    ];
    for (body, status, code) in cases {
        let response = app.regenerate_codes(access, &body).await;
        assert_no_store(&response);
        assert_refused(response, status, code, &body.to_string()).await;
    }

    // Nothing changed: the old codes work.
    assert_eq!(
        login_with_recovery(&app, &user.email, &user.recovery_codes[0]).await,
        9
    );
}

#[tokio::test]
async fn a_recovery_code_can_make_the_new_set() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let body = json!({"password": PASSWORD, "code": user.recovery_codes[3]});

    let answer = success(app.regenerate_codes(&user.session.access, &body).await, 200).await;

    let fresh = recovery_codes_of(&answer);
    assert_eq!(login_with_recovery(&app, &user.email, &fresh[5]).await, 9);
}

#[tokio::test]
async fn a_new_set_without_a_factor_is_mfa_not_enabled() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let body = json!({"password": PASSWORD, "code": "123456"});

    let response = app.regenerate_codes(&session.access, &body).await;

    assert_error(response, 409, "mfa_not_enabled").await;
}
