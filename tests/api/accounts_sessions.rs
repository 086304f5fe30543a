//! A user's controls over their sessions, password and account: the sessions list, ending
//! one, the others or all of them, a password change, and deleting the account.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A login from a device of its own: a plain client (no jar) with its own user agent.
async fn login_from(base: &str, email: &str, user_agent: &str) -> Session {
    let response = plain_client()
        .post(format!("{base}/api/auth/login"))
        .header("user-agent", user_agent)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    session_from(&response)
}

/// A request with the access token as Bearer, and a JSON body when given.
async fn call(
    base: &str,
    method: Method,
    path: &str,
    access: &str,
    body: Option<Value>,
) -> Response {
    let mut request = plain_client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(access);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn list(base: &str, access: &str) -> Vec<Value> {
    let response = call(base, Method::GET, "/api/users/me/sessions", access, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    body["data"]["sessions"].as_array().unwrap().clone()
}

fn ids(sessions: &[Value]) -> Vec<String> {
    sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn sid_of(session: &Session) -> String {
    claims_of(&session.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assert_alive(base: &str, session: &Session) {
    assert_eq!(me_at(base, &session.access).await.status(), 200);
}

// ---- the list -------------------------------------------------------------------------------

#[tokio::test]
async fn the_list_shows_each_live_session_newest_first_with_its_device() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let laptop = login_from(&app.address, &email, "Laptop Firefox").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let long_agent = "é".repeat(300);
    let phone = login_from(&app.address, &email, &long_agent).await;

    let sessions = list(&app.address, &phone.access).await;

    assert_eq!(ids(&sessions), vec![sid_of(&phone), sid_of(&laptop)]);
    let (newest, oldest) = (&sessions[0], &sessions[1]);
    assert_eq!(newest["current"], true);
    assert_eq!(oldest["current"], false);
    assert_eq!(oldest["user_agent"], "Laptop Firefox");
    assert_eq!(
        newest["user_agent"].as_str().unwrap().chars().count(),
        256,
        "at most 256 characters"
    );
    assert_eq!(newest["ip"], "127.0.0.1");
    for session in &sessions {
        let keys: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at",
                "current",
                "id",
                "ip",
                "last_used_at",
                "user_agent"
            ]
        );
        let created = chrono::DateTime::parse_from_rfc3339(session["created_at"].as_str().unwrap());
        assert!(created.is_ok(), "{session}");
    }
    // The laptop's view: it is the current one there.
    let seen_by_laptop = list(&app.address, &laptop.access).await;
    assert_eq!(seen_by_laptop[1]["current"], true);
}

#[tokio::test]
async fn a_refresh_moves_last_used_at_and_a_logout_removes_the_session_at_once() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let one = login_from(&app.address, &email, "one").await;
    let two = login_from(&app.address, &email, "two").await;
    let before = list(&app.address, &one.access).await;
    tokio::time::sleep(Duration::from_millis(30)).await;

    let refreshed = session_from(&app.refresh_with(&one.refresh).await);
    let after = list(&app.address, &refreshed.access).await;
    let entry =
        |sessions: &[Value], sid: &str| sessions.iter().find(|s| s["id"] == sid).cloned().unwrap();
    let (was, is) = (entry(&before, &sid_of(&one)), entry(&after, &sid_of(&one)));
    assert_eq!(was["created_at"], is["created_at"]);
    assert!(
        is["last_used_at"].as_str() > was["last_used_at"].as_str(),
        "{was} {is}"
    );

    let logout = call(
        &app.address,
        Method::POST,
        "/api/auth/logout",
        &two.access,
        None,
    )
    .await;
    assert_eq!(logout.status(), 200);
    assert_eq!(
        ids(&list(&app.address, &refreshed.access).await),
        vec![sid_of(&one)]
    );
}

#[tokio::test]
async fn an_expired_session_is_gone_from_the_list() {
    let app = spawn_app_with(&[
        ("ACCESS_TOKEN_EXPIRED_IN", "2s"),
        ("REFRESH_TOKEN_EXPIRED_IN", "2s"),
    ])
    .await;
    let email = app.register_user().await;
    let old = login_from(&app.address, &email, "old").await;
    assert_eq!(
        ids(&list(&app.address, &old.access).await),
        vec![sid_of(&old)]
    );

    // Its refresh token ends 2 s after the login, its entries 1 s later.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let fresh = login_from(&app.address, &email, "fresh").await;

    assert_eq!(
        ids(&list(&app.address, &fresh.access).await),
        vec![sid_of(&fresh)]
    );
}

#[tokio::test]
async fn the_account_routes_need_a_live_token() {
    let app = spawn_app().await;
    let routes = [
        (Method::GET, "/api/users/me/sessions".to_owned()),
        (Method::DELETE, "/api/users/me/sessions".to_owned()),
        (
            Method::DELETE,
            format!("/api/users/me/sessions/{}", uuid::Uuid::new_v4()),
        ),
        (Method::POST, "/api/users/me/password".to_owned()),
        (Method::DELETE, "/api/users/me".to_owned()),
    ];
    for (method, path) in routes {
        let response = plain_client()
            .request(method.clone(), app.url(&path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "not_logged_in").await;
        let forged = call(&app.address, method, &path, "not.a.token", Some(json!({}))).await;
        assert_error(forged, 401, "token_invalid").await;
    }
}

// ---- ending sessions ------------------------------------------------------------------------

#[tokio::test]
async fn a_session_listed_on_one_device_is_ended_from_the_other_on_every_instance() {
    let app = spawn_app().await;
    let other_instance = app.sibling(&[]).await;
    let email = app.register_user().await;
    let laptop = login_from(&app.address, &email, "laptop").await;
    let phone = login_from(&other_instance, &email, "phone").await;
    // Both instances know the phone's session, and hold a copy of the user.
    assert_alive(&other_instance, &phone).await;
    assert_alive(&app.address, &phone).await;
    let listed = list(&app.address, &laptop.access).await;
    assert!(ids(&listed).contains(&sid_of(&phone)));

    let path = format!("/api/users/me/sessions/{}", sid_of(&phone));
    let ended = call(&other_instance, Method::DELETE, &path, &laptop.access, None).await;

    assert_eq!(ended.status(), 200);
    assert_eq!(header(&ended, "cache-control").as_deref(), Some("no-store"));
    assert!(
        header(&ended, "set-cookie").is_none(),
        "not the current session: cookies stay"
    );
    for base in [&app.address, &other_instance] {
        assert_error(me_at(base, &phone.access).await, 401, "session_revoked").await;
        assert_error(
            refresh_at(base, &phone.refresh).await,
            401,
            "session_revoked",
        )
        .await;
        assert_alive(base, &laptop).await;
    }
    assert_eq!(
        ids(&list(&app.address, &laptop.access).await),
        vec![sid_of(&laptop)]
    );
    // Ended once: again is 404.
    let again = call(&app.address, Method::DELETE, &path, &laptop.access, None).await;
    assert_error(again, 404, "not_found").await;
}

#[tokio::test]
async fn a_rotated_refresh_token_of_an_ended_session_is_session_revoked_not_reused() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let laptop = login_from(&app.address, &email, "laptop").await;
    let phone = login_from(&app.address, &email, "phone").await;
    let rotated = session_from(&app.refresh_with(&phone.refresh).await);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let path = format!("/api/users/me/sessions/{}", sid_of(&phone));
    let ended = call(&app.address, Method::DELETE, &path, &laptop.access, None).await;
    assert_eq!(ended.status(), 200);

    assert_error(
        app.refresh_with(&phone.refresh).await,
        401,
        "session_revoked",
    )
    .await;
    assert_session_ended(&app, &rotated).await;
}

#[tokio::test]
async fn ending_the_current_session_clears_the_cookies_as_logout_does() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let path = format!("/api/users/me/sessions/{}", sid_of(&session));

    // Through the cookie jar, as a browser would.
    let response = app.client.delete(app.url(&path)).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let cookies = set_cookies(response.headers());
    for name in ["access_token", "refresh_token", "logged_in"] {
        let cleared = cookie(&cookies, name);
        assert_eq!(cleared.value, "", "{name}");
        assert_eq!(cleared.attr("max-age"), Some("0"), "{name}");
    }
    assert_session_ended(&app, &session).await;
}

