//! `GET /api/users/me` and the guard in front of it: the access token as Bearer (any case of
//! the scheme) or cookie, the 401s and their `WWW-Authenticate` challenges, and a user
//! deleted or changed since the login.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn me_accepts_a_bearer_token_whatever_the_scheme_case() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = plain_client()
            .get(app.url("/api/users/me"))
            .header("authorization", format!("{scheme} {}", session.access))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
        assert_no_store(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["user"]["email"], email.as_str());
        assert!(body["data"]["user"].get("password_hash").is_none());
    }
}

#[tokio::test]
async fn me_accepts_the_access_token_cookie() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = plain_client()
        .get(app.url("/api/users/me"))
        .header("cookie", format!("access_token={}", session.access))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["email"], email.as_str());
}

#[tokio::test]
async fn a_bearer_token_wins_over_the_cookie() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = plain_client()
        .get(app.url("/api/users/me"))
        .bearer_auth("garbage.not-a.jwt")
        .header("cookie", format!("access_token={}", session.access))
        .send()
        .await
        .unwrap();

    assert_eq!(
        www_authenticate(&response).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(response, 401, "token_invalid").await;
}

#[tokio::test]
async fn me_without_a_token_is_not_logged_in_with_a_bare_bearer_challenge() {
    let app = spawn_app().await;

    for request in [
        plain_client().get(app.url("/api/users/me")),
        plain_client()
            .get(app.url("/api/users/me"))
            .header("authorization", "Bearer "),
        plain_client()
            .get(app.url("/api/users/me"))
            .header("cookie", "access_token="),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(www_authenticate(&response).as_deref(), Some("Bearer"));
        assert_error(response, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn me_with_an_invalid_or_revoked_token_gets_an_invalid_token_challenge() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let garbage = app.me_with("abc.def.ghi").await;
    assert_eq!(
        www_authenticate(&garbage).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(garbage, 401, "token_invalid").await;

    let logout = logout_by_bearer(&app, &session.access).await;
    assert_eq!(logout.status(), 200);
    let revoked = app.me_with(&session.access).await;
    assert_eq!(
        www_authenticate(&revoked).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(revoked, 401, "session_revoked").await;
}

#[tokio::test]
async fn me_for_a_deleted_user_is_session_revoked() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    assert_eq!(app.me_with(&session.access).await.status(), 200);

    app.execute("DELETE FROM users WHERE email = $1", &email)
        .await;
    app.user_changed(claims_of(&session.access)["sub"].as_str().unwrap())
        .await;

    let response = app.me_with(&session.access).await;
    assert_eq!(
        www_authenticate(&response).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(response, 401, "session_revoked").await;
    let refresh = app.refresh_with(&session.refresh).await;
    assert_error(refresh, 401, "session_revoked").await;
}

async fn name_seen(app: &TestApp, access: &str) -> String {
    let response = app.me_with(access).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"]["user"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_changed_user_is_served_changed_once_announced_even_after_its_stamp_is_lost() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let user = claims_of(&session.access)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(name_seen(&app, &session.access).await, "Test User");

    app.execute("UPDATE users SET name = 'Renamed' WHERE email = $1", &email)
        .await;
    app.user_changed(&user).await;
    assert_eq!(name_seen(&app, &session.access).await, "Renamed");

    // A changed user is not logged out: the refresh reads it again and rotates.
    let refreshed = app.refresh_with(&session.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let next = session_from(&refreshed);

    // A lost stamp is set anew before the user is read again.
    app.lose_user_stamp(&user).await;
    app.execute(
        "UPDATE users SET name = 'Renamed twice' WHERE email = $1",
        &email,
    )
    .await;
    assert_eq!(name_seen(&app, &next.access).await, "Renamed twice");
    assert_eq!(app.refresh_with(&next.refresh).await.status(), 200);
}
