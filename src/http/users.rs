//! /api/users: the logged-in user.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::guard::AuthUser;
use crate::http::{no_store, success};

pub async fn me(auth: AuthUser) -> HttpResponse {
    no_store(HttpResponse::Ok().json(success(json!({"data": {"user": auth.user.view()}}))))
}
