//! Cut off means cut off: a token of an ended session speaks for no one, and a login that
//! checked a password just before it changed (or the account went) never outlives the change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use rs256_auth::clock::{ExpiresAt, now_ms};
use rs256_auth::domain::User;
use rs256_auth::store::Stores;
use rs256_auth::store::sessions::{
    Created, Device, NewSession, SessionStore, TokenEntry, TokenRef, Vouched,
};
use rs256_auth::store::users::{Changed, UserStore};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Settings for a race: the failed logins of the race itself must not reach the limits.
const NO_LIMITS: [(&str, &str); 2] = [
    ("LOGIN_ATTEMPTS_LIMIT", "100000"),
    ("LOGIN_ATTEMPTS_IP_LIMIT", "100000"),
];

async fn login_as(base: &str, email: &str) -> Session {
    let response = login_at(base, email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    session_from(&response)
}

async fn send(
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = plain_client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn sid_of(session: &Session) -> String {
    claims_of(&session.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `logout?all=true` with `token` (as Bearer) answers as a logout and clears the cookies, but
/// ends nothing: `alive` still works, and can refresh.
async fn assert_logout_all_ends_nothing(app: &TestApp, token: &str, alive: &Session) {
    let response = send(
        &app.address,
        Method::POST,
        "/api/auth/logout?all=true",
        token,
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(response.headers());
    assert_eq!(cookie(&cookies, "refresh_token").attr("max-age"), Some("0"));
    assert_eq!(me_at(&app.address, &alive.access).await.status(), 200);
}

#[tokio::test]
async fn logout_all_with_a_token_of_a_session_ended_elsewhere_ends_nothing() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let owner = login_as(&app.address, &email).await;
    let thief = login_as(&app.address, &email).await;
    let path = format!("/api/users/me/sessions/{}", sid_of(&thief));
    let ended = send(&app.address, Method::DELETE, &path, &owner.access, None).await;
    assert_eq!(ended.status(), 200);

    // In a loop, as a thief would: the owner's session lives through all of them.
    for _ in 0..3 {
        assert_logout_all_ends_nothing(&app, &thief.refresh, &owner).await;
        assert_logout_all_ends_nothing(&app, &thief.access, &owner).await;
    }
    let refreshed = refresh_at(&app.address, &owner.refresh).await;
    assert_eq!(refreshed.status(), 200);
}

#[tokio::test]
async fn logout_all_with_a_refresh_token_flagged_as_reused_ends_nothing() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let owner = login_as(&app.address, &email).await;
    let thief = login_as(&app.address, &email).await;
    let rotated = refresh_at(&app.address, &thief.refresh).await;
    assert_eq!(rotated.status(), 200);
    let successor = session_from(&rotated);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(
        refresh_at(&app.address, &thief.refresh).await,
        401,
        "refresh_reused",
    )
    .await;

    for token in [&thief.refresh, &thief.access, &successor.refresh] {
        assert_logout_all_ends_nothing(&app, token, &owner).await;
    }
    assert_eq!(refresh_at(&app.address, &owner.refresh).await.status(), 200);
}

/// A refresh token its session has already exchanged for a successor (a thief's copy,
/// outside the grace window) no longer stands for the session: it ends nothing either.
#[tokio::test]
async fn logout_all_with_a_refresh_token_already_exchanged_ends_nothing() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "1s")]).await;
    let email = app.register_user().await;
    let owner = login_as(&app.address, &email).await;
    let device = login_as(&app.address, &email).await;
    let rotated = refresh_at(&app.address, &device.refresh).await;
    assert_eq!(rotated.status(), 200);
    let current = session_from(&rotated);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    assert_logout_all_ends_nothing(&app, &device.refresh, &owner).await;
    assert_eq!(me_at(&app.address, &current.access).await.status(), 200);
    assert_eq!(refresh_at(&app.address, &owner.refresh).await.status(), 200);
}

