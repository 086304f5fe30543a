//! What a session leaves in the store (Redis, or the SQLite file) and for how long: one
//! entry per token, ending just after the token's `exp`; after a refresh, the used entry and
//! its grace marker; after logout, nothing of the session.

use crate::helpers::*;

/// This app's entries whose key names `needle` (a token or session id).
async fn entries_naming(app: &TestApp, needle: &str) -> Vec<StoreEntry> {
    app.store_entries()
        .await
        .into_iter()
        .filter(|e| e.key.contains(needle))
        .collect()
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An entry ends one second after its token's `exp`: never while the token still verifies,
/// and not long after.
fn assert_ends_after_exp(entry: &StoreEntry, exp: i64) {
    let ends_after_exp = unix_ms() + entry.ttl_ms - exp * 1000;
    assert!(
        (900..=1300).contains(&ends_after_exp),
        "{} ends {ends_after_exp} ms after its token's exp",
        entry.key
    );
}

#[tokio::test]
async fn login_stores_each_token_until_just_after_its_exp() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let access = claims_of(&session.access);
    let refresh = claims_of(&session.refresh);
    let user_id = access["sub"].as_str().unwrap();

    for claims in [&access, &refresh] {
        let entries = entries_naming(&app, claims["token_uuid"].as_str().unwrap()).await;
        assert_eq!(entries.len(), 1, "one entry per token: {entries:?}");
        assert_ends_after_exp(&entries[0], claims["exp"].as_i64().unwrap());
        let value = &entries[0].value;
        assert!(value.contains(user_id), "the entry names the user: {value}");
    }
}

#[tokio::test]
async fn no_entry_outlives_its_token_after_login_or_refresh() {
    let app = spawn_app_with(&[("REFRESH_TOKEN_EXPIRED_IN", "30m")]).await;
    let email = app.register_user().await;
    let first = login_session(&app, &email).await;
    let refresh_exp = claims_of(&first.refresh)["exp"].as_i64().unwrap();
    for entry in app.store_entries().await {
        if entry.key.contains(":tok:") || entry.key.ends_with(":sess") {
            assert!(
                unix_ms() + entry.ttl_ms <= refresh_exp * 1000 + 1300,
                "after login, {entry:?} outlives the refresh token"
            );
        }
    }

    let response = app.refresh_with(&first.refresh).await;
    assert_eq!(response.status(), 200);

    let second = session_from(&response);
    let old_access = claims_of(&first.access)["token_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_refresh = claims_of(&first.refresh)["token_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The used entry stays, to tell a replay (reuse) from another tab (grace), until the
    // token expires anyway; its grace marker lives only through the window.
    let used = entries_naming(&app, &old_refresh).await;
    assert_eq!(used.len(), 2, "{used:?}");
    for entry in used {
        if entry.key.contains(":grace:") {
            assert!((1..=10_000).contains(&entry.ttl_ms), "{entry:?}");
        } else {
            assert_ends_after_exp(&entry, refresh_exp);
        }
    }
    for entry in entries_naming(&app, &old_access).await {
        assert!(
            (1..=10_000).contains(&entry.ttl_ms),
            "the previous access entry lives only through the grace window: {entry:?}"
        );
    }
    for token in [&second.access, &second.refresh] {
        let claims = claims_of(token);
        let entries = entries_naming(&app, claims["token_uuid"].as_str().unwrap()).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_ends_after_exp(&entries[0], claims["exp"].as_i64().unwrap());
    }
    let sid = claims_of(&second.refresh)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = entries_naming(&app, &format!("}}:{sid}:sess")).await;
    assert_eq!(session.len(), 1, "{session:?}");
    assert_ends_after_exp(
        &session[0],
        claims_of(&second.refresh)["exp"].as_i64().unwrap(),
    );
}

#[tokio::test]
async fn logout_removes_the_session_from_the_store() {
    let app = spawn_app().await;
    let email = app.register_user().await;
    let session = login_session(&app, &email).await;
    let access = claims_of(&session.access);
    let refresh = claims_of(&session.refresh);
    let sid = access["sid"].as_str().unwrap();
    let token_ids = [
        access["token_uuid"].as_str().unwrap(),
        refresh["token_uuid"].as_str().unwrap(),
    ];
    let session_entries = |entries: Vec<StoreEntry>| -> Vec<StoreEntry> {
        entries
            .into_iter()
            .filter(|e| !token_ids.iter().any(|t| e.key.contains(t)))
            .collect()
    };
    let before = session_entries(entries_naming(&app, sid).await);
    assert_eq!(before.len(), 1, "one session entry: {before:?}");
    assert_ends_after_exp(&before[0], refresh["exp"].as_i64().unwrap());

    let response = logout_by_bearer(&app, &session.access).await;
    assert_eq!(response.status(), 200);

    assert!(session_entries(entries_naming(&app, sid).await).is_empty());
    assert!(
        entries_naming(&app, token_ids[0]).await.is_empty(),
        "the access entry is gone"
    );
}
