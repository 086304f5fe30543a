//! The OpenAPI 3.1 description of the HTTP API, generated from the `#[utoipa::path]`
//! annotations beside the handlers, served at `/api/openapi.json`, and Swagger UI at
//! `/api/docs/` (its files are compiled in: the page loads nothing from elsewhere).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Deprecated, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::error::AppError;
use crate::http::not_allowed;

pub use schemas::*;

pub const SPEC_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";
const REQUEST_ID: &str = "x-request-id";
const REQUEST_ID_COMPONENT: &str = "RequestId";

const DESCRIPTION: &str = "\
An RS256 JWT authentication service. Tokens travel in HTTP-only cookies (browsers) or as \
`Authorization: Bearer` (other clients). The full reference, with the session rules, is \
docs/api.md in the repository.

**Answers.** Every answer is JSON, but for `/metrics` and the docs page: a success is \
`{\"status\": \"success\", ...}` (the JWK Set and this description excepted), a failure is \
the `Error` envelope: switch on its `code`. Every answer carries `x-request-id`.

**Errors on every route.** A request that carries more than one `Authorization` header, or \
more than one `access_token` or `refresh_token` cookie, is refused with 400 \
`validation_failed` before anything else. A method that a documented path does not take \
answers 405 `method_not_allowed` with an `Allow` header (`HEAD` included); an unknown path \
answers 404 `not_found`.

**Cross-site requests.** Register, login, refresh and logout refuse with 403 \
`origin_forbidden` a request whose `Origin` is neither one of `CLIENT_ORIGIN` nor the \
service's own origin, or that has no `Origin` but `Sec-Fetch-Site: cross-site`. CORS allows \
the origins of `CLIENT_ORIGIN`, with credentials; the CORS layer answers their preflights \
(`OPTIONS` with `Access-Control-Request-Method`) itself.";

// The descriptions of the error answers that several routes share.
pub const AMBIGUOUS: &str = "`validation_failed`: an ambiguous request: more than one \
`Authorization` header, or more than one `access_token` or `refresh_token` cookie.";
pub const CROSS_SITE: &str = "`origin_forbidden`: sent by a browser on behalf of another site \
(an `Origin` that is neither in `CLIENT_ORIGIN` nor this service's own, `Origin: null`, or \
`Sec-Fetch-Site: cross-site` without `Origin`).";
pub const GUARDED: &str = "As for `/api/users/me`: `not_logged_in` (no token), `token_invalid`, `token_expired` (refresh, then retry) or `session_revoked` (the session ended, or the user was deleted).";
pub const TOO_LARGE: &str = "`payload_too_large`: a body over 64 KiB, chunked or not.";
pub const NOT_JSON: &str = "`unsupported_media_type`: no `Content-Type: application/json`.";
pub const INTERNAL: &str = "`internal_error`: a defect; the cause is logged on the server \
with the request id.";
pub const UNAVAILABLE: &str = "`service_unavailable`: a store (Postgres, Redis or the SQLite \
file) cannot be reached or written in time, or a password hash waited over 10 s for its \
turn. Retry later; no cookie is changed.";

#[derive(OpenApi)]
#[openapi(
    info(title = "rs256-auth", description = DESCRIPTION),
    paths(
        crate::http::health::live,
        crate::http::health::check,
        crate::http::auth::register,
        crate::http::auth::login,
        crate::http::auth::refresh,
        crate::http::auth::logout,
        crate::http::users::me,
        crate::http::users::update_me,
        crate::http::admin::users,
        crate::http::account::sessions,
        crate::http::account::end_session,
        crate::http::account::end_other_sessions,
        crate::http::account::change_password,
        crate::http::account::delete_account,
        crate::http::jwks::jwks,
        metrics,
        spec,
        docs_redirect,
        docs_page,
        docs_file,
    ),
    components(schemas(ErrorCode)),
    modifiers(&SecuritySchemes, &Conventions),
    tags(
        (name = "auth", description = "Register, log in, refresh and log out."),
        (name = "users", description = "The logged-in user."),
        (name = "admin", description = "For users whose role is `admin`."),
        (name = "keys", description = "The public keys that verify access tokens."),
        (name = "operations", description = "Liveness, readiness and metrics."),
        (name = "docs", description = "This description and its Swagger UI page."),
    )
)]
pub struct ApiDoc;