#[tokio::test]
async fn an_id_that_is_not_a_live_session_of_this_user_is_404_and_ends_nothing() {
    let app = spawn_app().await;
    let mine = login_from(&app.address, &app.register_user().await, "me").await;
    let theirs = login_from(&app.address, &app.register_user().await, "them").await;

    for id in [
        sid_of(&theirs),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_owned(),
    ] {
        let path = format!("/api/users/me/sessions/{id}");
        let response = call(&app.address, Method::DELETE, &path, &mine.access, None).await;
        assert_error(response, 404, "not_found").await;
    }
    assert_alive(&app.address, &theirs).await;
    assert_eq!(app.refresh_with(&theirs.refresh).await.status(), 200);
}

#[tokio::test]
async fn ending_the_other_sessions_keeps_only_the_current_one() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let others = [
        login_from(&app.address, &email, "a").await,
        login_from(&app.address, &email, "b").await,
    ];
    let current = login_from(&app.address, &email, "c").await;
    let stranger = login_from(&app.address, &app.register_user().await, "x").await;

    let response = call(
        &app.address,
        Method::DELETE,
        "/api/users/me/sessions",
        &current.access,
        None,
    )
    .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "success", "data": {"ended": 2}}));
    for session in &others {
        assert_session_ended(&app, session).await;
    }
    assert_alive(&app.address, &current).await;
    assert_eq!(app.refresh_with(&current.refresh).await.status(), 200);
    assert_alive(&app.address, &stranger).await;
    assert_eq!(list(&app.address, &current.access).await.len(), 1);
    // Nothing left to end.
    let again = call(
        &app.address,
        Method::DELETE,
        "/api/users/me/sessions",
        &current.access,
        None,
    )
    .await;
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["data"]["ended"], 0);
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_clears_the_cookies() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let elsewhere = login_from(&app.address, &email, "elsewhere").await;
    let response = app.login(&email, PASSWORD).await;
    let here = session_from(&response);
    let stranger = login_from(&app.address, &app.register_user().await, "x").await;

    let logout = app
        .client
        .post(app.url("/api/auth/logout?all=true"))
        .send()
        .await
        .unwrap();

    assert_eq!(logout.status(), 200);
    let cookies = set_cookies(logout.headers());
    assert_eq!(cookie(&cookies, "access_token").attr("max-age"), Some("0"));
    assert_session_ended(&app, &here).await;
    assert_session_ended(&app, &elsewhere).await;
    assert_alive(&app.address, &stranger).await;
    let bad = plain_client()
        .post(app.url("/api/auth/logout?all=maybe"))
        .bearer_auth(&stranger.access)
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "validation_failed").await;
    assert_alive(&app.address, &stranger).await;
}

