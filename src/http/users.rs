//! /api/users: the logged-in user.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::guard::AuthUser;
use crate::http::no_store;

pub async fn me(auth: AuthUser) -> HttpResponse {
    no_store(
        HttpResponse::Ok().json(json!({"status": "success", "data": {"user": auth.user.view()}})),
    )
}
