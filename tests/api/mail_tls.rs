//! Mail over TLS with a password, set up as a user would: `SMTP_URL` with `user:pass@` and
//! `?tls=required` (STARTTLS) or `smtps://` (TLS from the first byte), to a server whose
//! certificate for `localhost` is signed by a CA that the service trusts through
//! `SSL_CERT_FILE`. The service is its own binary, started with its own environment (the tests
//! share one process, whose environment stays as it is). A server that offers no STARTTLS
//! gets neither the mail nor the password, and neither does one whose CA the service was not
//! given.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::binary::Binary;
use crate::helpers::smtp_tls::{
    AuthMechanism, Connection, SMTP_PASSWORD, SMTP_USER, Security, TestCa, TlsSmtpServer,
};
use crate::helpers::*;

/// The binary on fresh stores, its mail sent through `smtp_url`, trusting the CAs in
/// `ca_file`, logging everything.
struct Service {
    binary: Binary,
    _dir: TempDir,
    _store: TestStore,
}

impl Service {
    async fn start(smtp_url: &str, ca_file: &str) -> Self {
        let store = TestStore::fresh().await;
        let mut env = store.vars();
        env.extend(
            [
                ("SMTP_URL", smtp_url),
                ("SSL_CERT_FILE", ca_file),
                ("MAIL_FROM", MAIL_FROM),
                ("APP_URL", APP_URL),
                ("RUST_LOG", "trace"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let dir = TempDir::new();
        let binary = Binary::start_with(&dir, &env).await;
        Service {
            binary,
            _dir: dir,
            _store: store,
        }
    }

    /// Registers a new address (201), which queues its verify_email mail.
    async fn register(&self) -> String {
        let email = unique_email();
        let registered = post_at(
            &self.binary.address,
            "/api/auth/register",
            &registration(&email),
        )
        .await;
        assert_eq!(registered.status(), 201);
        email
    }

    /// The first log line with `text` in it, once there is one (up to `MAIL_WAIT`).
    async fn wait_for_line(&self, text: &str) -> String {
        let deadline = Instant::now() + MAIL_WAIT;
        loop {
            let lines = self.binary.log_lines();
            if let Some(line) = lines.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` in the log within {MAIL_WAIT:?}: {lines:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The password as it could appear anywhere: itself, and in the base64 of AUTH PLAIN and of
/// AUTH LOGIN.
fn password_forms() -> Vec<String> {
    vec![
        SMTP_PASSWORD.to_owned(),
        STANDARD.encode(format!("\0{SMTP_USER}\0{SMTP_PASSWORD}")),
        STANDARD.encode(SMTP_PASSWORD),
    ]
}

fn assert_no_password(what: &str, text: &str) {
    for form in password_forms() {
        assert!(
            !text.contains(&form),
            "the password ({form}) in {what}: {text}"
        );
    }
}

fn assert_password_not_logged(service: &Service) {
    let lines = service.binary.log_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        assert_no_password("the service's log", line);
    }
}

/// Over TLS, after a login with `mechanism` and the right credentials, and nothing of it in
/// the clear but EHLO and STARTTLS (or nothing at all for smtps).
fn assert_sent_over_tls_after_login(connection: &Connection, mechanism: &str) {
    assert!(connection.tls, "no TLS: {connection:#?}");
    assert!(!connection.logins.is_empty(), "no login: {connection:#?}");
    for login in &connection.logins {
        assert!(login.tls, "a login in the clear: {login:?}");
        assert!(login.accepted, "a login refused: {login:?}");
        assert_eq!(login.user, SMTP_USER);
        assert_eq!(login.password, SMTP_PASSWORD);
        assert_eq!(login.mechanism, mechanism);
    }
    for mail in &connection.mails {
        assert!(mail.tls, "a message in the clear");
        assert_eq!(mail.user.as_deref(), Some(SMTP_USER));
    }
    let clear = String::from_utf8_lossy(&connection.clear).to_ascii_uppercase();
    assert!(!clear.contains("AUTH"), "AUTH in the clear: {clear}");
    assert!(!clear.contains("MAIL FROM"), "MAIL in the clear: {clear}");
    assert_no_password("the bytes sent in the clear", &clear);
}

/// The verify_email mail of a new user arrives through `smtp`, over TLS after a login with
/// `mechanism`, and its link verifies the address.
async fn mail_arrives_over_tls(
    service: &Service,
    smtp: &TlsSmtpServer,
    mechanism: &str,
) -> Connection {
    let email = service.register().await;
    let (mail, connection) = smtp.wait_for(&email, "verify_email").await;
    assert_sent_over_tls_after_login(&connection, mechanism);
    let verified = post_at(
        &service.binary.address,
        "/api/auth/verify-email",
        &json!({"token": mail.token()}),
    )
    .await;
    assert_eq!(verified.status(), 200);
    service.wait_for_line("mail sent").await;
    let lines = service.binary.log_lines();
    assert!(
        !lines.iter().any(|l| l.contains("does not insist on TLS")),
        "a warning about credentials without TLS, with TLS required: {lines:#?}"
    );
    assert_password_not_logged(service);
    connection
}

#[tokio::test]
async fn with_tls_required_mail_goes_over_starttls_after_a_login_with_auth_plain() {
    let ca = TestCa::new();
    let smtp = TlsSmtpServer::start(Security::StartTls, AuthMechanism::Plain, &ca).await;
    let url = format!(
        "smtp://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{}?tls=required",
        smtp.port
    );
    let service = Service::start(&url, &ca.pem_file()).await;

    let connection = mail_arrives_over_tls(&service, &smtp, "PLAIN").await;

    assert!(connection.starttls);
    let clear = String::from_utf8_lossy(&connection.clear).to_ascii_uppercase();
    assert!(clear.contains("STARTTLS"), "{clear}");
}

#[tokio::test]
async fn smtps_mail_goes_over_tls_from_the_first_byte_after_a_login_with_auth_login() {
    let ca = TestCa::new();
    let smtp = TlsSmtpServer::start(Security::Implicit, AuthMechanism::Login, &ca).await;
    let url = format!(
        "smtps://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{}",
        smtp.port
    );
    let service = Service::start(&url, &ca.pem_file()).await;

    let connection = mail_arrives_over_tls(&service, &smtp, "LOGIN").await;

    assert!(!connection.starttls);
    assert!(connection.clear.is_empty(), "bytes in the clear with smtps");
}

/// The server offers no STARTTLS, and offers AUTH in the clear: the service sends nothing,
/// logs the failure (to try again later), and its password goes neither to the server nor
/// to the log.
#[tokio::test]
async fn with_tls_required_a_server_without_starttls_gets_neither_mail_nor_password() {
    let ca = TestCa::new();
    let smtp = TlsSmtpServer::start(Security::None, AuthMechanism::Plain, &ca).await;
    let url = format!(
        "smtp://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{}?tls=required",
        smtp.port
    );
    let service = Service::start(&url, &ca.pem_file()).await;

    service.register().await;
    let failed = service.wait_for_line("mail not sent; will retry").await;

    assert!(failed.contains("verify_email"), "{failed}");
    assert!(failed.contains("STARTTLS"), "{failed}");
    assert!(smtp.delivered().is_empty());
    let connections = smtp.connections();
    assert!(!connections.is_empty(), "the service never connected");
    for connection in &connections {
        assert!(connection.logins.is_empty(), "a login: {connection:#?}");
        assert!(!connection.tls);
        let clear = String::from_utf8_lossy(&connection.clear).to_ascii_uppercase();
        assert!(!clear.contains("AUTH"), "{clear}");
        assert!(!clear.contains("MAIL FROM"), "{clear}");
        assert_no_password("the bytes sent to the server", &clear);
    }
    assert_password_not_logged(&service);
}

/// The server's certificate is signed by a CA that is not in `SSL_CERT_FILE`: the service
/// does not finish the handshake, and sends neither the login nor the mail.
#[tokio::test]
async fn a_certificate_from_a_ca_the_service_does_not_trust_gets_nothing() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let smtp = TlsSmtpServer::start(Security::StartTls, AuthMechanism::Plain, &ca).await;
    let url = format!(
        "smtp://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{}?tls=required",
        smtp.port
    );
    let service = Service::start(&url, &other.pem_file()).await;

    service.register().await;
    let failed = service.wait_for_line("mail not sent; will retry").await;

    assert!(failed.contains("certificate"), "{failed}");
    assert!(smtp.delivered().is_empty());
    let connections = smtp.connections();
    assert!(connections.iter().any(|c| c.starttls), "{connections:#?}");
    for connection in &connections {
        assert!(!connection.tls, "a handshake completed: {connection:#?}");
        assert!(connection.logins.is_empty());
        assert_no_password(
            "the bytes sent to the server",
            &String::from_utf8_lossy(&connection.clear),
        );
    }
    assert_password_not_logged(&service);
}
