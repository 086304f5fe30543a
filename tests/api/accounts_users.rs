//! The users side of the accounts feature: a profile change (`PATCH /api/users/me`), roles
//! (the `role` claim, the `users set-role` command, the admin guard), and the admin list of
//! users (`GET /api/admin/users`).

use std::collections::BTreeSet;
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::*;

// ---- helpers ------------------------------------------------------------------------------

/// The `data.user` of a 200 answer.
async fn user_of(response: Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_json(&response);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["user"].clone()
}

async fn me(base: &str, access: &str) -> Value {
    user_of(me_at(base, access).await).await
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("an RFC 3339 string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Runs `rs256-auth args...` as an operator would, on the stores of `app`, from a folder
/// without app.env. Off the test's thread: the app serves on it meanwhile.
async fn run_cli(app: &TestApp, args: &[&str]) -> Output {
    run_cli_with(args, app.store.vars()).await
}

async fn run_cli_with(args: &[&str], stores: Vec<(String, String)>) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let dir = TempDir::new();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rs256-auth"));
        command
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_BACKTRACE", "1")
            .envs(stores)
            .current_dir(dir.path());
        for kind in ["access", "refresh"] {
            for part in ["private", "public"] {
                let name = format!(
                    "{}_TOKEN_{}_KEY_FILE",
                    kind.to_uppercase(),
                    part.to_uppercase()
                );
                command.env(name, key_path(&format!("{kind}_{part}")));
            }
        }
        command.output().expect("run rs256-auth")
    })
    .await
    .expect("the command's thread")
}

/// `users set-role`, which must succeed with its one line on stdout.
async fn set_role(app: &TestApp, email: &str, role: &str) {
    let output = run_cli(app, &["users", "set-role", email, role]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{} is now {role}\n", email.to_lowercase())
    );
    assert_eq!(stderr, "");
}

/// A failed command: non-zero, nothing on stdout, one line on stderr, which is returned.
fn refused(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "succeeded; stderr {stderr}");
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    stderr
}

/// Sets a timestamp column of every user, bypassing the service (and Postgres' trigger).
async fn set_all(app: &TestApp, column: &str, value: DateTime<Utc>) {
    let sql = sqlx::AssertSqlSafe(format!("UPDATE users SET {column} = $1"));
    match &app.store {
        TestStore::Embedded { file, .. } => {
            let mut conn = app.sqlite(file).await;
            sqlx::query(sql)
                .bind(value)
                .execute(&mut conn)
                .await
                .map(drop)
        }
        TestStore::Production { .. } => {
            use sqlx::Executor;
            let mut conn = app.postgres().await;
            conn.execute("SET session_replication_role = replica")
                .await
                .expect("triggers off");
            sqlx::query(sql)
                .bind(value)
                .execute(&mut conn)
                .await
                .map(drop)
        }
    }
    .expect("UPDATE");
}

/// Every user of the admin list, walked page by page with `limit`; and how many pages.
async fn walk(base: &str, access: &str, limit: u32) -> (Vec<Value>, usize) {
    let mut users = Vec::new();
    let mut pages = 0;
    let mut query = format!("limit={limit}");
    loop {
        let response = admin_users(base, access, &query).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let page = body["data"]["users"].as_array().expect("users").clone();
        assert!(page.len() <= limit as usize);
        pages += 1;
        users.extend(page);
        match body["data"]["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit={limit}&cursor={cursor}"),
            None => {
                assert!(body["data"]["next_cursor"].is_null(), "{body}");
                return (users, pages);
            }
        }
        assert!(pages < 100, "the walk does not end");
    }
}

