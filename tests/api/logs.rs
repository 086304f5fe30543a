//! The log, read from the binary's own output at its most verbose: every line of a request
//! carries the request's id, and no password, token, cookie value or hash ever appears,
//! whatever the request put where.

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
    }
}

#[tokio::test]
async fn json_lines_carry_the_request_id_and_no_secret_even_at_trace_level() {
    let dir = TempDir::new();
    let binary = Binary::start_with(&dir, &[("LOG_FORMAT", "json"), ("RUST_LOG", "trace")]).await;

    let traffic = scenario(&binary, "json").await;
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
    let binary = Binary::start_with(&dir, &[("RUST_LOG", "debug")]).await;

    let traffic = scenario(&binary, "text").await;
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
