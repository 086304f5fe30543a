//! Requests that a server cannot read one way only are refused with 400, not guessed: a proxy
//! or a log in front of the service could read them as another account or another token.

use serde_json::Value;

use crate::helpers::*;

async fn post_raw(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    plain_client()
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn assert_refused_as(response: reqwest::Response, field: &str) {
    assert!(
        response.headers().get("set-cookie").is_none(),
        "an ambiguous request changes no cookie: {:?}",
        response.headers()
    );
    let body = assert_error(response, 400, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], field, "{body}");
}

#[tokio::test]
async fn a_login_body_that_repeats_the_email_is_refused() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let other = unique_email();

    for body in [
        format!(r#"{{"email": "{other}", "password": "{PASSWORD}", "email": "{email}"}}"#),
        format!(r#"{{"email": "{email}", "password": "x", "password": "{PASSWORD}"}}"#),
    ] {
        let response = post_raw(&app, "/api/auth/login", &body).await;
        assert_refused_as(response, "body").await;
    }
    // Written once, the same values log in.
    let once = format!(r#"{{"email": "{email}", "password": "{PASSWORD}"}}"#);
    assert_eq!(post_raw(&app, "/api/auth/login", &once).await.status(), 200);
}

#[tokio::test]
async fn a_register_body_that_repeats_a_key_at_any_depth_stores_nothing() {
    let app = spawn_app().await;
    let email = unique_email();
    let fields = format!(
        r#""name": "Ada", "email": "{email}", "password": "{PASSWORD}", "passwordConfirm": "{PASSWORD}""#
    );

    for body in [
        format!(r#"{{{fields}, "name": "Eve"}}"#),
        format!(r#"{{{fields}, "extra": {{"k": 1, "k": 2}}}}"#),
    ] {
        let response = post_raw(&app, "/api/auth/register", &body).await;
        assert_refused_as(response, "body").await;
    }
    assert_eq!(app.users_count().await, 0);
}

#[tokio::test]
async fn two_authorization_headers_are_refused_everywhere_they_are_read() {
    let app = spawn_app().await;
    let (_, mine) = app.logged_in_user().await;
    let (_, theirs) = app.logged_in_user().await;

    let twice = |request: reqwest::RequestBuilder, first: &str, second: &str| {
        request
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"))
    };
    let client = plain_client();
    let me = twice(
        client.get(app.url("/api/users/me")),
        &mine.access,
        &theirs.access,
    );
    assert_refused_as(me.send().await.unwrap(), "Authorization").await;
    let same_twice = twice(
        client.get(app.url("/api/users/me")),
        &mine.access,
        &mine.access,
    );
    assert_refused_as(same_twice.send().await.unwrap(), "Authorization").await;
    let refresh = twice(
        client.post(app.url("/api/auth/refresh")),
        &mine.refresh,
        &theirs.refresh,
    );
    assert_refused_as(refresh.send().await.unwrap(), "Authorization").await;
    let logout = twice(
        client.post(app.url("/api/auth/logout")),
        &mine.access,
        &theirs.access,
    );
    assert_refused_as(logout.send().await.unwrap(), "Authorization").await;

    // Nothing was ended or rotated: both sessions carry on.
    for session in [&mine, &theirs] {
        assert_eq!(app.me_with(&session.access).await.status(), 200);
        assert_eq!(app.refresh_with(&session.refresh).await.status(), 200);
    }
}

#[tokio::test]
async fn two_cookies_of_a_token_name_are_refused() {
    let app = spawn_app().await;
    let (_, mine) = app.logged_in_user().await;
    let (_, theirs) = app.logged_in_user().await;
    let client = plain_client();
    let (a, b) = (&mine.access, &theirs.access);
    let (ra, rb) = (&mine.refresh, &theirs.refresh);

    for (path, cookies, field) in [
        (
            "/api/users/me",
            vec![format!("access_token={a}; access_token={b}")],
            "access_token",
        ),
        (
            "/api/users/me",
            vec![format!("access_token={a}"), format!("access_token={b}")],
            "access_token",
        ),
        // An empty one beside a real one is as ambiguous.
        (
            "/api/users/me",
            vec![format!("access_token=; access_token={a}")],
            "access_token",
        ),
        (
            "/api/auth/refresh",
            vec![format!("refresh_token={ra}; refresh_token={rb}")],
            "refresh_token",
        ),
        (
            "/api/auth/logout",
            vec![format!(
                "access_token={a}; refresh_token={ra}; refresh_token={rb}"
            )],
            "refresh_token",
        ),
    ] {
        let mut request = if path == "/api/users/me" {
            client.get(app.url(path))
        } else {
            client.post(app.url(path))
        };
        for value in &cookies {
            request = request.header("cookie", value);
        }
        assert_refused_as(request.send().await.unwrap(), field).await;
    }

    // A header with text beyond ASCII is read by actix all the same, so it is counted too.
    let beside_non_ascii = format!("refresh_token={ra}; refresh_token={rb}; note=café");
    let response = client
        .post(app.url("/api/auth/refresh"))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(beside_non_ascii.as_bytes()).unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_refused_as(response, "refresh_token").await;

    for session in [&mine, &theirs] {
        let response = plain_client()
            .post(app.url("/api/auth/refresh"))
            .header("cookie", format!("refresh_token={}", session.refresh))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "still the session's token");
        let body: Value = response.json().await.unwrap();
        assert!(body["access_token"].is_string());
    }
}
