//! Sessions, token entries and user stamps in Redis.
//!
//! Every key of one user shares the hash tag `{user}`, so all of them live in one Redis
//! Cluster slot: a request reads its token, its session and its user's stamp in one `MGET`,
//! and a script touching several of them stays atomic there.
//! - `<prefix>{<user>}:<sid>:sess`: the session (value: user id), alive as long as its
//!   newest refresh token;
//! - `<prefix>{<user>}:<sid>:tok:<token_uuid>`: one per issued token, alive until its token
//!   stops verifying (values in `entry.rs`);
//! - `<prefix>{<user>}:<sid>:grace:<token_uuid>`: set when a refresh token is rotated, for
//!   the grace window; while it exists a replay is another tab, after that it is reuse;
//! - `<prefix>{<user>}:<sid>:reused`: the session was revoked because the token it names
//!   was replayed;
//! - `<prefix>{<user>}:stamp`: changes whenever the user changes (`Stamp`).

use std::sync::LazyLock;

use redis::{AsyncCommands, Script, Value};
use uuid::Uuid;

use crate::error::Result;
use crate::store::millis;
use crate::store::redis::{Redis, entry};
use crate::store::rotation::{self, Rotate, Rotation, Seen, Step};
use crate::store::sessions::{Check, NewSession, Stamp, TokenRef};

/// How long a stamp is kept. One that ends is replaced by a new one at the next request,
/// which only costs the copies read under it a fresh read.
const STAMP_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The user's stamp, set to ARGV[1] if none is (`SET NX GET` in one step, which Redis
/// before 7.0 refuses). KEYS: the stamp. ARGV: a new stamp, TTL ms.
static STAMP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
",
    )
});

/// A refresh, in one round trip: rotates the presented entry if it is live and its session
/// is, or else returns what it found for `rotation::decide`.
/// KEYS: presented refresh entry, session, new access entry, new refresh entry, grace
/// marker of the presented entry, reuse marker, user stamp.
/// ARGV: user id, new access value, new refresh value, access TTL ms, refresh TTL ms,
/// grace ms, the stamp the caller read the user under ('' for none), the key prefix of the
/// session's token entries, next access uuid, next refresh uuid, iat.
/// The previous access entry is the one key not in KEYS: only the presented entry names it.
/// It carries the same `{user}` tag, so it is in the same slot, which is what Redis Cluster
/// requires of a script's keys.
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[7] ~= '' and redis.call('GET', KEYS[7]) ~= ARGV[7] then return {'user_changed'} end
local value = redis.call('GET', KEYS[1])
local session = redis.call('GET', KEYS[2])
if value and session == ARGV[1] then
  local user, access = string.match(value, '^([^|]+)|([^|]+)$')
  if user == ARGV[1] then
    -- The entry stays until its token expires, naming its successors: a replay inside the
    -- grace window gets them again, a replay after it is detected as reuse.
    redis.call('SET', KEYS[1], value .. '|' .. ARGV[9] .. '|' .. ARGV[10] .. '|' .. ARGV[11], 'KEEPTTL')
    redis.call('SET', KEYS[5], '1', 'PX', ARGV[6])
    -- The previous access token keeps working only through the grace window.
    local old_access = ARGV[8] .. access
    if redis.call('PTTL', old_access) > tonumber(ARGV[6]) then redis.call('PEXPIRE', old_access, ARGV[6]) end
    redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
    redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[5])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
    return {'rotated'}
  end
end
return {'seen', value or false, session or false, redis.call('EXISTS', KEYS[5]), redis.call('GET', KEYS[6]) or false}
",
    )
});

pub struct Sessions {
    redis: Redis,
    prefix: String,
}

/// The key of a user's stamp; public so that tools and tests can move it by hand.
pub fn stamp_key(prefix: &str, user: Uuid) -> String {
    format!("{prefix}{{{user}}}:stamp")
}

impl Sessions {
    pub fn new(redis: Redis, prefix: &str) -> Self {
        Sessions {
            redis,
            prefix: prefix.to_owned(),
        }
    }

    fn session_prefix(&self, user: Uuid, sid: Uuid) -> String {
        format!("{}{{{user}}}:{sid}:", self.prefix)
    }

    fn session_key(&self, user: Uuid, sid: Uuid) -> String {
        format!("{}sess", self.session_prefix(user, sid))
    }

    fn token_key(&self, user: Uuid, sid: Uuid, token_uuid: Uuid) -> String {
        format!("{}tok:{token_uuid}", self.session_prefix(user, sid))
    }

    fn grace_key(&self, user: Uuid, sid: Uuid, refresh: Uuid) -> String {
        format!("{}grace:{refresh}", self.session_prefix(user, sid))
    }

    fn reused_key(&self, user: Uuid, sid: Uuid) -> String {
        format!("{}reused", self.session_prefix(user, sid))
    }

