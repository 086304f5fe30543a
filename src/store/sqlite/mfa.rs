//! The second factor in the SQLite file. Every write is one `BEGIN IMMEDIATE` transaction on
//! the one writer, or one conditional statement, so a code or a challenge is used once.

use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::store::error::{Result, StoreError};
use crate::store::mail::Outgoing;
use crate::store::mfa::{
    Begun, Challenge, CodeUsed, Factor, MfaStore, NewChallenge, Spend, Spending, StoredTotp,
};
use crate::store::sqlite::mail::insert_outgoing;
use crate::store::sqlite::users::next_updated_at;
use crate::store::sqlite::{Db, fail};

pub struct Mfa {
    db: Db,
}

impl Mfa {
    pub fn new(db: &Db) -> Self {
        Mfa { db: db.clone() }
    }
}

fn id(user: Uuid) -> String {
    user.hyphenated().to_string()
}

/// Sets the user's `mfa` flag, advancing `updated_at`.
async fn set_flag(tx: &mut Transaction<'static, Sqlite>, user: &str, on: bool) -> Result<()> {
    let Some(updated_at) = next_updated_at(tx, "id = ?", user).await? else {
        return Ok(());
    };
    sqlx::query("UPDATE users SET mfa = ?, updated_at = ? WHERE id = ?")
        .bind(on)
        .bind(updated_at)
        .bind(user)
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    Ok(())
}

async fn put_codes(
    tx: &mut Transaction<'static, Sqlite>,
    user: &str,
    codes: &[[u8; 32]],
) -> Result<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = ?")
        .bind(user)
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    for hash in codes {
        sqlx::query("INSERT INTO mfa_recovery_codes (user_id, hash) VALUES (?, ?)")
            .bind(user)
            .bind(&hash[..])
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
    }
    Ok(())
}

impl MfaStore for Mfa {
    async fn begin(&self, user: Uuid, sealed: &[u8]) -> Result<Begun> {
        let user = id(user);
        let mut tx = self.db.write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = ?")
            .bind(&user)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        if exists.is_none() {
            return Ok(Begun::NoSuchUser);
        }
        let written = sqlx::query(
            "INSERT INTO mfa_totp (user_id, sealed) VALUES (?, ?)
             ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, last_step = -1
             WHERE mfa_totp.confirmed = 0",
        )
        .bind(&user)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(if written.rows_affected() == 1 {
            Begun::Pending
        } else {
            Begun::AlreadyOn
        })
    }

    async fn totp(&self, user: Uuid) -> Result<Option<StoredTotp>> {
        let row =
            sqlx::query("SELECT sealed, confirmed, last_step FROM mfa_totp WHERE user_id = ?")
                .bind(id(user))
                .fetch_optional(&self.db.reader)
                .await
                .map_err(fail)?;
        row.map(|r| {
            Ok(StoredTotp {
                sealed: r.try_get("sealed").map_err(fail)?,
                confirmed: r.try_get("confirmed").map_err(fail)?,
                last_step: r.try_get("last_step").map_err(fail)?,
            })
        })
        .transpose()
    }