#[tokio::test]
async fn logout_all_with_a_token_from_before_a_password_change_ends_nothing() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let thief = login_as(&app.address, &email).await;
    let owner = login_as(&app.address, &email).await;
    let body = json!({
        "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD, "newPasswordConfirm": NEW_PASSWORD
    });
    let changed = send(
        &app.address,
        Method::POST,
        "/api/users/me/password",
        &owner.access,
        Some(body),
    )
    .await;
    assert_eq!(changed.status(), 200);

    for token in [&thief.refresh, &thief.access] {
        assert_logout_all_ends_nothing(&app, token, &owner).await;
    }
    assert_eq!(refresh_at(&app.address, &owner.refresh).await.status(), 200);
}

/// Three thieves log in with `password` in a loop until `change` (run by the owner) is done,
/// and a little after. Returns every session they were given.
async fn logins_racing(
    base: &str,
    email: &str,
    password: &str,
    change: impl Future<Output = ()>,
) -> Vec<Session> {
    let done = Arc::new(AtomicBool::new(false));
    let thieves: Vec<_> = (0..3)
        .map(|_| {
            let (base, email, password) = (base.to_owned(), email.to_owned(), password.to_owned());
            let done = done.clone();
            tokio::spawn(async move {
                let mut sessions = Vec::new();
                let mut after = 0;
                while after < 3 {
                    if done.load(Ordering::SeqCst) {
                        after += 1;
                    }
                    let response = login_at(&base, &email, &password).await;
                    match response.status().as_u16() {
                        200 => sessions.push(session_from(&response)),
                        401 => {}
                        other => panic!("a login answered {other}"),
                    }
                }
                sessions
            })
        })
        .collect();
    // Let the thieves get going: each has a login in flight when the change starts.
    tokio::time::sleep(Duration::from_millis(30)).await;
    change.await;
    done.store(true, Ordering::SeqCst);
    let mut sessions = Vec::new();
    for thief in thieves {
        sessions.extend(thief.await.unwrap());
    }
    sessions
}

#[tokio::test]
async fn no_login_with_the_old_password_outlives_a_password_change() {
    let app = spawn_app_with(&NO_LIMITS).await;
    let email = app.register_user().await;
    let passwords = [PASSWORD, NEW_PASSWORD];
    let mut owner = login_as(&app.address, &email).await;
    let mut raced = 0;
    for round in 0..6 {
        let (old, new) = (passwords[round % 2], passwords[(round + 1) % 2]);
        let change = async {
            let body = json!({
                "currentPassword": old, "newPassword": new, "newPasswordConfirm": new
            });
            let path = "/api/users/me/password";
            let changed = send(&app.address, Method::POST, path, &owner.access, Some(body)).await;
            assert_eq!(changed.status(), 200, "round {round}");
        };
        let stolen = logins_racing(&app.address, &email, old, change).await;
        raced += stolen.len();
        for session in &stolen {
            assert_session_ended(&app, session).await;
        }
        assert_eq!(me_at(&app.address, &owner.access).await.status(), 200);
        let refreshed = refresh_at(&app.address, &owner.refresh).await;
        assert_eq!(refreshed.status(), 200);
        owner = session_from(&refreshed);
    }
    println!("{raced} sessions from logins with the old password, every one ended");
}

#[tokio::test]
async fn no_login_outlives_the_deletion_of_the_account() {
    let app = spawn_app_with(&NO_LIMITS).await;
    for round in 0..3 {
        let email = app.register_user().await;
        let owner = login_as(&app.address, &email).await;
        let delete = async {
            let body = json!({"password": PASSWORD});
            let deleted = send(
                &app.address,
                Method::DELETE,
                "/api/users/me",
                &owner.access,
                Some(body),
            )
            .await;
            assert_eq!(deleted.status(), 200, "round {round}");
        };
        let stolen = logins_racing(&app.address, &email, PASSWORD, delete).await;
        // Not only unusable (the user is gone): not kept at all. Looked at first, since a
        // refresh of a deleted user's session ends it.
        let user = claims_of(&owner.access)["sub"].as_str().unwrap().to_owned();
        let tag = format!("{{{user}}}:");
        let kept: Vec<String> = app
            .store_keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with(&tag) && k.ends_with(":sess"))
            .collect();
        assert!(
            kept.is_empty(),
            "round {round}: sessions of a deleted user: {kept:?}"
        );
        for session in &stolen {
            assert_session_ended(&app, session).await;
        }
    }
}

