//! Sessions and token entries in the SQLite file, with the semantics of the Redis store:
//! rows past their `expires_at` count as gone, and a rotation is one transaction.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::clock::{millis, now_ms};
use crate::store::error::{Result, StoreError};
use crate::store::rotation::{self, RefreshState, Rotate, Rotation, Seen, Step, Successor};
use crate::store::sessions::{
    Check, Created, Device, Ended, NewSession, SessionInfo, SessionStore, Stamp, TokenRef, Vouched,
};
use crate::store::sqlite::{Db, fail};

pub struct Sessions {
    db: Db,
}

impl Sessions {
    pub fn new(db: &Db) -> Self {
        Sessions { db: db.clone() }
    }
}

impl SessionStore for Sessions {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// The users live in the same file: the write checks the user's `updated_at` inside the
    /// write transaction, so a change committed after the password check refuses it, and one
    /// committed after it ends the session with the others.
    async fn create(&self, session: &NewSession, vouched: &Vouched) -> Result<Created> {
        let NewSession {
            user,
            sid,
            access,
            refresh,
            ref device,
        } = *session;
        let now = now_ms();
        let mut tx = self.db.write().await?;
        let updated_at: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT updated_at FROM users WHERE id = ?")
                .bind(user.hyphenated())
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
        if updated_at != Some(vouched.updated_at) {
            // Let the write lock go at once: this is an ordinary answer, not a failure.
            tx.rollback().await.map_err(fail)?;
            return Ok(Created::UserChanged);
        }
        sqlx::query(
            "INSERT INTO sessions (sid, user_id, expires_at, created_at, last_used_at, user_agent, ip)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(sid.hyphenated())
        .bind(user.hyphenated())
        .bind(refresh.expires_at.unix_ms())
        .bind(now)
        .bind(now)
        .bind(&device.user_agent)
        .bind(&device.ip)
        .execute(&mut *tx)
            .await
            .map_err(fail)?;
        insert_token(
            &mut tx,
            sid,
            user,
            access.token_uuid,
            access.expires_at.unix_ms(),
            None,
        )
        .await?;
        let refresh_expires = refresh.expires_at.unix_ms();
        let issued_with = Some(access.token_uuid);
        insert_token(
            &mut tx,
            sid,
            user,
            refresh.token_uuid,
            refresh_expires,
            issued_with,
        )
        .await?;
        tx.commit().await.map_err(fail)?;
        Ok(Created::Created)
    }

    /// The users are read each time (no stamp): `Unkept`.
    async fn check(&self, token: &TokenRef) -> Result<Check> {
        let rotated: Option<bool> = sqlx::query_scalar(
            "SELECT t.next_refresh IS NOT NULL
             FROM tokens t JOIN sessions s ON s.sid = t.sid
             WHERE t.token_uuid = ?1 AND t.sid = ?2 AND t.user_id = ?3 AND s.user_id = ?3
               AND t.expires_at > ?4 AND s.expires_at > ?4",
        )
        .bind(token.token_uuid.hyphenated())
        .bind(token.sid.hyphenated())
        .bind(token.user.hyphenated())
        .bind(now_ms())
        .fetch_optional(&self.db.reader)
        .await
        .map_err(fail)?;
        Ok(Check {
            live: rotated.is_some(),
            rotated: rotated.unwrap_or(false),
            stamp: Stamp::Unkept,
        })
    }

    /// One write transaction: nothing else writes between the read and the change, so
    /// racing tabs are served one after another and no lost race needs a second look.
    /// The stamp is not needed: the users live in the same file, read each time.
    async fn rotate(&self, r: &Rotate, _stamp: Option<&str>) -> Result<Rotation> {
        let mut tx = self.db.write().await?;
        let now = now_ms();
        let seen = look(&mut tx, r, now).await?;
        let outcome = match rotation::decide(&seen) {
            Step::Answer(answer) => answer,
            Step::FollowChain(successor) => {
                let lookup = async |refresh| match token_row(&mut tx, refresh, r.sid, now).await? {
                    Some(row) => refresh_state(&row, r.user),
                    None => Ok(None),
                };
                let newest = rotation::newest(successor, lookup).await?;
                newest.map_or(Rotation::Revoked, Rotation::InGrace)
            }
            Step::RevokeForReuse => {
                revoke_for_reuse(&mut tx, r).await?;
                Rotation::Reused
            }
            Step::Rotate { old_access } => {
                consume(&mut tx, r, old_access, now).await?;
                Rotation::Rotated
            }
        };
        tx.commit().await.map_err(fail)?;
        Ok(outcome)
    }

    async fn end(&self, tokens: &[TokenRef]) -> Result<()> {
        let mut tx = self.db.write().await?;
        for token in tokens {
            sqlx::query("DELETE FROM sessions WHERE sid = ?")
                .bind(token.sid.hyphenated())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            sqlx::query("DELETE FROM tokens WHERE token_uuid = ?")
                .bind(token.token_uuid.hyphenated())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    async fn list(&self, user: Uuid) -> Result<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT sid, created_at, last_used_at, user_agent, ip FROM sessions
             WHERE user_id = ? AND expires_at > ?",
        )
        .bind(user.hyphenated())
        .bind(now_ms())
        .fetch_all(&self.db.reader)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|row| {
                let sid: String = row.try_get("sid").map_err(fail)?;
                Ok(SessionInfo {
                    sid: sid.parse().map_err(|e| StoreError::failed("sqlite", e))?,
                    created_at: row.try_get("created_at").map_err(fail)?,
                    last_used_at: row.try_get("last_used_at").map_err(fail)?,
                    device: Device {
                        user_agent: row.try_get("user_agent").map_err(fail)?,
                        ip: row.try_get("ip").map_err(fail)?,
                    },
                })
            })
            .collect()
    }

