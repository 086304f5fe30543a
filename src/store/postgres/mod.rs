//! Users in Postgres, and beside them the links and the outbox (`mail`) and the second
//! factor (`mfa`).

pub mod mail;
pub mod mfa;

use std::str::FromStr;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::domain::{Email, NewUser, Role, User};
use crate::store::error::{Result, STORE_TIMEOUT, StoreError};
use crate::store::users::{Changed, Cursor, Inserted, UserStore};

/// Postgres' own limit on one statement (its units: `3s`).
const STATEMENT_TIMEOUT: &str = "3s";

#[derive(Clone)]
pub struct Users {
    pool: PgPool,
}

impl Users {
    /// Creates the database if it is missing, applies the migrations, and returns a lazy pool.
    pub async fn open(url: &str) -> Result<Self, String> {
        create_database_if_missing(url).await?;
        migrate(url).await?;
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| format!("DATABASE_URL: {e}"))?
            // A query stuck behind a lock, or on a Postgres that accepts but never answers,
            // must end too: the pool's acquire timeout covers only getting a connection.
            .options([("statement_timeout", STATEMENT_TIMEOUT)]);
        // A few connections serve this workload best (measured: 4 beat 64 on two cores).
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(STORE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Users { pool })
    }

    /// The links and the outbox, on the users' pool.
    pub fn mail(&self) -> mail::Mail {
        mail::Mail::new(self.pool.clone())
    }

    /// The second factor, on the users' pool.
    pub fn mfa(&self) -> mfa::Mfa {
        mfa::Mfa::new(self.pool.clone())
    }
}

impl UserStore for Users {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn insert(&self, new: &NewUser) -> Result<Inserted> {
        let inserted = sqlx::query_as!(
            User,
            r#"INSERT INTO users (name, email, password_hash, photo)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING
               RETURNING id, name, email, password_hash, role, photo, verified, provider, mfa,
                         created_at, updated_at"#,
            new.name,
            new.email.as_str(),
            new.password_hash,
            new.photo,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        Ok(inserted.map_or(Inserted::EmailTaken, Inserted::Created))
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>> {
        sqlx::query_as!(
            User,
            r#"SELECT id, name, email, password_hash, role, photo, verified, provider, mfa,
                      created_at, updated_at
               FROM users WHERE lower(email) = $1"#,
            email.as_str(),
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>> {
        sqlx::query_as!(
            User,
            r#"SELECT id, name, email, password_hash, role, photo, verified, provider, mfa,
                      created_at, updated_at
               FROM users WHERE id = $1"#,
            id,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)
    }

    async fn set_password(&self, id: Uuid, hash: &str) -> Result<Changed> {
        let done = sqlx::query!(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            id,
            hash
        )
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        Ok(Changed::from_rows(done.rows_affected()))
    }

    /// `updated_at` advances in the trigger, strictly (see the migrations).
    async fn update_profile(
        &self,
        id: Uuid,
        name: Option<&str>,
        photo: Option<&str>,
    ) -> Result<Option<User>> {
        sqlx::query_as!(
            User,
            r#"UPDATE users SET name = coalesce($2, name), photo = coalesce($3, photo)
               WHERE id = $1
               RETURNING id, name, email, password_hash, role, photo, verified, provider, mfa,
                         created_at, updated_at"#,
            id,
            name,
            photo,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)
    }

    async fn delete(&self, id: Uuid) -> Result<Changed> {
        let done = sqlx::query!("DELETE FROM users WHERE id = $1", id)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(Changed::from_rows(done.rows_affected()))
    }

    async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>> {
        sqlx::query_as!(
            User,
            r#"UPDATE users SET role = $2 WHERE lower(email) = $1
               RETURNING id, name, email, password_hash, role, photo, verified, provider, mfa,
                         created_at, updated_at"#,
            email.as_str(),
            role.as_str(),
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)
    }

    /// Walks the `(created_at, id)` index (see the migrations).
    async fn list(&self, after: Option<Cursor>, limit: u32) -> Result<Vec<User>> {
        let limit = i64::from(limit);
        let users =
            match after {
                None => sqlx::query_as!(
                    User,
                    r#"SELECT id, name, email, password_hash, role, photo, verified, provider, mfa,
                              created_at, updated_at
                       FROM users ORDER BY created_at, id LIMIT $1"#,
                    limit,
                )
                .fetch_all(&self.pool)
                .await,
                Some(after) => sqlx::query_as!(
                    User,
                    r#"SELECT id, name, email, password_hash, role, photo, verified, provider, mfa,
                              created_at, updated_at
                       FROM users WHERE (created_at, id) > ($1, $2)
                       ORDER BY created_at, id LIMIT $3"#,
                    after.created_at,
                    after.id,
                    limit,
                )
                .fetch_all(&self.pool)
                .await,
            };
        users.map_err(fail)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }
}

/// So that a first `cargo run` needs no manual `createdb`.
async fn create_database_if_missing(url: &str) -> Result<(), String> {
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|e| format!("DATABASE_URL: cannot reach Postgres: {e}"))?;
    if !exists {
        Postgres::create_database(url)
            .await
            .map_err(|e| format!("DATABASE_URL: cannot create the database: {e}"))?;
        tracing::info!("created the database");
    }
    Ok(())
}

/// On a connection of its own: the request pool's statement timeout must not cut a long
/// migration short.
async fn migrate(url: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| format!("DATABASE_URL: cannot reach Postgres: {e}"))?;
    sqlx::migrate!("./migrations/postgres")
        .run(&mut conn)
        .await
        .map_err(|e| format!("DATABASE_URL: cannot apply migrations: {e}"))?;
    conn.close().await.map_err(|e| format!("DATABASE_URL: {e}"))
}

/// An outage (connection lost, pool exhausted, statement or lock timeout) is 503: Postgres is
/// there, or will be, but cannot answer in time. Anything else is a defect.
pub(super) fn fail(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => StoreError::unavailable("postgres", e),
        // 57014: statement_timeout; 55P03: lock not available; 40P01: deadlock; 40001:
        // serialization failure. Each is Postgres giving up on a transaction that a retry
        // can pass.
        sqlx::Error::Database(ref db)
            if matches!(
                db.code().as_deref(),
                Some("57014" | "55P03" | "40P01" | "40001")
            ) =>
        {
            StoreError::unavailable("postgres", e)
        }
        other => StoreError::failed("postgres", other),
    }
}
