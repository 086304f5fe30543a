//! Refresh: rotation by cookie or by Bearer header, the grace window (tabs racing, in-grace
//! replays, a tab back late), a replay after it ending the session as `refresh_reused`, the
//! previous access token, and the 401s that clear the cookies.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn refresh_by_cookie_with_post_or_get_rotates_the_tokens_and_sets_all_cookies() {
    let app = spawn_app().await;
    let (_, mut session) = app.logged_in_user().await;

    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let response = app
            .client
            .request(method.clone(), app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "{method}");
        assert_no_store(&response);
        assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
        let next = session_from(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            keys_of(&body),
            set_of(&["status", "access_token"]),
            "{method}: no refresh_token in the body"
        );
        assert_eq!(body["access_token"], next.access.as_str());
        assert_ne!(next.access, session.access);
        assert_ne!(next.refresh, session.refresh);
        assert_eq!(app.me_with(&next.access).await.status(), 200);
        session = next;
    }
}

#[tokio::test]
async fn refresh_by_bearer_header_also_returns_the_next_refresh_token_in_the_body() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = app.refresh_with(&session.refresh).await;

    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_cookies_set(&response, DEFAULT_POLICY, 900, 3600);
    let cookies = session_from(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        set_of(&["status", "access_token", "refresh_token"])
    );
    let next_refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(next_refresh, cookies.refresh);
    assert_ne!(next_refresh, session.refresh);
    assert_eq!(claims_of(next_refresh)["typ"], "refresh");
    assert_eq!(
        app.me_with(body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let again = app.refresh_with(next_refresh).await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t != next_refresh)
    );
}

#[tokio::test]
async fn a_refresh_token_replayed_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();

    let replay = app.refresh_with(&session.refresh).await;

    assert_eq!(replay.status(), 200);
    assert_cookies_set(&replay, DEFAULT_POLICY, 900, 3600);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(
        replay["refresh_token"], first["refresh_token"],
        "the very same successor"
    );
    assert_eq!(replay["access_token"], first["access_token"]);
    assert_eq!(live_refresh_entries(&app).await, 1);
    let access = replay["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["sid"], claims_of(&session.access)["sid"]);
    assert_eq!(app.me_with(access).await.status(), 200);
    assert_eq!(
        app.me_with(first["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.refresh_with(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn tabs_refreshing_at_once_all_succeed_with_the_same_successor() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    // Two instances behind a load balancer: the race is decided in Redis, not in one process.
    let other = app.sibling(&[]).await;
    let mut tabs = tokio::task::JoinSet::new();
    for tab in 0..6 {
        let base = if tab % 2 == 0 { &app.address } else { &other };
        let request = plain_client()
            .post(format!("{base}/api/auth/refresh"))
            .header("cookie", format!("refresh_token={}", session.refresh));
        tabs.spawn(async move { request.send().await.unwrap() });
    }

    let responses = tabs.join_all().await;

    let mut successors = BTreeSet::new();
    for response in &responses {
        assert_eq!(response.status(), 200);
        assert_cookies_set(response, DEFAULT_POLICY, 900, 3600);
        successors.insert(session_from(response).refresh);
    }
    assert_eq!(
        successors.len(),
        1,
        "one successor refresh token: {successors:?}"
    );
    assert_eq!(live_refresh_entries(&app).await, 1);
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh_with(&successor).await.status(), 200);
}

/// Refresh entries that can still be rotated (`user|access`; a rotated one names its
/// successors too).
async fn live_refresh_entries(app: &TestApp) -> usize {
    app.store_entries()
        .await
        .into_iter()
        .filter(|e| e.key.contains(":tok:") && e.value.matches('|').count() == 1)
        .count()
}

#[tokio::test]
async fn reuse_ends_only_the_session_it_happened_in() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let stolen = login_session(&app, &email).await;
    let laptop = login_session(&app, &email).await;
    assert_eq!(app.refresh_with(&stolen.refresh).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_error(
        app.refresh_with(&stolen.refresh).await,
        401,
        "refresh_reused",
    )
    .await;

    assert_eq!(app.me_with(&laptop.access).await.status(), 200);
    assert_eq!(app.refresh_with(&laptop.refresh).await.status(), 200);
}

#[tokio::test]
async fn replays_after_the_grace_window_racing_each_other_all_fail() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    let successor = session_from(&first);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut replays = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let request = post_plain(&app, "/api/auth/refresh").bearer_auth(&session.refresh);
        replays.spawn(async move { request.send().await.unwrap() });
    }

    for response in replays.join_all().await {
        assert_error(response, 401, "refresh_reused").await;
    }
    assert_error(
        app.refresh_with(&successor.refresh).await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn a_tab_back_late_gets_the_newest_token_not_one_already_rotated() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let first = login_session(&app, &email).await;
    let second: Value = app.refresh_with(&first.refresh).await.json().await.unwrap();
    let third: Value = app
        .refresh_with(second["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();

    let late = app.refresh_with(&first.refresh).await;

    assert_eq!(late.status(), 200);
    let late: Value = late.json().await.unwrap();
    assert_eq!(late["refresh_token"], third["refresh_token"]);
    assert_eq!(late["access_token"], third["access_token"]);
    assert_eq!(live_refresh_entries(&app).await, 1);
}

#[tokio::test]
async fn a_rotated_token_shown_after_an_ordinary_logout_is_not_called_reuse() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let successor = session_from(&app.refresh_with(&session.refresh).await);
    assert_eq!(
        logout_by_bearer(&app, &successor.access).await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let replay = app.refresh_with(&session.refresh).await;

    assert_cookies_cleared(&replay, DEFAULT_POLICY);
    assert_error(replay, 401, "session_revoked").await;
}

#[tokio::test]
async fn an_in_grace_replay_after_logout_is_refused_and_clears_cookies() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    let successor = session_from(&first);
    assert_eq!(
        logout_by_bearer(&app, &successor.access).await.status(),
        200
    );

    let replay = app.refresh_with(&session.refresh).await;

    assert_cookies_cleared(&replay, DEFAULT_POLICY);
    assert_error(replay, 401, "session_revoked").await;
}

#[tokio::test]
async fn a_refresh_token_replayed_after_the_grace_window_is_refresh_reused_and_ends_the_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let first = app.refresh_with(&session.refresh).await;
    assert_eq!(first.status(), 200);
    let successor: Value = first.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let replay = app.refresh_with(&session.refresh).await;

    assert_eq!(
        www_authenticate(&replay).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_cookies_cleared(&replay, DEFAULT_POLICY);
    assert_error(replay, 401, "refresh_reused").await;
    let successor = Session {
        access: successor["access_token"].as_str().unwrap().to_owned(),
        refresh: successor["refresh_token"].as_str().unwrap().to_owned(),
    };
    assert_session_ended(&app, &successor).await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "refresh_reused",
    )
    .await;
}

#[tokio::test]
async fn after_a_reuse_only_the_replayed_token_answers_refresh_reused() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let first = login_session(&app, &email).await;
    let second = session_from(&app.refresh_with(&first.refresh).await);
    let third = session_from(&app.refresh_with(&second.refresh).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_error(
        app.refresh_with(&first.refresh).await,
        401,
        "refresh_reused",
    )
    .await;

    // Another rotated token of the session, and its live one: revoked, not reused.
    assert_error(
        app.refresh_with(&second.refresh).await,
        401,
        "session_revoked",
    )
    .await;
    assert_session_ended(&app, &third).await;
    assert_error(
        app.refresh_with(&first.refresh).await,
        401,
        "refresh_reused",
    )
    .await;
}

#[tokio::test]
async fn the_previous_access_token_keeps_working_right_after_a_refresh() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let response = app.refresh_with(&session.refresh).await;
    assert_eq!(response.status(), 200);

    let me = app.me_with(&session.access).await;
    assert_eq!(me.status(), 200);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["data"]["user"]["email"], email.as_str());
}