/// The description, built once.
static SPEC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// Swagger UI's settings: our description, and no validator badge (it would call a
/// validator on the internet with the description's URL).
static SWAGGER: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        utoipa_swagger_ui::Config::new([SPEC_PATH])
            .validator_url("none")
            .try_it_out_enabled(true),
    )
});

/// `/api/openapi.json` and the Swagger UI page under `/api/docs/`.
pub fn docs(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(SPEC_PATH)
            .route(web::get().to(spec))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource(DOCS_PATH)
            .route(web::get().to(docs_redirect))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/docs/{file:.*}")
            .route(web::get().to(docs_file))
            .default_service(not_allowed("GET")),
    );
}

/// This description
///
/// OpenAPI 3.1, generated from the code. Swagger UI shows it at `/api/docs/`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "docs",
    responses(
        (status = 200, description = "The OpenAPI description of this service.", body = OpenApiDocument),
        (status = 400, description = AMBIGUOUS, body = Error),
    )
)]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-cache"))
        .json(&*SPEC)
}

/// The docs page, without its trailing slash
///
/// Redirects to `/api/docs/`, so that the page's relative links resolve.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "docs",
    responses(
        (status = 302, description = "To `/api/docs/`.",
            headers(("Location" = String, description = "`/api/docs/`"))),
        (status = 400, description = AMBIGUOUS, body = Error),
    )
)]
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((LOCATION, "/api/docs/"))
        .finish()
}

/// The docs page
///
/// Swagger UI showing this description, with "Try it out".
#[utoipa::path(
    get,
    path = "/api/docs/",
    tag = "docs",
    responses(
        (status = 200, description = "The Swagger UI page.", body = String, content_type = "text/html"),
        (status = 400, description = AMBIGUOUS, body = Error),
    )
)]
#[allow(dead_code)] // describes docs_file's answer for the empty file name
fn docs_page() {}

/// A file of the docs page
///
/// The scripts, style sheets and icons of Swagger UI, served by the service itself.
#[utoipa::path(
    get,
    path = "/api/docs/{file}",
    tag = "docs",
    params(("file" = String, Path, description = "A file of Swagger UI.", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/html"),
            (String = "text/css"),
            (String = "text/javascript"),
            ("image/png"),
        )),
        (status = 400, description = AMBIGUOUS, body = Error),
        (status = 404, description = "`not_found`: no such file.", body = Error),
    )
)]
pub async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let file = file.into_inner();
    match utoipa_swagger_ui::serve(&file, SWAGGER.clone()) {
        Ok(Some(found)) => {
            let mut response = HttpResponse::Ok();
            if found.gzpipped {
                response.insert_header(("content-encoding", "gzip"));
            }
            let bytes = match found.bytes {
                Cow::Borrowed(bytes) => Bytes::from_static(bytes),
                Cow::Owned(bytes) => Bytes::from(bytes),
            };
            Ok(response.content_type(found.content_type).body(bytes))
        }
        Ok(None) => Err(AppError::NotFound),
        Err(e) => Err(AppError::internal(format!("swagger ui: {e}"))),
    }
}

/// Prometheus metrics
///
/// The Prometheus text format: request counts and latencies by route, logins and refreshes by
/// outcome, rate-limit refusals, the argon2 queue, store errors and the process. Served on the
/// main port, or only on `METRICS_PORT`'s when that is set.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics, in the Prometheus text format 0.0.4.",
            body = String, content_type = "text/plain",
            example = json!("http_requests_total{method=\"GET\",route=\"/api/livez\",status=\"200\"} 1\n")),
        (status = 400, description = AMBIGUOUS, body = Error),
    )
)]
#[allow(dead_code)] // the handler is crate::http::metrics::render
fn metrics() {}

