//! The second factor and the mail: a reset by email keeps the factor, and turning it on or
//! off tells the address.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_reset_by_email_keeps_the_factor() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let mut user = app.mfa_user().await;
    let token = app.reset_link(&smtp, &user.email).await;

    let reset = app.reset_password(&token, NEW_PASSWORD).await;

    assert_eq!(reset.status(), 200);
    assert_session_ended(&app, &user.session).await;
    // The new password gets as far as the code, no further.
    let login = app.login(&user.email, NEW_PASSWORD).await;
    let body = success(login, 200).await;
    assert_eq!(body["mfa_required"], true, "{body}");
    let mfa_token = body["mfa_token"].as_str().unwrap();
    let response = app
        .login_mfa(mfa_token, &user.authenticator.next_code())
        .await;
    assert_eq!(response.status(), 200);
    let session = session_from(&response);
    assert_eq!(app.me_user(&session.access).await["mfa"], true);
    assert_eq!(claims_of(&session.access)["amr"], json!(["pwd", "otp"]));
}

#[tokio::test]
async fn turning_the_factor_on_and_off_sends_a_notice_each() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let user = app.mfa_user().await;
    let on = smtp.wait_for(&user.email, "mfa_on").await;
    assert!(on.tokens().is_empty(), "{}", on.text);

    let body = json!({"password": PASSWORD, "code": user.recovery_codes[0]});
    success(app.disable_totp(&user.session.access, &body).await, 200).await;

    let off = smtp.wait_for(&user.email, "mfa_off").await;
    assert!(off.tokens().is_empty(), "{}", off.text);
    for mail in [&on, &off] {
        assert!(!mail.text.contains(user.secret()), "{}", mail.text);
        for code in &user.recovery_codes {
            assert!(!mail.text.contains(code.as_str()), "{}", mail.text);
        }
    }
}
