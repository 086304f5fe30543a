//! Apps that send their mail to a test SMTP server (`smtp.rs`), and the requests of the mail
//! routes.

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{Value, json};

use super::{
    PASSWORD, SmtpServer, TestApp, TestStore, metric, metrics_text, plain_client, registration,
    spawn_app_on, unique_email,
};

/// The `From` of every test app's mail.
pub const MAIL_FROM: &str = "Mail Tests <mailer@tests.example>";
pub const MAIL_FROM_ADDRESS: &str = "mailer@tests.example";
/// The SPA that the links open.
pub const APP_URL: &str = "http://localhost:3000";
pub const NEW_PASSWORD: &str = "a brand new passphrase";

/// The settings that send an app's mail to `smtp`, with links to `APP_URL`.
pub fn mail_settings(smtp: &SmtpServer) -> Vec<(String, String)> {
    vec![
        ("SMTP_URL".into(), smtp.url()),
        ("MAIL_FROM".into(), MAIL_FROM.into()),
        ("APP_URL".into(), APP_URL.into()),
    ]
}

/// `mail_settings`, then `overrides`, as `spawn_app_with` takes them.
pub fn with_mail<'a>(
    mail: &'a [(String, String)],
    overrides: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all: Vec<(&str, &str)> = mail.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(overrides);
    all
}

/// An app on fresh stores whose mail goes to a new SMTP server.
pub async fn spawn_mail_app(overrides: &[(&str, &str)]) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let app = spawn_mail_app_to(&smtp, overrides).await;
    (app, smtp)
}

/// An app on fresh stores whose mail goes to `smtp`.
pub async fn spawn_mail_app_to(smtp: &SmtpServer, overrides: &[(&str, &str)]) -> TestApp {
    let mail = mail_settings(smtp);
    spawn_app_on(TestStore::fresh().await, &with_mail(&mail, overrides)).await
}

/// A POST of `body` from a client without cookies, at any instance.
pub async fn post_at(base: &str, path: &str, body: &Value) -> Response {
    plain_client()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .expect("request")
}

/// The `data.user` of a 200.
pub async fn user_of(response: Response) -> Value {
    assert_eq!(response.status(), 200, "headers {:?}", response.headers());
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["user"].clone()
}

impl TestApp {
    pub async fn verify_email(&self, token: &str) -> Response {
        post_at(
            &self.address,
            "/api/auth/verify-email",
            &json!({"token": token}),
        )
        .await
    }

    pub async fn resend_verification(&self, email: &str) -> Response {
        let body = json!({"email": email});
        post_at(&self.address, "/api/auth/verify-email/resend", &body).await
    }

    pub async fn forgot_password(&self, email: &str) -> Response {
        let body = json!({"email": email});
        post_at(&self.address, "/api/auth/forgot-password", &body).await
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> Response {
        reset_password_at(&self.address, token, password).await
    }

    /// `POST /api/users/me/email` with the access token as Bearer.
    pub async fn change_email(&self, access: &str, email: &str, password: &str) -> Response {
        plain_client()
            .post(self.url("/api/users/me/email"))
            .bearer_auth(access)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request")
    }

    pub async fn confirm_email(&self, token: &str) -> Response {
        post_at(
            &self.address,
            "/api/auth/confirm-email",
            &json!({"token": token}),
        )
        .await
    }

    /// Registers a new user (201) and returns the email with the token of its verification
    /// mail.
    pub async fn register_for_link(&self, smtp: &SmtpServer) -> (String, String) {
        let email = self.register_user().await;
        let token = smtp.wait_for(&email, "verify_email").await.token();
        (email, token)
    }

    /// Asks for a reset link for a registered `email` and returns its token.
    pub async fn reset_link(&self, smtp: &SmtpServer, email: &str) -> String {
        let before = smtp.count(email, "reset_password");
        assert_eq!(self.forgot_password(email).await.status(), 202);
        let mail = smtp
            .wait_for_nth(email, "reset_password", before + 1, super::MAIL_WAIT)
            .await;
        mail.token()
    }

    /// This app's `/metrics`.
    pub async fn metrics(&self) -> String {
        metrics_text(&self.url("/metrics")).await
    }

    /// Waits until the metric `name{labels}` is at least `at_least` (up to `within`).
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        at_least: f64,
        within: Duration,
    ) {
        wait_for_metric_at(&self.url("/metrics"), name, labels, at_least, within).await;
    }

    /// Waits until every message queued so far was sent (or dropped), for tests that count
    /// what did not arrive. `mail_outbox_depth` is set at the end of each of the sender's
    /// rounds, and a round starts at least every 2 s: a 0 read more than that after the call
    /// comes from a round that started after it, which took everything then due.
    pub async fn settled_outbox(&self) {
        settled_outbox_at(&self.url("/metrics")).await;
    }
}

pub async fn reset_password_at(base: &str, token: &str, password: &str) -> Response {
    let body = json!({"token": token, "password": password, "passwordConfirm": password});
    post_at(base, "/api/auth/reset-password", &body).await
}

/// `registration` of a new address, with the address.
pub fn new_registration() -> (String, Value) {
    let email = unique_email();
    let body = registration(&email);
    (email, body)
}

/// The login body of `email` with the test password.
pub fn credentials(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD})
}

/// Waits until the metric `name{labels}` at the `/metrics` URL is at least `at_least`.
pub async fn wait_for_metric_at(
    url: &str,
    name: &str,
    labels: &[(&str, &str)],
    at_least: f64,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let text = metrics_text(url).await;
        let value = metric(&text, name, labels);
        if value.is_some_and(|v| v >= at_least) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} = {value:?}, not {at_least} within {within:?}:\n{}",
            mail_lines(&text)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the metric `name` (no labels) at the `/metrics` URL is below `below`.
pub async fn wait_for_metric_below(url: &str, name: &str, below: f64) {
    let deadline = Instant::now() + super::MAIL_WAIT;
    loop {
        let text = metrics_text(url).await;
        let value = metric(&text, name, &[]);
        if value.is_some_and(|v| v < below) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} = {value:?}, not below {below}:\n{}",
            mail_lines(&text)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `TestApp::settled_outbox` at any instance's `/metrics`.
pub async fn settled_outbox_at(url: &str) {
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let deadline = Instant::now() + super::MAIL_WAIT;
    loop {
        let text = metrics_text(url).await;
        if metric(&text, "mail_outbox_depth", &[]) == Some(0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox is not empty:\n{}",
            mail_lines(&text)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The mail metrics' lines, for failure messages.
fn mail_lines(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.starts_with("mail_"))
        .collect::<Vec<_>>()
        .join("\n")
}
