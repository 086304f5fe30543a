//! Settings read from a map, no server: each malformed one refused with one line naming its
//! variable, the documented defaults, and how booleans, SameSite, durations, Max-Ages, Redis
//! and database URLs, origins and trusted proxies are read.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::cookie::SameSite;
use rs256_auth::config::{Database, RedisTarget};
use uuid::Uuid;

use crate::helpers::settings::*;
use crate::helpers::*;

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
        (
            "REDIS_WAIT_REPLICAS",
            vec![("REDIS_WAIT_REPLICAS", Some("-1"))],
        ),
        (
            "REDIS_WAIT_REPLICAS",
            vec![("REDIS_WAIT_REPLICAS", Some("one"))],
        ),
        (
            "REDIS_WAIT_REPLICAS",
            vec![("REDIS_WAIT_REPLICAS", Some("1.5"))],
        ),
        // The embedded store has no replicas to wait for.
        (
            "REDIS_WAIT_REPLICAS",
            vec![
                ("DATABASE_URL", None),
                ("REDIS_URL", None),
                ("REDIS_WAIT_REPLICAS", Some("1")),
            ],
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
    assert_eq!(settings.redis_wait_replicas, 0, "no waiting for replicas");
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
fn redis_wait_replicas_is_a_count_for_either_redis_setting() {
    let wait = |changes: &[(&str, Option<&str>)]| settings_with(changes).redis_wait_replicas;
    assert_eq!(wait(&[("REDIS_WAIT_REPLICAS", Some("2"))]), 2);
    assert_eq!(wait(&[("REDIS_WAIT_REPLICAS", Some("0"))]), 0);
    assert_eq!(wait(&[]), 0);
    assert_eq!(
        wait(&[
            ("REDIS_URL", None),
            ("REDIS_CLUSTER_URLS", Some("127.0.0.1:7001")),
            ("REDIS_WAIT_REPLICAS", Some("1")),
        ]),
        1
    );
    // Zero needs no Redis: it is the default.
    let embedded = settings_with(&[
        ("DATABASE_URL", None),
        ("REDIS_URL", None),
        ("REDIS_WAIT_REPLICAS", Some("0")),
    ]);
    assert_eq!(embedded.redis, None);
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
