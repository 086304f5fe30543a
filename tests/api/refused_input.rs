//! Input the service did not issue or does not allow: forged admin cursors, photos that a page
//! would run or fetch from elsewhere, names that display as something else, and request heads
//! too large to parse.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::binary::Binary;
use crate::helpers::*;

/// Asserts a 400 `validation_failed` that names exactly `field`.
async fn assert_refused(response: Response, field: &str, what: &str) {
    assert_invalid_fields(response, &[field], what).await;
}

/// A cursor in the unsealed form of earlier releases: the instant, then the id.
fn unsealed(micros: i64, id: Uuid) -> String {
    let mut bytes = micros.to_be_bytes().to_vec();
    bytes.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_cursor_the_service_did_not_issue_is_validation_failed_on_every_store() {
    let app = spawn_app().await;
    let (_, session) = admin(&app).await;
    for _ in 0..3 {
        app.register_user().await;
    }
    let first = admin_users(&app.address, &session.access, "limit=2").await;
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    let issued = body["data"]["next_cursor"].as_str().unwrap().to_owned();
    let next = admin_users(&app.address, &session.access, &format!("cursor={issued}")).await;
    assert_eq!(next.status(), 200);

    let mut bytes = URL_SAFE_NO_PAD.decode(&issued).unwrap();
    let mut forged = vec![
        // Before 4713 BC (Postgres' "timestamp out of range"), the far future, the epoch.
        unsealed(i64::MIN, Uuid::new_v4()),
        unsealed(-210_000_000_000_000_000, Uuid::nil()),
        unsealed(i64::MAX, Uuid::new_v4()),
        unsealed(253_402_300_800_000_000, Uuid::max()),
        unsealed(0, Uuid::nil()),
        // A real place in the list, unsealed.
        unsealed(chrono::Utc::now().timestamp_micros(), Uuid::new_v4()),
        // Random bytes of the sealed length.
        URL_SAFE_NO_PAD.encode(&Uuid::new_v4().as_bytes().repeat(3)[..40]),
        // The issued one cut short, made longer, padded, in standard base64.
        issued[..issued.len() - 1].to_owned(),
        format!("{issued}AA"),
        format!("{issued}="),
        base64::engine::general_purpose::STANDARD.encode(&bytes) + "+/",
    ];
    // The issued one with each byte changed in turn: the instant, the id, the tag.
    for i in [0, 7, 8, 23, 24, 39] {
        bytes[i] ^= 0x80;
        forged.push(URL_SAFE_NO_PAD.encode(&bytes));
        bytes[i] ^= 0x80;
    }
    for cursor in &forged {
        let encoded: String = url_encode(cursor);
        let response =
            admin_users(&app.address, &session.access, &format!("cursor={encoded}")).await;
        assert_refused(response, "cursor", cursor).await;
    }
}

/// An app with other keys (another deployment) does not take this one's cursors.
#[tokio::test]
async fn a_cursor_from_another_deployment_is_refused() {
    let app = spawn_app().await;
    let (_, session) = admin(&app).await;
    for _ in 0..2 {
        app.register_user().await;
    }
    let body: Value = admin_users(&app.address, &session.access, "limit=1")
        .await
        .json()
        .await
        .unwrap();
    let issued = body["data"]["next_cursor"].as_str().unwrap().to_owned();
    // The same access keys, so the admin's token works there; a refresh key of its own,
    // which is what cursors are sealed with.
    let refresh_private = key_path("refresh_next_private");
    let refresh_public = key_path("refresh_next_public");
    let other = app
        .sibling(&[
            ("REFRESH_TOKEN_PRIVATE_KEY_FILE", refresh_private.as_str()),
            ("REFRESH_TOKEN_PUBLIC_KEY_FILE", refresh_public.as_str()),
        ])
        .await;
    let there = admin_users(&other, &session.access, "limit=1").await;
    assert_eq!(there.status(), 200);
    let response = admin_users(&other, &session.access, &format!("cursor={issued}")).await;
    assert_refused(response, "cursor", "another deployment's").await;
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every photo a page would run or read locally, or that names a host without a scheme.
const REFUSED_PHOTOS: [&str; 18] = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
    "DATA:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "blob:https://example.com/x",
    "ftp://example.com/me.png",
    "//evil.example/me.png",
    " //evil.example/me.png",
    "\\\\evil.example\\me.png",
    "/\\evil.example/me.png",
    "https:/evil.example/me.png",
    "me\u{0}.png",
    "me\u{7}.png",
];

/// Every name that could display as something else.
const REFUSED_NAMES: [&str; 10] = [
    "Ada\u{0}",
    "Ada\nLovelace",
    "Ada\u{1B}[31m",
    "Ada\u{7F}",
    "Ada\u{85}",
    "\u{202A}Ada",
    "Ada\u{202B}",
    "exe.\u{202E}gnp",
    "\u{2066}Ada\u{2069}",
    "Ada\u{2068}",
];

#[tokio::test]
async fn register_refuses_unsafe_photos_and_names_and_stores_an_allowed_photo_as_sent() {
    let app = spawn_app().await;
    for photo in REFUSED_PHOTOS {
        let mut body = registration(&unique_email());
        body["photo"] = json!(photo);
        assert_refused(app.register(&body).await, "photo", photo).await;
    }
    for name in REFUSED_NAMES {
        let mut body = registration(&unique_email());
        body["name"] = json!(name);
        assert_refused(app.register(&body).await, "name", name).await;
    }
    assert_eq!(app.users_count().await, 0);

    for photo in [
        "me.png",
        "img/me.png",
        "/img/me.png",
        "https://cdn.example.com/me.png?s=64",
        " HTTP://cdn.example.com/me.png ",
    ] {
        let mut body = registration(&unique_email());
        body["photo"] = json!(photo);
        let response = app.register(&body).await;
        assert_eq!(response.status(), 201, "{photo}");
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["data"]["user"]["photo"], photo);
    }
    let mut body = registration(&unique_email());
    body["name"] = json!("  Zoë 李 Lovelace ");
    let created: Value = app.register(&body).await.json().await.unwrap();
    assert_eq!(created["data"]["user"]["name"], "Zoë 李 Lovelace");
}

