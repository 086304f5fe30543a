//! /api/users: the logged-in user.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use validator::Validate;

use crate::error::{AppError, Result};
use crate::http::auth::{add_rule_errors, refuse_unsafe};
use crate::http::body::{Fields, JsonObject};
use crate::http::guard::AuthUser;
use crate::http::schema::{self, Ambiguous, BodyRefused, CrossSite, NoLiveToken, ServerErrors};
use crate::http::state::AppState;
use crate::http::{no_store, success};
use crate::service::accounts::ProfileChange;

#[utoipa::path(
    get,
    path = "/api/users/me",
    tag = "users",
    summary = "The logged-in user",
    description = "Needs a live access token: `Authorization: Bearer`, or else the \
        `access_token` cookie. A Bearer header that is present but invalid is not replaced by \
        the cookie.",
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The user.", body = schema::UserAnswer,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        Ambiguous,
        NoLiveToken,
        ServerErrors,
    )
)]
pub async fn me(auth: AuthUser) -> HttpResponse {
    no_store(HttpResponse::Ok().json(success(json!({"data": {"user": auth.user.view()}}))))
}

/// The fields of a profile change, with register's rules for them.
#[derive(Validate)]
struct ProfileForm {
    #[validate(custom(function = "crate::domain::name_length_rule"))]
    name: Option<String>,
    #[validate(custom(function = "crate::domain::photo_length_rule"))]
    photo: Option<String>,
}

/// `name` and `photo`, each optional (absent or `null`: unchanged), checked as at register.
/// Every other field is ignored.
fn parse_profile(body: &Value) -> Result<ProfileChange> {
    let mut fields = Fields::of(body)?;
    let sent_name = fields.optional("name");
    let form = ProfileForm {
        name: sent_name.map(|name| name.trim().to_owned()),
        photo: fields.optional("photo").map(str::to_owned),
    };
    let mut errors = std::mem::take(&mut fields.errors);
    refuse_unsafe(&mut errors, sent_name, form.photo.as_deref());
    add_rule_errors(&mut errors, form.validate());
    if !errors.is_empty() {
        return Err(AppError::ValidationFailed(errors));
    }
    Ok(ProfileChange {
        name: form.name,
        photo: form.photo,
    })
}

#[utoipa::path(
    patch,
    path = "/api/users/me",
    tag = "users",
    summary = "Change the logged-in user's name or photo",
    description = "Changes the fields the body gives, by the rules of register, and advances \
        `updated_at`. Absent or `null` fields stay as they are; other fields (`email`, `role`, \
        ...) are ignored. A body with neither field changes nothing and answers the user as \
        stored. From the answer on, `/api/users/me` answers the new values on every instance.",
    request_body = schema::ProfileRequest,
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The user as changed.", body = schema::UserAnswer,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`validation_failed`: a body that is not one JSON object \
            or repeats a key (`errors[0].field` is `body`), `name` or `photo` not a string or \
            breaking a rule (one `errors` entry per field), or an ambiguous request.",
            body = schema::Error),
        NoLiveToken,
        CrossSite,
        BodyRefused,
        ServerErrors,
    )
)]
pub async fn update_me(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<JsonObject>,
) -> Result<HttpResponse> {
    let JsonObject(body) = body.into_inner();
    let change = parse_profile(&body)?;
    let user = state
        .auth
        .accounts
        .update_profile(auth.user.id, &change)
        .await?;
    Ok(no_store(
        HttpResponse::Ok().json(success(json!({"data": {"user": user.view()}}))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(body: Value) -> Vec<(String, String)> {
        match parse_profile(&body) {
            Err(AppError::ValidationFailed(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => Vec::new(),
        }
    }

    fn fields(body: Value) -> Vec<String> {
        errors_of(body).into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn given_fields_are_trimmed_and_others_ignored() {
        let change =
            parse_profile(&json!({"name": " Ada ", "role": "admin", "email": "x@y.z"})).unwrap();
        assert_eq!(change.name.as_deref(), Some("Ada"));
        assert_eq!(change.photo, None);
        let change = parse_profile(&json!({"name": null, "photo": " p.png "})).unwrap();
        assert_eq!(change.name, None);
        assert_eq!(change.photo.as_deref(), Some(" p.png "));
        let change = parse_profile(&json!({})).unwrap();
        assert!(change.name.is_none() && change.photo.is_none());
    }

    #[test]
    fn the_rules_of_register_apply() {
        assert_eq!(fields(json!({"name": "   "})), ["name"]);
        assert_eq!(fields(json!({"name": "é".repeat(101)})), ["name"]);
        assert!(fields(json!({"name": "é".repeat(100)})).is_empty());
        assert_eq!(fields(json!({"photo": "p".repeat(256)})), ["photo"]);
        assert!(fields(json!({"photo": "p".repeat(255)})).is_empty());
        assert_eq!(
            fields(json!({"name": "A\u{0}", "photo": "\u{0}"})),
            ["name", "photo"]
        );
        assert_eq!(
            errors_of(json!({"name": 1, "photo": []})),
            [
                ("name".to_owned(), "must be a string".to_owned()),
                ("photo".to_owned(), "must be a string".to_owned())
            ]
        );
        assert!(matches!(
            parse_profile(&json!(["name"])),
            Err(AppError::ValidationFailed(_))
        ));
    }
}
