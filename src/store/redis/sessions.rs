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
//! - `<prefix>{<user>}:<sid>:meta`: a hash of what the user's list of sessions shows
//!   (`created_at`, `last_used_at` in Unix ms, `user_agent`, `ip`), alive with the session;
//! - `<prefix>{<user>}:sessions`: the user's index, a sorted set of sids scored by when each
//!   session ends, so that listing them scans only this user's sessions; an entry whose
//!   session is gone is dropped when the list is read;
//! - `<prefix>{<user>}:stamp`: changes whenever the user changes (`Stamp`);
//! - `<prefix>{<user>}:fence`: written (for a second) only with `REDIS_WAIT_REPLICAS`, just
//!   before each `WAIT` (`write.rs`).

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::{Script, Value};
use uuid::Uuid;

use crate::clock::{millis, now_ms};
use crate::store::error::Result;
use crate::store::redis::write::evalsha;
use crate::store::redis::{Redis, entry};
use crate::store::rotation::{self, RefreshState, Rotate, Rotation, Seen, Step};
use crate::store::sessions::{
    Check, Created, Device, Ended, NewSession, SessionInfo, SessionStore, Stamp, TokenRef, Vouched,
};

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
/// marker of the presented entry, reuse marker, user stamp, session details, user's index.
/// ARGV: user id, new access value, new refresh value, access TTL ms, refresh TTL ms,
/// grace ms, the stamp the caller read the user under ('' for none), the key prefix of the
/// session's token entries, next access uuid, next refresh uuid, iat, now (Unix ms), sid.
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
    redis.call('HSET', KEYS[8], 'last_used_at', ARGV[12])
    redis.call('PEXPIRE', KEYS[8], ARGV[5])
    redis.call('ZADD', KEYS[9], tonumber(ARGV[12]) + tonumber(ARGV[5]), ARGV[13])
    -- The index only ever gets longer to live: it must outlast every session it lists.
    if redis.call('PTTL', KEYS[9]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[9], ARGV[5]) end
    return {'rotated'}
  end
end
return {'seen', value or false, session or false, redis.call('EXISTS', KEYS[5]), redis.call('GET', KEYS[6]) or false}
",
    )
});

/// A login's session, written only if the user's stamp is still the one the login read before
/// it read the user: a change to the user (a new password, a deletion) moves the stamp before
/// it ends the user's sessions, so a login that checked the old password either wrote its
/// session before that sweep, which ends it, or finds the stamp moved and writes nothing.
/// KEYS: user stamp, session, access entry, refresh entry, session details, user's index.
/// ARGV: the stamp read, session value, access value, access TTL ms, refresh value, refresh
/// TTL ms, now (Unix ms), user agent, ip, sid, index score.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[6])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
redis.call('HSET', KEYS[5], 'created_at', ARGV[7], 'last_used_at', ARGV[7], 'user_agent', ARGV[8], 'ip', ARGV[9])
redis.call('PEXPIRE', KEYS[5], ARGV[6])
redis.call('ZADD', KEYS[6], ARGV[11], ARGV[10])
if redis.call('PTTL', KEYS[6]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[6], ARGV[6]) end
return 1
",
    )
});

/// Ends every session in the user's index but one, in one step: no session can be written
/// between reading the index and ending what it lists. Returns how many were live.
/// KEYS: the user's index. ARGV: the prefix of the user's keys (`<prefix>{user}:`), the sid
/// to keep ('' for none). The session keys are not in KEYS: the index names them, and they
/// carry the same `{user}` tag, so they are in the same cluster slot.
static END_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[2] then
    ended = ended + redis.call('DEL', ARGV[1] .. sid .. ':sess')
    redis.call('DEL', ARGV[1] .. sid .. ':meta')
    redis.call('ZREM', KEYS[1], sid)
  end
end
return ended
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

    fn details_key(&self, user: Uuid, sid: Uuid) -> String {
        format!("{}meta", self.session_prefix(user, sid))
    }

    fn index_key(&self, user: Uuid) -> String {
        format!("{}{{{user}}}:sessions", self.prefix)
    }

    fn fence_key(&self, user: Uuid) -> String {
        format!("{}{{{user}}}:fence", self.prefix)
    }
}

