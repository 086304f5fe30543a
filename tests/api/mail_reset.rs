//! Recovering an account: a reset link sets the password once, ends every session, logs
//! nobody in and proves the address; it dies when the password changes first.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::*;

async fn change_password(app: &TestApp, access: &str) -> reqwest::Response {
    plain_client()
        .post(app.url("/api/users/me/password"))
        .bearer_auth(access)
        .json(&json!({
            "currentPassword": PASSWORD,
            "newPassword": NEW_PASSWORD,
            "newPasswordConfirm": NEW_PASSWORD,
        }))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_reset_sets_the_password_ends_every_session_and_logs_nobody_in() {
    let (app, smtp) = spawn_mail_app(&[("LOGIN_ATTEMPTS_LIMIT", "3")]).await;
    let (email, phone) = app.logged_in_user().await;
    let laptop = login_session(&app, &email).await;
    for _ in 0..2 {
        assert_eq!(app.login(&email, "a wrong guess").await.status(), 401);
    }
    let token = app.reset_link(&smtp, &email).await;

    let reset = app.reset_password(&token, NEW_PASSWORD).await;

    assert_eq!(reset.status(), 200);
    assert_no_store(&reset);
    assert!(
        reset.headers().get("set-cookie").is_none(),
        "no cookies: {:?}",
        reset.headers()
    );
    let body: Value = reset.json().await.unwrap();
    assert_eq!(body, json!({"status": "success"}), "no token, no user");
    assert_session_ended(&app, &phone).await;
    assert_session_ended(&app, &laptop).await;
    // The counter was cleared: two failures before and one now stay under the limit of 3.
    assert_error(
        app.login(&email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let session = login_session_with(&app, &email, NEW_PASSWORD).await;
    let me: Value = app.me_with(&session.access).await.json().await.unwrap();
    assert_eq!(
        me["data"]["user"]["verified"], true,
        "the mailbox was proven"
    );
    let notice = smtp.wait_for(&email, "password_changed").await;
    assert!(notice.tokens().is_empty());
    assert_error(
        app.reset_password(&token, "yet another passphrase").await,
        400,
        "link_invalid",
    )
    .await;
}

async fn login_session_with(app: &TestApp, email: &str, password: &str) -> Session {
    let response = app.login(email, password).await;
    assert_eq!(response.status(), 200);
    session_from(&response)
}

#[tokio::test]
async fn a_reset_follows_the_password_rules_of_register_and_keeps_the_link() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let email = app.register_user().await;
    let token = app.reset_link(&smtp, &email).await;

    let short = app.reset_password(&token, "short").await;
    assert_invalid_fields(short, &["password"], "a short password").await;
    let differ =
        json!({"token": token, "password": NEW_PASSWORD, "passwordConfirm": "other passphrase"});
    let differ = post_at(&app.address, "/api/auth/reset-password", &differ).await;
    assert_invalid_fields(differ, &["passwordConfirm"], "passwords that differ").await;

    assert_eq!(app.reset_password(&token, NEW_PASSWORD).await.status(), 200);
}

/// Six tabs (or an attacker racing the user) post one link at once, spread over two
/// instances: exactly one wins, and the other five see the link as used.
#[tokio::test]
async fn a_reset_link_is_used_once_under_six_concurrent_posts() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let mail = mail_settings(&smtp);
    let other = app.sibling(&with_mail(&mail, &[])).await;
    let email = app.register_user().await;
    let token = app.reset_link(&smtp, &email).await;

    let mut posts = JoinSet::new();
    for i in 0..6 {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.clone()
        };
        let (token, password) = (token.clone(), format!("passphrase number {i}"));
        posts.spawn(async move {
            let response = reset_password_at(&base, &token, &password).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (
                status,
                body["code"].as_str().unwrap_or("").to_owned(),
                password,
            )
        });
    }
    let answers = posts.join_all().await;

    let mut counts: HashMap<(u16, String), usize> = HashMap::new();
    for (status, code, _) in &answers {
        *counts.entry((*status, code.clone())).or_default() += 1;
    }
    let expected = HashMap::from([((200, String::new()), 1), ((400, "link_invalid".into()), 5)]);
    assert_eq!(counts, expected, "{answers:?}");
    let (_, _, winner) = answers.iter().find(|(s, _, _)| *s == 200).unwrap();
    assert_eq!(app.login(&email, winner).await.status(), 200);
    // Both instances send from the one outbox: one notice, not one per instance.
    smtp.wait_for(&email, "password_changed").await;
    let other_metrics = format!("{other}/metrics");
    tokio::join!(app.settled_outbox(), settled_outbox_at(&other_metrics));
    assert_eq!(smtp.count(&email, "password_changed"), 1);
    assert_eq!(smtp.count(&email, "reset_password"), 1);
}

#[tokio::test]
async fn a_reset_link_dies_when_the_password_changes() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    let token = app.reset_link(&smtp, &email).await;

    assert_eq!(change_password(&app, &session.access).await.status(), 200);

    assert_error(
        app.reset_password(&token, "an attacker's passphrase").await,
        400,
        "link_invalid",
    )
    .await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
    smtp.wait_for(&email, "password_changed").await;
}

#[tokio::test]
async fn a_newer_reset_link_supersedes_the_older_one() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let email = app.register_user().await;
    let first = app.reset_link(&smtp, &email).await;
    let second = app.reset_link(&smtp, &email).await;

    assert_error(
        app.reset_password(&first, NEW_PASSWORD).await,
        400,
        "link_invalid",
    )
    .await;
    assert_eq!(
        app.reset_password(&second, NEW_PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
#[ignore = "needs Postgres and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL, run with --include-ignored"]
async fn a_reset_at_one_instance_ends_the_sessions_used_at_another() {
    require_production();
    let (app, smtp) = spawn_mail_app(&[]).await;
    let mail = mail_settings(&smtp);
    let other = app.sibling(&with_mail(&mail, &[])).await;
    let email = app.register_user().await;
    let login = post_at(&other, "/api/auth/login", &credentials(&email)).await;
    assert_eq!(login.status(), 200);
    let session = session_from(&login);
    // Used at the other instance, so that whatever it keeps of the session is warm.
    for _ in 0..3 {
        assert_eq!(me_at(&other, &session.access).await.status(), 200);
    }
    let token = app.reset_link(&smtp, &email).await;

    assert_eq!(app.reset_password(&token, NEW_PASSWORD).await.status(), 200);

    assert_error(me_at(&other, &session.access).await, 401, "session_revoked").await;
    assert_error(
        refresh_at(&other, &session.refresh).await,
        401,
        "session_revoked",
    )
    .await;
    assert_error(
        me_at(&app.address, &session.access).await,
        401,
        "session_revoked",
    )
    .await;
    let login = post_at(&other, "/api/auth/login", &credentials(&email)).await;
    assert_error(login, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn deleting_the_account_sends_a_notice_and_ends_its_links() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    let token = app.reset_link(&smtp, &email).await;

    let deleted = plain_client()
        .delete(app.url("/api/users/me"))
        .bearer_auth(&session.access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .expect("request");

    assert_eq!(deleted.status(), 200);
    let notice = smtp.wait_for(&email, "account_deleted").await;
    assert!(notice.tokens().is_empty(), "{}", notice.text);
    assert_error(
        app.reset_password(&token, NEW_PASSWORD).await,
        400,
        "link_invalid",
    )
    .await;
    // The address can register again, and the old link does not come back to life.
    assert_eq!(app.register(&registration(&email)).await.status(), 201);
    assert_error(
        app.reset_password(&token, NEW_PASSWORD).await,
        400,
        "link_invalid",
    )
    .await;
}