    async fn confirm(
        &self,
        user: Uuid,
        sealed: &[u8],
        step: i64,
        codes: &[[u8; 32]],
        notice: &Outgoing,
    ) -> Result<Factor> {
        let user = id(user);
        let mut tx = self.db.write().await?;
        let done = sqlx::query(
            "UPDATE mfa_totp SET confirmed = 1, last_step = ?
             WHERE user_id = ? AND confirmed = 0 AND sealed = ? AND last_step < ?",
        )
        .bind(step)
        .bind(&user)
        .bind(sealed)
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if done.rows_affected() != 1 {
            return Ok(Factor::Moved);
        }
        put_codes(&mut tx, &user, codes).await?;
        set_flag(&mut tx, &user, true).await?;
        insert_outgoing(&mut tx, notice, now_ms()).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Factor::Done)
    }

    async fn spend(
        &self,
        user: Uuid,
        spend: &Spend,
        challenge: Option<&[u8; 32]>,
    ) -> Result<Spending> {
        let user = id(user);
        // One writer: nothing changes the user between the check and the spend. Dropped
        // without a commit, the transaction writes nothing.
        let mut tx = self.db.write().await?;
        if let Some(hash) = challenge {
            let done = sqlx::query(
                "DELETE FROM mfa_challenges
                 WHERE hash = ? AND user_id = ? AND EXISTS (
                     SELECT 1 FROM users
                     WHERE users.id = mfa_challenges.user_id AND users.mfa = 1
                       AND users.password_hash = mfa_challenges.bound_password
                       AND users.email = mfa_challenges.bound_email)",
            )
            .bind(&hash[..])
            .bind(&user)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            if done.rows_affected() != 1 {
                return Ok(Spending::LoginChanged);
            }
        }
        let used = match spend {
            Spend::Step { step, sealed } => {
                let done = sqlx::query(
                    "UPDATE mfa_totp SET last_step = ?
                     WHERE user_id = ? AND confirmed = 1 AND sealed = ? AND last_step < ?",
                )
                .bind(step)
                .bind(&user)
                .bind(sealed)
                .bind(step)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
                (done.rows_affected() == 1).then_some(CodeUsed::Totp)
            }
            Spend::Recovery(hash) => {
                let done =
                    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = ? AND hash = ?")
                        .bind(&user)
                        .bind(&hash[..])
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                if done.rows_affected() == 1 {
                    let left: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ?",
                    )
                    .bind(&user)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail)?;
                    let left = u32::try_from(left).map_err(|e| StoreError::failed("sqlite", e))?;
                    Some(CodeUsed::Recovery { left })
                } else {
                    None
                }
            }
        };
        let Some(used) = used else {
            return Ok(Spending::CodeTaken);
        };
        tx.commit().await.map_err(fail)?;
        Ok(Spending::Done(used))
    }

    async fn replace_codes(&self, user: Uuid, codes: &[[u8; 32]]) -> Result<Factor> {
        let user = id(user);
        let mut tx = self.db.write().await?;
        let on: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM mfa_totp WHERE user_id = ? AND confirmed = 1")
                .bind(&user)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
        if on.is_none() {
            return Ok(Factor::Moved);
        }
        put_codes(&mut tx, &user, codes).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Factor::Done)
    }

    async fn disable(&self, user: Uuid, notice: &Outgoing) -> Result<Factor> {
        let user = id(user);
        let mut tx = self.db.write().await?;
        let done = sqlx::query("DELETE FROM mfa_totp WHERE user_id = ? AND confirmed = 1")
            .bind(&user)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        if done.rows_affected() != 1 {
            return Ok(Factor::Moved);
        }
        put_codes(&mut tx, &user, &[]).await?;
        set_flag(&mut tx, &user, false).await?;
        insert_outgoing(&mut tx, notice, now_ms()).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Factor::Done)
    }

    async fn add_challenge(&self, new: &NewChallenge, _now: i64) -> Result<()> {
        // Ended challenges go with the file's purge of everything expired.
        sqlx::query(
            "INSERT INTO mfa_challenges
                 (hash, user_id, bound_email, bound_password, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&new.hash[..])
        .bind(id(new.user))
        .bind(&new.bound_email)
        .bind(&new.bound_password)
        .bind(new.expires_at)
        .execute(&self.db.writer)
        .await
        .map_err(fail)?;
        Ok(())
    }

    async fn claim_challenge(
        &self,
        hash: &[u8; 32],
        now: i64,
        tries: u32,
    ) -> Result<Option<Challenge>> {
        let row = sqlx::query(
            "UPDATE mfa_challenges SET tries = tries + 1
             WHERE hash = ? AND expires_at > ? AND tries < ?
             RETURNING user_id, bound_email, bound_password",
        )
        .bind(&hash[..])
        .bind(now)
        .bind(tries)
        .fetch_optional(&self.db.writer)
        .await
        .map_err(fail)?;
        row.map(|r| {
            let user: String = r.try_get("user_id").map_err(fail)?;
            Ok(Challenge {
                user: user.parse().map_err(|e| StoreError::failed("sqlite", e))?,
                bound_email: r.try_get("bound_email").map_err(fail)?,
                bound_password: r.try_get("bound_password").map_err(fail)?,
            })
        })
        .transpose()
    }
}
