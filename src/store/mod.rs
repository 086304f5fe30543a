//! The only code that talks to Postgres and Redis. Handlers and services use these types,
//! so another backend can replace one without touching them.

pub mod redis_pool;
pub mod sessions;
pub mod users;

pub use redis_pool::RedisPool;
pub use sessions::SessionStore;
pub use users::UserStore;
