//! Users in the SQLite file.

use chrono::{SubsecRound, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::domain::{Email, NewUser, User};
use crate::error::{AppError, Result};
use crate::store::sqlite::{Db, fail};

const COLUMNS: &str = "id, name, email, password_hash, role, photo, verified, provider, \
                       created_at, updated_at";

pub struct Users {
    db: Db,
}

impl Users {
    pub fn new(db: &Db) -> Self {
        Users { db: db.clone() }
    }

    pub async fn insert(&self, new: &NewUser) -> Result<Option<User>> {
        // Microseconds, as Postgres keeps them, so both backends answer alike.
        let now = Utc::now().trunc_subsecs(6);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (id, name, email, password_hash, created_at, updated_at, photo)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING
             RETURNING {COLUMNS}"
        )))
        .bind(Uuid::new_v4().hyphenated())
        .bind(&new.name)
        .bind(new.email.as_str())
        .bind(&new.password_hash)
        .bind(now)
        .bind(now)
        .bind(&new.photo)
        .fetch_optional(&self.db.writer)
        .await
        .map_err(fail)?;
        row.map(user).transpose()
    }

    pub async fn by_email(&self, email: &Email) -> Result<Option<User>> {
        self.one("email = ?", email.as_str().to_owned()).await
    }

    pub async fn by_id(&self, id: Uuid) -> Result<Option<User>> {
        self.one("id = ?", id.hyphenated().to_string()).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    async fn one(&self, condition: &str, value: String) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE {condition}"
        )))
        .bind(value)
        .fetch_optional(&self.db.reader)
        .await
        .map_err(fail)?;
        row.map(user).transpose()
    }
}

fn user(row: SqliteRow) -> Result<User> {
    let id: String = row.try_get("id").map_err(fail)?;
    Ok(User {
        id: id.parse().map_err(AppError::internal)?,
        name: row.try_get("name").map_err(fail)?,
        email: row.try_get("email").map_err(fail)?,
        password_hash: row.try_get("password_hash").map_err(fail)?,
        role: row.try_get("role").map_err(fail)?,
        photo: row.try_get("photo").map_err(fail)?,
        verified: row.try_get("verified").map_err(fail)?,
        provider: row.try_get("provider").map_err(fail)?,
        created_at: row.try_get("created_at").map_err(fail)?,
        updated_at: row.try_get("updated_at").map_err(fail)?,
    })
}