#[tokio::test]
async fn a_profile_change_refuses_unsafe_photos_and_names_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let before: Value = me_at(&app.address, &session.access)
        .await
        .json()
        .await
        .unwrap();
    for photo in REFUSED_PHOTOS {
        let response = patch_me(&app.address, &session.access, &json!({"photo": photo})).await;
        assert_refused(response, "photo", photo).await;
    }
    for name in REFUSED_NAMES {
        let response = patch_me(&app.address, &session.access, &json!({"name": name})).await;
        assert_refused(response, "name", name).await;
    }
    let after: Value = me_at(&app.address, &session.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
    let allowed = json!({"photo": "https://cdn.example.com/me.png", "name": "Ada"});
    let response = patch_me(&app.address, &session.access, &allowed).await;
    assert_eq!(response.status(), 200);
}

/// Raw HTTP/1.1 over TCP, as a client that sends whatever it likes: the status line's code
/// and the body.
async fn raw_request(port: u16, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The server may answer and close before it has read everything: a failed write is fine.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}

/// What the HTTP parser refuses before the service's code runs answers as docs/api.md says,
/// and no anonymous client can make the service log at ERROR level that way.
#[tokio::test]
async fn heads_too_large_to_parse_are_refused_and_logged_at_warn_at_most() {
    let dir = TempDir::new();
    let binary = Binary::start_with(&dir, &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")]).await;
    let port = binary.port();

    // Over the 65,534 bytes a URI may have: a bare 400, the connection closed.
    let long_uri = format!("/api/{}", "a".repeat(64 * 1024));
    let (code, body) =
        raw_request(port, &format!("GET {long_uri} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
    assert_eq!((code, body.as_str()), (400, ""), "a 64 KiB URI");
    // Over 96 header lines: a bare 431.
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let head = format!("GET /api/livez HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let (code, body) = raw_request(port, &head).await;
    assert_eq!((code, body.as_str()), (431, ""), "120 header lines");
    // A head over 128 KiB: a bare 431, or a reset when the client is still sending.
    let huge = format!(
        "GET /api/livez HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(140 * 1024)
    );
    let (code, body) = raw_request(port, &huge).await;
    assert!(
        matches!(code, 0 | 431) && body.is_empty(),
        "a 140 KiB header: {code}"
    );
    // A header line without a colon: a bare 400.
    let head = "GET /api/livez HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n";
    assert_eq!(
        raw_request(port, head).await,
        (400, String::new()),
        "a broken header"
    );
    // The service still serves.
    assert_eq!(
        get_json(&binary.url("/api/livez")).await["status"],
        "success"
    );

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let lines = binary.log_lines();
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"] == "ERROR"))
        .collect();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    let warned = lines
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") && l.contains("stream error"))
        .count();
    assert!(warned >= 3, "a WARN line for each refusal: {lines:#?}");
}
