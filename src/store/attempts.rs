//! Failed-login counters: the contract every backend keeps. The rule that reads them is
//! `service::attempts`.

use std::time::Duration;

use enum_dispatch::enum_dispatch;

use crate::store::error::Result;

/// A counter after one more attempt, and the time left in its window.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub attempts: u64,
    pub ttl: Duration,
}

/// The counters of one backend. Keys are the same on each: `login:email:<sha256>`,
/// `login:ip:<address or /64>` and `mail:address:<sha256>`.
#[enum_dispatch]
#[allow(async_fn_in_trait)] // Only ever called on the concrete enum, never through `dyn`.
pub trait CounterStore {
    /// One more attempt on `key`; a counter whose window has ended starts a new one.
    async fn count(&self, key: &str, window: Duration) -> Result<Count>;

    /// Clears the email's counter and takes one attempt back from the IP's (each if given;
    /// any counter's key works as `ip_key`).
    async fn clear(&self, email_key: Option<&str>, ip_key: Option<&str>) -> Result<()>;
}
