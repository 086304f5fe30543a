//! Load figures for the hot paths, printed, never asserted: `cargo bench --bench load`.
//! Starts the real app on the production stores (its own Postgres database and Redis prefix,
//! on 127.0.0.1) on a random port and drives it
//! over loopback with a fixed number of requests per scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rs256_auth::config::Settings;
use rs256_auth::service::tokens::{TokenType, Tokens};
use rs256_auth::startup::Application;
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const CONCURRENCY: usize = 32;

fn settings(db: &str, prefix: &str) -> Settings {
    let key = |name: &str| format!("{}/keys/dev/{name}.pem", env!("CARGO_MANIFEST_DIR"));
    let vars = std::collections::HashMap::from([
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db}"),
        ),
        ("REDIS_URL", "redis://127.0.0.1:6379".to_owned()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("ACCESS_TOKEN_PRIVATE_KEY_FILE", key("access_private")),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", key("access_public")),
        ("REFRESH_TOKEN_PRIVATE_KEY_FILE", key("refresh_private")),
        ("REFRESH_TOKEN_PUBLIC_KEY_FILE", key("refresh_public")),
        // The load runs thousands of failed logins from one IP: measure the work, not the limit.
        ("LOGIN_ATTEMPTS_LIMIT", "1000000".to_owned()),
        ("LOGIN_ATTEMPTS_IP_LIMIT", "1000000".to_owned()),
    ]);
    Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings")
}

/// Runs `total` calls of `call` (each must answer `expected`), `CONCURRENCY` at a time; prints rate and latency percentiles.
async fn measure<F, Fut>(name: &'static str, total: usize, expected: u16, call: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = u16> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (call, next) = (call.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break latencies;
                    }
                    let t = Instant::now();
                    let status = call(i).await;
                    assert_eq!(status, expected, "{name}");
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "{name:<28} {total:>6} req  {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}

fn time_it(name: &str, n: u32, mut f: impl FnMut()) {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name:<28} {:>8.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

#[tokio::main]
async fn main() {
    let db = format!("bench_{}", Uuid::new_v4().simple());
    let prefix = format!("bench-{}:", Uuid::new_v4().simple());
    let mut server = PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("postgres");
    let settings = settings(&db, &prefix);

    let tokens = Tokens::from_settings(&settings).expect("keys");
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let sample = tokens.issue(user, sid, TokenType::Access).expect("issue");
    time_it("RS256 sign (access token)", 500, || {
        drop(tokens.issue(user, sid, TokenType::Access))
    });
    time_it("RS256 verify (access token)", 2000, || {
        drop(tokens.verify(&sample, TokenType::Access))
    });
    // For comparison: jsonwebtoken's own encode, which parses the private key on every call.
    let pem = std::fs::read(format!(
        "{}/keys/dev/access_private.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("pem");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("key");
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    let claims = json!({"sub": user, "exp": 1});
    time_it("jsonwebtoken::encode", 500, || {
        drop(jsonwebtoken::encode(&header, &claims, &key))
    });
    time_it("argon2id hash (1 thread)", 20, || {
        use argon2::PasswordHasher;
        drop(argon2::Argon2::default().hash_password(b"correct horse battery"));
    });

    let app = Application::build(settings).await.expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");

    let password = "correct horse battery";
    let emails: Arc<Vec<String>> =
        Arc::new((0..200).map(|i| format!("bench{i}@example.com")).collect());
    let (c, b, e) = (client.clone(), base.clone(), emails.clone());
    measure("register (argon2 hash)", emails.len(), 201, move |i| {
        let (c, b, e) = (c.clone(), b.clone(), e.clone());
        async move {
            let body = json!({"name": "Bench", "email": e[i], "password": password, "passwordConfirm": password});
            c.post(format!("{b}/api/auth/register")).json(&body).send().await.expect("send").status().as_u16()
        }
    })
    .await;
    let logins = [
        ("login (argon2 verify + 2 sign)", password, false, 200),
        ("login, wrong password", "wrong password!", false, 401),
        ("login, unknown email", password, true, 401),
    ];
    for (name, attempt, unknown, expected) in logins {
        let (c, b, e) = (client.clone(), base.clone(), emails.clone());
        measure(name, 200, expected, move |i| {
            let (c, b, e) = (c.clone(), b.clone(), e.clone());
            async move {
                let email = if unknown {
                    format!("nobody{i}@example.com")
                } else {
                    e[i % e.len()].clone()
                };
                let body = json!({"email": email, "password": attempt});
                c.post(format!("{b}/api/auth/login"))
                    .json(&body)
                    .send()
                    .await
                    .expect("send")
                    .status()
                    .as_u16()
            }
        })
        .await;
    }

    // One at a time, alternating, so queueing and drift do not favour either side: the
    // enumeration defence is that these two take the same time.
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..60 {
        for (times, email, attempt) in [
            (&mut wrong, emails[i].clone(), "wrong password!"),
            (&mut unknown, format!("ghost{i}@example.com"), password),
        ] {
            let t = Instant::now();
            let body = json!({"email": email, "password": attempt});
            let status = client
                .post(format!("{base}/api/auth/login"))
                .json(&body)
                .send()
                .await
                .expect("send")
                .status();
            assert_eq!(status, 401);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for (name, times) in [
        ("sequential wrong password", &wrong),
        ("sequential unknown email", &unknown),
    ] {
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let sd =
            (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / times.len() as f64).sqrt();
        println!(
            "{name:<28} {:>6} req  mean {mean:>6.2} ms  sd {sd:>5.2} ms",
            times.len()
        );
    }

    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": emails[0], "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = Arc::new(login["access_token"].as_str().expect("token").to_owned());
    let (c, b, a) = (client.clone(), base.clone(), access.clone());
    measure("GET /api/users/me", 20_000, 200, move |_| {
        let (c, b, a) = (c.clone(), b.clone(), a.clone());
        async move {
            c.get(format!("{b}/api/users/me"))
                .bearer_auth(a.as_str())
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    })
    .await;
    let (c, b) = (client.clone(), base.clone());
    measure("GET /.well-known/jwks.json", 20_000, 200, move |_| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            c.get(format!("{b}/.well-known/jwks.json"))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    })
    .await;

    // Each refresh consumes its token: one chain of refreshes per slot, each from its own login.
    let mut chains = Vec::new();
    for email in emails.iter().take(CONCURRENCY) {
        let login = reqwest::Client::new()
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        let refresh = login
            .cookies()
            .find(|c| c.name() == "refresh_token")
            .map(|c| c.value().to_owned())
            .expect("refresh cookie");
        chains.push(tokio::sync::Mutex::new(refresh));
    }
    let chains = Arc::new(chains);
    let (c, b) = (client.clone(), base.clone());
    measure("POST /api/auth/refresh", 5_000, 200, move |i| {
        let (c, b, chains) = (c.clone(), b.clone(), chains.clone());
        async move {
            let mut token = chains[i % CONCURRENCY].lock().await;
            let response = c
                .post(format!("{b}/api/auth/refresh"))
                .bearer_auth(token.as_str())
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("json");
            *token = body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            status
        }
    })
    .await;

    let redis = deadpool_redis::redis::Client::open("redis://127.0.0.1:6379").expect("redis");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    for chunk in keys.chunks(1000) {
        let _: () = deadpool_redis::redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
    let _ = server
        .execute(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{db}" WITH (FORCE)"#
        )))
        .await;
    println!("(concurrency {CONCURRENCY}, one process, loopback; the database {db} was dropped)");
}