#[tokio::test]
async fn the_previous_access_token_stops_working_after_the_grace_window() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let response = app.refresh_with(&session.refresh).await;
    assert_eq!(response.status(), 200);
    let next = session_from(&response);

    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_error(app.me_with(&session.access).await, 401, "session_revoked").await;
    assert_eq!(app.me_with(&next.access).await.status(), 200);
}

#[tokio::test]
async fn refresh_without_a_token_is_not_logged_in() {
    let app = spawn_app().await;

    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let response = plain_client()
            .request(method, app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap();
        assert_no_store(&response);
        assert_eq!(www_authenticate(&response).as_deref(), Some("Bearer"));
        assert_error(response, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn an_access_token_presented_for_refresh_is_token_invalid() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;

    let by_header = app.refresh_with(&session.access).await;
    assert_error(by_header, 401, "token_invalid").await;

    let by_cookie = post_plain(&app, "/api/auth/refresh")
        .header("cookie", format!("refresh_token={}", session.access))
        .send()
        .await
        .unwrap();
    assert_cookies_cleared(&by_cookie, DEFAULT_POLICY);
    assert_error(by_cookie, 401, "token_invalid").await;
    assert_eq!(
        app.refresh_with(&session.refresh).await.status(),
        200,
        "the session is untouched"
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_token_expired_and_clears_the_cookies() {
    let app = spawn_app_with(&[
        ("ACCESS_TOKEN_EXPIRED_IN", "1s"),
        ("REFRESH_TOKEN_EXPIRED_IN", "1s"),
    ])
    .await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let exp = claims_of(&session.refresh)["exp"].as_i64().unwrap();
    // Past exp by far more than the at most 1 s the service may allow.
    sleep_until_unix(exp + 2).await;

    let response = post_plain(&app, "/api/auth/refresh")
        .header("cookie", format!("refresh_token={}", session.refresh))
        .send()
        .await
        .unwrap();

    assert_no_store(&response);
    assert_eq!(
        www_authenticate(&response).as_deref(),
        Some(INVALID_TOKEN_CHALLENGE)
    );
    assert_cookies_cleared(&response, DEFAULT_POLICY);
    assert_error(response, 401, "token_expired").await;
    assert_error(
        app.refresh_with(&session.refresh).await,
        401,
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn refresh_of_an_ended_session_is_session_revoked_and_clears_cookies_like_they_were_set() {
    let app = spawn_app_with(&STRICT_SETTINGS).await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let logout = logout_by_bearer(&app, &session.access).await;
    assert_eq!(logout.status(), 200);

    let response = post_plain(&app, "/api/auth/refresh")
        .header("cookie", format!("refresh_token={}", session.refresh))
        .send()
        .await
        .unwrap();

    assert_no_store(&response);
    assert_cookies_cleared(&response, STRICT_POLICY);
    assert_error(response, 401, "session_revoked").await;
}
