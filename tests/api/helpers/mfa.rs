//! The second factor from the client's side: an authenticator app that computes codes from
//! the base32 secret the API answered (totp-rs, as the SPA's e2e test does), and the requests
//! of the MFA routes.
//!
//! Codes without sleeping: the service accepts the steps t-1, t and t+1 and each step once per
//! user, and only steps later than the last one used. `Authenticator::next_code` hands out the
//! current step's code, then the next step's, and refuses (panics) to hand out a third before
//! the clock has moved: a test gets two TOTP codes per user for free, and uses recovery codes
//! (or another user) for more.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, Response};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};

use super::{PASSWORD, Session, TestApp, plain_client, session_from};

pub const TOTP_PERIOD: u64 = 30;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The step the clock is in now.
pub fn step_now() -> u64 {
    unix_now() / TOTP_PERIOD
}

/// The code an authenticator app shows at `unix` seconds for the base32 `secret`.
pub fn code_at(secret: &str, unix: u64) -> String {
    let secret = Secret::try_from_base32(secret).expect("a base32 secret");
    let totp = Builder::new()
        .with_secret(secret)
        .build()
        .expect("an RFC 6238 secret (at least 128 bits)");
    totp.generate(unix).to_string()
}

/// The authenticator app of one user: its secret, and the last step it handed out.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub secret: String,
    last_step: Option<u64>,
}

impl Authenticator {
    pub fn new(secret: &str) -> Self {
        Authenticator {
            secret: secret.to_owned(),
            last_step: None,
        }
    }

    /// The code of `step`, without marking anything as used.
    pub fn code_of_step(&self, step: u64) -> String {
        code_at(&self.secret, step * TOTP_PERIOD)
    }

    /// A code the service has not seen yet and accepts: the current step's, or the next
    /// one's after that was handed out. Panics rather than hand out a step the service would
    /// refuse as too far ahead: the test needs a recovery code or another user instead.
    pub fn next_code(&mut self) -> String {
        let now = step_now();
        let step = self.last_step.map_or(now, |last| now.max(last + 1));
        assert!(
            step <= now + 1,
            "this test asks for more TOTP codes than the clock gives without waiting"
        );
        self.used(step);
        self.code_of_step(step)
    }

    /// The last step handed out (or marked).
    pub fn last_step(&self) -> Option<u64> {
        self.last_step
    }

    /// Marks `step` as handed out (a test that chose its step itself).
    pub fn used(&mut self, step: u64) {
        self.last_step = Some(self.last_step.map_or(step, |last| last.max(step)));
    }

    /// Six digits that are no code of this secret anywhere near now.
    pub fn wrong_code(&self) -> String {
        let now = step_now();
        let near: Vec<String> = (now - 3..=now + 3).map(|s| self.code_of_step(s)).collect();
        (0..)
            .map(|n: u32| format!("{:06}", (n * 142_857 + 13) % 1_000_000))
            .find(|code| !near.contains(code))
            .expect("a wrong code")
    }
}

/// A user with a second factor on, and the session that enrolled it (still live).
pub struct MfaUser {
    pub email: String,
    pub session: Session,
    pub authenticator: Authenticator,
    pub recovery_codes: Vec<String>,
}

impl MfaUser {
    pub fn secret(&self) -> &str {
        &self.authenticator.secret
    }
}