    pub async fn create(&self, session: &NewSession) -> Result<()> {
        let NewSession {
            user,
            sid,
            access,
            refresh,
        } = *session;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.session_key(user, sid))
            .arg(entry::session(user))
            .arg("PX")
            .arg(refresh.expires_at.ttl_ms())
            .cmd("SET")
            .arg(self.token_key(user, sid, access.token_uuid))
            .arg(entry::access(user))
            .arg("PX")
            .arg(access.expires_at.ttl_ms())
            .cmd("SET")
            .arg(self.token_key(user, sid, refresh.token_uuid))
            .arg(entry::refresh_live(user, access.token_uuid))
            .arg("PX")
            .arg(refresh.expires_at.ttl_ms());
        self.redis.run(async |c| pipe.query_async(c).await).await
    }

    pub async fn check(&self, token: &TokenRef) -> Result<Check> {
        let keys = [
            self.token_key(token.user, token.sid, token.token_uuid),
            self.session_key(token.user, token.sid),
            stamp_key(&self.prefix, token.user),
        ];
        let (value, session, stamp): (Option<String>, Option<String>, Option<String>) = self
            .redis
            .run(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
            .await?;
        let owned = |v: Option<String>| v.is_some_and(|v| entry::owned_by(&v, token.user));
        Ok(Check {
            live: owned(value) && owned(session),
            stamp: stamp.map_or(Stamp::Missing, Stamp::Is),
        })
    }

    pub async fn stamp(&self, user: Uuid) -> Result<String> {
        let mut stamp = STAMP.prepare_invoke();
        stamp
            .key(stamp_key(&self.prefix, user))
            .arg(Uuid::new_v4().to_string())
            .arg(STAMP_TTL_MS);
        self.redis.run(async |c| stamp.invoke_async(c).await).await
    }

    pub async fn user_changed(&self, user: Uuid) -> Result<()> {
        let key = stamp_key(&self.prefix, user);
        let fresh = Uuid::new_v4().to_string();
        self.redis
            .run(async |c| c.pset_ex::<_, _, ()>(&key, &fresh, STAMP_TTL_MS).await)
            .await
    }

    pub async fn rotate(&self, rotate: &Rotate, stamp: Option<&str>) -> Result<Rotation> {
        let (user, sid, next) = (rotate.user, rotate.sid, rotate.next);
        let mut invocation = REFRESH.prepare_invoke();
        invocation
            .key(self.token_key(user, sid, rotate.presented))
            .key(self.session_key(user, sid))
            .key(self.token_key(user, sid, next.access))
            .key(self.token_key(user, sid, next.refresh))
            .key(self.grace_key(user, sid, rotate.presented))
            .key(self.reused_key(user, sid))
            .key(stamp_key(&self.prefix, user))
            .arg(user.to_string())
            .arg(entry::access(user))
            .arg(entry::refresh_live(user, next.access))
            .arg(rotate.access_expires.ttl_ms())
            .arg(rotate.refresh_expires.ttl_ms())
            .arg(millis(rotate.grace))
            .arg(stamp.unwrap_or(""))
            .arg(format!("{}tok:", self.session_prefix(user, sid)))
            .arg(next.access.to_string())
            .arg(next.refresh.to_string())
            .arg(next.iat);
        let answer: Vec<Value> = self
            .redis
            .run(async |c| invocation.invoke_async(c).await)
            .await?;
        let seen = match answer.first().and_then(text).as_deref() {
            Some("rotated") => return Ok(Rotation::Rotated),
            Some("user_changed") => return Ok(Rotation::UserChanged),
            _ => Seen {
                entry: answer
                    .get(1)
                    .and_then(text)
                    .and_then(|v| entry::parse_refresh(&v, user)),
                session: answer
                    .get(2)
                    .and_then(text)
                    .is_some_and(|v| entry::owned_by(&v, user)),
                in_grace: matches!(answer.get(3), Some(Value::Int(1))),
                reused: answer
                    .get(4)
                    .and_then(text)
                    .is_some_and(|v| v == entry::reused(rotate.presented)),
            },
        };
        match rotation::decide(&seen) {
            Step::Answer(answer) => Ok(answer),
            Step::FollowChain(successor) => {
                let lookup = async |refresh| {
                    let key = self.token_key(user, sid, refresh);
                    let value: Option<String> = self.redis.run(async |c| c.get(&key).await).await?;
                    Ok(value.and_then(|v| entry::parse_refresh(&v, user)))
                };
                let newest = rotation::newest(successor, lookup).await?;
                Ok(newest.map_or(Rotation::Revoked, Rotation::InGrace))
            }
            Step::RevokeForReuse => {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .del(self.session_key(user, sid))
                    .cmd("SET")
                    .arg(self.reused_key(user, sid))
                    .arg(entry::reused(rotate.presented))
                    .arg("PX")
                    .arg(rotate.refresh_expires.ttl_ms());
                let () = self.redis.run(async |c| pipe.query_async(c).await).await?;
                Ok(Rotation::Reused)
            }
            // The script rotates every live entry of a live session itself; what it
            // declined is not rotatable.
            Step::Rotate { .. } => Ok(Rotation::Revoked),
        }
    }

    pub async fn end(&self, tokens: &[TokenRef]) -> Result<()> {
        // One DEL per session (a logout names one or two): sessions of different users may
        // live on different cluster nodes.
        for token in tokens {
            let keys = [
                self.session_key(token.user, token.sid),
                self.token_key(token.user, token.sid, token.token_uuid),
                self.grace_key(token.user, token.sid, token.token_uuid),
            ];
            self.redis
                .run(async |c| c.del::<_, ()>(&keys).await)
                .await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        self.redis.ping().await
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
