//! Users in the SQLite file.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::domain::{Email, NewUser, Role, User};
use crate::store::error::{Result, StoreError};
use crate::store::sqlite::{Db, fail};
use crate::store::users::{Changed, Cursor, Inserted, UserStore};

pub(super) const COLUMNS: &str = "id, name, email, password_hash, role, photo, verified, provider, mfa, \
                       created_at, updated_at";

pub struct Users {
    db: Db,
}

impl Users {
    pub fn new(db: &Db) -> Self {
        Users { db: db.clone() }
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

impl UserStore for Users {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn insert(&self, new: &NewUser) -> Result<Inserted> {
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
        Ok(match row.map(user).transpose()? {
            Some(user) => Inserted::Created(user),
            None => Inserted::EmailTaken,
        })
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>> {
        self.one("email = ?", email.as_str().to_owned()).await
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>> {
        self.one("id = ?", id.hyphenated().to_string()).await
    }

    async fn set_password(&self, id: Uuid, hash: &str) -> Result<Changed> {
        let id = id.hyphenated().to_string();
        let mut tx = self.db.write().await?;
        let Some(updated_at) = next_updated_at(&mut tx, "id = ?", &id).await? else {
            return Ok(Changed::NoSuchUser);
        };
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(updated_at)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(Changed::Done)
    }

    async fn update_profile(
        &self,
        id: Uuid,
        name: Option<&str>,
        photo: Option<&str>,
    ) -> Result<Option<User>> {
        let id = id.hyphenated().to_string();
        let mut tx = self.db.write().await?;
        let Some(updated_at) = next_updated_at(&mut tx, "id = ?", &id).await? else {
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET name = coalesce(?, name), photo = coalesce(?, photo),
                              updated_at = ?
             WHERE id = ?
             RETURNING {COLUMNS}"
        )))
        .bind(name)
        .bind(photo)
        .bind(updated_at)
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.map(user).transpose()
    }

    async fn delete(&self, id: Uuid) -> Result<Changed> {
        let done = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id.hyphenated().to_string())
            .execute(&self.db.writer)
            .await
            .map_err(fail)?;
        Ok(Changed::from_rows(done.rows_affected()))
    }

    async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>> {
        let mut tx = self.db.write().await?;
        let Some(updated_at) = next_updated_at(&mut tx, "email = ?", email.as_str()).await? else {
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET role = ?, updated_at = ? WHERE email = ? RETURNING {COLUMNS}"
        )))
        .bind(role.as_str())
        .bind(updated_at)
        .bind(email.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.map(user).transpose()
    }

    /// The instants are bound as sqlx writes them into the column (RFC 3339, UTC, 0, 3 or 6
    /// decimals), whose text order is time order, so the text comparison walks in time order.
    async fn list(&self, after: Option<Cursor>, limit: u32) -> Result<Vec<User>> {
        let query = match after {
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM users ORDER BY created_at, id LIMIT ?"
            )))
            .bind(i64::from(limit)),
            Some(after) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM users WHERE (created_at, id) > (?, ?)
                 ORDER BY created_at, id LIMIT ?"
            )))
            .bind(after.created_at)
            .bind(after.id.hyphenated().to_string())
            .bind(i64::from(limit)),
        };
        let rows = query.fetch_all(&self.db.reader).await.map_err(fail)?;
        rows.into_iter().map(user).collect()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

/// The `updated_at` of a change to the user that `condition` matches, read inside the write
/// transaction that makes the change; `None` if there is no such user.
pub(super) async fn next_updated_at(
    tx: &mut Transaction<'static, Sqlite>,
    condition: &str,
    value: &str,
) -> Result<Option<DateTime<Utc>>> {
    let previous: Option<DateTime<Utc>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT updated_at FROM users WHERE {condition}"
    )))
    .bind(value)
    .fetch_optional(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(previous.map(advance))
}

/// Now, to the microsecond as Postgres keeps it; but always at least a microsecond past
/// `previous`, so that `updated_at` advances strictly even when two changes fall within one
/// microsecond or the clock steps back.
fn advance(previous: DateTime<Utc>) -> DateTime<Utc> {
    let now = Utc::now().trunc_subsecs(6);
    now.max(previous + TimeDelta::microseconds(1))
}

pub(super) fn user(row: SqliteRow) -> Result<User> {
    let id: String = row.try_get("id").map_err(fail)?;
    Ok(User {
        id: id.parse().map_err(|e| StoreError::failed("sqlite", e))?,
        name: row.try_get("name").map_err(fail)?,
        email: row.try_get("email").map_err(fail)?,
        password_hash: row.try_get("password_hash").map_err(fail)?,
        role: row.try_get("role").map_err(fail)?,
        photo: row.try_get("photo").map_err(fail)?,
        verified: row.try_get("verified").map_err(fail)?,
        provider: row.try_get("provider").map_err(fail)?,
        mfa: row.try_get("mfa").map_err(fail)?,
        created_at: row.try_get("created_at").map_err(fail)?,
        updated_at: row.try_get("updated_at").map_err(fail)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_at_follows_the_clock_and_never_repeats() {
        let behind = Utc::now().trunc_subsecs(6) - TimeDelta::days(1);
        let next = advance(behind);
        assert!(next > behind + TimeDelta::hours(23) && next <= Utc::now());
        assert_eq!(next.timestamp_subsec_nanos() % 1000, 0, "microseconds");
        let ahead = Utc::now().trunc_subsecs(6) + TimeDelta::days(1);
        assert_eq!(advance(ahead), ahead + TimeDelta::microseconds(1));
    }
}
