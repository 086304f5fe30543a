//! The OpenAPI description at /api/openapi.json and the Swagger UI page at /api/docs: an
//! OpenAPI 3.1 description of exactly the service's routes, every error answer documented with
//! its codes, and a docs page that loads nothing from elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use rs256_auth::domain::{NAME_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, PHOTO_MAX_CHARS};
use rs256_auth::error::AppError;
use serde_json::Value;

use crate::helpers::*;

/// Every (method, path) of the route table (src/http/mod.rs and src/http/openapi.rs), as the
/// description must name them.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/livez"),
    ("GET", "/api/healthchecker"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("GET", "/api/auth/refresh"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/logout"),
    ("GET", "/api/users/me"),
    ("PATCH", "/api/users/me"),
    ("DELETE", "/api/users/me"),
    ("GET", "/api/users/me/sessions"),
    ("DELETE", "/api/users/me/sessions"),
    ("DELETE", "/api/users/me/sessions/{id}"),
    ("POST", "/api/users/me/password"),
    ("POST", "/api/users/me/email"),
    ("POST", "/api/auth/verify-email"),
    ("POST", "/api/auth/verify-email/resend"),
    ("POST", "/api/auth/forgot-password"),
    ("POST", "/api/auth/reset-password"),
    ("POST", "/api/auth/confirm-email"),
    ("POST", "/api/auth/login/mfa"),
    ("POST", "/api/users/me/mfa/totp"),
    ("DELETE", "/api/users/me/mfa/totp"),
    ("POST", "/api/users/me/mfa/totp/confirm"),
    ("POST", "/api/users/me/mfa/recovery-codes"),
    ("GET", "/api/admin/users"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/api/docs/"),
    ("GET", "/api/docs/{file}"),
];

/// docs/api.md, whose Errors section lists every code with its status.
const API_MD: &str = include_str!("../../docs/api.md");

/// The (code, status) rows of the table in docs/api.md's Errors section.
fn documented_codes() -> BTreeMap<&'static str, u16> {
    let errors = API_MD
        .split("\n## ")
        .find(|section| section.starts_with("Errors\n"))
        .expect("an Errors section in docs/api.md");
    errors
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.split(" | ");
            let code = cells.next()?.strip_suffix('`')?;
            let status = cells.next()?.parse().ok()?;
            Some((code, status))
        })
        .collect()
}

/// One of each failure of src/error.rs.
fn every_error() -> Vec<AppError> {
    let all = vec![
        AppError::ValidationFailed(Vec::new()),
        AppError::UnsupportedMediaType,
        AppError::PayloadTooLarge,
        AppError::EmailTaken,
        AppError::InvalidCredentials,
        AppError::RateLimited {
            retry_after_secs: 1,
        },
        AppError::NotLoggedIn,
        AppError::TokenInvalid,
        AppError::TokenExpired,
        AppError::SessionRevoked,
        AppError::RefreshReused,
        AppError::OriginForbidden,
        AppError::Forbidden,
        AppError::LinkInvalid,
        AppError::EmailNotVerified,
        AppError::InvalidCode,
        AppError::MfaEnabled,
        AppError::MfaNotEnabled,
        AppError::MfaNotPending,
        AppError::ServiceUnavailable { cause: "redis" },
        AppError::NotFound,
        AppError::NoSuchSession,
        AppError::MethodNotAllowed { allow: "GET" },
        AppError::Internal { store: None },
    ];
    // Without a wildcard: a new variant stops this from compiling until it is listed above.
    for error in &all {
        match error {
            AppError::ValidationFailed(_)
            | AppError::UnsupportedMediaType
            | AppError::PayloadTooLarge
            | AppError::EmailTaken
            | AppError::InvalidCredentials
            | AppError::RateLimited { .. }
            | AppError::NotLoggedIn
            | AppError::TokenInvalid
            | AppError::TokenExpired
            | AppError::SessionRevoked
            | AppError::RefreshReused
            | AppError::OriginForbidden
            | AppError::Forbidden
            | AppError::LinkInvalid
            | AppError::EmailNotVerified
            | AppError::InvalidCode
            | AppError::MfaEnabled
            | AppError::MfaNotEnabled
            | AppError::MfaNotPending
            | AppError::ServiceUnavailable { .. }
            | AppError::NotFound
            | AppError::NoSuchSession
            | AppError::MethodNotAllowed { .. }
            | AppError::Internal { .. } => {}
        }
    }
    all
}