/// `access_token` / `Authorization: Bearer` for the access token, `refresh_token` / Bearer for
/// the refresh token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let cookie = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(name, what)))
        };
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme(
            "access_cookie",
            cookie(
                "access_token",
                "The access token in the HTTP-only `access_token` cookie that login and refresh set (Path=/).",
            ),
        );
        components.add_security_scheme(
            "access_bearer",
            bearer("The access token as `Authorization: Bearer <token>`; it wins over the cookie."),
        );
        components.add_security_scheme(
            "refresh_cookie",
            cookie(
                "refresh_token",
                "The refresh token in the HTTP-only `refresh_token` cookie that login and refresh set (Path=/api/auth).",
            ),
        );
        components.add_security_scheme(
            "refresh_bearer",
            bearer(
                "The refresh token as `Authorization: Bearer <token>`, for clients without a cookie jar; read only when there is no `refresh_token` cookie.",
            ),
        );
    }
}

/// What holds for every operation, written once: the `x-request-id` header in and out, unique
/// operation ids for the routes that take GET and POST (GET only for older clients), and
/// answers that have exactly the fields described.
struct Conventions;

/// Request bodies: other fields are ignored, so their schemas stay open.
const OPEN_SCHEMAS: [&str; 4] = [
    "RegisterRequest",
    "LoginRequest",
    "ProfileRequest",
    "OpenApiDocument",
];

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            if let (Some(get), Some(_)) = (item.get.as_mut(), item.post.as_ref()) {
                get.operation_id = get.operation_id.take().map(|id| id + "_get");
                get.deprecated = Some(Deprecated::True);
            }
        }
        add_request_ids(openapi);
        if let Some(components) = openapi.components.as_mut() {
            for (name, schema) in components.schemas.iter_mut() {
                if let RefOr::T(Schema::Object(object)) = schema
                    && object.schema_type == Type::Object.into()
                    && !OPEN_SCHEMAS.contains(&name.as_str())
                {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The `x-request-id` request parameter and response header, described once in the
/// components and referred to by every operation and every response.
fn add_request_ids(openapi: &mut utoipa::openapi::OpenApi) {
    let parameter = ParameterBuilder::new()
        .name(REQUEST_ID)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "An id for this request, kept and echoed when it is 1 to 64 characters of \
             `[A-Za-z0-9._-]`; anything else is replaced by a new UUID.",
        ))
        // Any value is accepted (one that is not kept is replaced), so the schema has no rule.
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    let header = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        ))
        .description(Some(
            "The request's id: the one sent, when acceptable, or a new UUID. It is in every \
             log line of the request: quote it when reporting a problem.",
        ))
        .build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components
        .parameters
        .insert(REQUEST_ID_COMPONENT.to_owned(), RefOr::T(parameter));
    components
        .headers
        .insert(REQUEST_ID_COMPONENT.to_owned(), RefOr::T(header));
    let reference = |kind: &str| Ref::new(format!("#/components/{kind}/{REQUEST_ID_COMPONENT}"));
    for item in openapi.paths.paths.values_mut() {
        for operation in operations(item) {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::Ref(reference("parameters")));
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .insert(REQUEST_ID.to_owned(), RefOr::Ref(reference("headers")));
                }
            }
        }
    }
}

/// Types that only describe JSON for the description: the handlers build these answers with
/// `json!`, and read request bodies field by field (see body.rs).
#[allow(dead_code)]
mod schemas {
    use utoipa::ToSchema;

    use crate::domain::UserView;
    use crate::error::FieldError;

    /// `"success"`
    #[derive(ToSchema)]
    pub enum SuccessStatus {
        #[serde(rename = "success")]
        Success,
    }

    /// `"fail"`
    #[derive(ToSchema)]
    pub enum FailStatus {
        #[serde(rename = "fail")]
        Fail,
    }

