//! Session writes, acknowledged only once `REDIS_WAIT_REPLICAS` replicas have them.
//!
//! Redis replicates asynchronously: a master that dies right after answering a write can take
//! it with it, and the replica promoted in its place never saw it. For a rotation that means
//! the client holds a refresh token the new master never issued (the session is lost); for a
//! logout or an ended session, a session that comes back to life. `WAIT n timeout` answers
//! how many replicas have every write made so far *on its connection*, so it is sent right
//! after the write, in one pipeline, on the connection to the master that took the write: for
//! a cluster, the master of the user's slot (`Route::with_key`), the same route the write
//! takes. A Lua script cannot call `WAIT`.
//!
//! Just before the `WAIT` the pipeline sets the user's fence key (`<prefix>{user}:fence`, a
//! second to live). Every write moves the master's replication offset, and `WAIT` waits for
//! the offset of its connection's last write, so the fence makes it wait for everything the
//! master had by then, whichever connection wrote it: a refresh replayed in the grace
//! window hands out successors another instance wrote, and a logout of a session already
//! ended deletes nothing itself, and neither is acknowledged before that write is replicated.
//!
//! Fewer replicas than asked within `WAIT_TIMEOUT` is an outage (503): the write may or may
//! not survive a failover, and the client is not told it happened. That is safe to retry:
//! - a rotation that was not acknowledged leaves the client with its old refresh token; if
//!   the rotation survives, presenting it again inside the grace window
//!   (`REFRESH_REUSE_GRACE`) returns the very same successors, and if it did not, the old
//!   token is still live and rotates anew;
//! - a login that was not acknowledged leaves a session no client holds a token of, which
//!   expires with its refresh token; the client logs in again;
//! - a logout or ended session that was not acknowledged is reported as failed, so the
//!   client (or the user) tries again; ending is idempotent.

use std::time::Duration;

use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisResult, Script, ServerErrorKind, Value,
};

use crate::clock::millis;
use crate::store::error::{Result, StoreError};
use crate::store::redis::{Conn, Redis, command_failed};

/// How long a write waits for its replicas. Healthy replicas answer in about a network round
/// trip. A `WAIT` holds its connection, so writes queued behind it wait their turn: the
/// connection for waited writes answers within the store timeout rather than the 500 ms of
/// the shared one, so that a lagging replica gives 503s, not a dropped connection.
pub const WAIT_TIMEOUT: Duration = Duration::from_millis(250);

/// How long a fence key lives: it only has to move the replication offset.
const FENCE_TTL_MS: u64 = 1000;

/// `EVALSHA` of `script` on `keys`; add its arguments, then run it with `Redis::script`.
pub fn evalsha(script: &Script, keys: &[String]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

impl Redis {
    /// Runs a call made by `evalsha` as a session write; loads the script into a server that
    /// does not have it yet. `fence`: the user's fence key, in the slot of the call's keys.
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        call: &Cmd,
        fence: &str,
    ) -> Result<T> {
        let answer = self
            .write(fence, std::slice::from_ref(call), false, Some(script))
            .await?;
        redis::from_redis_value(answer).map_err(|e| StoreError::failed("redis", e))
    }

    /// Runs `commands` (on keys of `fence`'s slot) as one MULTI/EXEC session write; returns
    /// EXEC's answers, one per command.
    pub async fn transaction(&self, fence: &str, commands: &[Cmd]) -> Result<Vec<Value>> {
        let answer = self.write(fence, commands, true, None).await?;
        redis::from_redis_value(answer).map_err(|e| StoreError::failed("redis", e))
    }

    /// Returns once the replicas have everything the master of `fence`'s slot had: for an
    /// answer made of what other requests wrote. At once when no replicas are asked for.
    pub async fn settle(&self, fence: &str) -> Result<()> {
        if self.replicas > 0 {
            self.write(fence, &[], false, None).await?;
        }
        Ok(())
    }

    /// The answer of the write (its last command, or EXEC), once enough replicas have it.
    async fn write(
        &self,
        fence: &str,
        commands: &[Cmd],
        atomic: bool,
        script: Option<&Script>,
    ) -> Result<Value> {
        let mut pipe = redis::pipe();
        if atomic {
            pipe.cmd("MULTI");
        }
        for command in commands {
            pipe.add_command(command.clone());
        }
        if atomic {
            pipe.cmd("EXEC");
        }
        // The answer that matters: EXEC's, or the last command's.
        let at = pipe.len().checked_sub(1);
        if self.replicas > 0 {
            pipe.cmd("SET")
                .arg(fence)
                .arg("1")
                .arg("PX")
                .arg(FENCE_TTL_MS)
                .cmd("WAIT")
                .arg(self.replicas)
                .arg(millis(WAIT_TIMEOUT));
        }
        let route = Route::with_key(fence, SlotAddr::Master);
        let mut answers = self
            .writes
            .run(async |c| {
                let answers = send(c, &pipe, route).await?;
                match (script, answers.first()) {
                    (Some(script), Some(first)) if no_script(first) => {
                        script.load_async(c).await?;
                        send(c, &pipe, route).await
                    }
                    _ => Ok(answers),
                }
            })
            .await?;
        if self.replicas > 0 {
            // Anything but a count (a node demoted to replica refuses WAIT) is an outage.
            let acknowledged = match answers.pop() {
                Some(Value::Int(n)) => n,
                other => {
                    return Err(StoreError::unavailable(
                        "redis",
                        format!("WAIT answered {other:?}"),
                    ));
                }
            };
            if acknowledged < i64::from(self.replicas) {
                return Err(StoreError::unavailable(
                    "redis",
                    format!(
                        "{acknowledged} of {} replicas had the write within {} ms",
                        self.replicas,
                        millis(WAIT_TIMEOUT)
                    ),
                ));
            }
        }
        let Some(at) = at else {
            return Ok(Value::Nil);
        };
        let answer = answers
            .into_iter()
            .nth(at)
            .ok_or_else(|| StoreError::failed("redis", "a write went unanswered"))?;
        answer.extract_error().map_err(command_failed)
    }
}

/// Sends the pipeline to the master of `route`'s slot, on the connection to it.
async fn send(c: &mut Conn, pipe: &Pipeline, route: Route) -> RedisResult<Vec<Value>> {
    match c {
        Conn::Single(c) => {
            use redis::aio::ConnectionLike;
            c.req_packed_commands(pipe, 0, pipe.len()).await
        }
        Conn::Cluster(c) => {
            c.route_pipeline(
                pipe.clone(),
                0,
                pipe.len(),
                SingleNodeRoutingInfo::SpecificNode(route),
            )
            .await
        }
    }
}

fn no_script(answer: &Value) -> bool {
    matches!(answer, Value::ServerError(e) if ErrorKind::Server(ServerErrorKind::NoScript) == redis::RedisError::from(e.clone()).kind())
}
