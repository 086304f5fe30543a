//! Sessions and token entries in Redis.
//!
//! Keys of one session share the hash tag `{sid}`, so they live in one Redis Cluster slot
//! and a script touching several of them stays atomic there:
//! - `<prefix>{<sid>}:sess`: the session (value: user id), alive as long as its newest refresh token;
//! - `<prefix>{<sid>}:tok:<token_uuid>`: one per issued token, with the token's lifetime as TTL.
//!   An access entry holds the user id; a refresh entry holds `user id|uuid of its access token`,
//!   and once rotated also the uuids of its successors and their `iat`;
//! - `<prefix>{<sid>}:grace:<token_uuid>`: set when a refresh token is rotated, for
//!   `REFRESH_REUSE_GRACE`; while it exists a replay is another tab, after that it is reuse;
//! - `<prefix>{<sid>}:reused`: the session was revoked for reuse (the replayed token keeps
//!   answering `refresh_reused`, while tokens of a session that merely ended do not).
//!
//! A token is live while both its entry and its session exist, so ending a session is one DEL.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::Connection;
use deadpool_redis::redis::{self, AsyncCommands, Script};
use uuid::Uuid;

use crate::error::Result;
use crate::store::{RedisPool, millis};

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

/// Rotates a refresh entry into its successors, atomically: of several racing refreshes
/// with one token, exactly one wins; the others see the rotated entry and take the grace path.
/// Every key it touches is passed in KEYS, as Redis Cluster and ACLs require.
/// KEYS: old refresh entry, session, old access entry, new access entry, new refresh entry,
/// grace marker of the old refresh entry.
/// ARGV: the old refresh entry's value as read, its rotated value, user id, access TTL ms,
/// refresh TTL ms, grace ms, new access token uuid.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
-- The old entry stays until its token expires, naming its successors: a replay inside the
-- grace window gets them again, a replay after it is detected as reuse.
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('SET', KEYS[6], '1', 'PX', ARGV[6])
-- The previous access token keeps working only through the grace window.
if redis.call('PTTL', KEYS[3]) > tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[5], ARGV[3] .. '|' .. ARGV[7], 'PX', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
",
    )
});

/// How many rotations an in-grace replay follows to reach the newest token.
const MAX_CHAIN: usize = 32;

/// The tokens a refresh token was rotated into, enough to sign them again identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    pub access: Uuid,
    pub refresh: Uuid,
    pub iat: i64,
}

/// What a presented refresh token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Consumed now; its successors are stored.
    Rotated,
    /// Rotated moments ago (another tab won the race): here is what it became.
    InGrace(Successor),
    /// Rotated before the grace window: a replay. The session has been ended (now, or by an
    /// earlier replay).
    Reused,
    /// Its session is gone (logged out, expired, revoked).
    Revoked,
}

/// What one read found: the refresh entry's value and which of its session's keys exist.
struct Seen {
    value: Option<String>,
    session: bool,
    in_grace: bool,
    reused: bool,
}

/// A refresh entry's value: `user|access` while live, `user|access|next access|next refresh|iat`
/// once rotated.
enum RefreshEntry {
    Live { access: Uuid },
    Rotated(Successor),
}

