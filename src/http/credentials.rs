//! Which token a request carries, and the refusal of requests that carry it ambiguously.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse};

use crate::error::AppError;
use crate::http::cookies::{ACCESS_COOKIE, REFRESH_COOKIE};

/// Refuses, on every route, a request that a proxy, a log and this service could read as
/// different credentials: more than one `Authorization` header, or more than one cookie of
/// a token's name (actix would take the first, another reader the last).
pub async fn refuse_ambiguous(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if let Some(field) = ambiguity(req.headers()) {
        let refused = HttpResponse::from_error(AppError::validation(field, "must be sent once"));
        return Ok(req.into_response(refused).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn ambiguity(headers: &HeaderMap) -> Option<&'static str> {
    if headers.get_all(header::AUTHORIZATION).count() > 1 {
        return Some("Authorization");
    }
    [ACCESS_COOKIE, REFRESH_COOKIE]
        .into_iter()
        .find(|name| cookie_count(headers, name) > 1)
}

/// Cookies named `name` in every `Cookie` header, read as actix reads them: as UTF-8 (not
/// `to_str`, which skips a header with any non-ASCII byte that actix still reads), names
/// percent-decoded.
fn cookie_count(headers: &HeaderMap, name: &str) -> usize {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse_encoded(pair.trim()).ok())
        .filter(|c| c.name() == name)
        .count()
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive). Bytes that are
/// not text are kept (lossily), so that such a token fails verification instead of being
/// mistaken for no token at all.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = String::from_utf8_lossy(req.headers().get(header::AUTHORIZATION)?.as_bytes());
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut req = TestRequest::default();
        for pair in pairs {
            req = req.append_header(*pair);
        }
        req.to_http_request().headers().clone()
    }

    #[test]
    fn one_of_each_is_not_ambiguous() {
        let plain = headers(&[
            ("authorization", "Bearer a"),
            (
                "cookie",
                "access_token=a; refresh_token=b; other=1; other=2",
            ),
        ]);
        assert_eq!(ambiguity(&plain), None);
    }

    #[test]
    fn repeats_are_found_across_headers_and_encodings() {
        let twice = [("authorization", "Bearer a"), ("authorization", "Bearer b")];
        assert_eq!(ambiguity(&headers(&twice)), Some("Authorization"));
        let split = [("cookie", "access_token=a"), ("cookie", "access_token=b")];
        assert_eq!(ambiguity(&headers(&split)), Some("access_token"));
        let encoded = [("cookie", "refresh_token=a; refresh%5Ftoken=b")];
        assert_eq!(ambiguity(&headers(&encoded)), Some("refresh_token"));
        let empty_one = [("cookie", "access_token=; access_token=b")];
        assert_eq!(ambiguity(&headers(&empty_one)), Some("access_token"));
    }

    #[test]
    fn repeats_are_found_beside_non_ascii_text() {
        let value = HeaderValue::from_bytes("refresh_token=a; refresh_token=b; x=é".as_bytes());
        let req = TestRequest::default()
            .append_header(("cookie", value.unwrap()))
            .to_http_request();
        assert_eq!(ambiguity(req.headers()), Some("refresh_token"));
    }
}
