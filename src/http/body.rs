//! JSON bodies: limits and content type, and turning a JSON object into typed fields with
//! per-field errors (a wrong type names its field instead of failing the whole body).

use std::fmt;

use actix_web::error::JsonPayloadError;
use actix_web::{HttpRequest, web};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
        JsonPayloadError::Deserialize(e) if e.to_string().starts_with(REPEATED_KEY) => {
            AppError::validation("body", "repeats a key; send each key once")
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

/// A JSON body read strictly: a key repeated in any object is an error, since this service
/// and whatever reads the body beside it (a proxy, a log) could each take a different one.
pub struct JsonObject(pub Value);

/// Starts the message of the error for a repeated key, so `json_error` can tell it apart.
const REPEATED_KEY: &str = "repeated key";

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictValue).map(JsonObject)
    }
}

/// Builds a `Value` as serde_json does, refusing repeated keys. Depth stays bounded by
/// serde_json's own recursion limit.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(REPEATED_KEY));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(body: &str) -> Result<Value, String> {
        serde_json::from_str::<JsonObject>(body)
            .map(|o| o.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_body_reads_as_serde_json_reads_it() {
        let body = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": "d"}"#;
        assert_eq!(
            strict(body),
            Ok(serde_json::from_str::<Value>(body).unwrap())
        );
    }

    #[test]
    fn a_repeated_key_at_any_depth_is_refused() {
        for body in [
            r#"{"email": "a@x.io", "email": "b@x.io"}"#,
            r#"{"a": {"k": 1, "k": 1}}"#,
            r#"[{"k": 1, "k": 2}]"#,
        ] {
            let err = strict(body).unwrap_err();
            assert!(err.starts_with(REPEATED_KEY), "{body}: {err}");
        }
        assert!(strict(r#"{"a": {"k": 1}, "b": {"k": 1}}"#).is_ok());
    }
}
