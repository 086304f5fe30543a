//! Requests of the accounts routes that several test files make.

use reqwest::Response;
use serde_json::Value;

use crate::helpers::{Session, TestApp, claims_of, plain_client};

/// `PATCH /api/users/me` with the access token as Bearer, at any instance.
pub async fn patch_me(base: &str, access: &str, body: &Value) -> Response {
    plain_client()
        .patch(format!("{base}/api/users/me"))
        .bearer_auth(access)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// `GET /api/admin/users?{query}` with the access token as Bearer, at any instance.
pub async fn admin_users(base: &str, access: &str, query: &str) -> Response {
    plain_client()
        .get(format!("{base}/api/admin/users?{query}"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
}

/// The `sub` of a session's access token: its user's id.
pub fn user_id(session: &Session) -> String {
    claims_of(&session.access)["sub"]
        .as_str()
        .expect("sub")
        .to_owned()
}

/// A new admin, logged in: registered, then promoted in the database directly (the command
/// has tests of its own), before any request could have cached the user.
pub async fn admin(app: &TestApp) -> (String, Session) {
    let (email, session) = app.logged_in_user().await;
    app.execute("UPDATE users SET role = 'admin' WHERE email = $1", &email)
        .await;
    app.user_changed(&user_id(&session)).await;
    (email, session)
}
