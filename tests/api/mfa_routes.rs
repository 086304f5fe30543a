//! What every MFA route shares: `Cache-Control: no-store`, the guard's 401 without a token,
//! the origin check; and the `auth_mfa_total` metric.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The guarded routes, each with a body it takes, with `code` where it takes one.
fn guarded(code: &str) -> Vec<(Method, &'static str, Value)> {
    vec![
        (
            Method::POST,
            "/api/users/me/mfa/totp",
            json!({"password": PASSWORD}),
        ),
        (
            Method::POST,
            "/api/users/me/mfa/totp/confirm",
            json!({"code": code}),
        ),
        (
            Method::DELETE,
            "/api/users/me/mfa/totp",
            json!({"password": PASSWORD, "code": code}),
        ),
        (
            Method::POST,
            "/api/users/me/mfa/recovery-codes",
            json!({"password": PASSWORD, "code": code}),
        ),
    ]
}

#[tokio::test]
async fn the_guarded_mfa_routes_need_a_token() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;

    for (method, path, body) in guarded("123456") {
        let response = call(&app.address, method.clone(), path, None, Some(&body)).await;
        assert_no_store(&response);
        assert_eq!(
            www_authenticate(&response).as_deref(),
            Some("Bearer"),
            "{path}"
        );
        assert_error(response, 401, "not_logged_in").await;

        let response = call(
            &app.address,
            method.clone(),
            path,
            Some("not.a.token"),
            Some(&body),
        )
        .await;
        assert_error(response, 401, "token_invalid").await;
        // A refresh token is not an access token.
        let response = call(
            &app.address,
            method,
            path,
            Some(&session.refresh),
            Some(&body),
        )
        .await;
        assert_error(response, 401, "token_invalid").await;
    }
}

#[tokio::test]
async fn every_mfa_route_answers_no_store_also_when_it_refuses() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let (_, plain) = app.logged_in_user().await;

    for (method, path, body) in guarded(&user.authenticator.wrong_code()) {
        for access in [&user.session.access, &plain.access] {
            // Refusals for the user with a factor, mostly successes for the other.
            let response = call(
                &app.address,
                method.clone(),
                path,
                Some(access),
                Some(&body),
            )
            .await;
            assert!(
                response.status().as_u16() < 500,
                "{path}: {}",
                response.status()
            );
            assert_no_store(&response);
        }
    }
    let mfa_token = app.password_step(&user.email).await;
    let wrong = app
        .login_mfa(&mfa_token, &user.authenticator.wrong_code())
        .await;
    assert_no_store(&wrong);
    let response = call(
        &app.address,
        Method::POST,
        "/api/auth/login/mfa",
        None,
        Some(&json!({})),
    )
    .await;
    assert_no_store(&response);
}

#[tokio::test]
async fn the_mfa_routes_refuse_other_sites() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;
    let mut routes = guarded(&user.authenticator.wrong_code());
    routes.push((
        Method::POST,
        "/api/auth/login/mfa",
        json!({"mfa_token": mfa_token, "code": user.recovery_codes[0]}),
    ));

    for (method, path, body) in routes {
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let response = plain_client()
                .request(method.clone(), app.url(path))
                .bearer_auth(&user.session.access)
                .header(name, value)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_error(response, 403, "origin_forbidden").await;
        }
    }
    // Nothing was used: the recovery code still finishes that login.
    let response = app.login_mfa(&mfa_token, &user.recovery_codes[0]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn auth_mfa_total_counts_each_outcome() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let mfa_token = app.password_step(&user.email).await;
    let wrong = app
        .login_mfa(&mfa_token, &user.authenticator.wrong_code())
        .await;
    assert_eq!(wrong.status(), 401);
    let code = user.authenticator.next_code();
    assert_eq!(app.login_mfa(&mfa_token, &code).await.status(), 200);
    app.login_with_code(&user.email, &user.recovery_codes[0])
        .await;
    let regenerate = json!({"password": PASSWORD, "code": user.recovery_codes[1]});
    let answer = success(
        app.regenerate_codes(&user.session.access, &regenerate)
            .await,
        200,
    )
    .await;
    let fresh = recovery_codes_of(&answer);
    let disable = json!({"password": PASSWORD, "code": fresh[0]});
    success(app.disable_totp(&user.session.access, &disable).await, 200).await;

    let text = app.metrics().await;

    let mfa = |outcome| metric(&text, "auth_mfa_total", &[("outcome", outcome)]);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("auth_mfa_total"))
        .collect();
    assert_eq!(mfa("enrolled"), Some(1.0), "{lines:#?}");
    assert_eq!(mfa("challenged"), Some(2.0), "{lines:#?}");
    // One at login; the new set and the disable used one each too, which may count.
    assert!(mfa("recovery_used").is_some_and(|n| n >= 1.0), "{lines:#?}");
    assert_eq!(mfa("regenerated"), Some(1.0), "{lines:#?}");
    assert_eq!(mfa("disabled"), Some(1.0), "{lines:#?}");
    assert!(mfa("passed").is_some_and(|n| n >= 1.0), "{lines:#?}");
    assert!(mfa("invalid_code").is_some_and(|n| n >= 1.0), "{lines:#?}");
}
