//! /api/admin: what only admins may do.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::domain::{User, UserView};
use crate::error::{AppError, FieldError, Result};
use crate::http::guard::AdminUser;
use crate::http::schema::{self, NoLiveToken, ServerErrors};
use crate::http::state::AppState;
use crate::http::{no_store, success};
use crate::service::cursor::CursorSeal;
use crate::store::users::Cursor;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

/// Which page of the list of users a request asks for.
#[derive(Debug, PartialEq)]
struct Page {
    after: Option<Cursor>,
    limit: u32,
}

/// `limit` (1 to 100, default 20) and `cursor` (a `next_cursor` of an earlier answer) from a
/// query string. A parameter that is sent must be valid, and sent once; others are ignored.
fn parse_page(query: &str, cursors: &CursorSeal) -> Result<Page> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| AppError::validation("query", "is not a valid query string"))?;
    let mut errors = Vec::new();
    let mut single = |name: &str| -> Option<String> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(name, "must be sent at most once"));
                None
            }
            (value, _) => value.cloned(),
        }
    };
    let limit = single("limit");
    let cursor = single("cursor");
    let limit = match limit.map(|l| l.parse::<u32>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            ));
            DEFAULT_LIMIT
        }
    };
    let after = match cursor.map(|c| cursors.open(&c)) {
        None => None,
        Some(Some(after)) => Some(after),
        Some(None) => {
            errors.push(FieldError::new(
                "cursor",
                "must be the next_cursor of an earlier answer",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(AppError::ValidationFailed(errors));
    }
    Ok(Page { after, limit })
}

#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    summary = "Every user, oldest first",
    description = "For admins only: the role of the stored user decides, so a demotion takes \
        effect at the next request. Users come oldest first (by creation, then id), `limit` at \
        a time; pass an answer's `next_cursor` as `cursor` for the next page. A walk meets each \
        user that exists throughout it exactly once; users registered or deleted during a walk \
        may or may not be met.",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "How many users, 1 to 100; 20 when absent."),
        ("cursor" = Option<String>, Query,
            description = "Where to go on from: the `next_cursor` of the previous page. \
                Absent: from the first user."),
    ),
    security(("access_bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "A page of users.", body = schema::UserList,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`validation_failed`: `limit` not a whole number from 1 \
            to 100, `cursor` not one this service gave, either sent twice (one `errors` entry \
            per parameter), or an ambiguous request.", body = schema::Error),
        NoLiveToken,
        (status = 403, description = "`forbidden`: the logged-in user is not an admin.",
            body = schema::Error),
        ServerErrors,
    )
)]
pub async fn users(
    state: web::Data<AppState>,
    _admin: AdminUser,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let page = parse_page(req.query_string(), &state.cursors)?;
    let found = state.auth.admin.list_users(page.after, page.limit).await?;
    let users: Vec<UserView> = found.users.iter().map(User::view).collect();
    let next_cursor = found.next.map(|cursor| state.cursors.seal(&cursor));
    Ok(no_store(HttpResponse::Ok().json(success(
        json!({"data": {"users": users, "next_cursor": next_cursor}}),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> CursorSeal {
        CursorSeal::new(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"test",
        ))
    }

    fn parse(query: &str) -> Result<Page> {
        parse_page(query, &seal())
    }

    fn fields(query: &str) -> Vec<String> {
        match parse(query) {
            Err(AppError::ValidationFailed(errors)) => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn limit_defaults_to_20_and_takes_1_to_100() {
        assert_eq!(
            parse("").unwrap(),
            Page {
                after: None,
                limit: 20
            }
        );
        assert_eq!(parse("limit=1").unwrap().limit, 1);
        assert_eq!(parse("limit=100&other=x").unwrap().limit, 100);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=abc",
            "limit=",
            "limit=-1",
            "limit=2.5",
        ] {
            assert_eq!(fields(bad), ["limit"], "{bad}");
        }
        assert_eq!(fields("limit=1&limit=2"), ["limit"]);
    }

    #[test]
    fn a_cursor_is_what_encode_wrote_and_nothing_else() {
        let cursor = Cursor {
            created_at: chrono::DateTime::from_timestamp_micros(1_764_633_230_123_456).unwrap(),
            id: uuid::Uuid::new_v4(),
        };
        let page = parse(&format!("cursor={}&limit=5", seal().seal(&cursor))).unwrap();
        assert_eq!(page.after, Some(cursor));
        for bad in [
            "cursor=",
            "cursor=abc",
            "cursor=%FF",
            &format!("cursor={}A", seal().seal(&cursor)),
        ] {
            assert_eq!(fields(bad), ["cursor"], "{bad}");
        }
        assert_eq!(fields("cursor=x&limit=0"), ["limit", "cursor"]);
    }
}
