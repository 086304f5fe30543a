//! Wrong codes are failed logins: they count for the email and the client IP with the same
//! limits as wrong passwords, and for a user with a factor only a completed login (password
//! and code) clears the email's counter.

use serde_json::json;

use crate::helpers::*;

fn retry_after(response: &reqwest::Response) -> u64 {
    header(response, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds")
}

#[tokio::test]
async fn wrong_codes_reach_the_limit_and_then_even_a_right_code_is_rate_limited() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let mut user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;
    for _ in 0..3 {
        let wrong = app
            .login_mfa(&mfa_token, &user.authenticator.wrong_code())
            .await;
        assert_error(wrong, 401, "invalid_code").await;
    }

    let right = app
        .login_mfa(&mfa_token, &user.authenticator.next_code())
        .await;

    assert!(retry_after(&right) > 0);
    assert!(right.headers().get("set-cookie").is_none());
    assert_error(right, 429, "rate_limited").await;
    let recovery = app.login_mfa(&mfa_token, &user.recovery_codes[0]).await;
    assert_error(recovery, 429, "rate_limited").await;
    // The password step is limited too: the email's counter is full.
    assert_error(app.login(&user.email, PASSWORD).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_password_step_alone_does_not_clear_the_counter() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let mut user = app.mfa_user().await;
    let first = app.password_step(&user.email).await;
    for _ in 0..2 {
        let wrong = app
            .login_mfa(&first, &user.authenticator.wrong_code())
            .await;
        assert_error(wrong, 401, "invalid_code").await;
    }

    let second = app.password_step(&user.email).await;
    let wrong = app
        .login_mfa(&second, &user.authenticator.wrong_code())
        .await;
    assert_error(wrong, 401, "invalid_code").await;

    let right = app
        .login_mfa(&second, &user.authenticator.next_code())
        .await;
    assert_error(right, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_completed_login_clears_the_counter() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let mut user = app.mfa_user().await;
    let first = app.password_step(&user.email).await;
    for _ in 0..2 {
        let wrong = app
            .login_mfa(&first, &user.authenticator.wrong_code())
            .await;
        assert_error(wrong, 401, "invalid_code").await;
    }
    let right = app.login_mfa(&first, &user.authenticator.next_code()).await;
    assert_eq!(right.status(), 200);

    // Two more wrong codes: with the two before they would be four, over the limit of 3.
    let second = app.password_step(&user.email).await;
    for _ in 0..2 {
        let wrong = app
            .login_mfa(&second, &user.authenticator.wrong_code())
            .await;
        assert_error(wrong, 401, "invalid_code").await;
    }
    let recovery = app.login_mfa(&second, &user.recovery_codes[0]).await;
    assert_eq!(recovery.status(), 200);
}

/// Guards the counter against a code step that is refused because the password changed
/// after the password step: that is no completed login, and must not clear the counter.
#[tokio::test]
async fn a_code_step_refused_for_a_changed_password_does_not_clear_the_counter() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let mut user = app.mfa_user().await;
    let old = app.password_step(&user.email).await;
    let code = user.authenticator.next_code();
    let changed = app
        .change_password_with_code(&user.session.access, &code)
        .await;
    assert_eq!(changed.status(), 200);
    // The password step and the change's own checks were each taken back: 0 so far.
    for _ in 0..2 {
        let wrong = app.login_mfa(&old, &user.authenticator.wrong_code()).await;
        assert_error(wrong, 401, "invalid_code").await;
    }
    // The third attempt: a right code, on the token of a password that is no more.
    let refused = app.login_mfa(&old, &user.recovery_codes[0]).await;
    assert_error(refused, 401, "invalid_code").await;

    // The fourth, over the limit of 3: nothing cleared the first three.
    let next = app.login(&user.email, NEW_PASSWORD).await;
    assert_error(next, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_wrong_password_at_enrollment_counts() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "1")]).await;
    let (email, session) = app.logged_in_user().await;
    let wrong = app
        .start_enrollment(&session.access, "not my password")
        .await;
    assert_error(wrong, 401, "invalid_credentials").await;

    assert_error(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_wrong_confirm_code_counts() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "1")]).await;
    let (email, session) = app.logged_in_user().await;
    let data = app.enrollment(&session.access).await;
    let authenticator = Authenticator::new(data["secret"].as_str().unwrap());
    let wrong = app
        .confirm_totp(&session.access, &authenticator.wrong_code())
        .await;
    assert_error(wrong, 401, "invalid_code").await;

    assert_error(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_wrong_step_up_code_counts() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "1")]).await;
    let user = app.mfa_user().await;
    let body = json!({
        "currentPassword": PASSWORD,
        "newPassword": NEW_PASSWORD,
        "newPasswordConfirm": NEW_PASSWORD,
        "code": user.authenticator.wrong_code(),
    });
    let wrong = call(
        &app.address,
        reqwest::Method::POST,
        "/api/users/me/password",
        Some(&user.session.access),
        Some(&body),
    )
    .await;
    assert_error(wrong, 401, "invalid_code").await;

    assert_error(app.login(&user.email, PASSWORD).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn unknown_mfa_tokens_count_for_the_client_ip() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_IP_LIMIT", "2")]).await;
    let email = app.register_user().await;
    for _ in 0..2 {
        let response = app.login_mfa(&"A".repeat(43), "123456").await;
        assert_error(response, 401, "invalid_code").await;
    }

    let response = app.login(&email, PASSWORD).await;

    assert_error(response, 429, "rate_limited").await;
}
