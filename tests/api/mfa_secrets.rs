//! The secret is answered once, by the enrollment, and never again: in no later answer and
//! in no log line. Recovery codes are answered once per set and never logged; neither is an
//! `mfa_token`.

use base64::Engine;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use totp_rs::Secret;

use crate::binary::Binary;
use crate::helpers::*;

/// An answer's status line, headers and body as one text, to search for secrets.
async fn whole(response: Response) -> String {
    whole_and_body(response).await.0
}

/// `whole`, and the body as JSON.
async fn whole_and_body(response: Response) -> (String, Value) {
    let mut text = format!("{}\n", response.status());
    for (name, value) in response.headers() {
        text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or_default()));
    }
    let body = response.text().await.expect("a body");
    text.push_str(&body);
    (text, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The ways a secret could show: as answered, in lower case, and its bytes in hex and base64.
fn spellings_of_secret(secret: &str) -> Vec<String> {
    let bytes = Secret::try_from_base32(secret).expect("base32").to_vec();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        secret.to_owned(),
        secret.to_lowercase(),
        hex,
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes),
    ]
}

/// A recovery code as sent, in capitals and without its hyphen.
fn spellings_of_code(code: &str) -> Vec<String> {
    vec![
        code.to_owned(),
        code.to_uppercase(),
        without_hyphen(code),
        without_hyphen(code).to_uppercase(),
    ]
}

fn assert_absent(text: &str, secrets: &[String], what: &str) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} holds {secret}: {text}"
        );
    }
}

#[tokio::test]
async fn no_answer_after_the_enrollment_holds_the_secret() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;
    let data = app.enrollment(&session.access).await;
    let mut authenticator = Authenticator::new(data["secret"].as_str().unwrap());
    let secrets = spellings_of_secret(&authenticator.secret);
    let access = session.access.as_str();
    let mut answers = Vec::new();

    let confirmed = app.confirm_totp(access, &authenticator.next_code()).await;
    let (confirmed, body) = whole_and_body(confirmed).await;
    let codes = recovery_codes_of(&body);
    answers.push(("confirm", confirmed));
    answers.push(("me", whole(app.me_with(access).await).await));
    let enroll_again = app.start_enrollment(access, PASSWORD).await;
    answers.push(("enroll again", whole(enroll_again).await));
    let step = app.login(&email, PASSWORD).await;
    let (step, body) = whole_and_body(step).await;
    let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
    answers.push(("password step", step));
    let wrong = app.login_mfa(&mfa_token, &authenticator.wrong_code()).await;
    answers.push(("wrong code", whole(wrong).await));
    let login = app.login_mfa(&mfa_token, &authenticator.next_code()).await;
    let next = session_from(&login);
    answers.push(("code step", whole(login).await));
    let refreshed = app.refresh_with(&next.refresh).await;
    answers.push(("refresh", whole(refreshed).await));
    let sessions = call(
        &app.address,
        Method::GET,
        "/api/users/me/sessions",
        Some(access),
        None,
    );
    answers.push(("sessions", whole(sessions.await).await));
    let recovery = app.login_with_code(&email, &codes[0]).await;
    answers.push((
        "me after recovery",
        whole(app.me_with(&recovery.access).await).await,
    ));
    let regenerate = json!({"password": PASSWORD, "code": codes[1]});
    let regenerated = app.regenerate_codes(access, &regenerate).await;
    answers.push(("regenerate", whole(regenerated).await));
    let (_, admin) = admin(&app).await;
    let listed = admin_users(&app.address, &admin.access, "limit=100").await;
    answers.push(("admin list", whole(listed).await));
    let disabled = app
        .disable_totp(access, &json!({"password": PASSWORD, "code": codes[2]}))
        .await;
    answers.push(("disable", whole(disabled).await));
    answers.push(("me after", whole(app.me_with(access).await).await));

    for (what, text) in &answers {
        assert_absent(text, &secrets, what);
        assert!(!text.contains("otpauth"), "{what}: {text}");
    }
}

/// One request of the log scenario, with an id of our own to find its lines by.
struct Requests<'a> {
    binary: &'a Binary,
    ids: Vec<String>,
}

impl Requests<'_> {
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        access: Option<&str>,
        body: Value,
    ) -> Response {
        let id = format!("mfa-log-{}", self.ids.len());
        self.ids.push(id.clone());
        let mut request = plain_client()
            .request(method, self.binary.url(path))
            .header("x-request-id", id);
        if !body.is_null() {
            request = request.json(&body);
        }
        if let Some(access) = access {
            request = request.bearer_auth(access);
        }
        request.send().await.expect("request")
    }

    async fn json(
        &mut self,
        method: Method,
        path: &str,
        access: Option<&str>,
        body: Value,
    ) -> Value {
        let response = self.send(method, path, access, body).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}

