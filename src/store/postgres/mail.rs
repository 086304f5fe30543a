//! Links and the outbox in Postgres. A link is issued under a lock on its user's row and
//! spent by deleting it, in the transaction that makes the change it grants: of two requests
//! presenting one link, the second finds no row once the first commits. Senders on several
//! instances take messages with `FOR UPDATE SKIP LOCKED`, so each message goes once.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::User;
use crate::store::error::Result;
use crate::store::mail::{Issued, MailStore, NewLink, Notice, Outgoing, Purpose, Queued, Spent};
use crate::store::postgres::fail;

pub struct Mail {
    pool: PgPool,
}

impl Mail {
    pub fn new(pool: PgPool) -> Self {
        Mail { pool }
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(fail)
    }
}

/// A spent link: its user, the address it was sent to, and what it is bound to.
struct Taken {
    user: Uuid,
    address: String,
    bound_email: String,
    bound_password: Option<String>,
}

/// Deletes the live link of `purpose` with `hash`: spent, if this transaction commits. Its
/// user's row is locked first, in the order every writer of both tables takes them (user,
/// then links), so that a spend racing an issue or a deletion waits instead of deadlocking.
async fn take(
    tx: &mut Transaction<'static, Postgres>,
    hash: &[u8; 32],
    purpose: Purpose,
    now: i64,
) -> Result<Option<Taken>> {
    let owner = sqlx::query_scalar!(
        "SELECT user_id FROM email_tokens WHERE hash = $1 AND purpose = $2 AND expires_at > $3",
        &hash[..],
        purpose.as_str(),
        now,
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(fail)?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    sqlx::query!("SELECT 1 AS one FROM users WHERE id = $1 FOR UPDATE", owner)
        .fetch_optional(&mut **tx)
        .await
        .map_err(fail)?;
    let row = sqlx::query!(
        r#"DELETE FROM email_tokens WHERE hash = $1 AND purpose = $2 AND expires_at > $3
           RETURNING user_id, address, bound_email, bound_password"#,
        &hash[..],
        purpose.as_str(),
        now,
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(row.map(|r| Taken {
        user: r.user_id,
        address: r.address,
        bound_email: r.bound_email,
        bound_password: r.bound_password,
    }))
}

pub(super) async fn insert_outgoing(
    tx: &mut Transaction<'static, Postgres>,
    mail: &Outgoing,
    now: i64,
) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO outbox (id, kind, recipient, sealed, next_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $5)"#,
        mail.id,
        mail.kind,
        mail.recipient,
        mail.sealed.as_deref(),
        now,
    )
    .execute(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(())
}

impl MailStore for Mail {
    async fn issue(&self, link: &NewLink, mail: &Outgoing) -> Result<Issued> {
        let mut tx = self.begin().await?;
        // The user's row stays locked until the commit: a change to it waits, and then
        // finds the link to delete or to refuse.
        let still = sqlx::query_scalar!(
            r#"SELECT 1 AS "one!" FROM users
               WHERE id = $1 AND email = $2 AND ($3::text IS NULL OR password_hash = $3)
               FOR UPDATE"#,
            link.user,
            link.bound_email,
            link.bound_password.as_deref(),
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        if still.is_none() {
            return Ok(Issued::Stale);
        }
        let newer = sqlx::query_scalar!(
            r#"SELECT 1 AS "one!" FROM email_tokens
               WHERE user_id = $1 AND purpose = $2 AND requested_at > $3"#,
            link.user,
            link.purpose.as_str(),
            link.requested_at,
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        if newer.is_some() {
            return Ok(Issued::Superseded);
        }
        sqlx::query!(
            "DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2",
            link.user,
            link.purpose.as_str(),
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query!(
            r#"INSERT INTO email_tokens (hash, purpose, user_id, address, bound_email,
                                         bound_password, expires_at, requested_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
            &link.hash[..],
            link.purpose.as_str(),
            link.user,
            link.address,
            link.bound_email,
            link.bound_password.as_deref(),
            link.expires_at,
            link.requested_at,
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        insert_outgoing(&mut tx, mail, crate::clock::now_ms()).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Issued::Done)
    }

    async fn queue(&self, mail: &Outgoing) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_outgoing(&mut tx, mail, crate::clock::now_ms()).await?;
        tx.commit().await.map_err(fail)
    }

    async fn is_live(&self, hash: &[u8; 32], purpose: Purpose, now: i64) -> Result<bool> {
        let found = sqlx::query_scalar!(
            r#"SELECT 1 AS "one!" FROM email_tokens
               WHERE hash = $1 AND purpose = $2 AND expires_at > $3"#,
            &hash[..],
            purpose.as_str(),
            now,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        Ok(found.is_some())
    }

    async fn verify(&self, hash: &[u8; 32], now: i64) -> Result<Spent> {
        let mut tx = self.begin().await?;
        let Some(taken) = take(&mut tx, hash, Purpose::Verify, now).await? else {
            return Ok(Spent::Invalid);
        };
        // Only an unverified user is written: verifying twice changes nothing.
        let changed = sqlx::query_as!(
            User,
            r#"UPDATE users SET verified = true
               WHERE id = $1 AND email = $2 AND NOT verified
               RETURNING id, name, email, password_hash, role, photo, verified, provider, mfa,
                         created_at, updated_at"#,
            taken.user,
            taken.bound_email,
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let spent = match changed {
            Some(user) => Spent::Done {
                user,
                changed: true,
            },
            None => {
                let user = sqlx::query_as!(
                    User,
                    r#"SELECT id, name, email, password_hash, role, photo, verified, provider, mfa,
                              created_at, updated_at
                       FROM users WHERE id = $1 AND email = $2"#,
                    taken.user,
                    taken.bound_email,
                )
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
                user.map_or(Spent::Invalid, |user| Spent::Done {
                    user,
                    changed: false,
                })
            }
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
        let mut tx = self.begin().await?;
        let Some(taken) = take(&mut tx, hash, Purpose::Reset, now).await? else {
            return Ok(Spent::Invalid);
        };
        let user = sqlx::query_as!(
            User,
            r#"UPDATE users SET password_hash = $4, verified = true
               WHERE id = $1 AND email = $2 AND ($3::text IS NULL OR password_hash = $3)
               RETURNING id, name, email, password_hash, role, photo, verified, provider, mfa,
                         created_at, updated_at"#,
            taken.user,
            taken.bound_email,
            taken.bound_password.as_deref(),
            password_hash,
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(user) = user else {
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
        let mut tx = self.begin().await?;
        let Some(taken) = take(&mut tx, hash, Purpose::Confirm, now).await? else {
            return Ok(Spent::Invalid);
        };
        let moved = sqlx::query_as!(
            User,
            r#"UPDATE users SET email = $4, verified = true
               WHERE id = $1 AND email = $2 AND ($3::text IS NULL OR password_hash = $3)
               RETURNING id, name, email, password_hash, role, photo, verified, provider, mfa,
                         created_at, updated_at"#,
            taken.user,
            taken.bound_email,
            taken.bound_password.as_deref(),
            taken.address,
        )
        .fetch_optional(&mut *tx)
        .await;
        let user = match moved {
            Ok(Some(user)) => user,
            Ok(None) => {
                tx.commit().await.map_err(fail)?;
                return Ok(Spent::Invalid);
            }
            // Rolled back: the link stays, as the change was refused rather than done.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(Spent::EmailTaken);
            }
            Err(e) => return Err(fail(e)),
        };
        insert_outgoing(&mut tx, &notice.to(&taken.bound_email), now).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Spent::Done {
            user,
            changed: true,
        })
    }

    async fn claim(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Queued>> {
        let rows = sqlx::query!(
            r#"UPDATE outbox SET lease_until = $2, attempts = attempts + 1
               WHERE id IN (SELECT id FROM outbox WHERE next_at <= $1 AND lease_until <= $1
                            ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
               RETURNING id, kind, recipient, sealed, attempts, created_at"#,
            now,
            lease_until,
            limit,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|r| Queued {
                id: r.id,
                kind: r.kind,
                recipient: r.recipient,
                sealed: r.sealed,
                attempts: r.attempts,
                created_at: r.created_at,
                lease_until,
            })
            .collect())
    }

    async fn remove(&self, mail: &Queued) -> Result<bool> {
        let done = sqlx::query!(
            "DELETE FROM outbox WHERE id = $1 AND lease_until = $2",
            mail.id,
            mail.lease_until
        )
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry(&self, mail: &Queued, at: i64) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE outbox SET next_at = $3, lease_until = 0 WHERE id = $1 AND lease_until = $2",
            mail.id,
            mail.lease_until,
            at
        )
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        Ok(done.rows_affected() == 1)
    }

    async fn depth(&self) -> Result<i64> {
        let depth = sqlx::query_scalar!(r#"SELECT count(*) AS "depth!" FROM outbox"#)
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?;
        Ok(depth)
    }

    async fn purge(&self, now: i64) -> Result<()> {
        sqlx::query!("DELETE FROM email_tokens WHERE expires_at <= $1", now)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }
}
