//! The log, read from the binary's own output at its most verbose: every line of a request
//! carries the request's id, and no password, token, cookie value or hash ever appears,
//! whatever the request put where. The mail flows name each message's kind, never its link,
//! token or full address.

use serde_json::{Value, json};
use sqlx::{Connection, Row, SqliteConnection};

use crate::binary::Binary;
use crate::helpers::*;

const WRONG_PASSWORD: &str = "not the right one, 1234";

/// Everything secret that one scenario sends or receives, and the ids of its requests.
struct Traffic {
    secrets: Vec<String>,
    request_ids: Vec<String>,
}

/// Registers, logs in, uses and abuses the tokens in every place a client could put them,
/// and logs out, each request with an id of our own.
async fn scenario(binary: &Binary, tag: &str) -> Traffic {
    let client = plain_client();
    let mut request_ids = Vec::new();
    let mut next_id = || {
        let id = format!("{tag}-{}", request_ids.len());
        request_ids.push(id.clone());
        id
    };
    let email = unique_email();
    let send = |request: reqwest::RequestBuilder, id: String| async move {
        request
            .header("x-request-id", id)
            .send()
            .await
            .expect("request")
    };
    let url = |path: &str| binary.url(path);

    let registered = send(
        client
            .post(url("/api/auth/register"))
            .json(&registration(&email)),
        next_id(),
    )
    .await;
    assert_eq!(registered.status(), 201);
    let login = json!({"email": email, "password": PASSWORD});
    let response = send(client.post(url("/api/auth/login")).json(&login), next_id()).await;
    assert_eq!(response.status(), 200);
    let session = session_from(&response);
    let (access, refresh) = (session.access.clone(), session.refresh.clone());
    let cookies = format!("access_token={access}; refresh_token={refresh}; logged_in=true");

    let wrong = json!({"email": email, "password": WRONG_PASSWORD});
    send(client.post(url("/api/auth/login")).json(&wrong), next_id()).await;
    // Malformed JSON with the password in it, and a password as a field of the wrong type.
    let broken = format!("{{\"email\": \"{email}\", \"password\": \"{PASSWORD}\"");
    send(
        client
            .post(url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(broken),
        next_id(),
    )
    .await;
    send(
        client
            .post(url("/api/auth/register"))
            .json(&json!({"name": PASSWORD, "email": PASSWORD, "password": [PASSWORD]})),
        next_id(),
    )
    .await;
    send(
        client.get(url("/api/users/me")).bearer_auth(&access),
        next_id(),
    )
    .await;
    send(
        client.get(url("/api/users/me")).header("cookie", &cookies),
        next_id(),
    )
    .await;
    send(
        client.get(url(&format!("/api/users/me?access_token={access}"))),
        next_id(),
    )
    .await;
    send(
        client.get(url(&format!("/api/{access}/{PASSWORD}"))),
        next_id(),
    )
    .await;
    send(
        client
            .get(url("/api/users/me"))
            .header("authorization", format!("Basic {PASSWORD}")),
        next_id(),
    )
    .await;
    // A tampered token, and a refresh token where an access token belongs.
    send(
        client
            .get(url("/api/users/me"))
            .bearer_auth(format!("{access}x")),
        next_id(),
    )
    .await;
    send(
        client.get(url("/api/users/me")).bearer_auth(&refresh),
        next_id(),
    )
    .await;
    let refreshed = send(
        client
            .post(url("/api/auth/refresh"))
            .header("cookie", &cookies),
        next_id(),
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let next = session_from(&refreshed);
    send(
        client.post(url("/api/auth/refresh")).bearer_auth(&refresh),
        next_id(),
    )
    .await;
    send(
        client
            .post(url("/api/auth/logout"))
            .bearer_auth(&next.access),
        next_id(),
    )
    .await;

    let mut secrets = vec![
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        access.clone(),
        refresh.clone(),
        next.access.clone(),
        next.refresh.clone(),
    ];
    // Each token's signature alone, too: a log could hold a token cut at a dot.
    for token in [&access, &refresh, &next.access, &next.refresh] {
        secrets.extend(token.rsplit('.').next().map(str::to_owned));
    }
    Traffic {
        secrets,
        request_ids,
    }
}

/// The kinds of mail `mail_scenario` causes, each of which the log must name.
const MAIL_KINDS: [&str; 5] = [
    "verify_email",
    "reset_password",
    "password_changed",
    "confirm_email",
    "email_changed",
];

/// The mail flows, with ids of our own: register, verify, forgot, reset, an address change
/// and its confirmation, and dead or malformed links. Waits until the last notice arrived.
async fn mail_scenario(binary: &Binary, smtp: &SmtpServer, tag: &str) -> Traffic {
    let mut request_ids = Vec::new();
    let mut post = async |path: &str, body: serde_json::Value, bearer: Option<&str>| {
        let id = format!("{tag}-mail-{}", request_ids.len());
        request_ids.push(id.clone());
        let mut request = plain_client()
            .post(binary.url(path))
            .header("x-request-id", id)
            .json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    };
    let email = unique_email();
    let registered = post("/api/auth/register", registration(&email), None).await;
    assert_eq!(registered.status(), 201);
    let verify = smtp.wait_for(&email, "verify_email").await.token();
    let verified = post("/api/auth/verify-email", json!({"token": verify}), None).await;
    assert_eq!(verified.status(), 200);
    let reused = post("/api/auth/verify-email", json!({"token": verify}), None).await;
    assert_eq!(reused.status(), 400);
    let cut = verify[..20].to_owned();
    post("/api/auth/confirm-email", json!({"token": cut}), None).await;
    let forgot = post("/api/auth/forgot-password", json!({"email": email}), None).await;
    assert_eq!(forgot.status(), 202);
    let reset = smtp.wait_for(&email, "reset_password").await.token();
    let body = json!({"token": reset, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD});
    let done = post("/api/auth/reset-password", body, None).await;
    assert_eq!(done.status(), 200);
    let login = json!({"email": email, "password": NEW_PASSWORD});
    let login = post("/api/auth/login", login, None).await;
    assert_eq!(login.status(), 200);
    let session = session_from(&login);
    let new_email = unique_email();
    let wrong = json!({"email": new_email, "password": WRONG_PASSWORD});
    post("/api/users/me/email", wrong, Some(&session.access)).await;
    let change = json!({"email": new_email, "password": NEW_PASSWORD});
    let changed = post("/api/users/me/email", change, Some(&session.access)).await;
    assert_eq!(changed.status(), 202);
    let confirm = smtp.wait_for(&new_email, "confirm_email").await.token();
    let confirmed = post("/api/auth/confirm-email", json!({"token": confirm}), None).await;
    assert_eq!(confirmed.status(), 200);
    smtp.wait_for(&email, "password_changed").await;
    smtp.wait_for(&email, "email_changed").await;

    let mut secrets = vec![
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        verify,
        reset,
        confirm,
        cut,
        session.access.clone(),
        session.refresh.clone(),
        // The full addresses: the log masks them.
        email,
        new_email,
    ];
    secrets.extend(session.access.rsplit('.').next().map(str::to_owned));
    Traffic {
        secrets,
        request_ids,
    }
}

/// The binary, its mail sent to `smtp`, with `env` besides.
async fn start_mailing(dir: &TempDir, smtp: &SmtpServer, env: &[(&str, &str)]) -> Binary {
    let mail = mail_settings(smtp);
    Binary::start_with(dir, &with_mail(&mail, env)).await
}

/// Both scenarios' traffic as one.
fn both(mut first: Traffic, second: Traffic) -> Traffic {
    first.secrets.extend(second.secrets);
    first.request_ids.extend(second.request_ids);
    first
}

/// Asserts that every kind of `MAIL_KINDS` is named in the log (the sender may write its
/// line just after the message arrived: waits up to 5 s).
async fn assert_kinds_named(binary: &Binary) {
    for _ in 0..100 {
        let lines = binary.log_lines();
        if MAIL_KINDS
            .iter()
            .all(|kind| lines.iter().any(|l| l.contains(kind)))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let lines = binary.log_lines();
    let missing: Vec<&str> = MAIL_KINDS
        .into_iter()
        .filter(|kind| !lines.iter().any(|l| l.contains(kind)))
        .collect();
    panic!("the log never names {missing:?}");
}

async fn stored_hash(dir: &TempDir) -> String {
    let url = format!("sqlite:{}", dir.file("data/rs256-auth.db"));
    let mut conn = SqliteConnection::connect(&url)
        .await
        .expect("the SQLite file");
    let row = sqlx::query("SELECT password_hash FROM users LIMIT 1")
        .fetch_one(&mut conn)
        .await
        .expect("a user");
    row.get::<String, _>(0)
}

/// The log once every request of `traffic` has a line in it, or after 5 s: a request's
/// last line (the debug line of its answer) is written after the client has the answer, and
/// the pipe from the child may lag behind it.
async fn settled_log(binary: &Binary, traffic: &Traffic) -> Vec<String> {
    for _ in 0..100 {
        let lines = binary.log_lines();
        let seen = |id: &String| lines.iter().any(|l| l.contains(id.as_str()));
        if traffic.request_ids.iter().all(seen) {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    binary.log_lines()
}

fn assert_no_secret(lines: &[String], secrets: &[String]) {
    assert!(!lines.is_empty());
    for line in lines {
        for secret in secrets {
            assert!(
                !line.contains(secret.as_str()),
                "a secret in the log: {line}"
            );
        }
        assert!(
            !line.contains("eyJ"),
            "something like a JWT in the log: {line}"
        );
        assert!(
            !line.contains("?token=") && tokens_in(line).is_empty(),
            "something like a link in the log: {line}"
        );
    }
}

#[tokio::test]
async fn json_lines_carry_the_request_id_and_no_secret_even_at_trace_level() {
    let dir = TempDir::new();
    let smtp = SmtpServer::start().await;
    let env = [("LOG_FORMAT", "json"), ("RUST_LOG", "trace")];
    let binary = start_mailing(&dir, &smtp, &env).await;

    let traffic = scenario(&binary, "json").await;
    let traffic = both(traffic, mail_scenario(&binary, &smtp, "json").await);
    assert_kinds_named(&binary).await;
    let hash = stored_hash(&dir).await;

    let lines = settled_log(&binary, &traffic).await;
    let mut secrets = traffic.secrets.clone();
    secrets.push(hash.clone());
    // The hash's salt and output, each on its own.
    secrets.extend(hash.rsplit('$').take(2).map(str::to_owned));
    assert_no_secret(&lines, &secrets);
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request_id = |line: &Value| -> Option<String> {
        line["spans"]
            .as_array()?
            .iter()
            .find_map(|s| s["request_id"].as_str().map(str::to_owned))
    };
    for id in &traffic.request_ids {
        assert!(
            parsed
                .iter()
                .any(|l| request_id(l).as_deref() == Some(id.as_str())),
            "no line of request {id}"
        );
    }
    // Our lines inside a request's span all name it; the span is the request's own.
    let in_requests: Vec<&Value> = parsed
        .iter()
        .filter(|l| l["spans"].as_array().is_some_and(|s| !s.is_empty()))
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("rs256_auth"))
        })
        .collect();
    assert!(in_requests.len() >= traffic.request_ids.len());
    for line in in_requests {
        let id = request_id(line).unwrap_or_else(|| panic!("no request id: {line}"));
        assert!(!id.is_empty(), "{line}");
    }
}

#[tokio::test]
async fn text_lines_carry_the_request_id_and_no_secret() {
    let dir = TempDir::new();
    let smtp = SmtpServer::start().await;
    let binary = start_mailing(&dir, &smtp, &[("RUST_LOG", "debug")]).await;

    let traffic = scenario(&binary, "text").await;
    let traffic = both(traffic, mail_scenario(&binary, &smtp, "text").await);
    assert_kinds_named(&binary).await;
    let hash = stored_hash(&dir).await;

    let lines = settled_log(&binary, &traffic).await;
    let mut secrets = traffic.secrets.clone();
    secrets.push(hash);
    assert_no_secret(&lines, &secrets);
    for id in &traffic.request_ids {
        let tag = format!("request_id={id}");
        assert!(
            lines.iter().any(|l| l.contains(&tag)),
            "no line of request {id}: {lines:#?}"
        );
    }
    assert!(
        serde_json::from_str::<Value>(&lines[0]).is_err(),
        "text by default"
    );
}
