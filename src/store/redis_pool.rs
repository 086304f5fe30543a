//! The Redis pool, with its checkout bounded as a whole.
//!
//! deadpool bounds each step (the wait for a slot, one recycle, one create), but a checkout
//! recycles idle connections one after another. Against a frozen server each recycle costs
//! a response timeout, so a full pool of 32 held a request for 17 s.

use std::time::Duration;

use deadpool_redis::{Connection, Pool};

use crate::error::{AppError, Result};

#[derive(Clone)]
pub struct RedisPool {
    pool: Pool,
    timeout: Duration,
}

impl RedisPool {
    pub fn new(pool: Pool, timeout: Duration) -> Self {
        RedisPool { pool, timeout }
    }

    /// A live connection within `timeout`, or 503.
    pub async fn get(&self) -> Result<Connection> {
        match tokio::time::timeout(self.timeout, self.pool.get()).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(AppError::unavailable(
                "redis",
                "no connection within the timeout",
            )),
        }
    }
}
