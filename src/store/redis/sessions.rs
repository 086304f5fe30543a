//! Sessions and token entries in Redis.
//!
//! Keys of one session share the hash tag `{sid}`, so they live in one Redis Cluster slot
//! and a script touching several of them stays atomic there:
//! - `<prefix>{<sid>}:sess`: the session (value: user id), alive as long as its newest
//!   refresh token;
//! - `<prefix>{<sid>}:tok:<token_uuid>`: one per issued token, alive until its token stops
//!   verifying (values in `entry.rs`);
//! - `<prefix>{<sid>}:grace:<token_uuid>`: set when a refresh token is rotated, for the grace
//!   window; while it exists a replay is another tab, after that it is reuse;
//! - `<prefix>{<sid>}:reused`: the session was revoked because the token it names was replayed.

use std::sync::LazyLock;

use deadpool_redis::Connection;
use deadpool_redis::redis::{self, AsyncCommands, Script};
use uuid::Uuid;

use crate::error::Result;
use crate::store::millis;
use crate::store::redis::{RedisPool, command_failed, entry};
use crate::store::rotation::{self, Rotate, Rotation, Seen, Step};
use crate::store::sessions::{NewSession, TokenRef};

/// Rotates a refresh entry into its successors if it still holds what was read. Every key
/// it touches is passed in KEYS, as Redis Cluster and ACLs require.
/// KEYS: old refresh entry, session, old access entry, new access entry, new refresh entry,
/// grace marker of the old refresh entry.
/// ARGV: the old refresh entry as read, its rotated value, the new access value, the new
/// refresh value, access TTL ms, refresh TTL ms, grace ms.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
-- The old entry stays until its token expires, naming its successors: a replay inside the
-- grace window gets them again, a replay after it is detected as reuse.
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('SET', KEYS[6], '1', 'PX', ARGV[7])
-- The previous access token keeps working only through the grace window.
if redis.call('PTTL', KEYS[3]) > tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[5])
redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
",
    )
});

pub struct Sessions {
    pool: RedisPool,
    prefix: String,
}

impl Sessions {
    pub fn new(pool: RedisPool, prefix: &str) -> Self {
        Sessions {
            pool,
            prefix: prefix.to_owned(),
        }
    }

    fn session_key(&self, sid: Uuid) -> String {
        format!("{}{{{sid}}}:sess", self.prefix)
    }

    fn token_key(&self, sid: Uuid, token_uuid: Uuid) -> String {
        format!("{}{{{sid}}}:tok:{token_uuid}", self.prefix)
    }

    fn grace_key(&self, sid: Uuid, refresh: Uuid) -> String {
        format!("{}{{{sid}}}:grace:{refresh}", self.prefix)
    }

    fn reused_key(&self, sid: Uuid) -> String {
        format!("{}{{{sid}}}:reused", self.prefix)
    }

