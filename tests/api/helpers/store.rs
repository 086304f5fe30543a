//! Reading and changing what the app stored, behind its back: the users' database, and the
//! session and counter entries (in Redis, or in the SQLite file under the same names).

use rs256_auth::config::Settings;
use rs256_auth::domain::{Email, NewUser, User};
use rs256_auth::store::Stores;
use rs256_auth::store::users::{Inserted, UserStore};
use sqlx::{Connection, Executor, PgConnection, Row, SqliteConnection};
use uuid::Uuid;

use super::{TestApp, TestStore, base_settings, unique_email};

/// A second set of stores on the app's own, as another instance would open them.
pub async fn stores_of(app: &TestApp) -> Stores {
    let mut vars = base_settings();
    vars.extend(app.store.vars());
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    Stores::open(&settings).await.expect("stores")
}

/// A new user, straight into the store, with a hash that no password matches.
pub async fn inserted(stores: &Stores) -> User {
    let new = NewUser {
        name: "Ada".into(),
        email: Email::normalize(&unique_email()),
        password_hash: "an old hash".into(),
        photo: "default.png".into(),
    };
    match stores.users.insert(&new).await.expect("insert") {
        Inserted::Created(user) => user,
        Inserted::EmailTaken => panic!("a fresh email is taken"),
    }
}

/// One stored entry as Redis would list it: key without the prefix, milliseconds left, value.
/// The embedded store's rows are listed under the same names, so that one test pins both.
#[derive(Debug, Clone)]
pub struct StoreEntry {
    pub key: String,
    pub ttl_ms: i64,
    pub value: String,
}

impl TestApp {
    /// Runs `sql` (one `$1` parameter, bound to `param`) on the users' database.
    pub async fn execute(&self, sql: &str, param: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.store {
            TestStore::Embedded { file, .. } => {
                let mut conn = self.sqlite(file).await;
                sqlx::query(sql)
                    .bind(param)
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
            TestStore::Production { .. } => {
                let mut conn = self.postgres().await;
                sqlx::query(sql)
                    .bind(param)
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
        }
        .expect("SQL");
    }

    /// The text of `column` of the user `email`, read from the database.
    pub async fn user_column(&self, email: &str, column: &str) -> String {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT CAST({column} AS TEXT) AS v FROM users WHERE email = $1"
        ));
        match &self.store {
            TestStore::Embedded { file, .. } => {
                let mut conn = self.sqlite(file).await;
                let row = sqlx::query(sql).bind(email).fetch_one(&mut conn).await;
                row.expect("user row").get("v")
            }
            TestStore::Production { .. } => {
                let mut conn = self.postgres().await;
                let row = sqlx::query(sql).bind(email).fetch_one(&mut conn).await;
                row.expect("user row").get("v")
            }
        }
    }