#[tokio::test]
async fn state_changing_account_routes_refuse_another_site_and_change_nothing() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let other = login_from(&app.address, &email, "other").await;
    let current = login_from(&app.address, &email, "current").await;
    let requests = [
        (
            Method::DELETE,
            format!("/api/users/me/sessions/{}", sid_of(&other)),
            None,
        ),
        (Method::DELETE, "/api/users/me/sessions".to_owned(), None),
        (
            Method::POST,
            "/api/users/me/password".to_owned(),
            Some(
                json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD, "newPasswordConfirm": NEW_PASSWORD}),
            ),
        ),
        (
            Method::DELETE,
            "/api/users/me".to_owned(),
            Some(json!({"password": PASSWORD})),
        ),
    ];
    for (method, path, body) in requests {
        let mut request = plain_client()
            .request(method, app.url(&path))
            .bearer_auth(&current.access)
            .header("origin", "https://evil.example");
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_error(request.send().await.unwrap(), 403, "origin_forbidden").await;
    }
    assert_alive(&app.address, &other).await;
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        200,
        "password unchanged"
    );
    // Reads are not state changes: the list answers another site's request (CORS decides
    // whether that site may read it).
    let read = plain_client()
        .get(app.url("/api/users/me/sessions"))
        .bearer_auth(&current.access)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

// ---- the password ---------------------------------------------------------------------------

fn password_change(current: &str) -> Value {
    json!({"currentPassword": current, "newPassword": NEW_PASSWORD, "newPasswordConfirm": NEW_PASSWORD})
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_keeps_the_current_one() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let thief = login_from(&app.address, &email, "thief").await;
    let mine = login_from(&app.address, &email, "mine").await;

    let response = call(
        &app.address,
        Method::POST,
        "/api/users/me/password",
        &mine.access,
        Some(password_change(PASSWORD)),
    )
    .await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );
    assert_session_ended(&app, &thief).await;
    assert_alive(&app.address, &mine).await;
    let next = app.refresh_with(&mine.refresh).await;
    assert_eq!(next.status(), 200, "the current session refreshes on");
    assert_error(
        app.login(&email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_wrong_current_password_is_invalid_credentials_and_counts_as_a_failed_login() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "2")]).await;
    let email = app.register_user().await;
    let session = login_from(&app.address, &email, "me").await;
    let change = |current: &str| {
        let body = password_change(current);
        let access = session.access.clone();
        let base = app.address.clone();
        async move {
            call(
                &base,
                Method::POST,
                "/api/users/me/password",
                &access,
                Some(body),
            )
            .await
        }
    };

    assert_error(change("wrong once").await, 401, "invalid_credentials").await;
    assert_error(change("wrong twice").await, 401, "invalid_credentials").await;

    // The same limit as login: the right password is refused too, and so is login.
    let limited = change(PASSWORD).await;
    assert!(header(&limited, "retry-after").is_some());
    assert_error(limited, 429, "rate_limited").await;
    assert_error(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
    assert_alive(&app.address, &session).await;
}

