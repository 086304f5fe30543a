//! The only code that talks to Postgres and Redis. Handlers and services use these types,
//! so another backend can replace one without touching them.

pub mod attempts;
pub mod redis_pool;
pub mod sessions;
pub mod users;

pub use redis_pool::RedisPool;
pub use sessions::SessionStore;
pub use users::UserStore;

/// Milliseconds for a Redis TTL: at least 1, since Redis refuses 0.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
