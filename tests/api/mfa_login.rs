//! Login in two steps: the right password of a user with a factor answers an `mfa_token` and
//! no cookie, and `POST /api/auth/login/mfa` with a code finishes the login. The token is no
//! session, is used once and dies after five wrong codes; the tokens it leads to say `amr`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn session_cookie_names(response: &reqwest::Response) -> Vec<String> {
    set_cookies(response.headers())
        .into_iter()
        .map(|c| c.name)
        .filter(|n| ["access_token", "refresh_token", "logged_in"].contains(&n.as_str()))
        .collect()
}

#[tokio::test]
async fn the_right_password_asks_for_a_code_and_sets_no_cookie() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;

    let response = app.login(&user.email, PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_eq!(session_cookie_names(&response), Vec::<String>::new());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        set_of(&["status", "mfa_required", "mfa_token"]),
        "no access token: {body}"
    );
    assert_eq!(body["status"], "success");
    assert_eq!(body["mfa_required"], true);
    let token = body["mfa_token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "32 bytes in base64url: {token}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{token}"
    );
    // Each password step gets a token of its own.
    assert_ne!(app.password_step(&user.email).await, token);
}

#[tokio::test]
async fn a_wrong_password_answers_alike_with_or_without_a_factor() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let plain = app.register_user().await;

    let with_factor = app.login(&user.email, "a wrong password").await;
    let without = app.login(&plain, "a wrong password").await;

    let headers = |r: &reqwest::Response| {
        (
            r.status(),
            www_authenticate(r),
            header(r, "cache-control"),
            session_cookie_names(r),
        )
    };
    assert_eq!(headers(&with_factor), headers(&without));
    let with_factor = assert_error(with_factor, 401, "invalid_credentials").await;
    let without = assert_error(without, 401, "invalid_credentials").await;
    assert_eq!(with_factor, without);
}

#[tokio::test]
async fn the_code_step_answers_the_login_answer_and_the_three_cookies() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;

    let response = app
        .login_mfa(&mfa_token, &user.authenticator.next_code())
        .await;

    assert_eq!(response.status(), 200);
    assert_json(&response);
    assert_no_store(&response);
    assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
    let session = session_from(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        set_of(&["status", "access_token"]),
        "{body}"
    );
    assert_eq!(body["access_token"], session.access.as_str());
    assert_eq!(claims_of(&session.access)["typ"], "access");
    assert_eq!(app.me_user(&session.access).await["email"], user.email);
    assert_eq!(app.refresh_with(&session.refresh).await.status(), 200);
}

#[tokio::test]
async fn a_code_with_a_space_inside_is_accepted() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let code = user.authenticator.next_code();
    let spaced = format!("{} {}", &code[..3], &code[3..]);

    app.login_with_code(&user.email, &spaced).await;
}

