//! The CPU ceilings that bench/run.sh holds its HTTP figures against: RS256 signatures and
//! argon2 verifications per second, on every core at once, with no HTTP and no store.
//! `cargo bench --bench ceilings` prints one `CEILING name value` line per figure.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use rs256_auth::config::Settings;
use rs256_auth::service::password::{self, Memory};
use rs256_auth::service::tokens::Tokens;
use uuid::Uuid;

const RUN_FOR: Duration = Duration::from_secs(3);
const PASSWORD: &str = "correct horse battery";

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("CEILING threads {cores}");

    let tokens = tokens();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    // A refresh does this: a pair of claims, then one signature each.
    let signs = per_second(cores, || {
        let (access, refresh) = tokens.pair(user, sid).expect("claims");
        tokens.sign(&access).expect("sign");
        tokens.sign(&refresh).expect("sign");
        2
    });
    println!("CEILING sign_per_s {signs:.0}");

    let argon2 = per_second(cores, argon2_verify());
    println!("CEILING argon2_per_s {argon2:.1}");
}

thread_local! {
    /// Each thread's argon2 memory, kept between calls as the service's hashing threads do.
    static MEMORY: RefCell<Memory> = const { RefCell::new(Memory::new()) };
}

/// The one place that names the password functions: what login runs, one verification a call.
fn argon2_verify() -> impl Fn() -> u64 + Sync {
    let hash = password::hash_now(PASSWORD, &mut Memory::new()).expect("hash");
    let verify = move || {
        MEMORY.with_borrow_mut(|memory| u64::from(password::verify_now(PASSWORD, &hash, memory)))
    };
    assert_eq!(verify(), 1, "the hash does not verify");
    verify
}

/// The dev keys of keys/dev (the same pairs as app.env); every other setting at its default.
fn tokens() -> Tokens {
    let key = |name: &str| format!("{}/keys/dev/{name}.pem", env!("CARGO_MANIFEST_DIR"));
    let vars = std::collections::HashMap::from([
        ("ACCESS_TOKEN_PRIVATE_KEY_FILE", key("access_private")),
        ("ACCESS_TOKEN_PUBLIC_KEY_FILE", key("access_public")),
        ("REFRESH_TOKEN_PRIVATE_KEY_FILE", key("refresh_private")),
        ("REFRESH_TOKEN_PUBLIC_KEY_FILE", key("refresh_public")),
    ]);
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("settings");
    Tokens::from_settings(&settings).expect("keys")
}

/// Runs `work` on `threads` threads for RUN_FOR; each call answers how many units it did.
fn per_second(threads: usize, work: impl Fn() -> u64 + Sync) -> f64 {
    let started = Instant::now();
    let units: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut units = 0;
                    while started.elapsed() < RUN_FOR {
                        units += work();
                    }
                    units
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    // Measured to the last worker's end, so the calls that overran RUN_FOR count fairly.
    units as f64 / started.elapsed().as_secs_f64()
}
