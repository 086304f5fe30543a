//! Changing the address (it changes only when the link sent to the new address is used), and
//! register and login when an address must be verified first.

use serde_json::{Value, json};

use crate::helpers::*;

/// The stored address, as `/api/users/me` serves it.
async fn current_email(app: &TestApp, access: &str) -> String {
    let me: Value = app.me_with(access).await.json().await.unwrap();
    me["data"]["user"]["email"]
        .as_str()
        .expect("email")
        .to_owned()
}

#[tokio::test]
async fn an_address_change_with_a_wrong_password_is_401_and_counts_as_a_failed_login() {
    let (app, smtp) = spawn_mail_app(&[("LOGIN_ATTEMPTS_LIMIT", "2")]).await;
    let (email, session) = app.logged_in_user().await;
    let new_email = unique_email();

    for _ in 0..2 {
        let refused = app
            .change_email(&session.access, &new_email, "a wrong guess")
            .await;
        assert_no_store(&refused);
        assert_error(refused, 401, "invalid_credentials").await;
    }

    assert_error(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
    assert_eq!(current_email(&app, &session.access).await, email);
    assert_eq!(smtp.count(&new_email, "confirm_email"), 0);
}

#[tokio::test]
async fn an_address_change_needs_a_live_session() {
    let (app, _smtp) = spawn_mail_app(&[]).await;

    let response = post_at(
        &app.address,
        "/api/users/me/email",
        &json!({"email": unique_email(), "password": PASSWORD}),
    )
    .await;

    assert_error(response, 401, "not_logged_in").await;
}

#[tokio::test]
async fn an_address_change_is_confirmed_by_the_link_sent_to_the_new_address() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (old_email, session) = app.logged_in_user().await;
    let new_email = unique_email();

    let changed = app
        .change_email(&session.access, &new_email.to_uppercase(), PASSWORD)
        .await;

    assert_eq!(changed.status(), 202);
    assert_no_store(&changed);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["status"], "success");
    let mail = smtp.wait_for(&new_email, "confirm_email").await;
    assert_eq!(mail.to, [new_email.as_str()]);
    assert_eq!(
        current_email(&app, &session.access).await,
        old_email,
        "nothing changes before the link is used"
    );

    let confirmed = app.confirm_email(&mail.token()).await;

    assert_no_store(&confirmed);
    assert!(confirmed.headers().get("set-cookie").is_none());
    let user = user_of(confirmed).await;
    assert_eq!(user["email"], new_email.as_str());
    assert_eq!(user["verified"], true);
    assert_eq!(current_email(&app, &session.access).await, new_email);
    let notice = smtp.wait_for(&old_email, "email_changed").await;
    assert!(notice.tokens().is_empty());
    assert_eq!(app.login(&new_email, PASSWORD).await.status(), 200);
    assert_error(
        app.login(&old_email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_error(app.confirm_email(&mail.token()).await, 400, "link_invalid").await;
    // The old address is free again.
    assert_eq!(app.register(&registration(&old_email)).await.status(), 201);
}

#[tokio::test]
async fn an_address_change_to_a_taken_address_answers_202_and_tells_only_that_address() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    let taken = app.register_user().await;
    let free = unique_email();

    let to_taken = app.change_email(&session.access, &taken, PASSWORD).await;
    let to_free = app.change_email(&session.access, &free, PASSWORD).await;

    let (taken_status, taken_body) = (to_taken.status(), to_taken.bytes().await.unwrap());
    let (free_status, free_body) = (to_free.status(), to_free.bytes().await.unwrap());
    assert_eq!(taken_status, 202);
    assert_eq!((taken_status, taken_body), (free_status, free_body));
    let told = smtp.wait_for(&taken, "address_taken").await;
    assert!(told.tokens().is_empty(), "{}", told.text);
    smtp.wait_for(&free, "confirm_email").await;
    assert_eq!(smtp.count(&taken, "confirm_email"), 0);
    assert_eq!(current_email(&app, &session.access).await, email);
    assert_eq!(app.login(&taken, PASSWORD).await.status(), 200, "untouched");
}

#[tokio::test]
async fn a_confirm_whose_address_was_taken_meanwhile_is_409() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    let new_email = unique_email();
    let changed = app
        .change_email(&session.access, &new_email, PASSWORD)
        .await;
    assert_eq!(changed.status(), 202);
    let token = smtp.wait_for(&new_email, "confirm_email").await.token();
    assert_eq!(app.register(&registration(&new_email)).await.status(), 201);

    assert_error(app.confirm_email(&token).await, 409, "email_taken").await;

    assert_eq!(current_email(&app, &session.access).await, email);
}

#[tokio::test]
async fn a_newer_address_change_supersedes_the_older_link() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (_, session) = app.logged_in_user().await;
    // Back to back: the worker may get to them in either order, and the link asked for last
    // must be the one that works (mail_store pins the rule on the stores).
    for _ in 0..3 {
        let (first, second) = (unique_email(), unique_email());
        for email in [&first, &second] {
            let changed = app.change_email(&session.access, email, PASSWORD).await;
            assert_eq!(changed.status(), 202);
        }
        let token = smtp.wait_for(&second, "confirm_email").await.token();
        // The first one's mail goes only if its link was made first; then it is dead.
        if smtp.count(&first, "confirm_email") > 0 {
            let old = smtp.wait_for(&first, "confirm_email").await.token();
            assert_error(app.confirm_email(&old).await, 400, "link_invalid").await;
        }
        let user = user_of(app.confirm_email(&token).await).await;
        assert_eq!(user["email"], second.as_str());
    }
}