fn emails(users: &[Value]) -> Vec<String> {
    users
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

// ---- PATCH /api/users/me --------------------------------------------------------------------

#[tokio::test]
async fn a_profile_change_sets_name_and_photo_advances_updated_at_and_ignores_the_rest() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;
    let before = me(&app.address, &session.access).await;

    let response = patch_me(
        &app.address,
        &session.access,
        &json!({"name": "  Ada Lovelace ", "photo": "ada.png", "role": "admin",
                "email": "other@example.com", "id": "00000000-0000-0000-0000-000000000000",
                "verified": true, "provider": "github", "created_at": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let after = user_of(response).await;
    assert_eq!(after["name"], "Ada Lovelace");
    assert_eq!(after["photo"], "ada.png");
    for unchanged in ["id", "email", "role", "verified", "provider", "created_at"] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged}");
    }
    assert!(time(&after["updated_at"]) > time(&before["updated_at"]));
    assert_eq!(
        after.as_object().unwrap().keys().collect::<BTreeSet<_>>(),
        before.as_object().unwrap().keys().collect::<BTreeSet<_>>()
    );

    assert_eq!(me(&app.address, &session.access).await, after);
    assert_eq!(app.user_column(&email, "role").await, "user");
    assert_eq!(app.user_column(&email, "name").await, "Ada Lovelace");

    // One field at a time; the other stays.
    let photo_only =
        user_of(patch_me(&app.address, &session.access, &json!({"photo": ""})).await).await;
    assert_eq!(photo_only["name"], "Ada Lovelace");
    assert_eq!(photo_only["photo"], "");
    let name_only = user_of(
        patch_me(
            &app.address,
            &session.access,
            &json!({"name": "Ada", "photo": null}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (&name_only["name"], &name_only["photo"]),
        (&json!("Ada"), &json!(""))
    );
    assert!(time(&name_only["updated_at"]) > time(&photo_only["updated_at"]));
}

#[tokio::test]
async fn updated_at_advances_strictly_even_when_the_clock_has_not() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    // As if the last change were stamped ahead of this clock (or within its microsecond).
    let ahead = DateTime::parse_from_rfc3339("2100-01-01T00:00:00.999999Z")
        .unwrap()
        .with_timezone(&Utc);
    set_all(&app, "updated_at", ahead).await;

    let mut last = ahead;
    for (i, name) in ["One", "Two", "Three"].into_iter().enumerate() {
        let user =
            user_of(patch_me(&app.address, &session.access, &json!({"name": name})).await).await;
        let updated_at = time(&user["updated_at"]);
        assert_eq!(
            updated_at,
            ahead + chrono::TimeDelta::microseconds(i as i64 + 1),
            "{user}"
        );
        assert!(updated_at > last);
        last = updated_at;
    }
}

#[tokio::test]
async fn a_profile_change_with_nothing_to_change_answers_the_user_as_stored() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let before = me(&app.address, &session.access).await;
    for body in [
        json!({}),
        json!({"name": null, "photo": null}),
        json!({"role": "admin", "email": "x@example.com"}),
    ] {
        let response = patch_me(&app.address, &session.access, &body).await;
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("no-store")
        );
        assert_eq!(user_of(response).await, before, "{body}");
    }
    assert_eq!(me(&app.address, &session.access).await, before);
}

