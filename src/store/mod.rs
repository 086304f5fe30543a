//! The only code that talks to a store. Two backends sit behind the same four stores:
//! production (users, links and the outbox in Postgres, sessions and login counters in
//! Redis) and embedded (all in one SQLite file).
//!
//! Each concern is a trait declared beside its value types (`users::UserStore`,
//! `sessions::SessionStore`, `attempts::CounterStore`, `mail::MailStore`, `mfa::MfaStore`), with the same
//! signatures in every backend. The enums below forward each method to their backend (enum_dispatch), so a new
//! method is one signature in its trait and one body per backend, and a new backend is a
//! module with one `impl` per trait and one variant per enum. Stores fail with `StoreError`;
//! the service turns that into an HTTP answer.

pub mod attempts;
pub mod error;
pub mod mail;
pub mod mfa;
pub mod postgres;
pub mod redis;
pub mod rotation;
pub mod sessions;
pub mod sqlite;
pub mod users;

use std::time::Duration;

use enum_dispatch::enum_dispatch;
use uuid::Uuid;

use crate::config::{Database, Settings};
// Every type in the traits' signatures: enum_dispatch writes the forwarding methods here.
use crate::domain::{Email, NewUser, Role, User};
use crate::store::attempts::{Count, CounterStore};
use crate::store::mail::{Issued, MailStore, NewLink, Notice, Outgoing, Purpose, Queued, Spent};
use crate::store::mfa::{
    Begun, Challenge, Factor, MfaStore, NewChallenge, Spend, Spending, StoredTotp,
};
use crate::store::rotation::{Rotate, Rotation};
use crate::store::sessions::{
    Check, Created, Ended, NewSession, SessionInfo, SessionStore, Stamp, TokenRef, Vouched,
};
use crate::store::users::{Changed, Cursor, Inserted, UserStore};

pub use error::{Result, STORE_TIMEOUT, StoreError};

/// The users, on the backend the settings name.
#[enum_dispatch(UserStore)]
pub enum Users {
    Postgres(postgres::Users),
    Sqlite(sqlite::users::Users),
}

/// The sessions and their tokens' entries.
#[enum_dispatch(SessionStore)]
pub enum Sessions {
    Redis(redis::sessions::Sessions),
    Sqlite(sqlite::sessions::Sessions),
}

/// The failed-login counters.
#[enum_dispatch(CounterStore)]
pub enum Counters {
    Redis(redis::attempts::Counters),
    Sqlite(sqlite::attempts::Counters),
}

/// The links and the outbox, in the user database.
#[enum_dispatch(MailStore)]
pub enum Mail {
    Postgres(postgres::mail::Mail),
    Sqlite(sqlite::mail::Mail),
}

/// The second factor, in the user database.
#[enum_dispatch(MfaStore)]
pub enum Mfa {
    Postgres(postgres::mfa::Mfa),
    Sqlite(sqlite::mfa::Mfa),
}

/// The stores, on the backends the settings name. Open them once and share them.
pub struct Stores {
    pub users: Users,
    pub mail: Mail,
    pub mfa: Mfa,
    pub sessions: Sessions,
    pub counters: Counters,
}

impl Stores {
    /// Connects (lazily where it can), creates what is missing and applies migrations.
    /// A store that cannot even be configured stops the start with one line.
    pub async fn open(settings: &Settings) -> Result<Self, String> {
        let (users, mail, mfa, embedded) = match &settings.database {
            Database::Postgres(url) => {
                let users = postgres::Users::open(url).await?;
                let mail = Mail::Postgres(users.mail());
                let mfa = Mfa::Postgres(users.mfa());
                (Users::Postgres(users), mail, mfa, None)
            }
            Database::Sqlite(path) => {
                let db = sqlite::Db::open(path).await?;
                let users = Users::Sqlite(sqlite::users::Users::new(&db));
                let mail = Mail::Sqlite(sqlite::mail::Mail::new(&db));
                (
                    users,
                    mail,
                    Mfa::Sqlite(sqlite::mfa::Mfa::new(&db)),
                    Some(db),
                )
            }
        };
        let (sessions, counters) = match (&settings.redis, embedded) {
            (Some(target), _) => {
                let redis = redis::Redis::new(target, settings.redis_wait_replicas)?;
                let prefix = &settings.redis_key_prefix;
                (
                    Sessions::Redis(redis::sessions::Sessions::new(redis.clone(), prefix)),
                    Counters::Redis(redis::attempts::Counters::new(redis, prefix)),
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
                    Sessions::Sqlite(sqlite::sessions::Sessions::new(&db)),
                    Counters::Sqlite(sqlite::attempts::Counters::new(&db)),
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
            mail,
            mfa,
            sessions,
            counters,
        })
    }
}