#[tokio::test]
async fn a_reset_link_dies_when_the_address_changes() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    let reset_token = app.reset_link(&smtp, &email).await;
    let new_email = unique_email();
    let changed = app
        .change_email(&session.access, &new_email, PASSWORD)
        .await;
    assert_eq!(changed.status(), 202);
    let token = smtp.wait_for(&new_email, "confirm_email").await.token();
    assert_eq!(app.confirm_email(&token).await.status(), 200);

    assert_error(
        app.reset_password(&reset_token, NEW_PASSWORD).await,
        400,
        "link_invalid",
    )
    .await;
    assert_eq!(app.login(&new_email, PASSWORD).await.status(), 200);
}

const VERIFIED_ONLY: [(&str, &str); 1] = [("REQUIRE_VERIFIED_EMAIL", "true")];

#[tokio::test]
async fn with_verification_required_register_answers_alike_for_new_and_taken_addresses() {
    let (app, smtp) = spawn_mail_app(&VERIFIED_ONLY).await;
    let (email, body) = new_registration();
    let mut again = body.clone();
    again["name"] = json!("Someone Else");
    again["password"] = json!("another passphrase");
    again["passwordConfirm"] = json!("another passphrase");

    let new = app.register(&body).await;
    let taken = app.register(&again).await;

    let (new_status, new_body) = (new.status(), new.bytes().await.unwrap());
    let (taken_status, taken_body) = (taken.status(), taken.bytes().await.unwrap());
    assert_eq!(new_status, 202);
    assert_eq!((new_status, &new_body), (taken_status, &taken_body));
    let answer: Value = serde_json::from_slice(&new_body).unwrap();
    assert_eq!(answer["status"], "success");
    assert!(answer.get("data").is_none(), "no user: {answer}");
    assert_eq!(app.users_count().await, 1);
    smtp.wait_for(&email, "verify_email").await;
    let attempt = smtp.wait_for(&email, "signup_attempt").await;
    let link = format!("{APP_URL}/reset-password?token={}", attempt.token());
    assert_eq!(attempt.links(), [link]);

    assert_eq!(
        app.reset_password(&attempt.token(), NEW_PASSWORD)
            .await
            .status(),
        200
    );

    let login = app.login(&email, NEW_PASSWORD).await;
    assert_eq!(login.status(), 200, "a reset proves the address");
    assert_error(
        app.login(&email, "another passphrase").await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn with_verification_required_an_unverified_user_logs_in_only_once_verified() {
    let (app, smtp) = spawn_mail_app(&VERIFIED_ONLY).await;
    let (email, body) = new_registration();
    assert_eq!(app.register(&body).await.status(), 202);
    let token = smtp.wait_for(&email, "verify_email").await.token();

    let right = app.login(&email, PASSWORD).await;
    assert!(right.headers().get("set-cookie").is_none());
    assert_error(right, 403, "email_not_verified").await;
    let wrong = app.login(&email, "a wrong guess").await;
    assert_error(wrong, 401, "invalid_credentials").await;

    assert_eq!(
        user_of(app.verify_email(&token).await).await["verified"],
        true
    );

    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    let session = session_from(&login);
    assert_eq!(app.me_with(&session.access).await.status(), 200);
}

#[tokio::test]
async fn without_verification_required_an_unverified_user_logs_in() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let email = app.register_user().await;
    smtp.wait_for(&email, "verify_email").await;

    let login = app.login(&email, PASSWORD).await;

    assert_eq!(login.status(), 200);
    let taken = app.register(&registration(&email)).await;
    assert_error(taken, 409, "email_taken").await;
}

#[tokio::test]
async fn a_pending_address_change_dies_with_a_reset_or_a_password_change() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    // A thief with the password asks to move the account, then the owner resets.
    let thief = unique_email();
    let changed = app.change_email(&session.access, &thief, PASSWORD).await;
    assert_eq!(changed.status(), 202);
    let stolen = smtp.wait_for(&thief, "confirm_email").await.token();
    let reset = app.reset_link(&smtp, &email).await;
    assert_eq!(app.reset_password(&reset, NEW_PASSWORD).await.status(), 200);
    assert_error(app.confirm_email(&stolen).await, 400, "link_invalid").await;

    // The same with a password change instead of a reset.
    let session = session_from(&app.login(&email, NEW_PASSWORD).await);
    let thief = unique_email();
    let changed = app
        .change_email(&session.access, &thief, NEW_PASSWORD)
        .await;
    assert_eq!(changed.status(), 202);
    let stolen = smtp.wait_for(&thief, "confirm_email").await.token();
    let body = json!({"currentPassword": NEW_PASSWORD, "newPassword": PASSWORD,
        "newPasswordConfirm": PASSWORD});
    let changed = plain_client()
        .post(app.url("/api/users/me/password"))
        .bearer_auth(&session.access)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_error(app.confirm_email(&stolen).await, 400, "link_invalid").await;
    let me = login_session(&app, &email).await;
    assert_eq!(current_email(&app, &me.access).await, email);
}

#[tokio::test]
async fn a_change_to_a_taken_address_ends_the_older_link_as_a_free_one_does() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (_, session) = app.logged_in_user().await;
    let (taken, _) = app.logged_in_user().await;
    // An older link of one's own, then a change to another address: whether that address
    // has an account must not show in what the older link does.
    for other in [taken.as_str(), &unique_email()] {
        let own = unique_email();
        let changed = app.change_email(&session.access, &own, PASSWORD).await;
        assert_eq!(changed.status(), 202);
        let older = smtp.wait_for(&own, "confirm_email").await.token();
        let changed = app.change_email(&session.access, other, PASSWORD).await;
        assert_eq!(changed.status(), 202);
        let kind = if other == taken {
            "address_taken"
        } else {
            "confirm_email"
        };
        smtp.wait_for(other, kind).await;
        assert_error(app.confirm_email(&older).await, 400, "link_invalid").await;
    }
}
