//! Failed-login counters in Redis.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{AsyncCommands, Script};

use crate::clock::millis;
use crate::store::attempts::{Count, CounterStore};
use crate::store::error::Result;
use crate::store::redis::Redis;

/// Counts one attempt; a counter without a TTL (never expected) gets one, so none is permanent.
/// KEYS: the counter. ARGV: window ms. Returns the count and the ms left in the window.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
",
    )
});

/// Takes back one attempt, unless the window has already ended (and never below zero).
static UNCOUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
",
    )
});

/// Each counter is one key with one script, so it works the same on a cluster: the email's
/// and the IP's counters may live on different nodes, and no command touches both.
pub struct Counters {
    redis: Redis,
    prefix: String,
}

impl Counters {
    pub fn new(redis: Redis, prefix: &str) -> Self {
        Counters {
            redis,
            prefix: prefix.to_owned(),
        }
    }
}

impl CounterStore for Counters {
    async fn count(&self, key: &str, window: Duration) -> Result<Count> {
        let mut count = COUNT.prepare_invoke();
        count
            .key(format!("{}{key}", self.prefix))
            .arg(millis(window));
        let (attempts, ttl_ms): (u64, u64) = self
            .redis
            .run(async |c| count.invoke_async(c).await)
            .await?;
        Ok(Count {
            attempts,
            ttl: Duration::from_millis(ttl_ms),
        })
    }

    async fn clear(&self, email_key: Option<&str>, ip_key: Option<&str>) -> Result<()> {
        let email_key = email_key.map(|key| format!("{}{key}", self.prefix));
        let clear_email = async {
            match &email_key {
                Some(key) => self.redis.run(async |c| c.del::<_, ()>(key).await).await,
                None => Ok(()),
            }
        };
        let Some(ip_key) = ip_key else {
            return clear_email.await;
        };
        let mut uncount = UNCOUNT.prepare_invoke();
        uncount.key(format!("{}{ip_key}", self.prefix));
        let uncount_ip = self
            .redis
            .run(async |c| uncount.invoke_async::<i64>(c).await.map(drop));
        let (email, ip) = tokio::join!(clear_email, uncount_ip);
        email.and(ip)
    }
}
