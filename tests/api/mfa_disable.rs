//! Turning the factor off: password and code (a recovery code does); afterwards the login is
//! one step again, `mfa` is false and the recovery codes are gone.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn turning_off_needs_the_password_first_then_a_code() {
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
            json!({"password": "not my password"}),
            401,
            "invalid_credentials",
        ),
        (json!({"password": PASSWORD}), 401, "invalid_code"),
        (
            json!({"password": PASSWORD, "code": wrong}),
            401,
            "invalid_code",
        ),
    ];
    for (body, status, code) in cases {
        let response = app.disable_totp(access, &body).await;
        assert_no_store(&response);
        assert_refused(response, status, code, &body.to_string()).await;
    }

    assert_eq!(app.me_user(access).await["mfa"], true);
    app.password_step(&user.email).await;
}

#[tokio::test]
async fn turning_off_with_a_totp_code_makes_the_login_one_step_again() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let body = json!({"password": PASSWORD, "code": user.authenticator.next_code()});

    let response = app.disable_totp(&user.session.access, &body).await;

    assert_no_store(&response);
    let answer = success(response, 200).await;
    assert_eq!(answer, json!({"status": "success"}));
    assert_eq!(app.me_user(&user.session.access).await["mfa"], false);
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    let session = session_from(&login);
    assert_eq!(claims_of(&session.access)["amr"], json!(["pwd"]));
    // No factor any more: turning it off again is refused.
    let again = app.disable_totp(&user.session.access, &body).await;
    assert_error(again, 409, "mfa_not_enabled").await;
}

#[tokio::test]
async fn turning_off_with_a_recovery_code_kills_the_rest_and_a_new_enrollment_brings_new_ones() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let access = &user.session.access;
    // A recovery code, so that the next TOTP step stays free for the new enrollment.
    let body = json!({"password": PASSWORD, "code": user.recovery_codes[0]});

    success(app.disable_totp(access, &body).await, 200).await;

    assert_eq!(app.me_user(access).await["mfa"], false);
    // The steps used before stay used, whatever the secret: the new one starts after them.
    let data = app.enrollment(access).await;
    let mut authenticator = Authenticator::new(data["secret"].as_str().unwrap());
    authenticator.used(user.authenticator.last_step().unwrap());
    let confirmed = app.confirm_totp(access, &authenticator.next_code()).await;
    let fresh = recovery_codes_of(&success(confirmed, 200).await);
    assert_ne!(authenticator.secret, user.secret(), "a new secret");
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !user.recovery_codes.contains(c)));
    let mfa_token = app.password_step(&user.email).await;
    for old in &user.recovery_codes[1..4] {
        let refused = app.login_mfa(&mfa_token, old).await;
        assert_error(refused, 401, "invalid_code").await;
    }
    let response = app.login_mfa(&mfa_token, &fresh[0]).await;
    let body: Value = success(response, 200).await;
    assert_eq!(body["data"]["recovery_codes_left"], 9);
}

#[tokio::test]
async fn turning_off_without_a_factor_is_mfa_not_enabled() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let body = json!({"password": PASSWORD, "code": "123456"});

    let response = app.disable_totp(&session.access, &body).await;

    assert_error(response, 409, "mfa_not_enabled").await;
}
