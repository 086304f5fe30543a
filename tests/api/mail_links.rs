//! The links in the mail: what a verification link does, once; a newer link supersedes an
//! older one; no GET ever spends a token; malformed and unknown tokens; and the mail itself
//! (both parts, the sender, links built from APP_URL and never from the request's Host).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// A token of the right shape that the service never issued.
fn unknown_token() -> String {
    let mut bytes = Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The routes that take a token, with a body around `token` that is valid apart from it.
fn token_routes(token: Value) -> Vec<(&'static str, Value)> {
    vec![
        ("/api/auth/verify-email", json!({"token": token})),
        (
            "/api/auth/reset-password",
            json!({"token": token, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
        ),
        ("/api/auth/confirm-email", json!({"token": token})),
    ]
}

fn set_cookie_count(response: &reqwest::Response) -> usize {
    response.headers().get_all("set-cookie").iter().count()
}

#[tokio::test]
async fn register_sends_a_link_that_verifies_the_address_once() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, token) = app.register_for_link(&smtp).await;

    let verified = app.verify_email(&token).await;

    assert_no_store(&verified);
    assert_eq!(set_cookie_count(&verified), 0, "verifying does not log in");
    let user = user_of(verified).await;
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["verified"], true);
    let session = login_session(&app, &email).await;
    let me: Value = app.me_with(&session.access).await.json().await.unwrap();
    assert_eq!(me["data"]["user"]["verified"], true, "stored");
    assert_error(app.verify_email(&token).await, 400, "link_invalid").await;
}

#[tokio::test]
async fn a_still_valid_link_of_an_address_verified_meanwhile_answers_200() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, verify_token) = app.register_for_link(&smtp).await;
    // A reset proves the mailbox too: the address is verified, the older link still valid.
    let reset_token = app.reset_link(&smtp, &email).await;
    assert_eq!(
        app.reset_password(&reset_token, NEW_PASSWORD)
            .await
            .status(),
        200
    );

    let user = user_of(app.verify_email(&verify_token).await).await;

    assert_eq!(user["verified"], true);
    assert_eq!(user["email"], email.as_str());
}

#[tokio::test]
async fn a_resent_link_supersedes_the_older_one() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, first) = app.register_for_link(&smtp).await;

    let resent = app.resend_verification(&email).await;

    assert_eq!(resent.status(), 202);
    assert_no_store(&resent);
    let body: Value = resent.json().await.unwrap();
    assert_eq!(body["status"], "success");
    let second = smtp
        .wait_for_nth(&email, "verify_email", 2, MAIL_WAIT)
        .await
        .token();
    assert_ne!(first, second);
    assert_error(app.verify_email(&first).await, 400, "link_invalid").await;
    assert_eq!(
        user_of(app.verify_email(&second).await).await["verified"],
        true
    );
}