    /// Every code a failure can carry (docs/api.md, Errors). Switch on it; the message may be
    /// reworded.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum ErrorCode {
        /// 400: a body that is not a JSON object, a missing or wrong field, an ambiguous request.
        ValidationFailed,
        /// 415: register or login without `Content-Type: application/json`.
        UnsupportedMediaType,
        /// 413: a body over 64 KiB.
        PayloadTooLarge,
        /// 409: register with an email already registered.
        EmailTaken,
        /// 401: login with an unknown email or a wrong password.
        InvalidCredentials,
        /// 429: too many login attempts; see `Retry-After`.
        RateLimited,
        /// 401: no token at all.
        NotLoggedIn,
        /// 401: a token that does not verify or is of the wrong kind.
        TokenInvalid,
        /// 401: a genuine token past its `exp`.
        TokenExpired,
        /// 401: the token's session has ended.
        SessionRevoked,
        /// 401: a rotated refresh token presented again after the grace window.
        RefreshReused,
        /// 403: a cross-site request on a state-changing route.
        OriginForbidden,
        /// 403: the logged-in user's role does not allow the request (an admin route).
        Forbidden,
        /// 503: a store cannot be reached in time; retry later.
        ServiceUnavailable,
        /// 404: an unknown path.
        NotFound,
        /// 405: a method the path does not take.
        MethodNotAllowed,
        /// 500: a defect.
        InternalError,
    }

    /// The failure envelope of every 4xx and 5xx answer.
    #[derive(ToSchema)]
    #[schema(example = json!({"status": "fail", "code": "validation_failed", "message": "the request is invalid", "errors": [{"field": "passwordConfirm", "message": "must match password"}]}))]
    pub struct Error {
        #[schema(inline)]
        status: FailStatus,
        code: ErrorCode,
        /// For people; may be reworded.
        #[schema(example = "invalid email or password")]
        message: String,
        /// Only with `validation_failed`: one entry per bad field, named as in the JSON body
        /// (`body` for the body as a whole, `Authorization` or a cookie's name for an ambiguous
        /// request).
        #[schema(nullable = false)]
        errors: Option<Vec<FieldError>>,
    }

    /// A success without fields.
    #[derive(ToSchema)]
    pub struct Success {
        #[schema(inline)]
        status: SuccessStatus,
    }

    /// A store's state.
    #[derive(ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum StoreState {
        Up,
        Down,
    }

    /// The stores of the configured storage mode: `postgres` and `redis`, `sqlite`, or
    /// `sqlite` and `redis`.
    #[derive(ToSchema)]
    pub struct Checks {
        #[schema(nullable = false)]
        postgres: Option<StoreState>,
        #[schema(nullable = false)]
        redis: Option<StoreState>,
        #[schema(nullable = false)]
        sqlite: Option<StoreState>,
    }

    /// Every store in use answered.
    #[derive(ToSchema)]
    #[schema(example = json!({"status": "success", "message": "rs256-auth is up", "checks": {"sqlite": "up"}}))]
    pub struct Health {
        #[schema(inline)]
        status: SuccessStatus,
        message: String,
        checks: Checks,
    }

    /// A store did not answer within 2 s: the failure envelope with `checks`.
    #[derive(ToSchema)]
    #[schema(example = json!({"status": "fail", "code": "service_unavailable", "message": "unavailable: redis", "checks": {"postgres": "up", "redis": "down"}}))]
    pub struct HealthDown {
        #[schema(inline)]
        status: FailStatus,
        code: ErrorCode,
        /// Names the stores that are down.
        message: String,
        checks: Checks,
    }

    /// The body of register. Other fields are ignored (`role` and `verified` included).
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[schema(example = json!({"name": "Ada", "email": "ada@example.com", "password": "correct horse", "passwordConfirm": "correct horse"}))]
    pub struct RegisterRequest {
        /// Trimmed; 1 to 100 characters after trimming; no control character (a tab or
        /// newline included) and no bidi override or isolate (U+202A..U+202E, U+2066..U+2069).
        #[schema(min_length = 1, max_length = 100)]
        name: String,
        /// Trimmed and lowercased; a valid address of at most 254 characters.
        #[schema(format = "email", max_length = 254)]
        email: String,
        /// 8 to 128 characters; never trimmed.
        #[schema(format = "password", min_length = 8, max_length = 128)]
        password: String,
        /// Equal to `password`.
        #[schema(format = "password", min_length = 8, max_length = 128)]
        password_confirm: String,
        /// A file name, a relative path, or an `http://`/`https://` URL (no other scheme, no
        /// `//host`, no control character); kept as given; `default.png` when absent or null.
        #[schema(max_length = 255)]
        photo: Option<String>,
    }

    /// The body of login. The email is matched trimmed and without regard to letter case.
    #[derive(ToSchema)]
    #[schema(example = json!({"email": "ada@example.com", "password": "correct horse"}))]
    pub struct LoginRequest {
        email: String,
        #[schema(format = "password")]
        password: String,
    }

    /// `data.user`: the user.
    #[derive(ToSchema)]
    pub struct UserData {
        user: UserView<'static>,
    }

    /// The user, as register and `/api/users/me` answer it.
    #[derive(ToSchema)]
    pub struct UserAnswer {
        #[schema(inline)]
        status: SuccessStatus,
        data: UserData,
    }

    /// The body of a profile change: the fields to change. Absent or `null` fields stay as
    /// they are; other fields (`email`, `role`, ...) are ignored.
    #[derive(ToSchema)]
    #[schema(example = json!({"name": "Ada Lovelace", "photo": "ada.png"}))]
    pub struct ProfileRequest {
        /// As at register: trimmed; 1 to 100 characters after trimming; no control
        /// character and no bidi override or isolate.
        #[schema(min_length = 1, max_length = 100)]
        name: Option<String>,
        /// As at register: a file name, a relative path, or an `http://`/`https://` URL;
        /// kept as given; at most 255 characters.
        #[schema(max_length = 255)]
        photo: Option<String>,
    }

    /// `data` of the admin list: a page of users, oldest first.
    #[derive(ToSchema)]
    pub struct UserListData {
        users: Vec<UserView<'static>>,
        /// Pass it as `cursor` for the next page; `null` on the last page.
        #[schema(required = true)]
        next_cursor: Option<String>,
    }

    /// A page of the list of users.
    #[derive(ToSchema)]
    pub struct UserList {
        #[schema(inline)]
        status: SuccessStatus,
        data: UserListData,
    }

    /// A new session's access token. The refresh token travels only in its cookie.
    #[derive(ToSchema)]
    pub struct LoggedIn {
        #[schema(inline)]
        status: SuccessStatus,
        /// An RS256 JWT, about 800 bytes; also in the `access_token` cookie.
        access_token: String,
    }

    /// The session's new tokens.
    #[derive(ToSchema)]
    pub struct Refreshed {
        #[schema(inline)]
        status: SuccessStatus,
        /// An RS256 JWT; also in the `access_token` cookie.
        access_token: String,
        /// Only when the refresh token came as a Bearer header (a client without a cookie jar):
        /// the new refresh token, which replaces the one sent. Also in the `refresh_token`
        /// cookie.
        #[schema(nullable = false)]
        refresh_token: Option<String>,
    }

    /// `"RSA"`
    #[derive(ToSchema)]
    pub enum Rsa {
        #[serde(rename = "RSA")]
        Rsa,
    }

    /// `"sig"`
    #[derive(ToSchema)]
    pub enum Sig {
        #[serde(rename = "sig")]
        Sig,
    }

    /// `"RS256"`
    #[derive(ToSchema)]
    pub enum Rs256 {
        #[serde(rename = "RS256")]
        Rs256,
    }

    /// A public RSA key (RFC 7517).
    #[derive(ToSchema)]
    pub struct Jwk {
        #[schema(inline)]
        kty: Rsa,
        #[serde(rename = "use")]
        #[schema(inline)]
        use_: Sig,
        #[schema(inline)]
        alg: Rs256,
        /// The key's RFC 7638 thumbprint; the `kid` of the tokens it verifies.
        kid: String,
        /// The modulus, base64url.
        n: String,
        /// The exponent, base64url.
        e: String,
    }

    /// A JWK Set (RFC 7517), without the `status` envelope: the signing key first, then any
    /// extra verification keys of a key rotation.
    #[derive(ToSchema)]
    pub struct Jwks {
        #[schema(min_items = 1)]
        keys: Vec<Jwk>,
    }

    /// An OpenAPI 3.1 description (this one).
    #[derive(ToSchema)]
    pub struct OpenApiDocument {
        #[schema(pattern = r"^3\.1\.\d+$", example = "3.1.0")]
        openapi: String,
        #[schema(value_type = Object)]
        info: (),
        #[schema(value_type = Object)]
        paths: (),
    }
}
