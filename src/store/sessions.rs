//! Sessions and token entries in Redis.
//!
//! Keys of one session share the hash tag `{sid}`, so they live in one Redis Cluster slot
//! and a script touching several of them stays atomic there:
//! - `<prefix>{<sid>}:sess`: the session (value: user id), alive as long as its newest refresh token;
//! - `<prefix>{<sid>}:tok:<token_uuid>`: one per issued token, with the token's lifetime as TTL.
//!   An access entry holds the user id; a refresh entry holds `user id|uuid of its access token`.
//!
//! A token is live while both its entry and its session exist, so ending a session is one DEL.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands, Script};
use uuid::Uuid;

use crate::error::Result;
use crate::store::RedisPool;

/// One token's entry: which session and token, and for how long it lives.
#[derive(Debug, Clone, Copy)]
pub struct TokenEntry {
    pub token_uuid: Uuid,
    pub ttl: Duration,
}

#[derive(Clone)]
pub struct SessionStore {
    pool: RedisPool,
    prefix: String,
}

/// Consumes a refresh entry and records its successors, atomically: of two racing
/// refreshes with one token, exactly one wins. Every key it touches is passed in KEYS,
/// as Redis Cluster and ACLs require.
/// KEYS: old refresh entry, session, old access entry, new access entry, new refresh entry.
/// ARGV: the old refresh entry's value as read, user id, access TTL ms, refresh TTL ms,
/// grace ms for the old access entry, new access token uuid.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
-- The previous access token keeps working only through the grace window.
if redis.call('PTTL', KEYS[3]) > tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[5], ARGV[2] .. '|' .. ARGV[6], 'PX', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
",
    )
});

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SessionStore {
    pub fn new(pool: RedisPool, prefix: String) -> Self {
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
                format!("{user}|{}", access.token_uuid),
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
        let old_key = self.token_key(sid, old_refresh);
        // The old access entry is named in the refresh entry; read it to pass its key to the
        // script, which consumes the entry only if it still holds what was read here.
        let Some(old_value): Option<String> = conn.get(&old_key).await? else {
            return Ok(false);
        };
        let user = user.to_string();
        let old_access = match old_value.split_once('|') {
            Some((owner, access)) if owner == user => access.parse::<Uuid>().ok(),
            _ => None,
        };
        let Some(old_access) = old_access else {
            return Ok(false);
        };
        let rotated: i64 = ROTATE
            .key(old_key)
            .key(self.session_key(sid))
            .key(self.token_key(sid, old_access))
            .key(self.token_key(sid, access.token_uuid))
            .key(self.token_key(sid, refresh.token_uuid))
            .arg(&old_value)
            .arg(&user)
            .arg(millis(access.ttl))
            .arg(millis(refresh.ttl))
            .arg(millis(grace))
            .arg(access.token_uuid.to_string())
            .invoke_async(&mut *conn)
            .await?;
        Ok(rotated == 1)
    }

    /// Ends each named session: every token of it stops working at once.
    pub async fn end(&self, tokens: &[(Uuid, Uuid)]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        // One DEL per session: keys of different sessions may live on different cluster nodes.
        let mut pipe = redis::pipe();
        for (sid, token_uuid) in tokens {
            pipe.del(&[self.session_key(*sid), self.token_key(*sid, *token_uuid)])
                .ignore();
        }
        let mut conn = self.pool.get().await?;
        let _: () = pipe.query_async(&mut *conn).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
        Ok(())
    }
}
