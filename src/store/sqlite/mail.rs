//! Links and the outbox in the SQLite file. Each step is one `BEGIN IMMEDIATE` transaction on
//! the one writer, so a link is spent once however many requests present it.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::domain::User;
use crate::store::error::{Result, StoreError};
use crate::store::mail::{Issued, MailStore, NewLink, Notice, Outgoing, Purpose, Queued, Spent};
use crate::store::sqlite::users::{COLUMNS, next_updated_at, user};
use crate::store::sqlite::{Db, fail};

pub struct Mail {
    db: Db,
}

impl Mail {
    pub fn new(db: &Db) -> Self {
        Mail { db: db.clone() }
    }
}

/// A spent link: its user, the address it was sent to, and what it is bound to.
struct Taken {
    user: String,
    address: String,
    bound_email: String,
    bound_password: Option<String>,
}

/// The link's row, deleted: spent. `None` if there is no live link of `purpose` with `hash`.
async fn take(
    tx: &mut Transaction<'static, Sqlite>,
    hash: &[u8; 32],
    purpose: Purpose,
    now: i64,
) -> Result<Option<Taken>> {
    let row = sqlx::query(
        "DELETE FROM email_tokens WHERE hash = ? AND purpose = ? AND expires_at > ?
         RETURNING user_id, address, bound_email, bound_password",
    )
    .bind(&hash[..])
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .map_err(fail)?;
    row.map(|r| {
        Ok(Taken {
            user: r.try_get("user_id").map_err(fail)?,
            address: r.try_get("address").map_err(fail)?,
            bound_email: r.try_get("bound_email").map_err(fail)?,
            bound_password: r.try_get("bound_password").map_err(fail)?,
        })
    })
    .transpose()
}

pub(super) async fn insert_outgoing(
    tx: &mut Transaction<'static, Sqlite>,
    mail: &Outgoing,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, kind, recipient, sealed, next_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(mail.id.hyphenated().to_string())
    .bind(mail.kind)
    .bind(&mail.recipient)
    .bind(mail.sealed.as_deref())
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(())
}

/// What came of changing the user a link is for.
enum Change {
    Done(User),
    /// The user is gone, or no longer at `email` with `password` (see `NewLink`).
    NotAsIssued,
    /// The change would give the user an address another user has.
    EmailTaken,
}

/// Changes the user `id` with `set` (assignments whose placeholders take `values`), if the
/// user is still as the link requires: at its `bound_email`, with its `bound_password`.
async fn change_user(
    tx: &mut Transaction<'static, Sqlite>,
    set: &str,
    values: &[&str],
    taken: &Taken,
) -> Result<Change> {
    let id = taken.user.as_str();
    let Some(updated_at) = next_updated_at(tx, "id = ?", id).await? else {
        return Ok(Change::NotAsIssued);
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET {set}, updated_at = ?
         WHERE id = ? AND email = ? AND (? IS NULL OR password_hash = ?)
         RETURNING {COLUMNS}"
    )));
    for value in values {
        query = query.bind(*value);
    }
    let row = query
        .bind(updated_at)
        .bind(id)
        .bind(&taken.bound_email)
        .bind(taken.bound_password.as_deref())
        .bind(taken.bound_password.as_deref())
        .fetch_optional(&mut **tx)
        .await;
    match row {
        Ok(Some(row)) => Ok(Change::Done(user(row)?)),
        Ok(None) => Ok(Change::NotAsIssued),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(Change::EmailTaken),
        Err(e) => Err(fail(e)),
    }
}

