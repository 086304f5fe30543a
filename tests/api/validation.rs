//! Validation of the register form: each field's limits (counted in characters), malformed
//! emails, blank names, passwords that differ, and every bad field named in one answer.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

async fn assert_register_refuses(app: &TestApp, body: Value, field: &str) {
    let response = app.register(&body).await;
    let error = assert_error(response, 400, "validation_failed").await;
    assert_eq!(error_fields(&error), [field], "{body}");
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{error}"
    );
}

/// A unique, otherwise valid email of exactly `len` characters (labels of at most 60).
fn email_of_length(len: usize) -> String {
    let mut local = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let mut domain = "example.com".to_owned();
    let mut remaining = len - local.len() - 1 - domain.len();
    while remaining >= 2 {
        let label = (remaining - 1).min(60);
        domain = format!("{}.{domain}", "d".repeat(label));
        remaining -= label + 1;
    }
    local.push_str(&"x".repeat(remaining));
    let email = format!("{local}@{domain}");
    assert_eq!(email.chars().count(), len, "{email}");
    email
}

#[tokio::test]
async fn an_email_over_254_characters_is_refused_and_254_is_accepted() {
    let app = spawn_app().await;

    assert_register_refuses(&app, registration(&email_of_length(255)), "email").await;
    let longest = email_of_length(254);
    let response = app.register(&registration(&longest)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_malformed_email_is_refused() {
    let app = spawn_app().await;

    for email in ["not-an-email", "a@", "@example.com", "a b@example.com", ""] {
        assert_register_refuses(&app, registration(email), "email").await;
    }
}

#[tokio::test]
async fn a_name_over_100_characters_is_refused() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["name"] = json!("n".repeat(101));

    assert_register_refuses(&app, body, "name").await;
}

#[tokio::test]
async fn a_name_of_100_multibyte_characters_is_accepted() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["name"] = json!("é".repeat(100));

    let response = app.register(&body).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["name"], "é".repeat(100));
}

#[tokio::test]
async fn a_blank_or_missing_name_is_refused() {
    let app = spawn_app().await;

    for name in [
        json!("   "),
        json!(""),
        json!("\t\n"),
        json!(null),
        json!(7),
    ] {
        let mut body = registration(&unique_email());
        body["name"] = name;
        assert_register_refuses(&app, body, "name").await;
    }
}

#[tokio::test]
async fn passwords_that_differ_are_refused_as_password_confirm() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["passwordConfirm"] = json!(format!("{PASSWORD} "));

    assert_register_refuses(&app, body, "passwordConfirm").await;
}

#[tokio::test]
async fn a_password_outside_8_to_128_characters_is_refused() {
    let app = spawn_app().await;

    for password in ["1234567".to_owned(), "ü".repeat(129)] {
        let mut body = registration(&unique_email());
        body["password"] = json!(password);
        body["passwordConfirm"] = json!(password);
        assert_register_refuses(&app, body, "password").await;
    }
    let mut body = registration(&unique_email());
    body["password"] = json!("ü".repeat(128));
    body["passwordConfirm"] = json!("ü".repeat(128));
    assert_eq!(app.register(&body).await.status(), 201);
}

#[tokio::test]
async fn a_photo_over_255_characters_is_refused() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["photo"] = json!("p".repeat(256));

    assert_register_refuses(&app, body, "photo").await;
}

#[tokio::test]
async fn every_bad_field_is_named_in_one_answer() {
    let app = spawn_app().await;

    let response = app.register(&json!({"photo": 5})).await;

    let error = assert_error(response, 400, "validation_failed").await;
    let fields: BTreeSet<String> = error_fields(&error).into_iter().collect();
    let expected: BTreeSet<String> = ["name", "email", "password", "passwordConfirm", "photo"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(fields, expected);
}
