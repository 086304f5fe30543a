//! Request ids: every answer carries one of its own; a plain incoming `x-request-id` is
//! echoed, any other replaced.

use std::collections::BTreeSet;

use reqwest::{Method, Response};
use serde_json::json;

use crate::helpers::*;

fn request_id(response: &Response) -> String {
    header(response, "x-request-id").expect("x-request-id")
}

/// What the service itself may hand out as a request id.
fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let client = plain_client();
    let requests = [
        client.get(app.url("/api/healthchecker")),
        client.get(app.url("/.well-known/jwks.json")),
        client.get(app.url("/api/users/me")),
        client.get(app.url("/nowhere")),
        client.delete(app.url("/api/auth/login")),
        client.post(app.url("/api/auth/login")).body("x"),
        client.post(app.url("/api/auth/register")).json(&json!({})),
        client.post(app.url("/api/auth/logout")),
        client
            .request(Method::OPTIONS, app.url("/api/auth/login"))
            .header("origin", SPA_ORIGIN)
            .header("access-control-request-method", "POST"),
    ];

    let mut ids = BTreeSet::new();
    for request in requests {
        let response = request.send().await.unwrap();
        let id = request_id(&response);
        assert!(is_plain_id(&id), "{id:?} from {}", response.url());
        ids.insert(id);
    }
    assert_eq!(ids.len(), 9, "each response has its own id: {ids:?}");
}

#[tokio::test]
async fn a_plain_incoming_request_id_is_echoed() {
    let app = spawn_app().await;

    for id in ["abc-123".to_owned(), "A.b_C-9".to_owned(), "x".repeat(64)] {
        let ok = plain_client()
            .get(app.url("/api/healthchecker"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&ok), id);
        let error = plain_client()
            .get(app.url("/api/users/me"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&error), id);
        assert_error(error, 401, "not_logged_in").await;
    }
}

#[tokio::test]
async fn an_unacceptable_incoming_request_id_is_replaced() {
    let app = spawn_app().await;

    for id in [
        "bad id!".to_owned(),
        "x".repeat(65),
        "a/b".to_owned(),
        "é".to_owned(),
        String::new(),
    ] {
        let response = plain_client()
            .get(app.url("/api/healthchecker"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        let echoed = request_id(&response);
        assert_ne!(echoed, id);
        assert!(is_plain_id(&echoed), "{echoed:?}");
    }
}
