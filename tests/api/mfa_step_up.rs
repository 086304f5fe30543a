//! Step-up: while a factor is on, the password change, the address change and the account's
//! deletion need a code besides the password. The password is checked first; then a missing
//! or wrong code is 401 `invalid_code`. Without a factor, no code is asked.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

/// The three routes that ask for a code.
#[derive(Debug, Clone, Copy)]
enum Sensitive {
    PasswordChange,
    AddressChange,
    Deletion,
}

impl Sensitive {
    /// The request's body with `password` and, when given, `code`.
    fn body(self, password: &str, code: Option<&str>) -> Value {
        let mut body = match self {
            Sensitive::PasswordChange => json!({
                "currentPassword": password,
                "newPassword": NEW_PASSWORD,
                "newPasswordConfirm": NEW_PASSWORD,
            }),
            Sensitive::AddressChange => json!({"email": unique_email(), "password": password}),
            Sensitive::Deletion => json!({"password": password}),
        };
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        body
    }

    fn success_status(self) -> u16 {
        match self {
            Sensitive::AddressChange => 202,
            _ => 200,
        }
    }

    async fn send(
        self,
        app: &TestApp,
        access: &str,
        password: &str,
        code: Option<&str>,
    ) -> Response {
        let (method, path) = match self {
            Sensitive::PasswordChange => (Method::POST, "/api/users/me/password"),
            Sensitive::AddressChange => (Method::POST, "/api/users/me/email"),
            Sensitive::Deletion => (Method::DELETE, "/api/users/me"),
        };
        let body = self.body(password, code);
        call(&app.address, method, path, Some(access), Some(&body)).await
    }
}

/// The whole row for one route: wrong password first, then no code, a wrong code, and a
/// right one.
async fn asks_for_a_code(route: Sensitive) {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let access = user.session.access.clone();
    let wrong = user.authenticator.wrong_code();

    let response = route.send(&app, &access, "not my password", None).await;
    assert_error(response, 401, "invalid_credentials").await;
    let response = route
        .send(&app, &access, "not my password", Some(&wrong))
        .await;
    assert_error(response, 401, "invalid_credentials").await;
    let response = route.send(&app, &access, PASSWORD, None).await;
    assert_error(response, 401, "invalid_code").await;
    let response = route.send(&app, &access, PASSWORD, Some(&wrong)).await;
    assert_error(response, 401, "invalid_code").await;
    let response = route.send(&app, &access, PASSWORD, Some("")).await;
    assert_error(response, 401, "invalid_code").await;
    // Nothing happened: the account and its password are as they were.
    assert_eq!(app.me_user(&access).await["email"], user.email);
    app.password_step(&user.email).await;

    let code = user.authenticator.next_code();
    let response = route.send(&app, &access, PASSWORD, Some(&code)).await;

    assert_eq!(response.status(), route.success_status(), "{route:?}");
}

#[tokio::test]
async fn a_password_change_asks_for_a_code() {
    asks_for_a_code(Sensitive::PasswordChange).await;
}

#[tokio::test]
async fn an_address_change_asks_for_a_code() {
    asks_for_a_code(Sensitive::AddressChange).await;
}

#[tokio::test]
async fn a_deletion_asks_for_a_code() {
    asks_for_a_code(Sensitive::Deletion).await;
}

#[tokio::test]
async fn a_password_change_with_a_code_keeps_the_factor() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let code = user.authenticator.next_code();

    let response = Sensitive::PasswordChange
        .send(&app, &user.session.access, PASSWORD, Some(&code))
        .await;

    assert_eq!(response.status(), 200);
    let login = app.login(&user.email, NEW_PASSWORD).await;
    let body = success(login, 200).await;
    assert_eq!(body["mfa_required"], true, "{body}");
}

#[tokio::test]
async fn a_recovery_code_does_for_a_step_up_once() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let access = &user.session.access;
    let recovery = &user.recovery_codes[0];

    let changed = Sensitive::AddressChange
        .send(&app, access, PASSWORD, Some(recovery))
        .await;
    assert_eq!(changed.status(), 202);
    let again = Sensitive::Deletion
        .send(&app, access, PASSWORD, Some(recovery))
        .await;
    assert_error(again, 401, "invalid_code").await;

    let deleted = Sensitive::Deletion
        .send(&app, access, PASSWORD, Some(&user.recovery_codes[1]))
        .await;
    assert_eq!(deleted.status(), 200);
    assert_error(app.me_with(access).await, 401, "session_revoked").await;
}

#[tokio::test]
async fn without_a_factor_no_code_is_asked() {
    let app = spawn_app().await;
    for route in [
        Sensitive::AddressChange,
        Sensitive::PasswordChange,
        Sensitive::Deletion,
    ] {
        let (_, session) = app.logged_in_user().await;
        let response = route.send(&app, &session.access, PASSWORD, None).await;
        assert_eq!(response.status(), route.success_status(), "{route:?}");
        // A code sent anyway is ignored.
        let (_, session) = app.logged_in_user().await;
        let response = route
            .send(&app, &session.access, PASSWORD, Some("000000"))
            .await;
        assert_eq!(response.status(), route.success_status(), "{route:?}");
    }
}

/// The password step of `email` with `NEW_PASSWORD`; returns the `mfa_token`.
async fn password_step_with_the_new_password(app: &TestApp, email: &str) -> String {
    let body = success(app.login(email, NEW_PASSWORD).await, 200).await;
    assert_eq!(body["mfa_required"], true, "{body}");
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

/// Guards the code sent on an `mfa_token` whose password was changed since (from a live
/// session): that code step is refused, and the code is not spent by it.
#[tokio::test]
async fn a_code_refused_for_a_password_changed_since_the_password_step_is_not_spent() {
    let app = spawn_app().await;
    let mut user = app.mfa_user().await;
    let old = app.password_step(&user.email).await;
    let code = user.authenticator.next_code();
    let changed = app
        .change_password_with_code(&user.session.access, &code)
        .await;
    assert_eq!(changed.status(), 200);
    let recovery = &user.recovery_codes[0];

    let refused = app.login_mfa(&old, recovery).await;

    assert_error(refused, 401, "invalid_code").await;
    let fresh = password_step_with_the_new_password(&app, &user.email).await;
    let body = success(app.login_mfa(&fresh, recovery).await, 200).await;
    assert_eq!(body["data"]["recovery_codes_left"], 9, "{body}");
}

/// Guards the order of an address change: one to the address the user already has is
/// refused before the code is checked, so the code is not spent.
#[tokio::test]
async fn an_address_change_to_the_own_address_spends_no_code() {
    let app = spawn_app().await;
    let user = app.mfa_user().await;
    let recovery = &user.recovery_codes[0];
    let body = json!({"email": user.email, "password": PASSWORD, "code": recovery});

    let response = call(
        &app.address,
        Method::POST,
        "/api/users/me/email",
        Some(&user.session.access),
        Some(&body),
    )
    .await;

    let error = assert_error(response, 400, "validation_failed").await;
    assert_eq!(error["errors"][0]["field"], "email", "{error}");
    assert_eq!(error["errors"][0]["message"], "is already your address");
    let mfa_token = app.password_step(&user.email).await;
    let body = success(app.login_mfa(&mfa_token, recovery).await, 200).await;
    assert_eq!(body["data"]["recovery_codes_left"], 9, "{body}");
}
