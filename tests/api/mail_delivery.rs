//! Delivery: mail waits in the outbox while the SMTP server is down, and across a restart of
//! the service, and goes out once; without SMTP_URL it is a private file; metrics count it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::binary::Binary;
use crate::helpers::*;

/// How long a message waits for a server that came back: the first retry is 5 s after the
/// failure, the next 10 s after that.
const BACK_UP_WAIT: Duration = Duration::from_secs(20);

const FAILED_RESET: [(&str, &str); 2] = [("kind", "reset_password"), ("outcome", "failed")];

#[tokio::test]
async fn mail_asked_for_while_the_smtp_server_is_down_goes_out_once_it_is_back() {
    let smtp = SmtpServer::start().await;
    smtp.stop().await;
    let app = spawn_mail_app_to(&smtp, &[]).await;
    let email = app.register_user().await;

    let started = Instant::now();
    let forgot = app.forgot_password(&email).await;
    let took = started.elapsed();

    assert_eq!(forgot.status(), 202);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    app.wait_for_metric("mail_sent_total", &FAILED_RESET, 1.0, MAIL_WAIT)
        .await;
    app.wait_for_metric("mail_outbox_depth", &[], 2.0, MAIL_WAIT)
        .await;
    assert!(smtp.received().is_empty());

    smtp.start_again();

    let mail = smtp
        .wait_for_nth(&email, "reset_password", 1, BACK_UP_WAIT)
        .await;
    smtp.wait_for_nth(&email, "verify_email", 1, BACK_UP_WAIT)
        .await;
    app.settled_outbox().await;
    assert_eq!(smtp.count(&email, "reset_password"), 1);
    assert_eq!(smtp.count(&email, "verify_email"), 1);
    assert_eq!(
        app.reset_password(&mail.token(), NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

/// The first instance is killed while its mail waits for the SMTP server; a new one on the
/// same stores sends it.
#[tokio::test]
async fn queued_mail_survives_a_restart_of_the_service() {
    let smtp = SmtpServer::start().await;
    smtp.stop().await;
    let store = TestStore::fresh().await;
    let mail = mail_settings(&smtp);
    let mut env: Vec<(String, String)> = store.vars();
    env.extend(mail.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = TempDir::new();
    let first = Binary::start_with(&dir, &env).await;
    let email = unique_email();
    let registered = post_at(&first.address, "/api/auth/register", &registration(&email)).await;
    assert_eq!(registered.status(), 201);
    let forgot = post_at(
        &first.address,
        "/api/auth/forgot-password",
        &json!({"email": email}),
    )
    .await;
    assert_eq!(forgot.status(), 202);
    let metrics = first.url("/metrics");
    wait_for_metric_at(&metrics, "mail_sent_total", &FAILED_RESET, 1.0, MAIL_WAIT).await;

    drop(first); // SIGKILL, with the message still queued.
    smtp.start_again();
    let app = spawn_app_on(store, &with_mail(&mail, &[])).await;

    let sent = smtp
        .wait_for_nth(&email, "reset_password", 1, BACK_UP_WAIT)
        .await;
    smtp.wait_for_nth(&email, "verify_email", 1, BACK_UP_WAIT)
        .await;
    app.settled_outbox().await;
    assert_eq!(smtp.count(&email, "reset_password"), 1);
    assert_eq!(
        app.reset_password(&sent.token(), NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

/// The `.eml` files in `dir` whose name has `kind` in it, once there is one (up to 10 s).
async fn wait_for_files(dir: &Path, kind: &str) -> Vec<PathBuf> {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with(".eml") && n.contains(kind))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !files.is_empty() {
            return files;
        }
        assert!(Instant::now() < deadline, "no {kind} file in {dir:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `<unix-ms>-<kind>-<uuid>.eml`
fn named_as_documented(name: &str, kind: &str) -> bool {
    let Some(stem) = name.strip_suffix(".eml") else {
        return false;
    };
    let Some((millis, rest)) = stem.split_once('-') else {
        return false;
    };
    let Some(uuid) = rest.strip_prefix(&format!("{kind}-")) else {
        return false;
    };
    millis.parse::<u64>().is_ok() && uuid::Uuid::parse_str(uuid).is_ok()
}

#[tokio::test]
async fn without_smtp_url_each_mail_is_a_private_file_in_mail_dir() {
    let dir = TempDir::new();
    let mail_dir = dir.path().join("outgoing/mail");
    let app = spawn_app_with(&[
        ("MAIL_DIR", &mail_dir.to_string_lossy()),
        ("APP_URL", APP_URL),
        ("MAIL_FROM", MAIL_FROM),
    ])
    .await;

    let email = app.register_user().await;

    let files = wait_for_files(&mail_dir, "verify_email").await;
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(named_as_documented(&name, "verify_email"), "{name}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&mail_dir), 0o700, "the folder");
    assert_eq!(mode(file), 0o600, "the file");
    let raw = std::fs::read(file).unwrap();
    let mail = Mail::parse(Received {
        recipients: Vec::new(),
        raw,
    });
    assert_eq!(mail.kind, "verify_email");
    assert_eq!(mail.to, [email.as_str()]);
    let link = format!("{APP_URL}/verify-email?token={}", mail.token());
    assert_eq!(mail.links(), [link]);
    assert_eq!(
        user_of(app.verify_email(&mail.token()).await).await["verified"],
        true
    );
}

#[tokio::test]
async fn metrics_count_sent_mail_and_show_the_outbox_depth() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let before = app.metrics().await;
    assert_eq!(metric(&before, "mail_outbox_depth", &[]), Some(0.0));

    let email = app.register_user().await;
    smtp.wait_for(&email, "verify_email").await;

    let sent = [("kind", "verify_email"), ("outcome", "sent")];
    app.wait_for_metric("mail_sent_total", &sent, 1.0, MAIL_WAIT)
        .await;
    wait_for_metric_below(&app.url("/metrics"), "mail_outbox_depth", 1.0).await;
    let after = app.metrics().await;
    assert_eq!(metric(&after, "mail_sent_total", &sent), Some(1.0));
    assert_eq!(metric(&after, "mail_outbox_depth", &[]), Some(0.0));
    let failed = [("kind", "verify_email"), ("outcome", "failed")];
    assert!(
        metric(&after, "mail_sent_total", &failed).is_none_or(|v| v == 0.0),
        "{after}"
    );
}

/// One SMTP conversation by hand, as the app's client would have it.
async fn send_by_hand(port: u16, to: &str, message: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut expect = async |code: &str| -> std::io::Result<()> {
        loop {
            let line = lines.next_line().await?.unwrap_or_default();
            assert!(line.starts_with(code), "wanted {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect("220").await?;
    // Dot-stuffed, as RFC 5321 has it.
    let data = format!(
        "{}\r\n.\r\n",
        message.replace('\n', "\r\n").replace("\n.", "\n..")
    );
    for (command, code) in [
        ("EHLO tests.localhost\r\n".to_owned(), "250"),
        ("MAIL FROM:<mailer@tests.example>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
        (data, "250"),
        ("QUIT\r\n".to_owned(), "221"),
    ] {
        write.write_all(command.as_bytes()).await?;
        expect(code).await?;
    }
    Ok(())
}

/// The harness itself: what the server keeps and parses, and its stop and start.
#[tokio::test]
async fn the_test_smtp_server_keeps_and_parses_mail_and_goes_down_and_up() {
    let smtp = SmtpServer::start().await;
    let token = "A".repeat(43);
    let message = format!(
        "From: Mail Tests <mailer@tests.example>\nTo: someone@example.com\nSubject: hi\n\
         X-Mail-Kind: verify_email\nMIME-Version: 1.0\n\
         Content-Type: multipart/alternative; boundary=\"b\"\n\n--b\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
         Open {APP_URL}/verify-email?to=\nken=3D{token}\n.dot\n--b\n\
         Content-Type: text/html; charset=utf-8\n\n<a href=\"x?token={token}\">x</a>\n--b--"
    );

    send_by_hand(smtp.port, "Someone@Example.com", &message)
        .await
        .unwrap();

    let mail = smtp.wait_for("someone@example.com", "verify_email").await;
    assert_eq!(mail.token(), token);
    assert_eq!(
        mail.links(),
        [format!("{APP_URL}/verify-email?token={token}")]
    );
    assert!(mail.text.contains("\n.dot"), "{}", mail.text);
    assert_eq!(mail.part_types, ["text/plain", "text/html"]);
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(
        mail.from,
        (Some("Mail Tests".into()), Some(MAIL_FROM_ADDRESS.into()))
    );

    smtp.stop().await;
    assert!(send_by_hand(smtp.port, "a@example.com", "x").await.is_err());
    smtp.start_again();
    send_by_hand(smtp.port, "someone@example.com", &message)
        .await
        .unwrap();
    assert_eq!(smtp.count("someone@example.com", "verify_email"), 2);
}
