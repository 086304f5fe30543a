//! /.well-known/jwks.json: the public keys that verify access tokens.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::http::state::AppState;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        // Short, so that a key rotation reaches verifiers quickly.
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(state.auth.jwks_json().to_owned())
}