impl MailStore for Mail {
    async fn issue(&self, link: &NewLink, mail: &Outgoing) -> Result<Issued> {
        let now = crate::clock::now_ms();
        let user = link.user.hyphenated().to_string();
        let mut tx = self.db.write().await?;
        // The user as the link requires, read under the write lock: nothing changes it
        // before this transaction ends.
        let still: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM users WHERE id = ? AND email = ? AND (? IS NULL OR password_hash = ?)",
        )
        .bind(&user)
        .bind(&link.bound_email)
        .bind(link.bound_password.as_deref())
        .bind(link.bound_password.as_deref())
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        if still.is_none() {
            return Ok(Issued::Stale);
        }
        let newer: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM email_tokens WHERE user_id = ? AND purpose = ? AND requested_at > ?",
        )
        .bind(&user)
        .bind(link.purpose.as_str())
        .bind(link.requested_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        if newer.is_some() {
            return Ok(Issued::Superseded);
        }
        sqlx::query("DELETE FROM email_tokens WHERE user_id = ? AND purpose = ?")
            .bind(&user)
            .bind(link.purpose.as_str())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query(
            "INSERT INTO email_tokens (hash, purpose, user_id, address, bound_email,
                                       bound_password, expires_at, requested_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&link.hash[..])
        .bind(link.purpose.as_str())
        .bind(&user)
        .bind(&link.address)
        .bind(&link.bound_email)
        .bind(link.bound_password.as_deref())
        .bind(link.expires_at)
        .bind(link.requested_at)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        insert_outgoing(&mut tx, mail, now).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Issued::Done)
    }

    async fn queue(&self, mail: &Outgoing) -> Result<()> {
        let mut tx = self.db.write().await?;
        insert_outgoing(&mut tx, mail, crate::clock::now_ms()).await?;
        tx.commit().await.map_err(fail)
    }

    async fn is_live(&self, hash: &[u8; 32], purpose: Purpose, now: i64) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM email_tokens WHERE hash = ? AND purpose = ? AND expires_at > ?",
        )
        .bind(&hash[..])
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.db.reader)
        .await
        .map_err(fail)?;
        Ok(found.is_some())
    }

    async fn verify(&self, hash: &[u8; 32], now: i64) -> Result<Spent> {
        let mut tx = self.db.write().await?;
        let Some(taken) = take(&mut tx, hash, Purpose::Verify, now).await? else {
            return Ok(Spent::Invalid);
        };
        let current = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE id = ? AND email = ?"
        )))
        .bind(&taken.user)
        .bind(&taken.bound_email)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?
        .map(user)
        .transpose()?;
        let spent = match current {
            None => Spent::Invalid,
            Some(user) if user.verified => Spent::Done {
                user,
                changed: false,
            },
            Some(_) => match change_user(&mut tx, "verified = 1", &[], &taken).await? {
                Change::Done(user) => Spent::Done {
                    user,
                    changed: true,
                },
                Change::NotAsIssued | Change::EmailTaken => Spent::Invalid,
            },
        };
        // An invalid link is spent all the same: it could never work again.
        tx.commit().await.map_err(fail)?;
        Ok(spent)
    }

    async fn reset(
        &self,
        hash: &[u8; 32],
        password_hash: &str,
        now: i64,
        notice: &Notice,
    ) -> Result<Spent> {
        let mut tx = self.db.write().await?;
        let Some(taken) = take(&mut tx, hash, Purpose::Reset, now).await? else {
            return Ok(Spent::Invalid);
        };
        let set = "password_hash = ?, verified = 1";
        let Change::Done(user) = change_user(&mut tx, set, &[password_hash], &taken).await? else {
            tx.commit().await.map_err(fail)?;
            return Ok(Spent::Invalid);
        };
        insert_outgoing(&mut tx, &notice.to(&user.email), now).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Spent::Done {
            user,
            changed: true,
        })
    }

    async fn confirm(&self, hash: &[u8; 32], now: i64, notice: &Notice) -> Result<Spent> {
        let mut tx = self.db.write().await?;
        let Some(taken) = take(&mut tx, hash, Purpose::Confirm, now).await? else {
            return Ok(Spent::Invalid);
        };
        let set = "email = ?, verified = 1";
        let user = match change_user(&mut tx, set, &[&taken.address], &taken).await? {
            Change::Done(user) => user,
            Change::NotAsIssued => {
                tx.commit().await.map_err(fail)?;
                return Ok(Spent::Invalid);
            }
            // Rolled back: the link stays, as the change was refused rather than done.
            Change::EmailTaken => return Ok(Spent::EmailTaken),
        };
        insert_outgoing(&mut tx, &notice.to(&taken.bound_email), now).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Spent::Done {
            user,
            changed: true,
        })
    }

    async fn claim(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Queued>> {
        // Looked for on a reader first: an idle sender must not take the one writer every
        // time it looks.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox WHERE next_at <= ? AND lease_until <= ? LIMIT 1",
        )
        .bind(now)
        .bind(now)
        .fetch_optional(&self.db.reader)
        .await
        .map_err(fail)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.write().await?;
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = ?, attempts = attempts + 1
             WHERE id IN (SELECT id FROM outbox WHERE next_at <= ? AND lease_until <= ?
                          ORDER BY next_at LIMIT ?)
             RETURNING id, kind, recipient, sealed, attempts, created_at",
        )
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        rows.into_iter()
            .map(|row| queued(row, lease_until))
            .collect()
    }

    async fn remove(&self, mail: &Queued) -> Result<bool> {
        let done = sqlx::query("DELETE FROM outbox WHERE id = ? AND lease_until = ?")
            .bind(mail.id.hyphenated().to_string())
            .bind(mail.lease_until)
            .execute(&self.db.writer)
            .await
            .map_err(fail)?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry(&self, mail: &Queued, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET next_at = ?, lease_until = 0 WHERE id = ? AND lease_until = ?",
        )
        .bind(at)
        .bind(mail.id.hyphenated().to_string())
        .bind(mail.lease_until)
        .execute(&self.db.writer)
        .await
        .map_err(fail)?;
        Ok(done.rows_affected() == 1)
    }

    async fn depth(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.db.reader)
            .await
            .map_err(fail)
    }

    /// `Db::purge_expired` already deletes them, every minute.
    async fn purge(&self, _now: i64) -> Result<()> {
        Ok(())
    }
}

fn queued(row: SqliteRow, lease_until: i64) -> Result<Queued> {
    let id: String = row.try_get("id").map_err(fail)?;
    Ok(Queued {
        id: id.parse().map_err(|e| StoreError::failed("sqlite", e))?,
        kind: row.try_get("kind").map_err(fail)?,
        recipient: row.try_get("recipient").map_err(fail)?,
        sealed: row.try_get("sealed").map_err(fail)?,
        attempts: row.try_get("attempts").map_err(fail)?,
        created_at: row.try_get("created_at").map_err(fail)?,
        lease_until,
    })
}
