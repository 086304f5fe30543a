//! Settings and keys read from a map, no server, for the settings tests: the test settings
//! with some variables changed, and checks of the messages that refuse them.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rs256_auth::config::Settings;
use rs256_auth::service::tokens::{TokenType, Tokens};
use uuid::Uuid;

use super::base_settings;

/// Variables to change: `Some` sets, `None` removes.
pub type Changes<'a> = Vec<(&'a str, Option<&'a str>)>;

/// The test settings with some variables changed: `Some` sets, `None` removes.
pub fn vars_with(changes: &[(&str, Option<&str>)]) -> HashMap<String, String> {
    let mut vars = base_settings();
    // Never connected to: these tests only read settings.
    vars.insert(
        "DATABASE_URL".into(),
        "postgres://postgres@127.0.0.1:5432/config_test".into(),
    );
    vars.insert("REDIS_URL".into(), "redis://127.0.0.1:6379".into());
    for (name, value) in changes {
        match value {
            Some(v) => vars.insert((*name).to_owned(), (*v).to_owned()),
            None => vars.remove(*name),
        };
    }
    vars
}

pub fn load(vars: &HashMap<String, String>) -> Result<Settings, String> {
    Settings::from_lookup(|k| vars.get(k).cloned()).map_err(|e| e.to_string())
}

pub fn settings_with(changes: &[(&str, Option<&str>)]) -> Settings {
    match load(&vars_with(changes)) {
        Ok(settings) => settings,
        Err(e) => panic!("settings {changes:?} refused: {e}"),
    }
}

/// Whether `message` is one line that starts by naming exactly `var`.
pub fn names(message: &str, var: &str) -> bool {
    !message.trim_end().contains('\n')
        && message
            .strip_prefix(var)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Each failed case on its own line, so one run shows them all.
pub fn assert_no_failures(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

pub fn tokens_from(changes: &[(&str, Option<&str>)]) -> Result<Tokens, String> {
    Tokens::from_settings(&load(&vars_with(changes))?)
}

pub fn tokens_ok(changes: &[(&str, Option<&str>)]) -> Tokens {
    match tokens_from(changes) {
        Ok(tokens) => tokens,
        Err(e) => panic!("keys refused: {e}"),
    }
}

/// Signs and verifies one access token: the pair really works.
pub fn assert_round_trip(tokens: &Tokens) {
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let issued = tokens.issue(user, sid, TokenType::Access).expect("issue");
    let claims = tokens.verify(&issued, TokenType::Access).expect("verify");
    assert_eq!((claims.sub, claims.sid), (user, sid));
}