/// Each code of src/error.rs with the status it answers with.
fn code_statuses() -> BTreeMap<&'static str, u16> {
    use actix_web::ResponseError;
    every_error()
        .iter()
        .map(|e| (e.code().as_str(), e.status_code().as_u16()))
        .collect()
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn description(app: &TestApp) -> Value {
    let response = plain_client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_json(&response);
    response.json().await.expect("JSON")
}

/// Every operation of the description: (METHOD, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut all = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local $ref");
            resolve(spec, spec.pointer(pointer).expect("the $ref resolves"))
        }
        None => value,
    }
}

/// The path with each `{parameter}` replaced by the parameter's example.
fn concrete(path: &str, operation: &Value) -> String {
    let mut path = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().expect("name");
            let example = parameter["example"]
                .as_str()
                .unwrap_or_else(|| panic!("path parameter {name} has no example"));
            path = path.replace(&format!("{{{name}}}"), example);
        }
    }
    assert!(!path.contains('{'), "unfilled parameter in {path}");
    path
}

/// The codes named in backquotes in a description, e.g. "`token_expired` (refresh ...)".
fn codes_named(text: &str, known: &BTreeMap<&str, u16>) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| known.contains_key(word))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_description_is_openapi_3_1_of_exactly_the_routes_of_the_service() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let version = spec["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());

    let documented: BTreeSet<(String, String)> = operations(&spec)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented.difference(&routes).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented, but not a route of the service"
    );
    assert_eq!(
        routes.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "a route of the service that the description leaves out"
    );

    let ids: Vec<String> = operations(&spec)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().expect("operationId").to_owned())
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds repeat: {ids:?}");
}

#[tokio::test]
async fn every_documented_operation_exists_and_other_methods_answer_405() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let client = plain_client();
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, path, operation) in operations(&spec) {
        let url = app.url(&concrete(&path, &operation));
        let response = client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !(status == 404 && body.contains("\"not_found\"")),
            "{method} {path} is documented but not routed: {body}"
        );
        by_path.entry(path).or_default().insert(method);
    }
    for (path, methods) in by_path {
        let operation = &spec["paths"][&path][methods.first().unwrap().to_lowercase()];
        let url = app.url(&concrete(&path, operation));
        for other in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"] {
            if methods.contains(other) {
                continue;
            }
            let response = client
                .request(Method::from_bytes(other.as_bytes()).unwrap(), &url)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 405, "{other} {path}");
            let allow: BTreeSet<String> = header(&response, "allow")
                .expect("Allow")
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, methods, "Allow of {path}");
            if other != "HEAD" {
                assert_error(response, 405, "method_not_allowed").await;
            }
        }
    }
}

#[tokio::test]
async fn the_error_schema_names_every_code_of_the_service() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let error = &spec["components"]["schemas"]["Error"];
    let required: BTreeSet<&str> = error["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, BTreeSet::from(["status", "code", "message"]));
    assert_eq!(
        error["properties"]["status"]["enum"],
        serde_json::json!(["fail"])
    );
    let field_error = resolve(&spec, &error["properties"]["errors"]["items"]);
    assert!(field_error["properties"]["field"].is_object());
    assert!(field_error["properties"]["message"].is_object());

    let documented: BTreeSet<&str> = resolve(&spec, &error["properties"]["code"])["enum"]
        .as_array()
        .expect("the code enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        code_statuses(),
        documented_codes(),
        "the codes of src/error.rs and the table of docs/api.md (Errors) differ"
    );
    let of_the_service: BTreeSet<&str> = code_statuses().into_keys().collect();
    assert_eq!(documented, of_the_service, "the Error schema's code enum");
    // The enum is ErrorCode's: each code is written on the wire as the description names it.
    for error in every_error() {
        let code = error.code();
        assert_eq!(
            serde_json::to_value(code).expect("a code serializes"),
            serde_json::json!(code.as_str()),
            "{code:?}"
        );
    }
}