impl SessionStore for Sessions {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, session: &NewSession, vouched: &Vouched) -> Result<Created> {
        let NewSession {
            user,
            sid,
            access,
            refresh,
            ref device,
        } = *session;
        let Stamp::Is(stamp) = &vouched.stamp else {
            // This store always keeps a stamp: one that is not there changed.
            return Ok(Created::UserChanged);
        };
        let now = now_ms();
        // The index lives as long as its longest-lived session: the sweep of a password
        // change and the list find sessions only through it.
        let ttl = refresh.expires_at.ttl_ms();
        let keys = [
            stamp_key(&self.prefix, user),
            self.session_key(user, sid),
            self.token_key(user, sid, access.token_uuid),
            self.token_key(user, sid, refresh.token_uuid),
            self.details_key(user, sid),
            self.index_key(user),
        ];
        let mut call = evalsha(&CREATE, &keys);
        call.arg(stamp)
            .arg(entry::session(user))
            .arg(entry::access(user))
            .arg(access.expires_at.ttl_ms())
            .arg(entry::refresh_live(user, access.token_uuid))
            .arg(ttl)
            .arg(now)
            .arg(&device.user_agent)
            .arg(&device.ip)
            .arg(sid.to_string())
            .arg(now.saturating_add(ttl));
        let fence = self.fence_key(user);
        let created: i64 = self.redis.script(&CREATE, &call, &fence).await?;
        Ok(if created == 1 {
            Created::Created
        } else {
            Created::UserChanged
        })
    }

    async fn list(&self, user: Uuid) -> Result<Vec<SessionInfo>> {
        let index = self.index_key(user);
        let now = now_ms();
        let listed: Vec<String> = self
            .redis
            .run(async |c| {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&index)
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .query_async(c)
                    .await
            })
            .await?;
        let sids: Vec<Uuid> = listed.iter().filter_map(|s| s.parse().ok()).collect();
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for &sid in &sids {
            pipe.get(self.session_key(user, sid))
                .hgetall(self.details_key(user, sid));
        }
        let values: Vec<Value> = self.redis.run(async |c| pipe.query_async(c).await).await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (&sid, pair) in sids.iter().zip(values.chunks(2)) {
            let session: Option<String> = pair
                .first()
                .and_then(|v| redis::from_redis_value_ref(v).ok())
                .flatten();
            let details: HashMap<String, String> = pair
                .get(1)
                .and_then(|v| redis::from_redis_value_ref(v).ok())
                .unwrap_or_default();
            if session.is_some_and(|v| entry::owned_by(&v, user)) {
                live.push(info(sid, &details));
            } else {
                gone.push(sid.to_string());
            }
        }
        // Tidying only: the list above is already right without it.
        let mut tidy = redis::pipe();
        tidy.cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now)
            .ignore();
        if !gone.is_empty() {
            tidy.zrem(&index, &gone).ignore();
        }
        let () = self.redis.run(async |c| tidy.query_async(c).await).await?;
        Ok(live)
    }

    async fn end_one(&self, user: Uuid, sid: Uuid) -> Result<Ended> {
        let session = self.session_key(user, sid);
        // The session's key names its user: another user's sid is simply not there.
        let answers = self
            .redis
            .transaction(
                &self.fence_key(user),
                &[
                    cmd("DEL", &[&session]),
                    cmd("DEL", &[&self.details_key(user, sid)]),
                    cmd("ZREM", &[&self.index_key(user), &sid.to_string()]),
                ],
            )
            .await?;
        let ended: u64 = answers
            .first()
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or(0);
        Ok(Ended::from_count(ended))
    }

    async fn end_all(&self, user: Uuid, keep: Option<Uuid>) -> Result<usize> {
        let index = [self.index_key(user)];
        let mut call = evalsha(&END_ALL, &index);
        call.arg(format!("{}{{{user}}}:", self.prefix))
            .arg(keep.map_or_else(String::new, |k| k.to_string()));
        let fence = self.fence_key(user);
        let ended: i64 = self.redis.script(&END_ALL, &call, &fence).await?;
        Ok(usize::try_from(ended).unwrap_or(0))
    }

    async fn check(&self, token: &TokenRef) -> Result<Check> {
        let keys = [
            self.token_key(token.user, token.sid, token.token_uuid),
            self.session_key(token.user, token.sid),
            stamp_key(&self.prefix, token.user),
        ];
        let (value, session, stamp): (Option<String>, Option<String>, Option<String>) = self
            .redis
            .run(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
            .await?;
        let rotated = value
            .as_deref()
            .and_then(|v| entry::parse_refresh(v, token.user));
        let owned = |v: Option<String>| v.is_some_and(|v| entry::owned_by(&v, token.user));
        Ok(Check {
            live: owned(value) && owned(session),
            rotated: matches!(rotated, Some(RefreshState::Rotated(_))),
            stamp: stamp.map_or(Stamp::Missing, Stamp::Is),
        })
    }

    async fn stamp(&self, user: Uuid) -> Result<Stamp> {
        let mut stamp = STAMP.prepare_invoke();
        stamp
            .key(stamp_key(&self.prefix, user))
            .arg(Uuid::new_v4().to_string())
            .arg(STAMP_TTL_MS);
        let stamp: String = self
            .redis
            .run(async |c| stamp.invoke_async(c).await)
            .await?;
        Ok(Stamp::Is(stamp))
    }

    async fn user_changed(&self, user: Uuid) -> Result<()> {
        let key = stamp_key(&self.prefix, user);
        let fresh = Uuid::new_v4().to_string();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(fresh).arg("PX").arg(STAMP_TTL_MS);
        self.redis
            .transaction(&self.fence_key(user), &[set])
            .await
            .map(drop)
    }

    async fn rotate(&self, rotate: &Rotate, stamp: Option<&str>) -> Result<Rotation> {
        let (user, sid, next) = (rotate.user, rotate.sid, rotate.next);
        let keys = [
            self.token_key(user, sid, rotate.presented),
            self.session_key(user, sid),
            self.token_key(user, sid, next.access),
            self.token_key(user, sid, next.refresh),
            self.grace_key(user, sid, rotate.presented),
            self.reused_key(user, sid),
            stamp_key(&self.prefix, user),
            self.details_key(user, sid),
            self.index_key(user),
        ];
        let mut call = evalsha(&REFRESH, &keys);
        call.arg(user.to_string())
            .arg(entry::access(user))
            .arg(entry::refresh_live(user, next.access))
            .arg(rotate.access_expires.ttl_ms())
            .arg(rotate.refresh_expires.ttl_ms())
            .arg(millis(rotate.grace))
            .arg(stamp.unwrap_or(""))
            .arg(format!("{}tok:", self.session_prefix(user, sid)))
            .arg(next.access.to_string())
            .arg(next.refresh.to_string())
            .arg(next.iat)
            .arg(now_ms())
            .arg(sid.to_string());
        let fence = self.fence_key(user);
        let answer: Vec<Value> = self.redis.script(&REFRESH, &call, &fence).await?;
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
                // Each read takes the session with the entry, in one MGET: a logout or a
                // revocation that lands while the chain is read breaks the chain, so no 200
                // leaves with the tokens of a session that has ended (the rotation model found
                // this, with separate GETs).
                let session = self.session_key(user, sid);
                let lookup = async |refresh| {
                    let keys = [self.token_key(user, sid, refresh), session.clone()];
                    let (value, live): (Option<String>, Option<String>) = self
                        .redis
                        .run(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
                        .await?;
                    if !live.is_some_and(|v| entry::owned_by(&v, user)) {
                        return Ok(None);
                    }
                    Ok(value.and_then(|v| entry::parse_refresh(&v, user)))
                };
                let Some(newest) = rotation::newest(successor, lookup).await? else {
                    return Ok(Rotation::Revoked);
                };
                // The successors were written by other requests, maybe just now.
                self.redis.settle(&fence).await?;
                Ok(Rotation::InGrace(newest))
            }
            Step::RevokeForReuse => {
                let session = self.session_key(user, sid);
                let mut mark = redis::cmd("SET");
                mark.arg(self.reused_key(user, sid))
                    .arg(entry::reused(rotate.presented))
                    .arg("PX")
                    .arg(rotate.refresh_expires.ttl_ms());
                self.redis
                    .transaction(&fence, &[cmd("DEL", &[&session]), mark])
                    .await?;
                Ok(Rotation::Reused)
            }
            // The script rotates every live entry of a live session itself; what it
            // declined is not rotatable.
            Step::Rotate { .. } => Ok(Rotation::Revoked),
        }
    }

    async fn end(&self, tokens: &[TokenRef]) -> Result<()> {
        // One round trip per session (a logout names one or two): sessions of different
        // users may live on different cluster nodes.
        for token in tokens {
            let (user, sid) = (token.user, token.sid);
            let keys = [
                self.session_key(user, sid),
                self.token_key(user, sid, token.token_uuid),
                self.grace_key(user, sid, token.token_uuid),
                self.details_key(user, sid),
            ];
            let mut del = redis::cmd("DEL");
            del.arg(&keys);
            let zrem = cmd("ZREM", &[&self.index_key(user), &sid.to_string()]);
            self.redis
                .transaction(&self.fence_key(user), &[del, zrem])
                .await?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.redis.ping().await
    }
}

/// A session's details as stored; a field that is missing or unreadable reads as empty or 0.
fn info(sid: Uuid, details: &HashMap<String, String>) -> SessionInfo {
    let text = |field: &str| details.get(field).cloned().unwrap_or_default();
    let ms = |field: &str| details.get(field).and_then(|v| v.parse().ok()).unwrap_or(0);
    SessionInfo {
        sid,
        created_at: ms("created_at"),
        last_used_at: ms("last_used_at"),
        device: Device {
            user_agent: text("user_agent"),
            ip: text("ip"),
        },
    }
}

/// A command with string arguments.
fn cmd(name: &str, args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(args);
    cmd
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