/// A request with the access token as Bearer (when given) and a JSON body (when given), from
/// a client without cookies, at any instance.
pub async fn call(
    base: &str,
    method: Method,
    path: &str,
    access: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = plain_client().request(method, format!("{base}{path}"));
    if let Some(access) = access {
        request = request.bearer_auth(access);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

/// The JSON body of a success answer with `status`.
pub async fn success(response: Response, status: u16) -> Value {
    let code = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(code, status, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    body
}

/// `assert_error` of one case among several: `what` names it in a failure.
pub async fn assert_refused(response: Response, status: u16, code: &str, what: &str) {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (got, body["code"].as_str()),
        (status, Some(code)),
        "{what}: {body}"
    );
    assert_eq!(body["status"], "fail", "{what}: {body}");
}

/// `data.recovery_codes` of a confirm or regenerate answer.
pub fn recovery_codes_of(body: &Value) -> Vec<String> {
    body["data"]["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("recovery codes in {body}"))
        .iter()
        .map(|c| c.as_str().expect("a string").to_owned())
        .collect()
}

/// `xxxxx-xxxxx` from the alphabet 0-9 a-z without i, l, o, u.
pub fn is_recovery_code(code: &str) -> bool {
    const ALPHABET: &str = "0123456789abcdefghjkmnpqrstvwxyz";
    let parts: Vec<&str> = code.split('-').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| p.chars().count() == 5 && p.chars().all(|c| ALPHABET.contains(c)))
}

impl TestApp {
    /// `POST /api/users/me/mfa/totp`: starts an enrollment.
    pub async fn start_enrollment(&self, access: &str, password: &str) -> Response {
        let body = json!({"password": password});
        call(
            &self.address,
            Method::POST,
            "/api/users/me/mfa/totp",
            Some(access),
            Some(&body),
        )
        .await
    }

    /// Starts an enrollment that must succeed; returns the `data` (secret, otpauth_uri).
    pub async fn enrollment(&self, access: &str) -> Value {
        let response = self.start_enrollment(access, PASSWORD).await;
        success(response, 200).await["data"].clone()
    }

    /// `POST /api/users/me/mfa/totp/confirm`.
    pub async fn confirm_totp(&self, access: &str, code: &str) -> Response {
        let body = json!({"code": code});
        call(
            &self.address,
            Method::POST,
            "/api/users/me/mfa/totp/confirm",
            Some(access),
            Some(&body),
        )
        .await
    }

    /// `DELETE /api/users/me/mfa/totp`.
    pub async fn disable_totp(&self, access: &str, body: &Value) -> Response {
        call(
            &self.address,
            Method::DELETE,
            "/api/users/me/mfa/totp",
            Some(access),
            Some(body),
        )
        .await
    }

    /// `POST /api/users/me/mfa/recovery-codes`.
    pub async fn regenerate_codes(&self, access: &str, body: &Value) -> Response {
        call(
            &self.address,
            Method::POST,
            "/api/users/me/mfa/recovery-codes",
            Some(access),
            Some(body),
        )
        .await
    }

    /// Turns the second factor on for a logged-in user with the current step's code; returns
    /// the authenticator and the recovery codes.
    pub async fn turn_on_mfa(&self, access: &str) -> (Authenticator, Vec<String>) {
        let data = self.enrollment(access).await;
        let mut authenticator = Authenticator::new(data["secret"].as_str().expect("secret"));
        let confirmed = self.confirm_totp(access, &authenticator.next_code()).await;
        let body = success(confirmed, 200).await;
        (authenticator, recovery_codes_of(&body))
    }

    /// A new user, registered and logged in, with a second factor on (the confirm used the
    /// current step: one more TOTP code is free, `authenticator.next_code()`).
    pub async fn mfa_user(&self) -> MfaUser {
        let (email, session) = self.logged_in_user().await;
        let (authenticator, recovery_codes) = self.turn_on_mfa(&session.access).await;
        MfaUser {
            email,
            session,
            authenticator,
            recovery_codes,
        }
    }

    /// `POST /api/auth/login/mfa` with `{"mfa_token","code"}`.
    pub async fn login_mfa(&self, mfa_token: &str, code: &str) -> Response {
        login_mfa_at(&self.address, mfa_token, code).await
    }

    /// The password step of a user with a factor: asserts the answer asks for a code and
    /// returns the `mfa_token`.
    pub async fn password_step(&self, email: &str) -> String {
        password_step_at(&self.address, email).await
    }

    /// `POST /api/users/me/password` from `PASSWORD` to `NEW_PASSWORD`, with a `code`.
    pub async fn change_password_with_code(&self, access: &str, code: &str) -> Response {
        let body = json!({
            "currentPassword": PASSWORD,
            "newPassword": super::NEW_PASSWORD,
            "newPasswordConfirm": super::NEW_PASSWORD,
            "code": code,
        });
        call(
            &self.address,
            Method::POST,
            "/api/users/me/password",
            Some(access),
            Some(&body),
        )
        .await
    }

    /// Both steps with `code`; asserts a 200 and returns the session of its cookies.
    pub async fn login_with_code(&self, email: &str, code: &str) -> Session {
        let mfa_token = self.password_step(email).await;
        let response = self.login_mfa(&mfa_token, code).await;
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        session_from(&response)
    }

    /// Both steps with the user's next TOTP code.
    pub async fn login_both_steps(&self, user: &mut MfaUser) -> Session {
        let code = user.authenticator.next_code();
        self.login_with_code(&user.email, &code).await
    }

    /// `GET /api/users/me`'s user, with the access token as Bearer.
    pub async fn me_user(&self, access: &str) -> Value {
        let body = success(self.me_with(access).await, 200).await;
        body["data"]["user"].clone()
    }
}

/// `POST /api/auth/login/mfa` at any instance.
pub async fn login_mfa_at(base: &str, mfa_token: &str, code: &str) -> Response {
    let body = json!({"mfa_token": mfa_token, "code": code});
    call(base, Method::POST, "/api/auth/login/mfa", None, Some(&body)).await
}

/// The password step at any instance; returns the `mfa_token`.
pub async fn password_step_at(base: &str, email: &str) -> String {
    let response = super::login_at(base, email, PASSWORD).await;
    let body = success(response, 200).await;
    assert_eq!(body["mfa_required"], true, "{body}");
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

/// `x` without its hyphen.
pub fn without_hyphen(code: &str) -> String {
    code.replace('-', "")
}

#[test]
fn the_code_helper_follows_rfc_6238() {
    // RFC 6238 appendix B, SHA-1, the last six digits of 94287082 and 07081804.
    let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
    assert_eq!(code_at(&secret, 59), "287082");
    assert_eq!(code_at(&secret, 1_111_111_109), "081804");
}