/// A mail scanner opens every link; the SPA's page only POSTs on a click. A GET must never
/// use a token, whatever route it is sent to and wherever the token is.
#[tokio::test]
async fn get_on_every_mail_route_is_405_and_spends_no_token() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, verify_token) = app.register_for_link(&smtp).await;
    let reset_token = app.reset_link(&smtp, &email).await;
    let (_, session) = app.logged_in_user().await;
    let new_email = unique_email();
    let changed = app
        .change_email(&session.access, &new_email, PASSWORD)
        .await;
    assert_eq!(changed.status(), 202);
    let confirm_token = smtp.wait_for(&new_email, "confirm_email").await.token();
    let routes = [
        ("/api/auth/verify-email", Some(&verify_token)),
        ("/api/auth/verify-email/resend", None),
        ("/api/auth/forgot-password", None),
        ("/api/auth/reset-password", Some(&reset_token)),
        ("/api/users/me/email", None),
        ("/api/auth/confirm-email", Some(&confirm_token)),
    ];

    for _ in 0..2 {
        for (path, token) in routes {
            let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
            let response = plain_client()
                .request(Method::GET, app.url(&format!("{path}{query}")))
                .bearer_auth(&session.access)
                .send()
                .await
                .unwrap();
            let allow = header(&response, "allow").unwrap_or_default();
            assert_error(response, 405, "method_not_allowed").await;
            assert!(allow.contains("POST"), "{path}: Allow {allow:?}");
        }
    }

    assert_eq!(
        user_of(app.verify_email(&verify_token).await).await["verified"],
        true
    );
    assert_eq!(
        app.reset_password(&reset_token, NEW_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
    let confirmed = user_of(app.confirm_email(&confirm_token).await).await;
    assert_eq!(confirmed["email"], new_email.as_str());
}

#[tokio::test]
async fn a_malformed_token_is_400_validation_failed_on_every_token_route() {
    let (app, _smtp) = spawn_mail_app(&[]).await;
    let long = "A".repeat(10 * 1024);
    let mut failures = Vec::new();

    for bad in [
        json!(""),
        json!(long),
        json!(12345),
        json!(null),
        json!(["x"]),
    ] {
        for (path, body) in token_routes(bad.clone()) {
            check_malformed(&app, path, &body, &mut failures).await;
        }
    }
    for (path, mut body) in token_routes(json!("x")) {
        body.as_object_mut().unwrap().remove("token");
        check_malformed(&app, path, &body, &mut failures).await;
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn check_malformed(app: &TestApp, path: &str, body: &Value, failures: &mut Vec<String>) {
    let response = post_at(&app.address, path, body).await;
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let named_token = answer["errors"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["field"] == "token"));
    if status != 400 || answer["code"] != "validation_failed" || !named_token {
        let shown: String = body.to_string().chars().take(80).collect();
        failures.push(format!("{path} {shown}: {status} {answer}"));
    }
}

#[tokio::test]
async fn an_unknown_or_wrong_purpose_token_is_link_invalid() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, verify_token) = app.register_for_link(&smtp).await;
    let reset_token = app.reset_link(&smtp, &email).await;

    for (path, body) in token_routes(json!(unknown_token())) {
        let response = post_at(&app.address, path, &body).await;
        assert_no_store(&response);
        let error = assert_error(response, 400, "link_invalid").await;
        assert!(error.get("errors").is_none(), "{path}: {error}");
    }
    assert_error(
        app.reset_password(&verify_token, NEW_PASSWORD).await,
        400,
        "link_invalid",
    )
    .await;
    assert_error(app.verify_email(&reset_token).await, 400, "link_invalid").await;
    assert_error(app.confirm_email(&reset_token).await, 400, "link_invalid").await;
    assert_error(app.confirm_email(&verify_token).await, 400, "link_invalid").await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200, "unchanged");
}

#[tokio::test]
async fn an_expired_link_is_link_invalid() {
    let (app, smtp) = spawn_mail_app(&[
        ("EMAIL_TOKEN_TTL_VERIFY", "1s"),
        ("EMAIL_TOKEN_TTL_RESET", "1s"),
    ])
    .await;
    let (email, verify_token) = app.register_for_link(&smtp).await;
    let reset_token = app.reset_link(&smtp, &email).await;

    // Both were issued before their mail arrived: a second and a half later both have ended.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    assert_error(app.verify_email(&verify_token).await, 400, "link_invalid").await;
    assert_error(
        app.reset_password(&reset_token, NEW_PASSWORD).await,
        400,
        "link_invalid",
    )
    .await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200, "unchanged");
}