#[tokio::test]
async fn a_profile_change_names_every_invalid_field_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let before = me(&app.address, &session.access).await;
    let cases = [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "   "}), vec!["name"]),
        (json!({"name": "é".repeat(101)}), vec!["name"]),
        (json!({"name": 42}), vec!["name"]),
        (json!({"name": "Ada\u{0}"}), vec!["name"]),
        (json!({"photo": "p".repeat(256)}), vec!["photo"]),
        (json!({"photo": ["a.png"]}), vec!["photo"]),
        (json!({"photo": "a\u{0}.png"}), vec!["photo"]),
        (
            json!({"name": true, "photo": "p".repeat(256)}),
            vec!["name", "photo"],
        ),
        (json!({"name": "Fine", "photo": {}}), vec!["photo"]),
        (json!(["name"]), vec!["body"]),
        (json!("Ada"), vec!["body"]),
    ];
    for (body, fields) in cases {
        let response = patch_me(&app.address, &session.access, &body).await;
        assert_invalid_fields(response, &fields, &body.to_string()).await;
    }
    // The longest name and photo pass.
    let longest = json!({"name": "é".repeat(100), "photo": "p".repeat(255)});
    let changed = user_of(patch_me(&app.address, &session.access, &longest).await).await;
    assert_eq!(changed["name"], longest["name"]);

    let raw = |body: &'static str, content_type: &'static str| {
        plain_client()
            .patch(app.url("/api/users/me"))
            .bearer_auth(&session.access)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for body in [r#"{"name": "#, "", r#"{"name": "A", "name": "B"}"#] {
        let response = raw(body, "application/json").await.unwrap();
        assert_error(response, 400, "validation_failed").await;
    }
    let response = raw(r#"{"name": "Ada"}"#, "text/plain").await.unwrap();
    assert_error(response, 415, "unsupported_media_type").await;
    let huge = json!({"name": "a".repeat(70_000)});
    let response = patch_me(&app.address, &session.access, &huge).await;
    assert_error(response, 413, "payload_too_large").await;

    let now = me(&app.address, &session.access).await;
    assert_eq!(now["name"], changed["name"]);
    assert_ne!(now["name"], before["name"]);
}

#[tokio::test]
async fn a_profile_change_needs_a_live_session() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let body = json!({"name": "Mallory"});

    let response = plain_client()
        .patch(app.url("/api/users/me"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(www_authenticate(&response).as_deref(), Some("Bearer"));
    assert_error(response, 401, "not_logged_in").await;

    let response = patch_me(&app.address, "not.a.token", &body).await;
    assert_error(response, 401, "token_invalid").await;
    // A refresh token is not an access token.
    let response = patch_me(&app.address, &session.refresh, &body).await;
    assert_error(response, 401, "token_invalid").await;

    // Through the cookie jar, as a browser.
    let response = app
        .client
        .patch(app.url("/api/users/me"))
        .json(&json!({"name": "By Cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(user_of(response).await["name"], "By Cookie");

    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    let response = patch_me(&app.address, &session.access, &body).await;
    assert_error(response, 401, "session_revoked").await;
}

#[tokio::test]
async fn a_profile_change_from_another_site_is_refused() {
    let app = spawn_app().await;
    let (_, session) = app.logged_in_user().await;
    let send = |headers: &[(&'static str, &'static str)]| {
        let mut request = plain_client()
            .patch(app.url("/api/users/me"))
            .bearer_auth(&session.access)
            .json(&json!({"name": "Cross Site"}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("origin", "null")][..],
        &[("sec-fetch-site", "cross-site")][..],
    ] {
        let response = send(headers).await.unwrap();
        assert_error(response, 403, "origin_forbidden").await;
    }
    assert_eq!(me(&app.address, &session.access).await["name"], "Test User");

    // Reads stay open to other sites (CORS decides what their scripts may see).
    let read = plain_client()
        .get(app.url("/api/users/me"))
        .bearer_auth(&session.access)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    // The SPA's origin, and the service's own, pass.
    let own = app.address.clone();
    let response = plain_client()
        .patch(app.url("/api/users/me"))
        .bearer_auth(&session.access)
        .header("origin", own)
        .json(&json!({"name": "Same Site"}))
        .send()
        .await
        .unwrap();
    assert_eq!(user_of(response).await["name"], "Same Site");
    let response = send(&[("origin", "http://localhost:3000")]).await.unwrap();
    assert_eq!(user_of(response).await["name"], "Cross Site");
}

#[tokio::test]
async fn a_profile_change_is_served_at_once_by_every_instance() {
    let app = spawn_app().await;
    let sibling = app.sibling(&[]).await;
    let (_, session) = app.logged_in_user().await;
    // Both instances hold a copy of the user.
    for base in [&app.address, &sibling] {
        assert_eq!(me(base, &session.access).await["name"], "Test User");
        assert_eq!(me(base, &session.access).await["name"], "Test User");
    }

    let changed = user_of(
        patch_me(
            &app.address,
            &session.access,
            &json!({"name": "Changed Here"}),
        )
        .await,
    )
    .await;
    assert_eq!(me(&sibling, &session.access).await, changed);
    assert_eq!(me(&app.address, &session.access).await, changed);

    let changed =
        user_of(patch_me(&sibling, &session.access, &json!({"photo": "there.png"})).await).await;
    assert_eq!(changed["name"], "Changed Here");
    assert_eq!(me(&app.address, &session.access).await, changed);
    assert_eq!(me(&sibling, &session.access).await, changed);
}

#[tokio::test]
async fn patch_is_listed_in_allow_of_users_me() {
    let app = spawn_app().await;
    let response = plain_client()
        .put(app.url("/api/users/me"))
        .send()
        .await
        .unwrap();
    let allow: BTreeSet<String> = header(&response, "allow")
        .expect("Allow")
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect();
    assert!(
        allow.contains("GET") && allow.contains("PATCH"),
        "{allow:?}"
    );
    assert_error(response, 405, "method_not_allowed").await;
}

// ---- roles ---------------------------------------------------------------------------------

#[tokio::test]
async fn access_tokens_carry_the_stored_role_and_a_refresh_takes_it_afresh() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;
    assert_eq!(claims_of(&session.access)["role"], "user");
    assert!(claims_of(&session.refresh).get("role").is_none());
    // The instance holds a copy of the user.
    assert_eq!(me(&app.address, &session.access).await["role"], "user");

    set_role(&app, &email.to_uppercase(), "admin").await;
    assert_eq!(me(&app.address, &session.access).await["role"], "admin");
    // The token in hand still says what it said when it was issued.
    assert_eq!(claims_of(&session.access)["role"], "user");
    let refreshed = app.refresh_with(&session.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let body: Value = refreshed.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["role"], "admin");
    assert!(claims_of(refresh).get("role").is_none());

    // A login carries it too.
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_eq!(claims_of(&session_from(&login).access)["role"], "admin");

    set_role(&app, &email, "user").await;
    let refreshed = app.refresh_with(refresh).await;
    assert_eq!(refreshed.status(), 200);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["role"],
        "user"
    );
}

#[tokio::test]
async fn the_set_role_command_says_what_is_wrong_in_one_line() {
    let app = spawn_app().await;
    let (email, session) = app.logged_in_user().await;

    let unknown =
        refused(&run_cli(&app, &["users", "set-role", "nobody@example.com", "admin"]).await);
    assert!(unknown.contains("nobody@example.com"), "{unknown}");

    for role in ["superuser", "Admin", ""] {
        let output = run_cli(&app, &["users", "set-role", &email, role]).await;
        let line = refused(&output);
        assert!(line.contains("ROLE") && line.contains(role), "{line}");
    }
    let line = refused(&run_cli(&app, &["users", "set-role", &email]).await);
    assert!(line.contains("set-role EMAIL"), "{line}");

    // Stores that cannot be reached: nothing changes.
    let no_postgres = vec![
        (
            "DATABASE_URL".to_owned(),
            "postgres://postgres@127.0.0.1:1/nowhere".to_owned(),
        ),
        ("REDIS_URL".to_owned(), "redis://127.0.0.1:1".to_owned()),
    ];
    let line = refused(&run_cli_with(&["users", "set-role", &email, "admin"], no_postgres).await);
    assert!(line.contains("DATABASE_URL"), "{line}");
    let mut no_redis: Vec<(String, String)> = app
        .store
        .vars()
        .into_iter()
        .filter(|(k, _)| k == "DATABASE_URL")
        .collect();
    no_redis.push(("REDIS_URL".to_owned(), "redis://127.0.0.1:1".to_owned()));
    let line = refused(&run_cli_with(&["users", "set-role", &email, "admin"], no_redis).await);
    assert!(
        line.contains("redis") && line.contains("nothing was changed"),
        "{line}"
    );
    assert_eq!(app.user_column(&email, "role").await, "user");
    assert_eq!(me(&app.address, &session.access).await["role"], "user");

    set_role(&app, &email, "admin").await;
    assert_eq!(app.user_column(&email, "role").await, "admin");
    // Setting the role it has is fine too.
    set_role(&app, &email, "admin").await;
}

// ---- GET /api/admin/users -------------------------------------------------------------------

#[tokio::test]
async fn the_admin_list_is_for_admins_only() {
    let app = spawn_app().await;
    let (_, user) = app.logged_in_user().await;
    let (_, admin) = admin(&app).await;

    let response = plain_client()
        .get(app.url("/api/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(www_authenticate(&response).as_deref(), Some("Bearer"));
    assert_error(response, 401, "not_logged_in").await;
    let response = admin_users(&app.address, "garbage", "").await;
    assert_error(response, 401, "token_invalid").await;

    let response = admin_users(&app.address, &user.access, "").await;
    let body = assert_error(response, 403, "forbidden").await;
    assert!(body.get("errors").is_none(), "{body}");
    // Even a malformed request: who may ask is decided first.
    let response = admin_users(&app.address, &user.access, "limit=0&cursor=x").await;
    assert_error(response, 403, "forbidden").await;

    let response = admin_users(&app.address, &admin.access, "").await;
    assert_eq!(response.status(), 200);
    assert_json(&response);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert!(body["data"]["next_cursor"].is_null(), "{body}");
    let users = body["data"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[1]["role"], "admin");
    let me_keys: BTreeSet<String> = me(&app.address, &admin.access)
        .await
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for listed in users {
        let keys: BTreeSet<String> = listed.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, me_keys, "exactly the user object");
    }
    assert!(!body.to_string().contains("argon2"), "no password hash");
}

#[tokio::test]
async fn pages_of_two_walk_every_user_exactly_once_oldest_first() {
    let app = spawn_app().await;
    let (admin_email, admin) = admin(&app).await;
    let mut registered = vec![admin_email];
    for _ in 0..4 {
        registered.push(app.register_user().await);
    }

    let (users, pages) = walk(&app.address, &admin.access, 2).await;
    assert_eq!(emails(&users), registered);
    assert_eq!(pages, 3);
    let created: Vec<DateTime<Utc>> = users.iter().map(|u| time(&u["created_at"])).collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");

    // A page that ends exactly at the last user says there is no more.
    let (users, pages) = walk(&app.address, &admin.access, 5).await;
    assert_eq!((emails(&users), pages), (registered.clone(), 1));
    let (users, pages) = walk(&app.address, &admin.access, 4).await;
    assert_eq!((emails(&users), pages), (registered.clone(), 2));
    let (users, pages) = walk(&app.address, &admin.access, 1).await;
    assert_eq!((emails(&users), pages), (registered.clone(), 5));
    // The default limit (20) takes them all.
    let body: Value = admin_users(&app.address, &admin.access, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        emails(body["data"]["users"].as_array().unwrap()),
        registered
    );
}

#[tokio::test]
async fn users_created_at_the_same_instant_are_ordered_by_id_and_none_is_skipped() {
    let app = spawn_app().await;
    let (_, admin) = admin(&app).await;
    for _ in 0..4 {
        app.register_user().await;
    }
    let instant = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.5Z")
        .unwrap()
        .with_timezone(&Utc);
    set_all(&app, "created_at", instant).await;

    let (users, _) = walk(&app.address, &admin.access, 2).await;
    let ids: Vec<String> = users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "by id within one instant");
    assert_eq!(ids.len(), 5);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 5);
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_400_naming_it() {
    let app = spawn_app().await;
    let (_, admin) = admin(&app).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=", "cursor"),
        (
            "cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "cursor",
        ),
    ] {
        let response = admin_users(&app.address, &admin.access, query).await;
        let body = assert_error(response, 400, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    for query in ["limit=1", "limit=100", "other=ignored"] {
        let response = admin_users(&app.address, &admin.access, query).await;
        assert_eq!(response.status(), 200, "{query}");
    }
}

#[tokio::test]
async fn a_demoted_admin_is_refused_at_the_next_request_on_every_instance() {
    let app = spawn_app().await;
    let sibling = app.sibling(&[]).await;
    let (email, admin) = admin(&app).await;
    // Both instances hold a copy of the admin.
    for base in [&app.address, &sibling] {
        for _ in 0..2 {
            assert_eq!(admin_users(base, &admin.access, "").await.status(), 200);
        }
    }

    set_role(&app, &email, "user").await;
    for base in [&app.address, &sibling] {
        let response = admin_users(base, &admin.access, "").await;
        assert_error(response, 403, "forbidden").await;
    }
    // The token was not touched: the user is still logged in.
    assert_eq!(me(&sibling, &admin.access).await["role"], "user");

    set_role(&app, &email, "admin").await;
    for base in [&app.address, &sibling] {
        assert_eq!(admin_users(base, &admin.access, "").await.status(), 200);
    }
}
