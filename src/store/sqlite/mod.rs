//! The embedded store: users, sessions, login counters, links and the outbox in one SQLite
//! file.
//!
//! Every write goes through one connection, in `BEGIN IMMEDIATE` transactions where it
//! reads before writing. Writers therefore queue in the pool, in order, instead of meeting
//! in SQLite: a second writing connection would get `database is locked` whenever two
//! transactions upgrade from read to write at once. Reads use a pool of their own, which
//! WAL lets run beside the writer.

pub mod attempts;
pub mod mail;
pub mod mfa;
pub mod sessions;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::clock::now_ms;
use crate::store::error::{Result, STORE_TIMEOUT, StoreError};

/// How often entries past their end are deleted; until then they are ignored, never served.
const PURGE_EVERY: Duration = Duration::from_secs(60);
const READERS: u32 = 4;

#[derive(Clone)]
pub struct Db {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

impl Db {
    /// Creates the folder and the file if they are missing and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        create_private(path).map_err(|e| format!("DATABASE_URL: cannot create `{shown}`: {e}"))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode, NORMAL loses no committed transaction on a process crash; only a
            // power cut can take the last ones.
            .synchronous(SqliteSynchronous::Normal)
            // Another process on the same file (a second instance, a backup) may hold the
            // write lock for a while: wait for it as long as for any store, then answer 503.
            .busy_timeout(STORE_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(STORE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| format!("DATABASE_URL: cannot open `{shown}`: {e}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| format!("DATABASE_URL: cannot apply migrations to `{shown}`: {e}"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(STORE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Db {
            writer,
            reader,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A write transaction that holds the write lock from its first statement.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail)
    }

    /// Takes the write lock and lets it go: a file that another process keeps locked, or
    /// that cannot be written, is down for the healthchecker even though reads still work.
    pub async fn ping(&self) -> Result<()> {
        self.write().await?.rollback().await.map_err(fail)
    }

    /// Deletes what has ended, now and then, so that nothing lives on long after its token.
    pub fn purge_expired_in_background(&self) {
        let db = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PURGE_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = db.purge_expired().await {
                    tracing::warn!(error = %e, "could not purge expired sessions");
                }
            }
        });
    }

    async fn purge_expired(&self) -> Result<()> {
        let mut tx = self.write().await?;
        for table in [
            "tokens",
            "sessions",
            "reused_sessions",
            "login_attempts",
            "email_tokens",
            "mfa_challenges",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE expires_at <= ?"
            )))
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }
}

/// Creates what is missing of the folder (0700) and the file (0600): it holds password hashes
/// and sessions, which other local users have no business reading. SQLite gives its `-wal`
/// and `-shm` files the database file's mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)?;
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// A file that cannot be written, locked for too long, full or gone is 503, as an
/// unreachable server would be; anything else is a defect.
fn fail(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::unavailable("sqlite", e),
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PERM
            match primary {
                Some(5 | 6 | 8 | 10 | 13 | 14 | 3) => StoreError::unavailable("sqlite", e),
                _ => StoreError::failed("sqlite", e),
            }
        }
        _ => StoreError::failed("sqlite", e),
    }
}