#[tokio::test]
async fn every_operation_documents_its_errors_with_their_codes() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let statuses = code_statuses();
    for (method, path, operation) in operations(&spec) {
        let responses = operation["responses"].as_object().expect("responses");
        let errors: Vec<(u16, &Value)> = responses
            .iter()
            .map(|(status, r)| (status.parse::<u16>().expect("a status"), resolve(&spec, r)))
            .filter(|(status, _)| *status >= 400)
            .collect();
        assert!(!errors.is_empty(), "{method} {path} documents no error");
        // Every route refuses an ambiguous request (two Authorization headers) with 400.
        assert!(
            errors.iter().any(|(status, _)| *status == 400),
            "{method} {path} leaves out 400"
        );
        for (status, response) in errors {
            let what = format!("{method} {path} {status}");
            let schema = resolve(&spec, &response["content"]["application/json"]["schema"]);
            assert_eq!(
                schema["properties"]["status"]["enum"],
                serde_json::json!(["fail"]),
                "{what}: not the failure envelope"
            );
            let description = response["description"].as_str().expect("description");
            let named = codes_named(description, &statuses);
            assert!(!named.is_empty(), "{what} names no code: {description}");
            for code in named {
                assert_eq!(
                    statuses[code.as_str()],
                    status,
                    "{what} names {code}, which answers another status"
                );
            }
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{what}: x-request-id"
            );
        }
    }
}

#[tokio::test]
async fn the_tokens_and_the_headers_that_matter_are_described() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let schemes = &spec["components"]["securitySchemes"];
    for (name, cookie) in [
        ("access_cookie", "access_token"),
        ("refresh_cookie", "refresh_token"),
    ] {
        assert_eq!(schemes[name]["type"], "apiKey", "{name}");
        assert_eq!(schemes[name]["in"], "cookie", "{name}");
        assert_eq!(schemes[name]["name"], cookie, "{name}");
    }
    for name in ["access_bearer", "refresh_bearer"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    let security = |method: &str, path: &str| -> BTreeSet<String> {
        spec["paths"][path][method]["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|requirement| requirement.as_object().unwrap().keys().cloned())
            .collect()
    };
    let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(
        security("get", "/api/users/me"),
        set(&["access_bearer", "access_cookie"])
    );
    for method in ["get", "post"] {
        assert_eq!(
            security(method, "/api/auth/refresh"),
            set(&["refresh_bearer", "refresh_cookie"])
        );
    }

    let headers = |method: &str, path: &str, status: &str| -> BTreeSet<String> {
        spec["paths"][path][method]["responses"][status]["headers"]
            .as_object()
            .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default()
    };
    assert!(headers("post", "/api/auth/login", "200").contains("set-cookie"));
    assert!(headers("post", "/api/auth/refresh", "200").contains("set-cookie"));
    assert!(headers("post", "/api/auth/refresh", "401").contains("set-cookie"));
    assert!(headers("post", "/api/auth/logout", "200").contains("set-cookie"));
    assert!(headers("post", "/api/auth/login", "429").contains("retry-after"));
    assert!(headers("get", "/api/users/me", "401").contains("www-authenticate"));
    for (method, path, operation) in operations(&spec) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{method} {path} {status}: x-request-id"
            );
        }
    }

    let register = &spec["paths"]["/api/auth/register"]["post"]["requestBody"];
    let body = resolve(&spec, &register["content"]["application/json"]["schema"]);
    let fields: BTreeSet<&str> = body["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["name", "email", "password", "passwordConfirm", "photo"])
    );
    let login = &spec["paths"]["/api/auth/login"]["post"]["requestBody"];
    let body = resolve(&spec, &login["content"]["application/json"]["schema"]);
    assert_eq!(
        body["required"],
        serde_json::json!(["email", "password"]),
        "login body"
    );
}