    pub async fn create(&self, session: &NewSession) -> Result<()> {
        let NewSession {
            user,
            sid,
            access,
            refresh,
        } = *session;
        let mut conn = self.pool.get().await?;
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.session_key(sid))
            .arg(entry::session(user))
            .arg("PX")
            .arg(refresh.expires_at.ttl_ms())
            .cmd("SET")
            .arg(self.token_key(sid, access.token_uuid))
            .arg(entry::access(user))
            .arg("PX")
            .arg(access.expires_at.ttl_ms())
            .cmd("SET")
            .arg(self.token_key(sid, refresh.token_uuid))
            .arg(entry::refresh_live(user, access.token_uuid))
            .arg("PX")
            .arg(refresh.expires_at.ttl_ms())
            .query_async(&mut *conn)
            .await
            .map_err(command_failed)?;
        Ok(())
    }

    pub async fn is_live(&self, token: &TokenRef) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let (value, session): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(self.token_key(token.sid, token.token_uuid))
            .arg(self.session_key(token.sid))
            .query_async(&mut *conn)
            .await
            .map_err(command_failed)?;
        let owned = |v: Option<String>| v.is_some_and(|v| entry::owned_by(&v, token.user));
        Ok(owned(value) && owned(session))
    }

    pub async fn rotate(&self, rotate: &Rotate) -> Result<Rotation> {
        let mut conn = self.pool.get().await?;
        // An entry changes state once (live to rotated), so a lost race settles on the
        // second read, which takes the grace path.
        for _ in 0..2 {
            let (seen, value) = self.look(&mut conn, rotate).await?;
            match rotation::decide(&seen) {
                Step::Answer(answer) => return Ok(answer),
                Step::FollowChain(successor) => {
                    let lookup = async |refresh| {
                        let key = self.token_key(rotate.sid, refresh);
                        let value: Option<String> = conn.get(key).await.map_err(command_failed)?;
                        Ok(value.and_then(|v| entry::parse_refresh(&v, rotate.user)))
                    };
                    let newest = rotation::newest(successor, lookup).await?;
                    return Ok(newest.map_or(Rotation::Revoked, Rotation::InGrace));
                }
                Step::RevokeForReuse => {
                    let _: () = redis::pipe()
                        .atomic()
                        .del(self.session_key(rotate.sid))
                        .cmd("SET")
                        .arg(self.reused_key(rotate.sid))
                        .arg(entry::reused(rotate.presented))
                        .arg("PX")
                        .arg(rotate.refresh_expires.ttl_ms())
                        .query_async(&mut *conn)
                        .await
                        .map_err(command_failed)?;
                    return Ok(Rotation::Reused);
                }
                Step::Rotate { old_access } => {
                    let value = value.unwrap_or_default();
                    if self
                        .try_rotate(&mut conn, rotate, old_access, &value)
                        .await?
                    {
                        return Ok(Rotation::Rotated);
                    }
                }
            }
        }
        Ok(Rotation::Revoked)
    }

    /// The presented entry (as read, and as understood) and the state of its session, in
    /// one round trip.
    async fn look(&self, conn: &mut Connection, rotate: &Rotate) -> Result<(Seen, Option<String>)> {
        let (value, session, in_grace, reused): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = redis::cmd("MGET")
            .arg(self.token_key(rotate.sid, rotate.presented))
            .arg(self.session_key(rotate.sid))
            .arg(self.grace_key(rotate.sid, rotate.presented))
            .arg(self.reused_key(rotate.sid))
            .query_async(&mut **conn)
            .await
            .map_err(command_failed)?;
        let seen = Seen {
            entry: value
                .as_deref()
                .and_then(|v| entry::parse_refresh(v, rotate.user)),
            session: session.is_some_and(|v| entry::owned_by(&v, rotate.user)),
            in_grace: in_grace.is_some(),
            reused: reused.is_some_and(|v| v == entry::reused(rotate.presented)),
        };
        Ok((seen, value))
    }

    /// Runs ROTATE; `false` if the entry changed since it was read (another racer won).
    async fn try_rotate(
        &self,
        conn: &mut Connection,
        rotate: &Rotate,
        old_access: Uuid,
        value: &str,
    ) -> Result<bool> {
        let (sid, next) = (rotate.sid, rotate.next);
        let won: i64 = ROTATE
            .key(self.token_key(sid, rotate.presented))
            .key(self.session_key(sid))
            .key(self.token_key(sid, old_access))
            .key(self.token_key(sid, next.access))
            .key(self.token_key(sid, next.refresh))
            .key(self.grace_key(sid, rotate.presented))
            .arg(value)
            .arg(entry::refresh_rotated(value, &next))
            .arg(entry::access(rotate.user))
            .arg(entry::refresh_live(rotate.user, next.access))
            .arg(rotate.access_expires.ttl_ms())
            .arg(rotate.refresh_expires.ttl_ms())
            .arg(millis(rotate.grace))
            .invoke_async(&mut **conn)
            .await
            .map_err(command_failed)?;
        Ok(won == 1)
    }

    pub async fn end(&self, tokens: &[TokenRef]) -> Result<()> {
        // One DEL per session: keys of different sessions may live on different cluster nodes.
        let mut pipe = redis::pipe();
        for token in tokens {
            pipe.del(&[
                self.session_key(token.sid),
                self.token_key(token.sid, token.token_uuid),
                self.grace_key(token.sid, token.token_uuid),
            ])
            .ignore();
        }
        let mut conn = self.pool.get().await?;
        let _: () = pipe.query_async(&mut *conn).await.map_err(command_failed)?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        self.pool.ping().await
    }
}