#[tokio::test]
async fn a_new_password_follows_the_rules_of_register() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let cases = [
        (
            json!({"currentPassword": PASSWORD, "newPassword": "short", "newPasswordConfirm": "short"}),
            vec!["newPassword"],
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD, "newPasswordConfirm": "different!"}),
            vec!["newPasswordConfirm"],
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": "x".repeat(129), "newPasswordConfirm": "x".repeat(129)}),
            vec!["newPassword"],
        ),
        (
            json!({"newPassword": NEW_PASSWORD}),
            vec!["currentPassword", "newPasswordConfirm"],
        ),
        (
            json!({"currentPassword": 5, "newPassword": NEW_PASSWORD, "newPasswordConfirm": NEW_PASSWORD}),
            vec!["currentPassword"],
        ),
    ];
    for (body, fields) in cases {
        let response = call(
            &app.address,
            Method::POST,
            "/api/users/me/password",
            &session.access,
            Some(body.clone()),
        )
        .await;
        let answer = assert_error(response, 400, "validation_failed").await;
        let named: Vec<&str> = answer["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    assert_alive(&app.address, &session).await;
}

#[tokio::test]
async fn a_refresh_racing_a_password_change_leaves_no_other_session_alive() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let mine = login_from(&app.address, &email, "mine").await;
    for _ in 0..5 {
        let other = login_from(&app.address, &email, "other").await;
        let base = app.address.clone();
        let refresh = tokio::spawn({
            let base = base.clone();
            async move { refresh_at(&base, &other.refresh).await }
        });
        let change = call(
            &base,
            Method::POST,
            "/api/users/me/password",
            &mine.access,
            Some(json!({
                "currentPassword": PASSWORD, "newPassword": PASSWORD, "newPasswordConfirm": PASSWORD
            })),
        )
        .await;
        assert_eq!(change.status(), 200);

        let refreshed = refresh.await.unwrap();
        if refreshed.status() == 200 {
            // The rotation won the race: its new tokens died with the session anyway.
            let late = session_from(&refreshed);
            assert_session_ended(&app, &late).await;
        } else {
            assert_error(refreshed, 401, "session_revoked").await;
        }
        assert_alive(&app.address, &mine).await;
    }
    assert_eq!(list(&app.address, &mine.access).await.len(), 1);
}

// ---- deleting the account -------------------------------------------------------------------

#[tokio::test]
async fn deleting_the_account_ends_everything_and_frees_the_email() {
    let app = spawn_app().await;
    let other_instance = app.sibling(&[]).await;
    let email = app.register_user().await;
    let elsewhere = login_from(&other_instance, &email, "elsewhere").await;
    assert_alive(&other_instance, &elsewhere).await;
    let response = app.login(&email, PASSWORD).await;
    let here = session_from(&response);

    let deleted = app
        .client
        .delete(app.url("/api/users/me"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();

    assert_eq!(deleted.status(), 200);
    let cookies = set_cookies(deleted.headers());
    assert_eq!(cookie(&cookies, "refresh_token").attr("max-age"), Some("0"));
    for base in [&app.address, &other_instance] {
        for session in [&here, &elsewhere] {
            assert_error(me_at(base, &session.access).await, 401, "session_revoked").await;
            assert_error(
                refresh_at(base, &session.refresh).await,
                401,
                "session_revoked",
            )
            .await;
        }
    }
    assert_error(
        app.login(&email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.register(&registration(&email)).await.status(), 201);
}

#[tokio::test]
async fn a_wrong_password_deletes_nothing_and_counts_as_a_failed_login() {
    let app = spawn_app_with(&[("LOGIN_ATTEMPTS_LIMIT", "1")]).await;
    let email = app.register_user().await;
    let session = login_from(&app.address, &email, "me").await;

    let wrong = call(
        &app.address,
        Method::DELETE,
        "/api/users/me",
        &session.access,
        Some(json!({"password": "not mine at all"})),
    )
    .await;
    assert_error(wrong, 401, "invalid_credentials").await;
    let missing = call(
        &app.address,
        Method::DELETE,
        "/api/users/me",
        &session.access,
        Some(json!({})),
    )
    .await;
    assert_error(missing, 400, "validation_failed").await;
    let limited = call(
        &app.address,
        Method::DELETE,
        "/api/users/me",
        &session.access,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_error(limited, 429, "rate_limited").await;

    assert_alive(&app.address, &session).await;
    assert_eq!(app.users_count().await, 1);
}