#[tokio::test]
async fn no_log_line_holds_the_secret_a_recovery_code_or_an_mfa_token() {
    let dir = TempDir::new();
    let binary = Binary::start_with(&dir, &[("RUST_LOG", "trace")]).await;
    let mut requests = Requests {
        binary: &binary,
        ids: Vec::new(),
    };
    let email = unique_email();
    requests
        .json(
            Method::POST,
            "/api/auth/register",
            None,
            registration(&email),
        )
        .await;
    let login = json!({"email": email, "password": PASSWORD});
    let body = requests
        .json(Method::POST, "/api/auth/login", None, login.clone())
        .await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let access = Some(access.as_str());

    let wrong = json!({"password": "not my password"});
    requests
        .send(Method::POST, "/api/users/me/mfa/totp", access, wrong)
        .await;
    let enroll = json!({"password": PASSWORD});
    let body = requests
        .json(Method::POST, "/api/users/me/mfa/totp", access, enroll)
        .await;
    let mut authenticator = Authenticator::new(body["data"]["secret"].as_str().unwrap());
    let uri = body["data"]["otpauth_uri"].as_str().unwrap().to_owned();
    let wrong = json!({"code": authenticator.wrong_code()});
    requests
        .send(
            Method::POST,
            "/api/users/me/mfa/totp/confirm",
            access,
            wrong,
        )
        .await;
    let confirm = json!({"code": authenticator.next_code()});
    let body = requests
        .json(
            Method::POST,
            "/api/users/me/mfa/totp/confirm",
            access,
            confirm,
        )
        .await;
    let first_set = recovery_codes_of(&body);

    let mut mfa_tokens = Vec::new();
    for code in [
        authenticator.wrong_code(),
        authenticator.next_code(),
        first_set[0].to_uppercase(),
    ] {
        let body = requests
            .json(Method::POST, "/api/auth/login", None, login.clone())
            .await;
        let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
        let finish = json!({"mfa_token": mfa_token, "code": code});
        requests
            .send(Method::POST, "/api/auth/login/mfa", None, finish)
            .await;
        mfa_tokens.push(mfa_token);
    }
    let regenerate = json!({"password": PASSWORD, "code": first_set[1]});
    let body = requests
        .json(
            Method::POST,
            "/api/users/me/mfa/recovery-codes",
            access,
            regenerate,
        )
        .await;
    let second_set = recovery_codes_of(&body);
    let change = json!({
        "currentPassword": PASSWORD,
        "newPassword": NEW_PASSWORD,
        "newPasswordConfirm": NEW_PASSWORD,
        "code": first_set[2],
    });
    requests
        .send(Method::POST, "/api/users/me/password", access, change)
        .await;
    // The password changed just before.
    let disable = json!({"password": NEW_PASSWORD, "code": second_set[0]});
    requests
        .send(Method::DELETE, "/api/users/me/mfa/totp", access, disable)
        .await;
    requests
        .send(Method::GET, "/api/users/me", access, Value::Null)
        .await;

    let lines = settled_log(&binary, &requests.ids).await;
    let mut secrets = spellings_of_secret(&authenticator.secret);
    secrets.push(uri);
    secrets.extend(mfa_tokens);
    for code in first_set.iter().chain(&second_set) {
        secrets.extend(spellings_of_code(code));
    }
    for id in &requests.ids {
        let tag = format!("request_id={id}");
        assert!(lines.iter().any(|l| l.contains(&tag)), "no line of {id}");
    }
    for line in &lines {
        assert_absent(line, &secrets, "a log line");
        assert!(!line.contains("otpauth"), "{line}");
    }
}

/// The log once every request has a line in it, or after 5 s (the pipe from the child may
/// lag behind the answers).
async fn settled_log(binary: &Binary, ids: &[String]) -> Vec<String> {
    for _ in 0..100 {
        let lines = binary.log_lines();
        if ids
            .iter()
            .all(|id| lines.iter().any(|l| l.contains(id.as_str())))
        {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    binary.log_lines()
}

/// `rs256-auth keys mfa-key` run with `settings` and nothing else: the line it prints.
fn printed_mfa_key(settings: &[(String, String)]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rs256-auth"))
        .args(["keys", "mfa-key"])
        .env_clear()
        .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run rs256-auth");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let value = stdout
        .trim()
        .strip_prefix("MFA_ENCRYPTION_KEY=")
        .expect("one setting line");
    let key = base64::engine::general_purpose::STANDARD
        .decode(value)
        .expect("base64");
    assert_eq!(key.len(), 32, "{stdout}");
    value.to_owned()
}

/// Without `MFA_ENCRYPTION_KEY` the key is derived from the refresh signing key. The rotation
/// of keys/README.md sets the printed key first: then the factor outlives a new refresh key.
/// Without it, the new key reads no secret and finds no recovery code.
#[tokio::test]
async fn the_printed_mfa_key_keeps_the_factor_through_a_refresh_key_rotation() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let settings: Vec<(String, String)> = base_settings().into_iter().collect();
    let key = printed_mfa_key(&settings);

    let rotated = [
        (
            "REFRESH_TOKEN_PRIVATE_KEY_FILE",
            key_path("refresh_next_private"),
        ),
        (
            "REFRESH_TOKEN_PUBLIC_KEY_FILE",
            key_path("refresh_next_public"),
        ),
    ];
    let rotated: Vec<(&str, &str)> = rotated.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let unset = app.sibling(&rotated).await;
    let token = password_step_at(&unset, &user.email).await;
    let refused = login_mfa_at(&unset, &token, &user.recovery_codes[0]).await;
    assert_error(refused, 401, "invalid_code").await;

    let mut with_key = rotated.clone();
    with_key.push(("MFA_ENCRYPTION_KEY", &key));
    let kept = app.sibling(&with_key).await;
    let token = password_step_at(&kept, &user.email).await;
    let code = user.authenticator.next_code();
    assert_eq!(login_mfa_at(&kept, &token, &code).await.status(), 200);
    let token = password_step_at(&kept, &user.email).await;
    let answer = login_mfa_at(&kept, &token, &user.recovery_codes[0]).await;
    assert_eq!(answer.status(), 200);
}