    pub async fn users_count(&self) -> i64 {
        let sql = "SELECT count(*) FROM users";
        match &self.store {
            TestStore::Embedded { file, .. } => {
                let mut conn = self.sqlite(file).await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
            TestStore::Production { .. } => {
                let mut conn = self.postgres().await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
        }
        .expect("count")
    }

    /// A connection of its own to the app's SQLite file. Not a pool: a pool's connections
    /// belong to the test's runtime, which is blocked while `Drop` cleans up.
    pub async fn sqlite(&self, file: &str) -> SqliteConnection {
        SqliteConnection::connect(&format!("sqlite:{file}"))
            .await
            .expect("test database")
    }

    /// Another process's hold on the app's SQLite file: a connection inside `BEGIN IMMEDIATE`,
    /// so that nobody else can write until it runs `ROLLBACK` (or drops).
    pub async fn hold_write_lock(&self) -> SqliteConnection {
        let TestStore::Embedded { file, .. } = &self.store else {
            panic!("not on the SQLite file");
        };
        let mut conn = self.sqlite(file).await;
        conn.execute("BEGIN IMMEDIATE")
            .await
            .expect("the write lock");
        conn
    }

    /// A connection of its own to the app's Postgres database (production mode only).
    pub async fn postgres(&self) -> PgConnection {
        let TestStore::Production {
            postgres, db_name, ..
        } = &self.store
        else {
            panic!("not on Postgres");
        };
        PgConnection::connect(&format!("{postgres}/{db_name}"))
            .await
            .expect("test database")
    }

    /// A connection to the Redis of the app (production mode only).
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        let TestStore::Production { redis, .. } = &self.store else {
            panic!("not on Redis");
        };
        redis::Client::open(redis.as_str())
            .expect("redis")
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    /// Announces that the user changed, as the service does after changing one: every
    /// instance reads the user again. Only the Redis store keeps copies to announce it to.
    pub async fn user_changed(&self, user: &str) {
        if let TestStore::Production { prefix, .. } = &self.store {
            let user: Uuid = user.parse().expect("a user id");
            let key = rs256_auth::store::redis::sessions::stamp_key(prefix, user);
            let () = redis::AsyncCommands::set(&mut self.redis().await, key, "changed")
                .await
                .expect("SET");
        }
    }

    /// Removes the user's stamp, as a Redis that lost it (a restart, an eviction) would.
    pub async fn lose_user_stamp(&self, user: &str) {
        if let TestStore::Production { prefix, .. } = &self.store {
            let user: Uuid = user.parse().expect("a user id");
            let key = rs256_auth::store::redis::sessions::stamp_key(prefix, user);
            let () = redis::AsyncCommands::del(&mut self.redis().await, key)
                .await
                .expect("DEL");
        }
    }

    /// Every live entry of the session and counter store.
    pub async fn store_entries(&self) -> Vec<StoreEntry> {
        match &self.store {
            TestStore::Embedded { file, .. } => sqlite_entries(&mut self.sqlite(file).await).await,
            TestStore::Production { prefix, .. } => {
                redis_entries(&mut self.redis().await, prefix).await
            }
        }
    }

    /// The keys of `store_entries`.
    pub async fn store_keys(&self) -> Vec<String> {
        self.store_entries()
            .await
            .into_iter()
            .map(|e| e.key)
            .collect()
    }
}

async fn redis_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Vec<StoreEntry> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .expect("keys");
    let mut entries = Vec::new();
    for key in keys {
        // The strings only: a session's details (a hash) and a user's index of sessions (a
        // sorted set) are what the sessions list shows, and accounts_sessions tests them.
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("TYPE");
        if kind != "string" {
            continue;
        }
        let (ttl_ms, value): (i64, Option<String>) = redis::pipe()
            .cmd("PTTL")
            .arg(&key)
            .cmd("GET")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("PTTL, GET");
        // A key listed a moment ago may have expired since (a cut access entry).
        if let Some(value) = value {
            entries.push(StoreEntry {
                key: key[prefix.len()..].to_owned(),
                ttl_ms,
                value,
            });
        }
    }
    entries
}

/// The embedded store's rows, named and valued as the Redis store's keys.
async fn sqlite_entries(conn: &mut SqliteConnection) -> Vec<StoreEntry> {
    let now = chrono::Utc::now().timestamp_millis();
    let rows = sqlx::query(
        "SELECT '{' || user_id || '}:' || sid || ':sess' AS key, expires_at, user_id AS value
         FROM sessions
         UNION ALL
         SELECT '{' || user_id || '}:' || sid || ':tok:' || token_uuid, expires_at,
                user_id || coalesce('|' || access_uuid, '')
                || coalesce('|' || next_access || '|' || next_refresh || '|' || next_iat, '')
         FROM tokens
         UNION ALL
         SELECT '{' || user_id || '}:' || sid || ':grace:' || token_uuid, grace_until, '1'
         FROM tokens WHERE grace_until IS NOT NULL
         UNION ALL
         SELECT '{' || coalesce((SELECT t.user_id FROM tokens t WHERE t.token_uuid = r.token_uuid),
                                '?') || '}:' || sid || ':reused', expires_at, token_uuid
         FROM reused_sessions r
         UNION ALL
         SELECT key, expires_at, CAST(count AS TEXT) FROM login_attempts",
    )
    .fetch_all(conn)
    .await
    .expect("entries");
    rows.into_iter()
        .map(|row| StoreEntry {
            key: row.get("key"),
            ttl_ms: row.get::<i64, _>("expires_at") - now,
            value: row.get("value"),
        })
        .filter(|e| e.ttl_ms > 0)
        .collect()
}
