//! Instants and durations in Unix milliseconds, for tokens and the stores. A leaf: it uses
//! nothing else of the crate.

use std::time::Duration;

/// An instant, in Unix milliseconds, at which a stored entry ends. Absolute, so that each
/// backend can keep it as it likes: a relative TTL in Redis, a column in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiresAt(i64);

impl ExpiresAt {
    pub fn from_unix_ms(ms: i64) -> Self {
        ExpiresAt(ms)
    }

    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// What is left of it, in milliseconds: at least 1, since Redis refuses a TTL of 0.
    pub fn ttl_ms(self) -> i64 {
        self.0.saturating_sub(now_ms()).max(1)
    }
}

/// The wall clock in Unix milliseconds; tokens' `exp` is measured against the same clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds of a duration, for TTLs and windows: at least 1.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}
