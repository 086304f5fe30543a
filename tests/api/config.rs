//! Settings (from a map, no server) and the binary's start-up and `keys generate`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use actix_web::cookie::SameSite;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rs256_auth::config::{Database, RedisTarget, Settings};
use rs256_auth::service::tokens::{TokenType, Tokens};
use uuid::Uuid;

use crate::helpers::*;

/// Variables to change: `Some` sets, `None` removes.
type Changes<'a> = Vec<(&'a str, Option<&'a str>)>;

/// The test settings with some variables changed: `Some` sets, `None` removes.
fn vars_with(changes: &[(&str, Option<&str>)]) -> HashMap<String, String> {
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

fn load(vars: &HashMap<String, String>) -> Result<Settings, String> {
    Settings::from_lookup(|k| vars.get(k).cloned()).map_err(|e| e.to_string())
}

fn settings_with(changes: &[(&str, Option<&str>)]) -> Settings {
    match load(&vars_with(changes)) {
        Ok(settings) => settings,
        Err(e) => panic!("settings {changes:?} refused: {e}"),
    }
}

/// Whether `message` is one line that starts by naming exactly `var`.
fn names(message: &str, var: &str) -> bool {
    !message.trim_end().contains('\n')
        && message
            .strip_prefix(var)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Base64 wrapped at 76 columns, as `base64` and `openssl base64` print it.
fn b64_wrapped(bytes: &[u8]) -> String {
    let one_line = b64(bytes);
    one_line
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_malformed_setting_is_refused_naming_its_variable() {
    let dev_private = b64(&read_key("access_private"));
    let missing_file = format!("/nonexistent/{}.pem", Uuid::new_v4());
    let cases: Vec<(&str, Changes)> = vec![
        ("REDIS_URL", vec![("REDIS_URL", None)]),
        ("REDIS_URL", vec![("REDIS_URL", Some("  "))]),
        (
            "DATABASE_URL",
            vec![("DATABASE_URL", Some("mysql://db/users"))],
        ),
        (
            "DATABASE_URL",
            vec![("DATABASE_URL", Some("data/users.db"))],
        ),
        ("DATABASE_URL", vec![("DATABASE_URL", Some("sqlite:"))]),
        (
            "DATABASE_URL",
            vec![("DATABASE_URL", Some("sqlite::memory:"))],
        ),
        (
            "DATABASE_URL",
            vec![("DATABASE_URL", Some("sqlite:x.db?mode=ro"))],
        ),
        ("PORT", vec![("PORT", Some("abc"))]),
        ("PORT", vec![("PORT", Some("70000"))]),
        ("METRICS_PORT", vec![("METRICS_PORT", Some("metrics"))]),
        ("METRICS_PORT", vec![("METRICS_PORT", Some("70000"))]),
        ("LOG_FORMAT", vec![("LOG_FORMAT", Some("xml"))]),
        (
            "METRICS_PORT",
            vec![("PORT", Some("9000")), ("METRICS_PORT", Some("9000"))],
        ),
        (
            "ACCESS_TOKEN_EXPIRED_IN",
            vec![("ACCESS_TOKEN_EXPIRED_IN", Some("15x"))],
        ),
        (
            "ACCESS_TOKEN_EXPIRED_IN",
            vec![("ACCESS_TOKEN_EXPIRED_IN", Some("2h"))],
        ),
        (
            "ACCESS_TOKEN_EXPIRED_IN",
            vec![("ACCESS_TOKEN_EXPIRED_IN", Some("3651d"))],
        ),
        (
            "ACCESS_TOKEN_MAXAGE",
            vec![("ACCESS_TOKEN_MAXAGE", Some("400000000000000000"))],
        ),
        (
            "ACCESS_TOKEN_EXPIRED_IN",
            vec![("ACCESS_TOKEN_EXPIRED_IN", Some("0m"))],
        ),
        (
            "ACCESS_TOKEN_EXPIRED_IN",
            vec![("ACCESS_TOKEN_EXPIRED_IN", Some("15"))],
        ),
        (
            "ACCESS_TOKEN_EXPIRED_IN",
            vec![("ACCESS_TOKEN_EXPIRED_IN", Some("-5m"))],
        ),
        (
            "REFRESH_TOKEN_EXPIRED_IN",
            vec![("REFRESH_TOKEN_EXPIRED_IN", Some("1.5h"))],
        ),
        (
            "REFRESH_REUSE_GRACE",
            vec![("REFRESH_REUSE_GRACE", Some("soon"))],
        ),
        (
            "LOGIN_ATTEMPTS_WINDOW",
            vec![("LOGIN_ATTEMPTS_WINDOW", Some("15"))],
        ),
        ("COOKIE_SECURE", vec![("COOKIE_SECURE", Some("yes"))]),
        (
            "COOKIE_SAMESITE",
            vec![("COOKIE_SAMESITE", Some("Sometimes"))],
        ),
        ("COOKIE_SAMESITE", vec![("COOKIE_SAMESITE", Some("None"))]),
        (
            "COOKIE_SAMESITE",
            vec![
                ("COOKIE_SAMESITE", Some("None")),
                ("COOKIE_SECURE", Some("false")),
            ],
        ),
        (
            "CLIENT_ORIGIN",
            vec![("CLIENT_ORIGIN", Some("not-an-origin"))],
        ),
        (
            "CLIENT_ORIGIN",
            vec![(
                "CLIENT_ORIGIN",
                Some("http://localhost:3000, ftp://files.example.com"),
            )],
        ),
        (
            "TRUSTED_PROXIES",
            vec![("TRUSTED_PROXIES", Some("10.0.0.0/99"))],
        ),
        (
            "TRUSTED_PROXIES",
            vec![("TRUSTED_PROXIES", Some("10.0.0.0/8, proxy.internal"))],
        ),
        (
            "LOGIN_ATTEMPTS_LIMIT",
            vec![("LOGIN_ATTEMPTS_LIMIT", Some("-1"))],
        ),
        (
            "LOGIN_ATTEMPTS_IP_LIMIT",
            vec![("LOGIN_ATTEMPTS_IP_LIMIT", Some("many"))],
        ),
        (
            "LOGIN_ATTEMPTS_LIMIT",
            vec![("LOGIN_ATTEMPTS_LIMIT", Some("0"))],
        ),
        (
            "LOGIN_ATTEMPTS_IP_LIMIT",
            vec![("LOGIN_ATTEMPTS_IP_LIMIT", Some("0"))],
        ),
        (
            "ACCESS_TOKEN_PRIVATE_KEY",
            vec![
                ("ACCESS_TOKEN_PRIVATE_KEY_FILE", None),
                ("ACCESS_TOKEN_PRIVATE_KEY", Some("not base64!")),
            ],
        ),
        (
            "ACCESS_TOKEN_PRIVATE_KEY",
            vec![("ACCESS_TOKEN_PRIVATE_KEY", Some(&dev_private))],
        ),
        (
            "ACCESS_TOKEN_PRIVATE_KEY",
            vec![("ACCESS_TOKEN_PRIVATE_KEY_FILE", None)],
        ),
        (
            "ACCESS_TOKEN_PUBLIC_KEY",
            vec![("ACCESS_TOKEN_PUBLIC_KEY_FILE", None)],
        ),
        (
            "REFRESH_TOKEN_PUBLIC_KEY",
            vec![("REFRESH_TOKEN_PUBLIC_KEY_FILE", None)],
        ),
        (
            "ACCESS_TOKEN_PRIVATE_KEY_FILE",
            vec![("ACCESS_TOKEN_PRIVATE_KEY_FILE", Some(&missing_file))],
        ),
        (
            "ACCESS_TOKEN_MAXAGE",
            vec![("ACCESS_TOKEN_MAXAGE", Some("0"))],
        ),
        (
            "REFRESH_TOKEN_MAXAGE",
            vec![("REFRESH_TOKEN_MAXAGE", Some("60m"))],
        ),
    ];
    let mut failures = Vec::new();
    for (var, changes) in &cases {
        match load(&vars_with(changes)) {
            Ok(_) => failures.push(format!(
                "{changes:?}: accepted, wanted an error naming {var}"
            )),
            Err(message) if !names(&message, var) => failures.push(format!(
                "{changes:?}: {message:?} does not start by naming {var}"
            )),
            Err(_) => {}
        }
    }
    assert_no_failures(&failures, cases.len());
}

/// Each failed case on its own line, so one run shows them all.
fn assert_no_failures(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn defaults_match_the_documented_table() {
    let only_required: HashMap<String, String> = vars_with(&[])
        .into_iter()
        .filter(|(k, _)| k.ends_with("_KEY_FILE"))
        .collect();
    assert_eq!(only_required.len(), 4);
    let settings = match load(&only_required) {
        Ok(settings) => settings,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        settings.database,
        Database::Sqlite("data/rs256-auth.db".into()),
        "the embedded store"
    );
    assert_eq!(settings.redis, None, "sessions in the SQLite file");
    assert_eq!(settings.port, 8000);
    assert_eq!(settings.host, "0.0.0.0");
    assert_eq!(settings.client_origins, ["http://localhost:3000"]);
    assert_eq!(settings.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(settings.refresh_ttl, Duration::from_secs(60 * 60));
    assert_eq!(settings.issuer, "rs256-auth");
    assert_eq!(settings.audience, "rs256-auth");
    assert!(!settings.cookies.secure);
    assert_eq!(settings.cookies.same_site, SameSite::Lax);
    assert_eq!(settings.cookies.domain, None);
    assert_eq!(
        settings.cookies.access_max_age, settings.access_ttl,
        "Max-Age defaults to the lifetime"
    );
    assert_eq!(
        settings.cookies.refresh_max_age, settings.refresh_ttl,
        "Max-Age defaults to the lifetime"
    );
    assert_eq!(settings.refresh_reuse_grace, Duration::from_secs(10));
    assert_eq!(settings.login_attempts_limit, 10);
    assert_eq!(settings.login_attempts_window, Duration::from_secs(15 * 60));
    assert_eq!(settings.login_attempts_ip_limit, 100);
    assert!(settings.trusted_proxies.is_empty());
}

#[test]
fn booleans_accept_true_false_1_and_0() {
    for (raw, expected) in [("true", true), ("1", true), ("false", false), ("0", false)] {
        assert_eq!(
            settings_with(&[("COOKIE_SECURE", Some(raw))])
                .cookies
                .secure,
            expected,
            "{raw}"
        );
    }
    let none = settings_with(&[
        ("COOKIE_SECURE", Some("1")),
        ("COOKIE_SAMESITE", Some("None")),
    ]);
    assert_eq!(none.cookies.same_site, SameSite::None);
    assert!(none.cookies.secure);
}

#[test]
fn same_site_durations_and_max_ages_parse() {
    for (raw, expected) in [
        ("Strict", SameSite::Strict),
        ("Lax", SameSite::Lax),
        ("strict", SameSite::Strict),
    ] {
        assert_eq!(
            settings_with(&[("COOKIE_SAMESITE", Some(raw))])
                .cookies
                .same_site,
            expected,
            "{raw}"
        );
    }
    for (raw, secs) in [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604_800)] {
        assert_eq!(
            settings_with(&[
                ("ACCESS_TOKEN_EXPIRED_IN", Some("10s")),
                ("REFRESH_TOKEN_EXPIRED_IN", Some(raw)),
            ])
            .refresh_ttl,
            Duration::from_secs(secs)
        );
    }
    let maxage = settings_with(&[
        ("ACCESS_TOKEN_MAXAGE", Some("30")),
        ("REFRESH_TOKEN_MAXAGE", Some("120")),
    ]);
    assert_eq!(maxage.cookies.access_max_age, Duration::from_secs(30 * 60));
    assert_eq!(
        maxage.cookies.refresh_max_age,
        Duration::from_secs(120 * 60)
    );
    assert_eq!(
        maxage.access_ttl,
        Duration::from_secs(15 * 60),
        "Max-Age does not change the token lifetime"
    );
}

#[test]
fn redis_url_accepts_a_bare_host_port_and_a_database_index() {
    assert_eq!(
        settings_with(&[("REDIS_URL", Some("127.0.0.1:6379"))]).redis,
        Some(RedisTarget::Single("redis://127.0.0.1:6379".to_owned()))
    );
    assert_eq!(
        settings_with(&[("REDIS_URL", Some("redis://cache:6379/3"))]).redis,
        Some(RedisTarget::Single("redis://cache:6379/3".to_owned()))
    );
}

#[test]
fn redis_cluster_urls_name_the_seed_nodes_and_exclude_redis_url() {
    assert_eq!(
        settings_with(&[
            ("REDIS_URL", None),
            (
                "REDIS_CLUSTER_URLS",
                Some("127.0.0.1:7001, redis://127.0.0.1:7002")
            )
        ])
        .redis,
        Some(RedisTarget::Cluster(vec![
            "redis://127.0.0.1:7001".to_owned(),
            "redis://127.0.0.1:7002".to_owned()
        ]))
    );
    let both = load(&vars_with(&[(
        "REDIS_CLUSTER_URLS",
        Some("redis://127.0.0.1:7001"),
    )]));
    let error = both.err().expect("both Redis settings are refused");
    assert!(names(&error, "REDIS_CLUSTER_URLS"), "{error}");
}

#[test]
fn database_url_names_postgres_or_a_sqlite_file() {
    let database = |url: &str| settings_with(&[("DATABASE_URL", Some(url))]).database;
    assert_eq!(
        database("postgresql://u@db/users"),
        Database::Postgres("postgresql://u@db/users".into())
    );
    for (url, path) in [
        ("sqlite:data/users.db", "data/users.db"),
        ("sqlite://data/users.db", "data/users.db"),
        ("sqlite:///var/lib/auth/users.db", "/var/lib/auth/users.db"),
    ] {
        assert_eq!(database(url), Database::Sqlite(path.into()), "{url}");
    }
    // SQLite users with Redis sessions is allowed; SQLite alone keeps sessions in the file.
    let mixed = settings_with(&[("DATABASE_URL", Some("sqlite:users.db"))]);
    assert!(mixed.redis.is_some());
    let alone = settings_with(&[
        ("DATABASE_URL", Some("sqlite:users.db")),
        ("REDIS_URL", None),
    ]);
    assert_eq!(alone.redis, None);
}

#[test]
fn client_origin_takes_a_comma_separated_list_with_spaces() {
    let settings = settings_with(&[(
        "CLIENT_ORIGIN",
        Some(" http://localhost:3000 , https://app.example.com,https://admin.example.com:8443 "),
    )]);
    assert_eq!(
        settings.client_origins,
        [
            "http://localhost:3000",
            "https://app.example.com",
            "https://admin.example.com:8443"
        ]
    );
}

#[test]
fn trusted_proxies_take_v4_and_v6_cidrs() {
    let settings = settings_with(&[("TRUSTED_PROXIES", Some("10.0.0.0/8, 192.168.1.7, ::1/128"))]);
    let prefixes: Vec<u8> = settings.trusted_proxies.iter().map(|c| c.prefix).collect();
    assert_eq!(prefixes, [8, 32, 128]);
}

// ---- keys -------------------------------------------------------------------------------

fn tokens_from(changes: &[(&str, Option<&str>)]) -> Result<Tokens, String> {
    Tokens::from_settings(&load(&vars_with(changes))?)
}

fn tokens_ok(changes: &[(&str, Option<&str>)]) -> Tokens {
    match tokens_from(changes) {
        Ok(tokens) => tokens,
        Err(e) => panic!("keys refused: {e}"),
    }
}

fn tokens_err(changes: &[(&str, Option<&str>)]) -> String {
    match tokens_from(changes) {
        Ok(_) => panic!("keys accepted, wanted a refusal: {changes:?}"),
        Err(e) => e,
    }
}

/// The dev access pair given as base64 instead of files.
fn access_keys_as<'a>(private: &'a str, public: &'a str) -> Vec<(&'static str, Option<&'a str>)> {
    vec![
        ("ACCESS_TOKEN_PRIVATE_KEY_FILE", None),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", None),
        ("ACCESS_TOKEN_PRIVATE_KEY", Some(private)),
        ("ACCESS_TOKEN_PUBLIC_KEY", Some(public)),
    ]
}

/// Signs and verifies one access token: the pair really works.
fn assert_round_trip(tokens: &Tokens) {
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let issued = tokens.issue(user, sid, TokenType::Access).expect("issue");
    let claims = tokens.verify(&issued, TokenType::Access).expect("verify");
    assert_eq!((claims.sub, claims.sid), (user, sid));
}

#[test]
fn keys_in_base64_on_one_line_or_wrapped_are_accepted() {
    let from_files = tokens_ok(&[]);
    let (private, public) = (read_key("access_private"), read_key("access_public"));
    for (private, public) in [
        (b64(&private), b64(&public)),
        (b64_wrapped(&private), b64_wrapped(&public)),
    ] {
        let tokens = tokens_ok(&access_keys_as(&private, &public));
        assert_eq!(
            tokens.jwks_json(),
            from_files.jwks_json(),
            "the same key as the PEM file"
        );
        assert_round_trip(&tokens);
    }
    // CRLF-wrapped, as from a Windows editor.
    let (private, public) = (
        b64_wrapped(&private).replace('\n', "\r\n"),
        b64_wrapped(&public).replace('\n', "\r\n"),
    );
    assert_eq!(
        tokens_ok(&access_keys_as(&private, &public)).jwks_json(),
        from_files.jwks_json()
    );
}

#[test]
fn base64_of_something_that_is_not_a_pem_key_is_refused() {
    let junk = b64(b"hello, not a key");
    let public = b64(&read_key("access_public"));
    let message = tokens_err(&access_keys_as(&junk, &public));
    assert!(names(&message, "ACCESS_TOKEN_PRIVATE_KEY"), "{message}");
    let private = b64(&read_key("access_private"));
    let message = tokens_err(&access_keys_as(&private, &junk));
    assert!(names(&message, "ACCESS_TOKEN_PUBLIC_KEY"), "{message}");
}

#[test]
fn a_public_key_that_does_not_match_its_private_key_is_refused() {
    let refresh_public = key_path("refresh_public");
    let message = tokens_err(&[("ACCESS_TOKEN_PUBLIC_KEY_FILE", Some(&refresh_public))]);
    assert!(names(&message, "ACCESS_TOKEN_PUBLIC_KEY"), "{message}");
    let access_public = key_path("access_public");
    let message = tokens_err(&[("REFRESH_TOKEN_PUBLIC_KEY_FILE", Some(&access_public))]);
    assert!(names(&message, "REFRESH_TOKEN_PUBLIC_KEY"), "{message}");
}

#[test]
fn the_same_pair_for_access_and_refresh_is_refused() {
    let (private, public) = (key_path("access_private"), key_path("access_public"));
    let message = tokens_err(&[
        ("REFRESH_TOKEN_PRIVATE_KEY_FILE", Some(&private)),
        ("REFRESH_TOKEN_PUBLIC_KEY_FILE", Some(&public)),
    ]);
    assert!(
        names(&message, "REFRESH_TOKEN_PRIVATE_KEY") || names(&message, "REFRESH_TOKEN_PUBLIC_KEY"),
        "{message}"
    );
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .expect("PEM")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn pkcs1_private_and_public_keys_are_accepted() {
    let (private, public) = (
        fixture("access_private_pkcs1.pem"),
        fixture("access_public_pkcs1.pem"),
    );
    assert_eq!(first_line(&private), "-----BEGIN RSA PRIVATE KEY-----");
    assert_eq!(first_line(&public), "-----BEGIN RSA PUBLIC KEY-----");

    let from_pkcs8 = tokens_ok(&[]);
    let as_files = tokens_ok(&[
        ("ACCESS_TOKEN_PRIVATE_KEY_FILE", Some(&private)),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", Some(&public)),
    ]);
    assert_eq!(
        as_files.jwks_json(),
        from_pkcs8.jwks_json(),
        "the same key, the same kid"
    );
    assert_round_trip(&as_files);
    // A token signed with the PKCS#1 form verifies with the PKCS#8 form: one key.
    let issued = as_files
        .issue(Uuid::new_v4(), Uuid::new_v4(), TokenType::Access)
        .expect("issue");
    assert!(from_pkcs8.verify(&issued, TokenType::Access).is_ok());

    let (private_b64, public_b64) = (
        b64_wrapped(&std::fs::read(&private).unwrap()),
        b64_wrapped(&std::fs::read(&public).unwrap()),
    );
    assert_round_trip(&tokens_ok(&access_keys_as(&private_b64, &public_b64)));
}

/// A file of `tests/fixtures/` (see its README for how each was made).
fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_1024_bit_key_is_refused() {
    let (private, public) = (fixture("small_private.pem"), fixture("small_public.pem"));
    let message = tokens_err(&[
        ("ACCESS_TOKEN_PRIVATE_KEY_FILE", Some(&private)),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", Some(&public)),
    ]);
    assert!(
        names(&message, "ACCESS_TOKEN_PRIVATE_KEY") || names(&message, "ACCESS_TOKEN_PUBLIC_KEY"),
        "{message}"
    );
}

// ---- the binary ---------------------------------------------------------------------------

/// Runs the binary in `dir` with only PATH, `RUST_BACKTRACE=1` (so a panic would show) and `env`.
fn run_binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rs256-auth"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run rs256-auth")
}

/// Exit status 1 and exactly one line on stderr naming `var`, without a panic.
fn assert_start_refused(output: &Output, var: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(lines[0].contains(var), "names {var}: {stderr:?}");
}

/// A full environment for the binary, keys by file, with the given changes. Its Postgres is
/// unreachable: should a setting under test be accepted by mistake, the binary stops at the
/// database instead of serving forever and hanging the test.
fn binary_env(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: HashMap<String, String> = vars_with(&[]);
    env.remove("REDIS_KEY_PREFIX");
    env.remove("HASH_CONCURRENCY");
    env.insert(
        "DATABASE_URL".to_owned(),
        "postgres://postgres@127.0.0.1:1/unreachable".to_owned(),
    );
    for (k, v) in changes {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env.into_iter().collect()
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn the_binary_without_keys_exits_1_naming_the_first_key() {
    let dir = TempDir::new();
    let output = run_binary(dir.path(), &[], &[]);
    assert_start_refused(&output, "ACCESS_TOKEN_PRIVATE_KEY");
}

#[test]
fn the_binary_with_postgres_but_no_redis_exits_1_naming_redis_url() {
    let dir = TempDir::new();
    let mut env = binary_env(&[]);
    env.retain(|(k, _)| k != "REDIS_URL");
    let output = run_binary(dir.path(), &[], &as_refs(&env));
    assert_start_refused(&output, "REDIS_URL");
}

#[test]
fn the_binary_with_a_bad_cookie_samesite_exits_1_naming_it() {
    let dir = TempDir::new();
    let env = binary_env(&[("COOKIE_SAMESITE", "Sometimes")]);
    let output = run_binary(dir.path(), &[], &as_refs(&env));
    assert_start_refused(&output, "COOKIE_SAMESITE");
}

#[test]
fn the_binary_with_mismatched_keys_exits_1_naming_the_public_key() {
    let dir = TempDir::new();
    let refresh_public = key_path("refresh_public");
    let env = binary_env(&[("ACCESS_TOKEN_PUBLIC_KEY_FILE", &refresh_public)]);
    let output = run_binary(dir.path(), &[], &as_refs(&env));
    assert_start_refused(&output, "ACCESS_TOKEN_PUBLIC_KEY");
}

#[test]
fn the_binary_reads_app_env_and_the_environment_wins_over_it() {
    let dir = TempDir::new();
    // Everything in app.env: its bad COOKIE_SAMESITE is reported.
    let file_env = binary_env(&[("COOKIE_SAMESITE", "Sometimes")]);
    let file: String = file_env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.path().join("app.env"), file).expect("app.env");
    assert_start_refused(&run_binary(dir.path(), &[], &[]), "COOKIE_SAMESITE");

    // The environment's valid COOKIE_SAMESITE wins, so start-up gets as far as the keys,
    // where the environment's mismatched public key is reported.
    let refresh_public = key_path("refresh_public");
    let env = [
        ("COOKIE_SAMESITE", "Strict"),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", refresh_public.as_str()),
    ];
    assert_start_refused(
        &run_binary(dir.path(), &[], &env),
        "ACCESS_TOKEN_PUBLIC_KEY",
    );
}

const GENERATED: [&str; 4] = [
    "access_private.pem",
    "access_public.pem",
    "refresh_private.pem",
    "refresh_public.pem",
];

fn read_all(dir: &Path) -> Vec<String> {
    GENERATED
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).expect("generated file"))
        .collect()
}

#[test]
fn keys_generate_writes_four_pems_and_prints_working_settings() {
    let dir = TempDir::new();
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_string_lossy().into_owned();
    let output = run_binary(dir.path(), &["keys", "generate", "--dir", &keys_arg], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let pems = read_all(&keys);
    for (file, pem) in GENERATED.iter().zip(&pems) {
        let label = if file.contains("private") {
            "PRIVATE KEY"
        } else {
            "PUBLIC KEY"
        };
        assert!(
            pem.starts_with("-----BEGIN ")
                && pem
                    .lines()
                    .next()
                    .unwrap()
                    .ends_with(&format!("{label}-----")),
            "{file}: {pem}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["access_private.pem", "refresh_private.pem"] {
            let mode = std::fs::metadata(keys.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}: {mode:o}");
        }
    }

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let printed: HashMap<&str, &str> = lines
        .iter()
        .map(|l| l.split_once('=').expect("NAME=value"))
        .collect();
    let expected = [
        ("ACCESS_TOKEN_PRIVATE_KEY", &pems[0]),
        ("ACCESS_TOKEN_PUBLIC_KEY", &pems[1]),
        ("REFRESH_TOKEN_PRIVATE_KEY", &pems[2]),
        ("REFRESH_TOKEN_PUBLIC_KEY", &pems[3]),
    ];
    for (name, pem) in expected {
        let value = printed
            .get(name)
            .unwrap_or_else(|| panic!("{name} not printed: {stdout}"));
        let decoded = STANDARD.decode(value).expect("base64");
        assert_eq!(String::from_utf8(decoded).unwrap(), *pem, "{name}");
    }

    // The printed lines are settings the service starts with.
    let mut changes: Vec<(&str, Option<&str>)> = expected
        .iter()
        .map(|(name, _)| (*name, printed.get(name).copied()))
        .collect();
    for name in [
        "ACCESS_TOKEN_PRIVATE_KEY_FILE",
        "ACCESS_TOKEN_PUBLIC_KEY_FILE",
        "REFRESH_TOKEN_PRIVATE_KEY_FILE",
        "REFRESH_TOKEN_PUBLIC_KEY_FILE",
    ] {
        changes.push((name, None));
    }
    assert_round_trip(&tokens_ok(&changes));
}

#[test]
fn keys_generate_refuses_to_overwrite_without_force() {
    let dir = TempDir::new();
    let keys_arg = dir.file("keys");
    let first = run_binary(dir.path(), &["keys", "generate", "--dir", &keys_arg], &[]);
    assert!(first.status.success());
    let before = read_all(Path::new(&keys_arg));

    let again = run_binary(dir.path(), &["keys", "generate", "--dir", &keys_arg], &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(again.stdout.is_empty(), "no settings printed");
    assert_eq!(
        read_all(Path::new(&keys_arg)),
        before,
        "nothing overwritten"
    );

    let forced = run_binary(
        dir.path(),
        &["keys", "generate", "--dir", &keys_arg, "--force"],
        &[],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let after = read_all(Path::new(&keys_arg));
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old, new, "--force writes new keys");
    }
}

#[test]
fn keys_generate_refuses_1024_bits() {
    let dir = TempDir::new();
    let keys_arg = dir.file("keys");
    let output = run_binary(
        dir.path(),
        &["keys", "generate", "--dir", &keys_arg, "--bits", "1024"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--bits"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        !dir.path().join("keys").join("access_private.pem").exists(),
        "no key written"
    );
}

// ---- extra public keys, for key rotation --------------------------------------------------

/// Runs each case through settings and key parsing; every one must be refused with one line
/// naming one of its variables (and containing `mentions`).
fn assert_all_refused(cases: &[(&[&str], &str, Changes)]) {
    let mut failures = Vec::new();
    for (vars, mentions, changes) in cases {
        match tokens_from(changes) {
            Ok(_) => failures.push(format!("{changes:?}: accepted, wanted a refusal")),
            Err(message)
                if !vars.iter().any(|v| names(&message, v)) || !message.contains(mentions) =>
            {
                failures.push(format!(
                    "{changes:?}: {message:?} does not name {vars:?} and mention {mentions:?}"
                ))
            }
            Err(_) => {}
        }
    }
    assert_no_failures(&failures, cases.len());
}

#[test]
fn extra_public_keys_take_a_list_with_spaces_and_empty_items() {
    let next = b64(&read_key("access_next_public"));
    let foreign = rs256_auth::service::keygen::generate_pair(2048).expect("key");
    let wrapped = b64_wrapped(foreign.public_pem.as_bytes());
    let list = format!(" {next} , ,\n{wrapped},");
    let settings = settings_with(&[("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&list))]);
    let sources: Vec<&str> = settings
        .access_keys
        .extra_public
        .iter()
        .map(|k| k.source.as_str())
        .collect();
    assert_eq!(
        sources,
        [
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS: key 1",
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS: key 2"
        ]
    );
    assert!(settings.refresh_keys.extra_public.is_empty());
    let tokens = tokens_ok(&[("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&list))]);
    assert_eq!(
        tokens.jwks_json().matches("\"kid\"").count(),
        3,
        "{}",
        tokens.jwks_json()
    );

    // An access token of the next pair verifies with the list, and not without it.
    let (next_private, next_public) = (
        key_path("access_next_private"),
        key_path("access_next_public"),
    );
    let signer = tokens_ok(&[
        ("ACCESS_TOKEN_PRIVATE_KEY_FILE", Some(&next_private)),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", Some(&next_public)),
    ]);
    let issued = signer
        .issue(Uuid::new_v4(), Uuid::new_v4(), TokenType::Access)
        .expect("issue");
    assert!(tokens.verify(&issued, TokenType::Access).is_ok());
    assert!(tokens_ok(&[]).verify(&issued, TokenType::Access).is_err());
}

#[test]
fn an_extra_key_equal_to_the_current_key_is_listed_once() {
    let current = b64(&read_key("access_public"));
    let dir = TempDir::new();
    std::fs::write(dir.path().join("current.pem"), read_key("access_public")).expect("write");
    let tokens = tokens_ok(&[
        (
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS",
            Some(&format!("{current},{current}")),
        ),
        (
            "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR",
            Some(&dir.path().display().to_string()),
        ),
    ]);
    assert_eq!(tokens.jwks_json(), tokens_ok(&[]).jwks_json());
}

#[test]
fn malformed_extra_public_keys_are_refused_naming_their_variable() {
    const ACCESS_LIST: &[&str] = &["ACCESS_TOKEN_EXTRA_PUBLIC_KEYS"];
    const ACCESS_DIR: &[&str] = &["ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR"];
    const REFRESH_LIST: &[&str] = &["REFRESH_TOKEN_EXTRA_PUBLIC_KEYS"];
    const REFRESH_DIR: &[&str] = &["REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR"];
    let good = b64(&read_key("access_next_public"));
    let good_then_bad = format!("{good}, not base64!");
    let not_a_key = b64(b"hello, not a key");
    let private = b64(&read_key("access_next_private"));
    let missing = format!("/nonexistent/{}", Uuid::new_v4());

    let junk_dir = TempDir::new();
    std::fs::write(junk_dir.path().join("junk.pem"), "not a key").expect("write");
    let folder_dir = TempDir::new();
    std::fs::create_dir(folder_dir.path().join("folder.pem")).expect("subfolder");
    let private_dir = TempDir::new();
    std::fs::write(
        private_dir.path().join("oops.pem"),
        read_key("refresh_next_private"),
    )
    .expect("write");
    let [junk, folder, private_in_dir] =
        [&junk_dir, &folder_dir, &private_dir].map(|d| d.path().display().to_string());

    let cases: Vec<(&[&str], &str, Changes)> = vec![
        (
            ACCESS_LIST,
            "key 1",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some("not base64!"))],
        ),
        (
            ACCESS_LIST,
            "key 2",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&good_then_bad))],
        ),
        (
            REFRESH_LIST,
            "key 1",
            vec![("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", Some("%%%"))],
        ),
        (
            ACCESS_LIST,
            "key 1",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&not_a_key))],
        ),
        (
            REFRESH_LIST,
            "key 1",
            vec![("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", Some(&private))],
        ),
        (
            ACCESS_DIR,
            &missing,
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&missing))],
        ),
        (
            REFRESH_DIR,
            &missing,
            vec![("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&missing))],
        ),
        (
            ACCESS_DIR,
            "junk.pem",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&junk))],
        ),
        (
            ACCESS_DIR,
            "folder.pem",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&folder))],
        ),
        (
            REFRESH_DIR,
            "oops.pem",
            vec![("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&private_in_dir))],
        ),
    ];
    assert_all_refused(&cases);
}