    async fn end_one(&self, user: Uuid, sid: Uuid) -> Result<Ended> {
        let mut tx = self.db.write().await?;
        let ended =
            sqlx::query("DELETE FROM sessions WHERE sid = ? AND user_id = ? AND expires_at > ?")
                .bind(sid.hyphenated())
                .bind(user.hyphenated())
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(fail)?
                .rows_affected();
        tx.commit().await.map_err(fail)?;
        Ok(Ended::from_count(ended))
    }

    async fn end_all(&self, user: Uuid, keep: Option<Uuid>) -> Result<usize> {
        let mut tx = self.db.write().await?;
        // A sid that is no UUID matches no row: "keep nothing".
        let keep = keep.map_or_else(String::new, |k| k.hyphenated().to_string());
        let ended =
            sqlx::query("DELETE FROM sessions WHERE user_id = ? AND sid <> ? AND expires_at > ?")
                .bind(user.hyphenated())
                .bind(keep)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(fail)?
                .rows_affected();
        tx.commit().await.map_err(fail)?;
        Ok(usize::try_from(ended).unwrap_or(usize::MAX))
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

async fn insert_token(
    conn: &mut SqliteConnection,
    sid: Uuid,
    user: Uuid,
    token_uuid: Uuid,
    expires_at: i64,
    access_uuid: Option<Uuid>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (token_uuid, sid, user_id, expires_at, access_uuid)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(token_uuid.hyphenated())
    .bind(sid.hyphenated())
    .bind(user.hyphenated())
    .bind(expires_at)
    .bind(access_uuid.map(|a| a.hyphenated()))
    .execute(conn)
    .await
    .map_err(fail)?;
    Ok(())
}

/// What the store holds about the presented token and its session.
async fn look(tx: &mut sqlx::Transaction<'_, Sqlite>, r: &Rotate, now: i64) -> Result<Seen> {
    let row = token_row(tx, r.presented, r.sid, now).await?;
    let in_grace = match &row {
        Some(row) => row
            .try_get::<Option<i64>, _>("grace_until")
            .map_err(fail)?
            .is_some_and(|until| until > now),
        None => false,
    };
    let entry = row.map(|row| refresh_state(&row, r.user)).transpose()?;
    let (session, reused): (bool, bool) = sqlx::query_as(
        "SELECT
             EXISTS (SELECT 1 FROM sessions WHERE sid = ?1 AND user_id = ?2 AND expires_at > ?3),
             EXISTS (SELECT 1 FROM reused_sessions
                     WHERE sid = ?1 AND token_uuid = ?4 AND expires_at > ?3)",
    )
    .bind(r.sid.hyphenated())
    .bind(r.user.hyphenated())
    .bind(now)
    .bind(r.presented.hyphenated())
    .fetch_one(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(Seen {
        entry: entry.flatten(),
        session,
        in_grace,
        reused,
    })
}

async fn token_row(
    conn: &mut SqliteConnection,
    token_uuid: Uuid,
    sid: Uuid,
    now: i64,
) -> Result<Option<SqliteRow>> {
    sqlx::query(
        "SELECT user_id, access_uuid, next_access, next_refresh, next_iat, grace_until
         FROM tokens WHERE token_uuid = ? AND sid = ? AND expires_at > ?",
    )
    .bind(token_uuid.hyphenated())
    .bind(sid.hyphenated())
    .bind(now)
    .fetch_optional(conn)
    .await
    .map_err(fail)
}

/// A refresh token's row as a state, or `None` if it is another user's or not a refresh row.
fn refresh_state(row: &SqliteRow, user: Uuid) -> Result<Option<RefreshState>> {
    let uuid = |column: &str| -> Result<Option<Uuid>> {
        let text: Option<String> = row.try_get(column).map_err(fail)?;
        Ok(text.and_then(|t| t.parse().ok()))
    };
    if uuid("user_id")? != Some(user) {
        return Ok(None);
    }
    let Some(access) = uuid("access_uuid")? else {
        return Ok(None);
    };
    let next_iat: Option<i64> = row.try_get("next_iat").map_err(fail)?;
    Ok(Some(
        match (uuid("next_access")?, uuid("next_refresh")?, next_iat) {
            (Some(access), Some(refresh), Some(iat)) => RefreshState::Rotated(Successor {
                access,
                refresh,
                iat,
            }),
            _ => RefreshState::Live { access },
        },
    ))
}

/// Rotates the presented token into `r.next`; the previous access token keeps working only
/// through the grace window.
async fn consume(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    r: &Rotate,
    old_access: Uuid,
    now: i64,
) -> Result<()> {
    let grace_until = now.saturating_add(millis(r.grace));
    sqlx::query(
        "UPDATE tokens SET next_access = ?, next_refresh = ?, next_iat = ?, grace_until = ?
         WHERE token_uuid = ?",
    )
    .bind(r.next.access.hyphenated())
    .bind(r.next.refresh.hyphenated())
    .bind(r.next.iat)
    .bind(grace_until)
    .bind(r.presented.hyphenated())
    .execute(&mut **tx)
    .await
    .map_err(fail)?;
    sqlx::query("UPDATE tokens SET expires_at = min(expires_at, ?) WHERE token_uuid = ?")
        .bind(grace_until)
        .bind(old_access.hyphenated())
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    let (access, refresh) = (r.access_expires.unix_ms(), r.refresh_expires.unix_ms());
    insert_token(tx, r.sid, r.user, r.next.access, access, None).await?;
    insert_token(
        tx,
        r.sid,
        r.user,
        r.next.refresh,
        refresh,
        Some(r.next.access),
    )
    .await?;
    sqlx::query("UPDATE sessions SET expires_at = ?, last_used_at = ? WHERE sid = ?")
        .bind(refresh)
        .bind(now)
        .bind(r.sid.hyphenated())
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    Ok(())
}

/// Ends the session and remembers why, for as long as any of its refresh tokens verifies.
async fn revoke_for_reuse(tx: &mut sqlx::Transaction<'_, Sqlite>, r: &Rotate) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE sid = ?")
        .bind(r.sid.hyphenated())
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
    sqlx::query(
        "INSERT OR REPLACE INTO reused_sessions (sid, token_uuid, expires_at) VALUES (?, ?, ?)",
    )
    .bind(r.sid.hyphenated())
    .bind(r.presented.hyphenated())
    .bind(r.refresh_expires.unix_ms())
    .execute(&mut **tx)
    .await
    .map_err(fail)?;
    Ok(())
}
