//! The OpenAPI 3.1 description of the HTTP API, generated from the `#[utoipa::path]`
//! annotations beside the handlers (with the shapes and shared answers of schema.rs), served
//! at `/api/openapi.json`, and Swagger UI at `/api/docs/` (its files are compiled in: the page
//! loads nothing from elsewhere).

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

use crate::error::{AppError, ErrorCode};
use crate::http::not_allowed;
use crate::http::schema::{Ambiguous, Error, OpenApiDocument};

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

**Cross-site requests.** Every route that changes something refuses with 403 \
`origin_forbidden` a request whose `Origin` is neither one of `CLIENT_ORIGIN` nor the \
service's own origin, or that has no `Origin` but `Sec-Fetch-Site: cross-site`. CORS allows \
the origins of `CLIENT_ORIGIN`, with credentials; the CORS layer answers their preflights \
(`OPTIONS` with `Access-Control-Request-Method`) itself.";

#[derive(OpenApi)]
#[openapi(
    info(title = "rs256-auth", description = DESCRIPTION),
    paths(
        crate::http::health::live,
        crate::http::health::check,
        crate::http::auth::register,
        crate::http::auth::login,
        crate::http::mfa::login_with_code,
        crate::http::auth::refresh,
        crate::http::auth::logout,
        crate::http::users::me,
        crate::http::users::update_me,
        crate::http::admin::users,
        crate::http::email::verify,
        crate::http::email::resend,
        crate::http::email::forgot,
        crate::http::email::reset,
        crate::http::email::change_address,
        crate::http::email::confirm,
        crate::http::account::sessions,
        crate::http::account::end_session,
        crate::http::account::end_other_sessions,
        crate::http::account::change_password,
        crate::http::account::delete_account,
        crate::http::mfa::enroll,
        crate::http::mfa::confirm_enrollment,
        crate::http::mfa::disable,
        crate::http::mfa::regenerate,
        crate::http::jwks::jwks,
        metrics,
        spec,
        docs_redirect,
        docs_page,
        docs_file,
    ),
    // The shared answers of schema.rs refer to `Error`, and utoipa gathers only the schemas
    // that response tuples name: listed here, it cannot go missing.
    components(schemas(Error, ErrorCode)),
    modifiers(&SecuritySchemes, &Conventions),
    tags(
        (name = "auth", description = "Register, log in, refresh and log out."),
        (name = "users", description = "The logged-in user."),
        (name = "email", description = "Mailed links: verify an address, reset a forgotten \
            password, change the address. No route takes a token in a GET."),
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
        Ambiguous,
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
        Ambiguous,
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
        Ambiguous,
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
        Ambiguous,
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
        Ambiguous,
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
