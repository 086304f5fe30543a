//! Logout: by POST or GET, by cookie or by either token as Bearer, always 200 with the
//! cookies cleared as they were set; the session's tokens revoked, the user's other sessions
//! left working.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn logout_by_post_or_get_answers_success_and_clears_the_cookies() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let login = app.login(&email, PASSWORD).await;
        assert_eq!(login.status(), 200);

        let response = app
            .client
            .request(method.clone(), app.url("/api/auth/logout"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "{method}");
        assert_json(&response);
        assert_cookies_cleared(&response, DEFAULT_POLICY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "success"}));
        assert_error(app.get("/api/users/me").await, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn logout_clears_the_cookies_with_the_configured_secure_samesite_and_domain() {
    let app = spawn_app_with(&STRICT_SETTINGS).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = plain_client()
        .get(app.url("/api/auth/logout"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_cookies_cleared(&response, STRICT_POLICY);
}

#[tokio::test]
async fn after_logout_the_access_and_refresh_tokens_of_the_session_are_revoked() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;

    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let me = app.me_with(&session.access).await;
    assert_eq!(
        www_authenticate(&me).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_error(me, 401, "session_revoked").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn logout_with_no_or_garbage_tokens_still_answers_200_and_clears_cookies() {
    let app = spawn_app().await;
    let requests = [
        plain_client().post(app.url("/api/auth/logout")),
        plain_client().get(app.url("/api/auth/logout")),
        plain_client()
            .post(app.url("/api/auth/logout"))
            .bearer_auth("garbage"),
        plain_client().post(app.url("/api/auth/logout")).header(
            "cookie",
            "access_token=abc.def.ghi; refresh_token=xyz; logged_in=true",
        ),
    ];

    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_cookies_cleared(&response, DEFAULT_POLICY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "success"}));
    }
}

#[tokio::test]
async fn logout_twice_with_the_same_tokens_answers_200_both_times() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    for _ in 0..2 {
        let response = logout_by_bearer(&app, &session.access).await;
        assert_eq!(response.status(), 200);
        assert_cookies_cleared(&response, DEFAULT_POLICY);
    }
}

#[tokio::test]
async fn logout_by_a_bearer_refresh_token_alone_ends_the_session() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = logout_by_bearer(&app, &session.refresh).await;

    assert_eq!(response.status(), 200);
    assert_cookies_cleared(&response, DEFAULT_POLICY);
    assert_session_ended(&app, &session).await;
}

#[tokio::test]
async fn logout_of_one_session_leaves_another_session_of_the_user_working() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let laptop = login_session(&app, &email).await;
    let phone = login_session(&app, &email).await;

    let response = logout_by_bearer(&app, &laptop.access).await;
    assert_eq!(response.status(), 200);

    assert_error(app.me_with(&laptop.access).await, 401, "session_revoked").await;
    assert_eq!(app.me_with(&phone.access).await.status(), 200);
    assert_eq!(app.refresh_with(&phone.refresh).await.status(), 200);
}

#[tokio::test]
async fn logout_with_a_stale_token_beside_live_cookies_still_ends_the_live_session() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let old = login_session(&app, &email).await;
    let live = login_session(&app, &email).await;
    let ended = logout_by_bearer(&app, &old.access).await;
    assert_eq!(ended.status(), 200);

    // The dead session's Bearer token first, the live session's cookies after it.
    let response = post_plain(&app, "/api/auth/logout")
        .bearer_auth(&old.access)
        .header(
            "cookie",
            format!(
                "access_token={}; refresh_token={}",
                live.access, live.refresh
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    assert_session_ended(&app, &live).await;
}
