//! Routing: an unknown route is a JSON 404; a wrong method is a JSON 405 whose `Allow`
//! names the methods of the route.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    for path in [
        "/nowhere",
        "/api",
        "/api/auth",
        "/api/users/someone",
        "/api/auth/login/extra",
    ] {
        let response = plain_client().get(app.url(path)).send().await.unwrap();
        assert_error(response, 404, "not_found").await;
    }
    let post = plain_client()
        .post(app.url("/api/nowhere"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(post, 404, "not_found").await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_naming_the_allowed_ones() {
    let app = spawn_app().await;
    let cases = [
        (Method::DELETE, "/api/auth/login", "POST"),
        (Method::GET, "/api/auth/login", "POST"),
        (Method::GET, "/api/auth/register", "POST"),
        (Method::PUT, "/api/auth/register", "POST"),
        (Method::POST, "/api/users/me", "GET, PATCH, DELETE"),
        (Method::POST, "/api/users/me/sessions", "GET, DELETE"),
        (Method::GET, "/api/users/me/sessions/x", "DELETE"),
        (Method::GET, "/api/users/me/password", "POST"),
        (Method::POST, "/api/healthchecker", "GET"),
        (Method::POST, "/.well-known/jwks.json", "GET"),
    ];

    for (method, path, allow) in cases {
        let response = plain_client()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&response, "allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
        assert_error(response, 405, "method_not_allowed").await;
    }
    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        let response = plain_client().delete(app.url(path)).send().await.unwrap();
        let allow = header(&response, "allow").expect("Allow");
        let methods: BTreeSet<&str> = allow.split(',').map(str::trim).collect();
        assert_eq!(methods, BTreeSet::from(["GET", "POST"]), "{path}");
        assert_error(response, 405, "method_not_allowed").await;
    }
}
