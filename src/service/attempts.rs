//! The login limits: failed-login counters, per email and per client IP, shared by every
//! instance.
//!
//! Each attempt is counted before the password is checked, so parallel guesses cannot slip
//! past the limit; a success takes its own count back. A counter is a fixed window that
//! starts at its first attempt and ends with it: nobody is locked out for longer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;

use crate::domain::Email;
use crate::error::Result;
use crate::store::Stores;
use crate::store::attempts::{Count, CounterStore};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_email: u32,
    pub per_ip: u32,
    pub window: Duration,
}

/// Whether an attempt may go on to the password check.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited { retry_after: Duration },
}

fn is_over(count: &Count, limit: u32) -> bool {
    count.attempts > u64::from(limit)
}

fn limited(count: &Count) -> Verdict {
    Verdict::Limited {
        retry_after: count.ttl,
    }
}

pub struct LoginAttempts {
    stores: Arc<Stores>,
    limits: Limits,
}

impl LoginAttempts {
    pub fn new(stores: Arc<Stores>, limits: Limits) -> Self {
        LoginAttempts { stores, limits }
    }

    /// Counts an attempt for `email` from `ip`. The IP is counted first, and an IP over its
    /// limit counts against no email: one client must not lock out every account.
    pub async fn begin(&self, email: &Email, ip: Option<IpAddr>) -> Result<Verdict> {
        let window = self.limits.window;
        if let Some(ip) = ip {
            let by_ip = self.stores.counters.count(&ip_key(ip), window).await?;
            if is_over(&by_ip, self.limits.per_ip) {
                return Ok(limited(&by_ip));
            }
        }
        let by_email = self
            .stores
            .counters
            .count(&email_key(email), window)
            .await?;
        Ok(if is_over(&by_email, self.limits.per_email) {
            limited(&by_email)
        } else {
            Verdict::Allowed
        })
    }

    /// A success clears the email's failures and takes back its attempt from the IP's count.
    pub async fn succeeded(&self, email: &Email, ip: Option<IpAddr>) -> Result<()> {
        let ip_key = ip.map(ip_key);
        let counters = &self.stores.counters;
        Ok(counters
            .clear(Some(&email_key(email)), ip_key.as_deref())
            .await?)
    }

    /// Takes back what `begin` counted, from the email and the IP, without clearing the
    /// email's earlier failures: a right password of a user with a second factor, or a right
    /// code outside a login, proves too little to forgive what came before.
    pub async fn forgive(&self, email: &Email, ip: Option<IpAddr>) -> Result<()> {
        let counters = &self.stores.counters;
        counters.clear(None, Some(&email_key(email))).await?;
        if let Some(ip) = ip {
            counters.clear(None, Some(&ip_key(ip))).await?;
        }
        Ok(())
    }

    /// Counts a request that costs an attacker nothing to repeat (a link's token, a mail
    /// asked for) against the client IP's failed-login counter: the same limit as logins.
    pub async fn begin_ip(&self, ip: Option<IpAddr>) -> Result<Verdict> {
        let Some(ip) = ip else {
            return Ok(Verdict::Allowed);
        };
        let by_ip = self
            .stores
            .counters
            .count(&ip_key(ip), self.limits.window)
            .await?;
        Ok(if is_over(&by_ip, self.limits.per_ip) {
            limited(&by_ip)
        } else {
            Verdict::Allowed
        })
    }

    /// Takes back what `begin_ip` counted: the request turned out genuine.
    pub async fn forgive_ip(&self, ip: Option<IpAddr>) -> Result<()> {
        let Some(ip) = ip else {
            return Ok(());
        };
        Ok(self.stores.counters.clear(None, Some(&ip_key(ip))).await?)
    }

    /// Counts one more mail to `address` in a window of `window`: how many so far.
    pub async fn count_mail(&self, address: &str, window: Duration) -> Result<u64> {
        let key = mail_key(address);
        Ok(self.stores.counters.count(&key, window).await?.attempts)
    }

    /// Takes back what `count_mail` counted: no mail went after all.
    pub async fn uncount_mail(&self, address: &str) -> Result<()> {
        let key = mail_key(address);
        Ok(self.stores.counters.clear(None, Some(&key)).await?)
    }
}

/// The email is hashed: the counters need no address in clear.
fn email_key(email: &Email) -> String {
    format!("login:email:{}", sha256_hex(email.as_str().as_bytes()))
}

/// Mails to one address; hashed like the email's login counter.
fn mail_key(address: &str) -> String {
    format!("mail:address:{}", sha256_hex(address.as_bytes()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = digest::digest(&digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn ip_key(ip: IpAddr) -> String {
    format!("login:ip:{}", ip_block(ip))
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

    #[test]
    fn email_keys_hold_no_address() {
        let key = email_key(&Email::normalize("Ada@Example.com"));
        assert_eq!(key, email_key(&Email::normalize("ada@example.com ")));
        assert!(key.starts_with("login:email:") && !key.contains("ada"));
        assert_eq!(key.len(), "login:email:".len() + 64);
    }
}