fn parse_refresh_entry(value: &str, user: &str) -> Option<RefreshEntry> {
    let mut parts = value.split('|');
    if parts.next()? != user {
        return None;
    }
    let access = parts.next()?.parse().ok()?;
    let Some(next_access) = parts.next() else {
        return Some(RefreshEntry::Live { access });
    };
    let successor = Successor {
        access: next_access.parse().ok()?,
        refresh: parts.next()?.parse().ok()?,
        iat: parts.next()?.parse().ok()?,
    };
    Some(RefreshEntry::Rotated(successor))
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

    fn grace_key(&self, sid: Uuid, refresh: Uuid) -> String {
        format!("{}{{{sid}}}:grace:{refresh}", self.prefix)
    }

    fn reused_key(&self, sid: Uuid) -> String {
        format!("{}{{{sid}}}:reused", self.prefix)
    }

    /// Consumes the old refresh entry and stores `next`, whose lifetimes are `ttl` (access,
    /// refresh), or says why not. A lost race is read again, so it ends on the grace path.
    pub async fn rotate(
        &self,
        user: Uuid,
        sid: Uuid,
        old_refresh: Uuid,
        next: Successor,
        ttl: (Duration, Duration),
        grace: Duration,
    ) -> Result<Rotation> {
        let mut conn = self.pool.get().await?;
        let user = user.to_string();
        // An entry changes state once (live to rotated), so the second read always settles.
        for _ in 0..2 {
            let seen = self.look(&mut conn, sid, old_refresh).await?;
            let Some(value) = seen.value.as_deref() else {
                return Ok(Rotation::Revoked);
            };
            match parse_refresh_entry(value, &user) {
                None => return Ok(Rotation::Revoked),
                Some(RefreshEntry::Rotated(successor)) => {
                    return self
                        .replayed(&mut conn, sid, &user, successor, &seen, ttl.1)
                        .await;
                }
                Some(RefreshEntry::Live { .. }) if !seen.session => return Ok(Rotation::Revoked),
                Some(RefreshEntry::Live { access }) => {
                    let old = (old_refresh, access, value);
                    if self
                        .try_rotate(&mut conn, sid, &user, old, next, ttl, grace)
                        .await?
                    {
                        return Ok(Rotation::Rotated);
                    }
                }
            }
        }
        Ok(Rotation::Revoked)
    }

    /// A refresh entry and the state of its session, in one round trip.
    async fn look(&self, conn: &mut Connection, sid: Uuid, refresh: Uuid) -> Result<Seen> {
        let (value, session, in_grace, reused): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = redis::cmd("MGET")
            .arg(self.token_key(sid, refresh))
            .arg(self.session_key(sid))
            .arg(self.grace_key(sid, refresh))
            .arg(self.reused_key(sid))
            .query_async(&mut **conn)
            .await?;
        Ok(Seen {
            value,
            session: session.is_some(),
            in_grace: in_grace.is_some(),
            reused: reused.is_some(),
        })
    }

    /// Runs ROTATE; `false` if the entry changed since it was read (another racer won).
    #[allow(clippy::too_many_arguments)]
    async fn try_rotate(
        &self,
        conn: &mut Connection,
        sid: Uuid,
        user: &str,
        (old_refresh, old_access, value): (Uuid, Uuid, &str),
        next: Successor,
        ttl: (Duration, Duration),
        grace: Duration,
    ) -> Result<bool> {
        let rotated = format!("{value}|{}|{}|{}", next.access, next.refresh, next.iat);
        let won: i64 = ROTATE
            .key(self.token_key(sid, old_refresh))
            .key(self.session_key(sid))
            .key(self.token_key(sid, old_access))
            .key(self.token_key(sid, next.access))
            .key(self.token_key(sid, next.refresh))
            .key(self.grace_key(sid, old_refresh))
            .arg(value)
            .arg(rotated)
            .arg(user)
            .arg(millis(ttl.0))
            .arg(millis(ttl.1))
            .arg(millis(grace))
            .arg(next.access.to_string())
            .invoke_async(&mut **conn)
            .await?;
        Ok(won == 1)
    }

    /// A token shown again after its rotation: another tab within the grace window, else a
    /// replay, which ends the session.
    async fn replayed(
        &self,
        conn: &mut Connection,
        sid: Uuid,
        user: &str,
        successor: Successor,
        seen: &Seen,
        refresh_ttl: Duration,
    ) -> Result<Rotation> {
        match (seen.in_grace, seen.session, seen.reused) {
            (true, true, _) => {
                let newest = self.newest(conn, sid, user, successor).await?;
                Ok(newest.map_or(Rotation::Revoked, Rotation::InGrace))
            }
            (false, true, _) => {
                // Marked, so that the replayed token keeps answering as reuse while an
                // ordinary logout's leftovers answer as revoked.
                let _: () = redis::pipe()
                    .atomic()
                    .del(self.session_key(sid))
                    .pset_ex(self.reused_key(sid), "1", millis(refresh_ttl))
                    .query_async(&mut **conn)
                    .await?;
                Ok(Rotation::Reused)
            }
            (false, false, true) => Ok(Rotation::Reused),
            (_, false, _) => Ok(Rotation::Revoked),
        }
    }

    /// The live end of a rotation chain. A tab that comes back late, after other tabs
    /// rotated twice, must get the newest token, not one already rotated (which would be
    /// named reuse once its own window ends).
    async fn newest(
        &self,
        conn: &mut Connection,
        sid: Uuid,
        user: &str,
        mut successor: Successor,
    ) -> Result<Option<Successor>> {
        for _ in 0..MAX_CHAIN {
            let key = self.token_key(sid, successor.refresh);
            let value: Option<String> = conn.get(key).await?;
            match value.as_deref().and_then(|v| parse_refresh_entry(v, user)) {
                Some(RefreshEntry::Live { .. }) => return Ok(Some(successor)),
                Some(RefreshEntry::Rotated(next)) => successor = next,
                None => return Ok(None),
            }
        }
        // Dozens of rotations within one grace window: give the last one seen.
        Ok(Some(successor))
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
