//! The binary run as a command: a start refused with one line naming the setting (no keys,
//! no Redis, a bad setting, mismatched or misplaced keys; app.env read, the environment
//! winning over it), and `keys generate`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::helpers::settings::*;
use crate::helpers::*;

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