#[test]
fn an_extra_key_of_the_other_kind_is_refused() {
    const ACCESS_LIST: &[&str] = &["ACCESS_TOKEN_EXTRA_PUBLIC_KEYS"];
    const REFRESH_LIST: &[&str] = &["REFRESH_TOKEN_EXTRA_PUBLIC_KEYS"];
    const EITHER_LIST: &[&str] = &[
        "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS",
        "REFRESH_TOKEN_EXTRA_PUBLIC_KEYS",
    ];
    let refresh_current = b64(&read_key("refresh_public"));
    let access_current = b64(&read_key("access_public"));
    let refresh_next = b64(&read_key("refresh_next_public"));
    let access_next = b64(&read_key("access_next_public"));
    let dir = TempDir::new();
    std::fs::write(dir.path().join("refresh.pem"), read_key("refresh_public")).expect("write");
    let dir_path = dir.path().display().to_string();

    let cases: Vec<(&[&str], &str, Changes)> = vec![
        (
            ACCESS_LIST,
            "refresh",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&refresh_current))],
        ),
        (
            &["ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR"],
            "refresh.pem",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&dir_path))],
        ),
        (
            REFRESH_LIST,
            "access",
            vec![("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", Some(&access_current))],
        ),
        (
            ACCESS_LIST,
            "refresh",
            vec![
                ("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&refresh_next)),
                ("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", Some(&refresh_next)),
            ],
        ),
        (
            REFRESH_LIST,
            "access",
            vec![
                ("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&access_next)),
                ("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", Some(&access_current)),
            ],
        ),
        (
            EITHER_LIST,
            "must differ",
            vec![
                ("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&access_next)),
                ("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS", Some(&access_next)),
            ],
        ),
    ];
    assert_all_refused(&cases);
}

#[test]
fn a_1024_bit_extra_key_is_refused() {
    let dir = TempDir::new();
    let public = dir.file("small.pem");
    std::fs::copy(fixture("small_public.pem"), &public).expect("copy");
    let listed = b64(&std::fs::read(&public).expect("PEM"));
    let dir_path = dir.path().display().to_string();
    let cases: Vec<(&[&str], &str, Changes)> = vec![
        (
            &["ACCESS_TOKEN_EXTRA_PUBLIC_KEYS"],
            "1024",
            vec![("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", Some(&listed))],
        ),
        (
            &["REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR"],
            "small.pem",
            vec![("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR", Some(&dir_path))],
        ),
    ];
    assert_all_refused(&cases);
}

#[test]
fn the_binary_with_the_refresh_key_as_an_extra_access_key_exits_1_naming_it() {
    let dir = TempDir::new();
    let refresh_public = b64(&read_key("refresh_public"));
    let env = binary_env(&[("ACCESS_TOKEN_EXTRA_PUBLIC_KEYS", &refresh_public)]);
    let output = run_binary(dir.path(), &[], &as_refs(&env));
    assert_start_refused(&output, "ACCESS_TOKEN_EXTRA_PUBLIC_KEYS");
}

#[test]
fn the_binary_with_a_missing_extra_keys_folder_exits_1_naming_it() {
    let dir = TempDir::new();
    let missing = dir.file("no-such-folder");
    let env = binary_env(&[("REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR", &missing)]);
    let output = run_binary(dir.path(), &[], &as_refs(&env));
    assert_start_refused(&output, "REFRESH_TOKEN_EXTRA_PUBLIC_KEYS_DIR");
}
