//! The only code that talks to a store. Two backends sit behind the same three stores:
//! production (users in Postgres, sessions and login counters in Redis) and embedded (all
//! three in one SQLite file). The flows see the enums of `users`, `sessions` and `attempts`
//! and the backend-neutral outcomes they return; a third backend is a new module and one
//! arm in each enum.

pub mod attempts;
pub mod postgres;
pub mod redis;
pub mod rotation;
pub mod sessions;
pub mod sqlite;
pub mod users;

use std::time::Duration;

use crate::config::{Database, Settings};
use crate::store::attempts::{Limits, LoginAttempts};
use crate::store::sessions::SessionStore;
use crate::store::users::UserStore;

/// How long a request waits for a store before answering 503.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// An instant, in Unix milliseconds, at which a stored entry ends. Absolute, so that each
/// backend can keep it as it likes: a relative TTL in Redis, a column in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiresAt(i64);

impl ExpiresAt {
    pub fn from_unix_ms(ms: i64) -> Self {
        ExpiresAt(ms)
    }

    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// What is left of it, in milliseconds: at least 1, since Redis refuses a TTL of 0.
    pub fn ttl_ms(self) -> i64 {
        self.0.saturating_sub(now_ms()).max(1)
    }
}

/// The wall clock in Unix milliseconds; tokens' `exp` is measured against the same clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds of a duration, for TTLs and windows: at least 1.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The three stores, on the backends the settings name.
pub struct Stores {
    pub users: UserStore,
    pub sessions: SessionStore,
    pub attempts: LoginAttempts,
}

impl Stores {
    /// Connects (lazily where it can), creates what is missing and applies migrations.
    /// A store that cannot even be configured stops the start with one line.
    pub async fn open(settings: &Settings) -> Result<Self, String> {
        let limits = Limits {
            per_email: settings.login_attempts_limit,
            per_ip: settings.login_attempts_ip_limit,
            window: settings.login_attempts_window,
        };
        let (users, embedded) = match &settings.database {
            Database::Postgres(url) => {
                (UserStore::Postgres(postgres::Users::open(url).await?), None)
            }
            Database::Sqlite(path) => {
                let db = sqlite::Db::open(path).await?;
                (UserStore::Sqlite(sqlite::users::Users::new(&db)), Some(db))
            }
        };
        let (sessions, counters) = match (&settings.redis, embedded) {
            (Some(target), _) => {
                let redis = redis::Redis::new(target)?;
                let prefix = &settings.redis_key_prefix;
                (
                    SessionStore::Redis(redis::sessions::Sessions::new(redis.clone(), prefix)),
                    attempts::Counters::Redis(redis::attempts::Counters::new(redis, prefix)),
                )
            }
            (None, Some(db)) => {
                tracing::info!(
                    path = %db.path().display(),
                    "embedded store: users, sessions and login counters in one SQLite file, \
                     for development and single-instance use"
                );
                db.purge_expired_in_background();
                (
                    SessionStore::Sqlite(sqlite::sessions::Sessions::new(&db)),
                    attempts::Counters::Sqlite(sqlite::attempts::Counters::new(&db)),
                )
            }
            // Refused in config: Postgres users need shared (Redis) sessions.
            (None, None) => return Err("REDIS_URL: is required with Postgres".into()),
        };
        if let Err(e) = sessions.ping().await {
            tracing::warn!(error = %e, "the session store is not reachable yet; requests that need it answer 503 until it is");
        }
        Ok(Stores {
            users,
            sessions,
            attempts: LoginAttempts::new(counters, limits),
        })
    }
}