#[tokio::test]
async fn the_user_schema_has_exactly_the_fields_of_the_user_object() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let user = &spec["components"]["schemas"]["User"];
    assert_eq!(user["additionalProperties"], false);
    let described: BTreeSet<String> = user["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let (_, session) = app.logged_in_user().await;
    let me: Value = app.me_with(&session.access).await.json().await.unwrap();
    let answered: BTreeSet<String> = me["data"]["user"]
        .as_object()
        .expect("data.user")
        .keys()
        .cloned()
        .collect();
    assert_eq!(described, answered);
}

#[tokio::test]
async fn the_docs_page_is_swagger_ui_served_by_the_service_itself() {
    let app = spawn_app().await;

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "location").as_deref(), Some("/api/docs/"));
    assert!(header(&response, "x-request-id").is_some());

    let response = plain_client()
        .get(app.url("/api/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.url().path().ends_with("/api/docs/"));
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    // Every script and style sheet the page loads comes from the service.
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in html.split(attribute).skip(1) {
            let link = piece.split('"').next().unwrap();
            let lower = link.to_ascii_lowercase();
            assert!(
                !(lower.starts_with("http:")
                    || lower.starts_with("https:")
                    || lower.starts_with("//")),
                "the page loads {link} from elsewhere"
            );
            assets.push(link.trim_start_matches("./").to_owned());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for asset in &assets {
        let response = plain_client()
            .get(app.url(&format!("/api/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = header(&response, "content-type").unwrap_or_default();
        let expected = match asset.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("png") => "image/png",
            _ => "",
        };
        assert!(
            content_type.starts_with(expected),
            "{asset}: {content_type}"
        );
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }

    // The page shows our description, and sends it to no validator on the internet.
    let initializer = plain_client()
        .get(app.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("\"url\": \"/api/openapi.json\""),
        "{initializer}"
    );
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );

    // CORS treats these routes like the others.
    for (origin, allowed) in [
        ("http://localhost:3000", true),
        ("https://evil.example", false),
    ] {
        let response = plain_client()
            .get(app.url("/api/openapi.json"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let allow = header(&response, "access-control-allow-origin");
        assert_eq!(allow.as_deref(), allowed.then_some(origin), "{origin}");
    }

    let missing = plain_client()
        .get(app.url("/api/docs/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_error(missing, 404, "not_found").await;
}

/// utoipa takes only literals for lengths: the description must say what the rules in
/// `domain` enforce, and this is where the two are held together.
#[tokio::test]
async fn the_described_lengths_are_the_rules_of_the_service() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let field = |schema: &str, field: &str| {
        spec["components"]["schemas"][schema]["properties"][field].clone()
    };
    let (min, max) = (PASSWORD_MIN_CHARS as u64, PASSWORD_MAX_CHARS as u64);
    for (schema, name) in [
        ("RegisterRequest", "password"),
        ("RegisterRequest", "passwordConfirm"),
        ("PasswordChangeRequest", "newPassword"),
    ] {
        let described = field(schema, name);
        assert_eq!(described["minLength"], min, "{schema}.{name}");
        assert_eq!(described["maxLength"], max, "{schema}.{name}");
    }
    for schema in ["RegisterRequest", "ProfileRequest"] {
        assert_eq!(field(schema, "name")["minLength"], 1, "{schema}.name");
        assert_eq!(
            field(schema, "name")["maxLength"],
            NAME_MAX_CHARS,
            "{schema}.name"
        );
        assert_eq!(
            field(schema, "photo")["maxLength"],
            PHOTO_MAX_CHARS,
            "{schema}.photo"
        );
    }
}