/// The mail routes change state: another site's page cannot post to them, and a refused
/// post spends nothing.
#[tokio::test]
async fn a_mail_route_from_another_site_is_refused_and_spends_nothing() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, verify_token) = app.register_for_link(&smtp).await;
    let reset_token = app.reset_link(&smtp, &email).await;
    let (_, session) = app.logged_in_user().await;
    let reset =
        json!({"token": reset_token, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD});
    let routes = [
        ("/api/auth/verify-email", json!({"token": verify_token})),
        ("/api/auth/verify-email/resend", json!({"email": email})),
        ("/api/auth/forgot-password", json!({"email": email})),
        ("/api/auth/reset-password", reset),
        (
            "/api/users/me/email",
            json!({"email": unique_email(), "password": PASSWORD}),
        ),
        ("/api/auth/confirm-email", json!({"token": unknown_token()})),
    ];

    for (path, body) in &routes {
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let response = plain_client()
                .post(app.url(path))
                .header(name, value)
                .bearer_auth(&session.access)
                .json(body)
                .send()
                .await
                .unwrap();
            assert_error(response, 403, "origin_forbidden").await;
        }
    }

    let same_site = plain_client()
        .post(app.url("/api/auth/verify-email"))
        .header("origin", SPA_ORIGIN)
        .json(&json!({"token": verify_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(user_of(same_site).await["verified"], true);
    assert_eq!(
        app.reset_password(&reset_token, NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

/// A link whose mail a scanner rewrote or a client cut still finds no user.
#[tokio::test]
async fn a_token_that_is_almost_right_is_link_invalid() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (_, token) = app.register_for_link(&smtp).await;
    let last = token.chars().last().unwrap();
    let other = if last == 'A' { 'B' } else { 'A' };
    let changed = format!("{}{other}", &token[..42]);

    assert_error(app.verify_email(&changed).await, 400, "link_invalid").await;
    assert_error(app.verify_email(&token[..42]).await, 400, "link_invalid").await;
    assert_error(
        app.verify_email(&format!("{token}A")).await,
        400,
        "link_invalid",
    )
    .await;
    assert_eq!(
        user_of(app.verify_email(&token).await).await["verified"],
        true
    );
}

#[tokio::test]
async fn a_mail_has_text_and_html_from_mail_from_and_links_to_app_url_whatever_the_host() {
    let app_url = "https://accounts.example.org";
    let (app, smtp) = spawn_mail_app(&[("APP_URL", app_url)]).await;
    let email = unique_email();
    let evil = |request: reqwest::RequestBuilder| {
        request
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("forwarded", "host=evil.example;proto=https")
    };

    let registered = evil(plain_client().post(app.url("/api/auth/register")))
        .json(&registration(&email))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let forgot = evil(plain_client().post(app.url("/api/auth/forgot-password")))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), 202);
    let session = login_session(&app, &email).await;
    let new_email = unique_email();
    let changed = evil(plain_client().post(app.url("/api/users/me/email")))
        .bearer_auth(&session.access)
        .json(&json!({"email": new_email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 202);

    let mails = [
        (
            smtp.wait_for(&email, "verify_email").await,
            "verify-email",
            &email,
        ),
        (
            smtp.wait_for(&email, "reset_password").await,
            "reset-password",
            &email,
        ),
        (
            smtp.wait_for(&new_email, "confirm_email").await,
            "confirm-email",
            &new_email,
        ),
    ];
    for (mail, page, to) in mails {
        let kind = &mail.kind;
        assert_eq!(mail.content_type, "multipart/alternative", "{kind}");
        assert_eq!(mail.part_types, ["text/plain", "text/html"], "{kind}");
        assert_eq!(
            mail.from,
            (Some("Mail Tests".into()), Some(MAIL_FROM_ADDRESS.into())),
            "{kind}"
        );
        assert_eq!(mail.to, [to.as_str()], "{kind}");
        assert_eq!(mail.recipients, [to.as_str()], "{kind}");
        assert!(
            mail.header("subject").is_some_and(|s| !s.is_empty()),
            "{kind}"
        );
        let link = format!("{app_url}/{page}?token={}", mail.token());
        assert_eq!(mail.links(), [link.as_str()], "{kind}: {}", mail.text);
        assert!(mail.html.contains(&link), "{kind}: {}", mail.html);
        let mut in_html = tokens_in(&mail.html);
        in_html.dedup();
        assert_eq!(in_html, [mail.token()], "{kind}: {}", mail.html);
        let raw = String::from_utf8_lossy(&mail.raw);
        assert!(!raw.contains("evil.example"), "{kind}: {raw}");
        assert!(!raw.contains(&app.address), "{kind}: {raw}");
    }
}

#[tokio::test]
async fn links_default_to_the_first_client_origin() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(&[
        ("SMTP_URL", &smtp.url()),
        (
            "CLIENT_ORIGIN",
            "http://spa.example.net:8080,http://localhost:3000",
        ),
    ])
    .await;

    let email = app.register_user().await;

    let mail = smtp.wait_for(&email, "verify_email").await;
    let link = format!(
        "http://spa.example.net:8080/verify-email?token={}",
        mail.token()
    );
    assert_eq!(mail.links(), [link]);
}

/// Notices carry no link and no token: there is nothing in them to use.
#[tokio::test]
async fn notices_carry_no_link() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (email, session) = app.logged_in_user().await;
    let changed = plain_client()
        .post(app.url("/api/users/me/password"))
        .bearer_auth(&session.access)
        .json(&json!({
            "currentPassword": PASSWORD,
            "newPassword": NEW_PASSWORD,
            "newPasswordConfirm": NEW_PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);

    let notice = smtp.wait_for(&email, "password_changed").await;

    assert!(notice.tokens().is_empty(), "{}", notice.text);
    assert!(!notice.text.contains("token="), "{}", notice.text);
    assert!(!notice.html.contains("token="), "{}", notice.html);
    assert_eq!(notice.part_types, ["text/plain", "text/html"]);
}