#[tokio::test]
async fn amr_says_otp_after_a_code_and_keeps_it_through_a_refresh() {
    let app = spawn_app().await;
    let (_, plain) = app.logged_in_user().await;
    let mut user = app.mfa_user().await;

    let session = app.login_both_steps(&mut user).await;

    assert_eq!(claims_of(&plain.access)["amr"], json!(["pwd"]));
    assert_eq!(claims_of(&plain.refresh)["amr"], json!(["pwd"]));
    assert_eq!(claims_of(&session.access)["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims_of(&session.refresh)["amr"], json!(["pwd", "otp"]));
    let refreshed = app.refresh_with(&session.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let next = session_from(&refreshed);
    assert_eq!(claims_of(&next.access)["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims_of(&next.refresh)["amr"], json!(["pwd", "otp"]));
    // A plain session's refresh stays ["pwd"], and so does the session that enrolled.
    let plain_next = session_from(&app.refresh_with(&plain.refresh).await);
    assert_eq!(claims_of(&plain_next.access)["amr"], json!(["pwd"]));
    assert_eq!(claims_of(&user.session.access)["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn the_mfa_token_opens_no_route() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;

    for (method, path) in [
        (Method::GET, "/api/users/me"),
        (Method::GET, "/api/users/me/sessions"),
        (Method::POST, "/api/auth/refresh"),
    ] {
        let response = call(&app.address, method, path, Some(&mfa_token), None).await;
        assert_error(response, 401, "token_invalid").await;
    }
    let as_cookie = plain_client()
        .get(app.url("/api/users/me"))
        .header("cookie", format!("access_token={mfa_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_cookie.status(), 401);

    // Still good for what it is for.
    let response = app
        .login_mfa(&mfa_token, &user.authenticator.next_code())
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_mfa_token_is_used_once() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;
    let first = app
        .login_mfa(&mfa_token, &user.authenticator.next_code())
        .await;
    assert_eq!(first.status(), 200);

    // Another code that is good (a recovery code) does not bring it back.
    let again = app.login_mfa(&mfa_token, &user.recovery_codes[0]).await;

    assert_eq!(session_cookie_names(&again), Vec::<String>::new());
    assert_error(again, 401, "invalid_code").await;
}

#[tokio::test]
async fn the_mfa_token_survives_four_wrong_codes_and_dies_at_the_fifth() {
    // A limit high enough that the failed-login counter stays out of the way.
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "50")]).await;
    let mut user = app.mfa_user().await;

    let doomed = app.password_step(&user.email).await;
    for _ in 0..5 {
        let wrong = app
            .login_mfa(&doomed, &user.authenticator.wrong_code())
            .await;
        assert_error(wrong, 401, "invalid_code").await;
    }
    let right = app
        .login_mfa(&doomed, &user.authenticator.next_code())
        .await;
    assert_eq!(session_cookie_names(&right), Vec::<String>::new());
    assert_error(right, 401, "invalid_code").await;

    // Four wrong codes leave a token alive; the account is not locked either.
    let survivor = app.password_step(&user.email).await;
    for _ in 0..4 {
        let wrong = app
            .login_mfa(&survivor, &user.authenticator.wrong_code())
            .await;
        assert_error(wrong, 401, "invalid_code").await;
    }
    let right = app.login_mfa(&survivor, &user.recovery_codes[0]).await;
    assert_eq!(right.status(), 200);
}

/// The `mfa_token` lives 5 minutes. Its stored end is moved back behind the app's back, as
/// the passing of time would: 290 s later it still works, 301 s later it is dead. Together
/// they pin the lifetime to between 290 and 301 seconds.
#[tokio::test]
async fn the_mfa_token_lives_five_minutes() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let older_by = |ms: u32| {
        format!(
            "UPDATE mfa_challenges SET expires_at = expires_at - {ms}
             WHERE user_id = (SELECT id FROM users WHERE email = $1)"
        )
    };

    let young = app.password_step(&user.email).await;
    app.execute(&older_by(290_000), &user.email).await;
    let response = app.login_mfa(&young, &user.recovery_codes[0]).await;
    assert_eq!(response.status(), 200, "290 s after the password step");

    let old = app.password_step(&user.email).await;
    app.execute(&older_by(301_000), &user.email).await;
    let response = app.login_mfa(&old, &user.recovery_codes[1]).await;
    assert_error(response, 401, "invalid_code").await;
    // Only the token was dead: that recovery code is still good.
    let fresh = app.password_step(&user.email).await;
    let response = app.login_mfa(&fresh, &user.recovery_codes[1]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_unknown_mfa_token_is_invalid_code() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let real = app.password_step(&user.email).await;
    // Same length and alphabet as a real one, one character off.
    let last = if real.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &real[..42]);

    for token in [forged.as_str(), "not-a-token", &"A".repeat(43)] {
        let response = app
            .login_mfa(token, &user.authenticator.code_of_step(step_now()))
            .await;
        assert_no_store(&response);
        assert_error(response, 401, "invalid_code").await;
    }
}

#[tokio::test]
async fn missing_or_non_string_fields_are_validation_failed() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;

    for body in [
        json!({}),
        json!({"mfa_token": mfa_token}),
        json!({"code": "123456"}),
        json!({"mfa_token": 42, "code": "123456"}),
        json!({"mfa_token": mfa_token, "code": 123456}),
        json!({"mfa_token": mfa_token, "code": null}),
        json!([mfa_token, "123456"]),
    ] {
        let response = call(
            &app.address,
            Method::POST,
            "/api/auth/login/mfa",
            None,
            Some(&body),
        )
        .await;
        assert_error(response, 400, "validation_failed").await;
    }
}

#[tokio::test]
async fn the_code_step_from_another_site_is_refused() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;
    let code = user.authenticator.next_code();
    let body = json!({"mfa_token": mfa_token, "code": code});
    let post = |origin: &'static str| {
        plain_client()
            .post(app.url("/api/auth/login/mfa"))
            .header("origin", origin)
            .json(&body)
            .send()
    };

    let evil = post("https://evil.example").await.unwrap();

    assert_eq!(session_cookie_names(&evil), Vec::<String>::new());
    assert_error(evil, 403, "origin_forbidden").await;
    // Refused before anything was used: the SPA, with the same token and code, gets in.
    let spa = post(SPA_ORIGIN).await.unwrap();
    assert_eq!(spa.status(), 200);
}
