//! The second factor in Postgres. Every write locks its user's row first, in the order every
//! writer of these tables takes them (user, then factor and challenges, as the cascade of a
//! deletion does), so that a confirm or a code racing a deletion or a password change waits
//! instead of deadlocking or deciding on a user that is changing.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::store::error::{Result, StoreError};
use crate::store::mail::Outgoing;
use crate::store::mfa::{
    Begun, Challenge, CodeUsed, Factor, MfaStore, NewChallenge, Spend, Spending, StoredTotp,
};
use crate::store::postgres::fail;
use crate::store::postgres::mail::insert_outgoing;

pub struct Mfa {
    pool: PgPool,
}

impl Mfa {
    pub fn new(pool: PgPool) -> Self {
        Mfa { pool }
    }

    /// A transaction holding the user's row: `None` if there is no such user.
    async fn lock_user(&self, user: Uuid) -> Result<Option<Transaction<'static, Postgres>>> {
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let found = sqlx::query!("SELECT 1 AS one FROM users WHERE id = $1 FOR UPDATE", user)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        Ok(found.map(|_| tx))
    }
}

async fn put_codes(
    tx: &mut Transaction<'static, Postgres>,
    user: Uuid,
    codes: &[[u8; 32]],
) -> Result<()> {
    sqlx::query!("DELETE FROM mfa_recovery_codes WHERE user_id = $1", user)
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    let hashes: Vec<Vec<u8>> = codes.iter().map(|h| h.to_vec()).collect();
    sqlx::query!(
        "INSERT INTO mfa_recovery_codes (user_id, hash) SELECT $1, unnest($2::bytea[])",
        user,
        &hashes,
    )
    .execute(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(())
}

async fn set_flag(tx: &mut Transaction<'static, Postgres>, user: Uuid, on: bool) -> Result<()> {
    // `updated_at` advances in the trigger.
    sqlx::query!("UPDATE users SET mfa = $2 WHERE id = $1", user, on)
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    Ok(())
}

impl MfaStore for Mfa {
    async fn begin(&self, user: Uuid, sealed: &[u8]) -> Result<Begun> {
        let Some(mut tx) = self.lock_user(user).await? else {
            return Ok(Begun::NoSuchUser);
        };
        let written = sqlx::query!(
            "INSERT INTO mfa_totp (user_id, sealed) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, last_step = -1
             WHERE NOT mfa_totp.confirmed",
            user,
            sealed,
        )
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
        sqlx::query_as!(
            StoredTotp,
            "SELECT sealed, confirmed, last_step FROM mfa_totp WHERE user_id = $1",
            user,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)
    }

    async fn confirm(
        &self,
        user: Uuid,
        sealed: &[u8],
        step: i64,
        codes: &[[u8; 32]],
        notice: &Outgoing,
    ) -> Result<Factor> {
        let Some(mut tx) = self.lock_user(user).await? else {
            return Ok(Factor::Moved);
        };
        let done = sqlx::query!(
            "UPDATE mfa_totp SET confirmed = true, last_step = $3
             WHERE user_id = $1 AND NOT confirmed AND sealed = $2 AND last_step < $3",
            user,
            sealed,
            step,
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if done.rows_affected() != 1 {
            return Ok(Factor::Moved);
        }
        put_codes(&mut tx, user, codes).await?;
        set_flag(&mut tx, user, true).await?;
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
        // Dropped without a commit, the transaction writes nothing.
        let Some(mut tx) = self.lock_user(user).await? else {
            return Ok(Spending::LoginChanged);
        };
        if let Some(hash) = challenge {
            let done = sqlx::query!(
                "DELETE FROM mfa_challenges c
                 WHERE c.hash = $1 AND c.user_id = $2 AND EXISTS (
                     SELECT 1 FROM users u
                     WHERE u.id = c.user_id AND u.mfa
                       AND u.password_hash = c.bound_password AND u.email = c.bound_email)",
                &hash[..],
                user,
            )
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            if done.rows_affected() != 1 {
                return Ok(Spending::LoginChanged);
            }
        }
        let used = match spend {
            Spend::Step { step, sealed } => {
                let done = sqlx::query!(
                    "UPDATE mfa_totp SET last_step = $2
                     WHERE user_id = $1 AND confirmed AND sealed = $3 AND last_step < $2",
                    user,
                    step,
                    sealed,
                )
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
                (done.rows_affected() == 1).then_some(CodeUsed::Totp)
            }
            Spend::Recovery(hash) => {
                let done = sqlx::query!(
                    "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND hash = $2",
                    user,
                    &hash[..],
                )
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
                if done.rows_affected() == 1 {
                    let left = sqlx::query_scalar!(
                        r#"SELECT count(*) AS "left!" FROM mfa_recovery_codes WHERE user_id = $1"#,
                        user,
                    )
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail)?;
                    let left =
                        u32::try_from(left).map_err(|e| StoreError::failed("postgres", e))?;
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
        let Some(mut tx) = self.lock_user(user).await? else {
            return Ok(Factor::Moved);
        };
        let on = sqlx::query!(
            "SELECT 1 AS one FROM mfa_totp WHERE user_id = $1 AND confirmed",
            user
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        if on.is_none() {
            return Ok(Factor::Moved);
        }
        put_codes(&mut tx, user, codes).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Factor::Done)
    }

    async fn disable(&self, user: Uuid, notice: &Outgoing) -> Result<Factor> {
        let Some(mut tx) = self.lock_user(user).await? else {
            return Ok(Factor::Moved);
        };
        let done = sqlx::query!(
            "DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed",
            user
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if done.rows_affected() != 1 {
            return Ok(Factor::Moved);
        }
        put_codes(&mut tx, user, &[]).await?;
        set_flag(&mut tx, user, false).await?;
        insert_outgoing(&mut tx, notice, now_ms()).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Factor::Done)
    }

    async fn add_challenge(&self, new: &NewChallenge, now: i64) -> Result<()> {
        // The ended ones go as new ones come: the table holds at most five minutes of logins.
        sqlx::query!("DELETE FROM mfa_challenges WHERE expires_at <= $1", now)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        sqlx::query!(
            "INSERT INTO mfa_challenges
                 (hash, user_id, bound_email, bound_password, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &new.hash[..],
            new.user,
            new.bound_email,
            new.bound_password,
            new.expires_at,
        )
        .execute(&self.pool)
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
        sqlx::query_as!(
            Challenge,
            r#"UPDATE mfa_challenges SET tries = tries + 1
               WHERE hash = $1 AND expires_at > $2 AND tries < $3
               RETURNING user_id AS "user", bound_email, bound_password"#,
            &hash[..],
            now,
            i32::try_from(tries).unwrap_or(i32::MAX),
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)
    }
}
