//! The key settings, read from a map, no server: keys as files or as base64 (on one line,
//! wrapped, CRLF), PKCS#1 or PKCS#8; refused when junk, mismatched, the same pair for both
//! kinds, or of 1024 bits; and the extra public keys for rotation, from a list and a folder.

use rs256_auth::service::tokens::TokenType;
use uuid::Uuid;

use crate::helpers::settings::*;
use crate::helpers::*;

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
