//! Failed-login counters in the SQLite file.

use std::time::Duration;

use crate::clock::{millis, now_ms};
use crate::store::attempts::{Count, CounterStore};
use crate::store::error::Result;
use crate::store::sqlite::{Db, fail};

pub struct Counters {
    db: Db,
}

impl Counters {
    pub fn new(db: &Db) -> Self {
        Counters { db: db.clone() }
    }
}

impl CounterStore for Counters {
    async fn count(&self, key: &str, window: Duration) -> Result<Count> {
        let now = now_ms();
        let (attempts, expires_at): (i64, i64) = sqlx::query_as(
            "INSERT INTO login_attempts (key, count, expires_at) VALUES (?1, 1, ?2 + ?3)
             ON CONFLICT (key) DO UPDATE SET
                 count = CASE WHEN expires_at <= ?2 THEN 1 ELSE count + 1 END,
                 expires_at = CASE WHEN expires_at <= ?2 THEN ?2 + ?3 ELSE expires_at END
             RETURNING count, expires_at",
        )
        .bind(key)
        .bind(now)
        .bind(millis(window))
        .fetch_one(&self.db.writer)
        .await
        .map_err(fail)?;
        Ok(Count {
            attempts: u64::try_from(attempts).unwrap_or(0),
            ttl: Duration::from_millis(u64::try_from(expires_at - now).unwrap_or(0)),
        })
    }

    async fn clear(&self, email_key: Option<&str>, ip_key: Option<&str>) -> Result<()> {
        let mut tx = self.db.write().await?;
        if let Some(email_key) = email_key {
            sqlx::query("DELETE FROM login_attempts WHERE key = ?")
                .bind(email_key)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        if let Some(ip_key) = ip_key {
            sqlx::query(
                "UPDATE login_attempts SET count = count - 1
                 WHERE key = ? AND expires_at > ? AND count > 0",
            )
            .bind(ip_key)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }
}
