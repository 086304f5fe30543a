//! Failed-login counters in Redis, per email and per client IP, shared by every instance.
//!
//! Each attempt is counted before the password is checked, so parallel guesses cannot slip
//! past the limit; a success takes its own count back. A counter is a fixed window that
//! starts at its first failure and expires with it: nobody is locked out for longer.

use std::net::IpAddr;
use std::time::Duration;

use aws_lc_rs::digest;
use deadpool_redis::Connection;
use deadpool_redis::redis;

use crate::error::Result;
use crate::store::{RedisPool, millis};

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

/// Takes back one attempt, unless the window has already expired.
const UNCOUNT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
return 0
";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_email: u32,
    pub per_ip: u32,
    pub window: Duration,
}

#[derive(Clone)]
pub struct LoginAttempts {
    pool: RedisPool,
    prefix: String,
    limits: Limits,
}

/// Whether an attempt may go on to the password check.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited { retry_after: Duration },
}

impl LoginAttempts {
    pub fn new(pool: RedisPool, prefix: String, limits: Limits) -> Self {
        LoginAttempts {
            pool,
            prefix,
            limits,
        }
    }

    /// The email is hashed: the counters need no address in clear in Redis.
    fn email_key(&self, email: &str) -> String {
        let digest = digest::digest(&digest::SHA256, email.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{}login:email:{hex}", self.prefix)
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        format!("{}login:ip:{}", self.prefix, ip_block(ip))
    }

    /// Counts an attempt for `email` (normalized) from `ip`. The IP is counted first, and an
    /// IP over its limit counts against no email: one client must not lock out every account.
    pub async fn begin(&self, email: &str, ip: Option<IpAddr>) -> Result<Verdict> {
        let mut conn = self.pool.get().await?;
        if let Some(ip) = ip {
            let by_ip = count(&mut conn, self.ip_key(ip), self.limits).await?;
            if by_ip.is_over(self.limits.per_ip) {
                return Ok(by_ip.verdict());
            }
        }
        let by_email = count(&mut conn, self.email_key(email), self.limits).await?;
        Ok(if by_email.is_over(self.limits.per_email) {
            by_email.verdict()
        } else {
            Verdict::Allowed
        })
    }

    /// A success clears the email's failures and takes back its attempt from the IP's count.
    pub async fn succeeded(&self, email: &str, ip: Option<IpAddr>) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.del(self.email_key(email)).ignore();
        if let Some(ip) = ip {
            pipe.cmd("EVAL")
                .arg(UNCOUNT)
                .arg(1)
                .arg(self.ip_key(ip))
                .ignore();
        }
        let mut conn = self.pool.get().await?;
        let _: () = pipe.query_async(&mut *conn).await?;
        Ok(())
    }
}

/// A counter after one more attempt, and the time left in its window.
struct Count {
    attempts: u64,
    ttl: Duration,
}

impl Count {
    fn is_over(&self, limit: u32) -> bool {
        self.attempts > u64::from(limit)
    }

    fn verdict(&self) -> Verdict {
        Verdict::Limited {
            retry_after: self.ttl,
        }
    }
}

async fn count(conn: &mut Connection, key: String, limits: Limits) -> Result<Count> {
    let (attempts, ttl_ms): (u64, u64) = redis::cmd("EVAL")
        .arg(COUNT)
        .arg(1)
        .arg(key)
        .arg(millis(limits.window))
        .query_async(&mut **conn)
        .await?;
    Ok(Count {
        attempts,
        ttl: Duration::from_millis(ttl_ms),
    })
}

/// The block one client controls: the address itself for IPv4, its /64 for IPv6 (a single
/// host usually holds a whole /64, so counting per address would be no limit at all).
fn ip_block(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_block(a), ip_block(b));
        assert_ne!(ip_block(a), ip_block(other));
        assert_eq!(ip_block("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(ip_block("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
