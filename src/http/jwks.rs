//! /.well-known/jwks.json: the public keys that verify access tokens.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::http::schema::{self, Ambiguous};
use crate::http::state::AppState;

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    summary = "The public keys of access tokens",
    description = "A bare JWK Set (RFC 7517), without the `status` envelope, for JWT libraries. \
        Refresh-token keys are never listed. Check `alg` is RS256, pick the key by the token's \
        `kid`, and check `iss`, `aud`, `exp`, `nbf` and `typ == \"access\"`; logouts are not \
        visible this way: ask `/api/users/me` when that matters.",
    responses(
        (status = 200, description = "The keys: the signing key first.", body = schema::Jwks,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        Ambiguous,
    )
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        // Short, so that a key rotation reaches verifiers quickly.
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(state.auth.jwks_json().to_owned())
}
