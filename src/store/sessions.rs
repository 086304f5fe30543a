//! Sessions and token entries in Redis.
//!
//! Keys of one session share the hash tag `{sid}`, so they live in one Redis Cluster slot
//! and a script touching several of them stays atomic there:
//! - `<prefix>{<sid>}:sess`: the session (value: user id), alive as long as its newest refresh token;
//! - `<prefix>{<sid>}:tok:<token_uuid>`: one per issued token, with the token's lifetime as TTL.
//!   An access entry holds the user id; a refresh entry holds `user id|key of its access entry`.
//!
//! A token is live while both its entry and its session exist, so ending a session is one DEL.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands, Script};
use uuid::Uuid;

use crate::error::Result;

/// One token's entry: which session and token, and for how long it lives.
#[derive(Debug, Clone, Copy)]
pub struct TokenEntry {
    pub token_uuid: Uuid,
    pub ttl: Duration,
}

#[derive(Clone)]
pub struct SessionStore {
    pool: Pool,
    prefix: String,
}

/// Consumes a refresh entry and records its successors, atomically: of two racing
/// refreshes with one token, exactly one wins.
/// KEYS: old refresh entry, session, new access entry, new refresh entry.
/// ARGV: user id, access TTL ms, refresh TTL ms, grace ms for the old access entry.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('GET', KEYS[1])
if not old or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local sep = string.find(old, '|', 1, true)
if not sep or string.sub(old, 1, sep - 1) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
-- The previous access token keeps working only through the grace window.
redis.call('PEXPIRE', string.sub(old, sep + 1), ARGV[4], 'LT')
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[1] .. '|' .. KEYS[3], 'PX', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
",
    )
});

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SessionStore {
    pub fn new(pool: Pool, prefix: String) -> Self {
        SessionStore { pool, prefix }
    }

    fn session_key(&self, sid: Uuid) -> String {
        format!("{}{{{sid}}}:sess", self.prefix)
    }

    fn token_key(&self, sid: Uuid, token_uuid: Uuid) -> String {
        format!("{}{{{sid}}}:tok:{token_uuid}", self.prefix)
    }

    /// Starts a session with its first access and refresh entries.
    pub async fn create(
        &self,
        user: Uuid,
        sid: Uuid,
        access: TokenEntry,
        refresh: TokenEntry,
    ) -> Result<()> {
        let user = user.to_string();
        let access_key = self.token_key(sid, access.token_uuid);
        let mut conn = self.pool.get().await?;
        let _: () = redis::pipe()
            .atomic()
            .pset_ex(self.session_key(sid), &user, millis(refresh.ttl))
            .pset_ex(&access_key, &user, millis(access.ttl))
            .pset_ex(
                self.token_key(sid, refresh.token_uuid),
                format!("{user}|{access_key}"),
                millis(refresh.ttl),
            )
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }

    /// Whether this token of this user's session is still live.
    pub async fn is_live(&self, user: Uuid, sid: Uuid, token_uuid: Uuid) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let (entry, session): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(self.token_key(sid, token_uuid))
            .arg(self.session_key(sid))
            .query_async(&mut *conn)
            .await?;
        let user = user.to_string();
        let owned_by_user = |v: &str| v.split('|').next() == Some(user.as_str());
        Ok(
            entry.as_deref().is_some_and(owned_by_user)
                && session.as_deref() == Some(user.as_str()),
        )
    }

    /// Consumes the old refresh entry and stores the new pair. `false`: the old entry or its
    /// session is gone (already rotated, logged out, expired).
    pub async fn rotate(
        &self,
        user: Uuid,
        sid: Uuid,
        old_refresh: Uuid,
        access: TokenEntry,
        refresh: TokenEntry,
        grace: Duration,
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let rotated: i64 = ROTATE
            .key(self.token_key(sid, old_refresh))
            .key(self.session_key(sid))
            .key(self.token_key(sid, access.token_uuid))
            .key(self.token_key(sid, refresh.token_uuid))
            .arg(user.to_string())
            .arg(millis(access.ttl))
            .arg(millis(refresh.ttl))
            .arg(millis(grace))
            .invoke_async(&mut *conn)
            .await?;
        Ok(rotated == 1)
    }

    /// Ends the session: every token of it stops working at once.
    pub async fn end(&self, sid: Uuid, token_uuid: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let _: () = conn
            .del(&[self.session_key(sid), self.token_key(sid, token_uuid)])
            .await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
        Ok(())
    }
}