/// The user as a login vouches for them: their stamp now, and their state as read.
async fn vouched_now(stores: &Stores, user: &User) -> Vouched {
    Vouched {
        stamp: stores.sessions.stamp(user.id).await.unwrap(),
        updated_at: user.updated_at,
    }
}

fn new_session(user: Uuid) -> NewSession {
    let entry = |ms| TokenEntry {
        token_uuid: Uuid::new_v4(),
        expires_at: ExpiresAt::from_unix_ms(now_ms() + ms),
    };
    NewSession {
        user,
        sid: Uuid::new_v4(),
        access: entry(60_000),
        refresh: entry(600_000),
        device: Device {
            user_agent: "test".into(),
            ip: String::new(),
        },
    }
}

async fn is_live(stores: &Stores, session: &NewSession) -> bool {
    let token = TokenRef {
        user: session.user,
        sid: session.sid,
        token_uuid: session.access.token_uuid,
    };
    stores.sessions.check(&token).await.unwrap().live
}

/// The store's own half of the rule, on the backend of the run: a session is written only
/// while the user is as vouched for, checked in the same step as the write.
#[tokio::test]
async fn the_store_writes_a_session_only_for_the_user_as_vouched() {
    let app = spawn_app().await;
    let stores = stores_of(&app).await;
    let user = inserted(&stores).await;
    let vouched = vouched_now(&stores, &user).await;
    let first = new_session(user.id);
    let created = stores.sessions.create(&first, &vouched).await.unwrap();
    assert_eq!(created, Created::Created);
    assert!(is_live(&stores, &first).await);

    // A password change: the new hash, then the stamp, as the service does it.
    let changed = stores.users.set_password(user.id, "a new hash").await;
    assert_eq!(changed.unwrap(), Changed::Done);
    stores.sessions.user_changed(user.id).await.unwrap();
    let late = new_session(user.id);
    let refused = stores.sessions.create(&late, &vouched).await.unwrap();
    assert_eq!(refused, Created::UserChanged);
    assert!(!is_live(&stores, &late).await);

    // Vouched for again, as it is now: written.
    let now = stores.users.by_id(user.id).await.unwrap().unwrap();
    let again = vouched_now(&stores, &now).await;
    let fresh = new_session(user.id);
    let created = stores.sessions.create(&fresh, &again).await.unwrap();
    assert_eq!(created, Created::Created);

    // A deleted user gets no session, whatever it was vouched for with.
    assert_eq!(stores.users.delete(user.id).await.unwrap(), Changed::Done);
    stores.sessions.user_changed(user.id).await.unwrap();
    let after = new_session(user.id);
    let refused = stores.sessions.create(&after, &again).await.unwrap();
    assert_eq!(refused, Created::UserChanged);
    assert!(!is_live(&stores, &after).await);
}

/// The sweep of a password change ends every session but the kept one, however many.
#[tokio::test]
async fn the_store_ends_every_session_but_the_kept_one_in_one_step() {
    let app = spawn_app().await;
    let stores = stores_of(&app).await;
    let user = inserted(&stores).await;
    let vouched = vouched_now(&stores, &user).await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let session = new_session(user.id);
        stores.sessions.create(&session, &vouched).await.unwrap();
        sessions.push(session);
    }
    let kept = sessions[7].sid;
    assert_eq!(
        stores.sessions.end_all(user.id, Some(kept)).await.unwrap(),
        19
    );
    for session in &sessions {
        assert_eq!(is_live(&stores, session).await, session.sid == kept);
    }
    assert_eq!(
        stores.sessions.end_all(user.id, Some(kept)).await.unwrap(),
        0
    );
}
