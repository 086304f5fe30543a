//! JSON bodies: limits and content type, and turning a JSON object into typed fields with
//! per-field errors (a wrong type names its field instead of failing the whole body).

use actix_web::error::JsonPayloadError;
use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};

use crate::error::{AppError, FieldError};

/// Far more than any auth request needs; larger bodies are refused while streaming.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(json_error)
}

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let app = match err {
        JsonPayloadError::ContentType => AppError::UnsupportedMediaType,
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            AppError::PayloadTooLarge
        }
        JsonPayloadError::Deserialize(e) => {
            AppError::validation("body", format!("malformed JSON: {}", e.classify_message()))
        }
        _ => AppError::ValidationFailed(Vec::new()),
    };
    app.into()
}

trait Classify {
    fn classify_message(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    /// A fixed phrase: serde's own text can echo the input back.
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "the body ends early",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected value",
            serde_json::error::Category::Io => "unreadable body",
        }
    }
}

/// Reads named string fields out of a JSON object, collecting an error per bad field.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn of(body: &'a Value) -> Result<Self, AppError> {
        match body {
            Value::Object(object) => Ok(Fields {
                object,
                errors: Vec::new(),
            }),
            _ => Err(AppError::validation("body", "must be a JSON object")),
        }
    }

    /// A required string; missing, null or another type is an error for that field.
    pub fn required(&mut self, name: &str) -> &'a str {
        match self.object.get(name) {
            None | Some(Value::Null) => self.fail(name, "is required"),
            Some(Value::String(s)) => s,
            Some(_) => self.fail(name, "must be a string"),
        }
    }

    /// An optional string; null counts as absent.
    pub fn optional(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => Some(self.fail(name, "must be a string")),
        }
    }

    fn fail(&mut self, name: &str, message: &str) -> &'a str {
        self.errors.push(FieldError::new(name, message));
        ""
    }
}
