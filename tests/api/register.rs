//! Register: the 201 answer with exactly the public user object, what the body may not set
//! (role, verified, provider), no login and no cookies, and a taken email refused whatever
//! its case, its spacing or the timing of the requests.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn register_answers_201_with_exactly_the_public_user_object() {
    let app = spawn_app().await;
    let email = unique_email();
    let mut body = registration(&format!("  {}  ", email.to_uppercase()));
    body["name"] = json!("  Ada Lovelace ");

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    assert_json(&response);
    let text = response.text().await.unwrap();
    for secret in ["password", "hash", "argon2", "token", PASSWORD] {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} in {text}"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys_of(&body), set_of(&["status", "data"]));
    assert_eq!(body["status"], "success");
    assert_eq!(keys_of(&body["data"]), set_of(&["user"]));
    let user = &body["data"]["user"];
    assert_eq!(
        keys_of(user),
        set_of(&[
            "id",
            "name",
            "email",
            "role",
            "photo",
            "verified",
            "mfa",
            "provider",
            "created_at",
            "updated_at"
        ])
    );
    uuid::Uuid::parse_str(user["id"].as_str().unwrap()).expect("id is a UUID");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["role"], "user");
    assert_eq!(user["photo"], "default.png");
    assert_eq!(user["verified"], false);
    assert_eq!(user["provider"], "local");
    for field in ["created_at", "updated_at"] {
        chrono::DateTime::parse_from_rfc3339(user[field].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{field} is not RFC 3339: {e}"));
    }
}

#[tokio::test]
async fn register_stores_a_given_photo_as_given() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["photo"] = json!("https://cdn.example.com/Me Photo.PNG?v=2");

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["user"]["photo"],
        "https://cdn.example.com/Me Photo.PNG?v=2"
    );
}

#[tokio::test]
async fn register_ignores_role_and_verified_sent_in_the_body() {
    let app = spawn_app().await;
    let email = unique_email();
    let mut body = registration(&email);
    body["role"] = json!("admin");
    body["verified"] = json!(true);
    body["provider"] = json!("google");

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["role"], "user");
    assert_eq!(body["data"]["user"]["verified"], false);
    assert_eq!(body["data"]["user"]["provider"], "local");
    assert_eq!(app.user_column(&email, "role").await, "user");
    assert!(matches!(
        app.user_column(&email, "verified").await.as_str(),
        "false" | "0"
    ));
    assert_eq!(app.user_column(&email, "provider").await, "local");
}

#[tokio::test]
async fn register_does_not_log_in_or_set_cookies() {
    let app = spawn_app().await;

    let response = app.register(&registration(&unique_email())).await;

    assert_eq!(response.status(), 201);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "{:?}",
        response.headers()
    );
    assert_error(app.get("/api/users/me").await, 401, "not_logged_in").await;
}

#[tokio::test]
async fn register_refuses_a_taken_email_whatever_its_case_and_spacing() {
    let app = spawn_app().await;
    let email = app.register_user().await;

    for variant in [
        email.clone(),
        email.to_uppercase(),
        format!("  {email} "),
        format!("\t{}\n", email.to_uppercase()),
    ] {
        let response = app.register(&registration(&variant)).await;
        let body = assert_error(response, 409, "email_taken").await;
        assert!(body.get("errors").is_none_or(|e| e.is_array()), "{body}");
    }
    assert_eq!(app.users_count().await, 1);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_one_201_and_only_409s() {
    let app = spawn_app().await;
    let email = unique_email();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..8 {
        let variant = if i % 2 == 0 {
            email.clone()
        } else {
            email.to_uppercase()
        };
        let request = plain_client()
            .post(app.url("/api/auth/register"))
            .json(&registration(&variant));
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }

    let mut statuses: Vec<u16> = requests.join_all().await;

    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.users_count().await, 1);
}
