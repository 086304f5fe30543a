//! Failed-login counters in Redis.

use std::time::Duration;

use deadpool_redis::redis;

use crate::error::Result;
use crate::store::attempts::Count;
use crate::store::millis;
use crate::store::redis::{RedisPool, command_failed};

/// Counts one attempt; a counter without a TTL (never expected) gets one, so none is permanent.
/// KEYS: the counter. ARGV: window ms. Returns the count and the ms left in the window.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
";

/// Takes back one attempt, unless the window has already ended (and never below zero).
const UNCOUNT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

pub struct Counters {
    pool: RedisPool,
    prefix: String,
}

impl Counters {
    pub fn new(pool: RedisPool, prefix: &str) -> Self {
        Counters {
            pool,
            prefix: prefix.to_owned(),
        }
    }

    pub async fn count(&self, key: &str, window: Duration) -> Result<Count> {
        let mut conn = self.pool.get().await?;
        let (attempts, ttl_ms): (u64, u64) = redis::cmd("EVAL")
            .arg(COUNT)
            .arg(1)
            .arg(format!("{}{key}", self.prefix))
            .arg(millis(window))
            .query_async(&mut *conn)
            .await
            .map_err(command_failed)?;
        Ok(Count {
            attempts,
            ttl: Duration::from_millis(ttl_ms),
        })
    }

    pub async fn clear(&self, email_key: &str, ip_key: Option<&str>) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.del(format!("{}{email_key}", self.prefix)).ignore();
        if let Some(ip_key) = ip_key {
            pipe.cmd("EVAL")
                .arg(UNCOUNT)
                .arg(1)
                .arg(format!("{}{ip_key}", self.prefix))
                .ignore();
        }
        let mut conn = self.pool.get().await?;
        let _: () = pipe.query_async(&mut *conn).await.map_err(command_failed)?;
        Ok(())
    }
}
