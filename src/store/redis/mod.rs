//! Sessions and login counters in Redis, through one bounded pool.

pub mod attempts;
pub mod entry;
pub mod sessions;

use std::time::Duration;

use deadpool_redis::redis::{AsyncConnectionConfig, RedisError};
use deadpool_redis::{Connection, Manager, Pool, PoolConfig, PoolError, Runtime, Timeouts};

use crate::error::{AppError, Result};
use crate::store::STORE_TIMEOUT;

/// A Redis command takes well under a millisecond; no answer this late means a frozen server.
/// deadpool's timeouts cover only the checkout, not the commands sent afterwards.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The pool, with its checkout bounded as a whole.
///
/// deadpool bounds each step (the wait for a slot, one recycle, one create), but a checkout
/// recycles idle connections one after another. Against a frozen server each recycle costs
/// a response timeout, so a full pool of 32 held a request for 17 s.
#[derive(Clone)]
pub struct RedisPool {
    pool: Pool,
}

impl RedisPool {
    /// A live connection within the store timeout, or 503.
    pub async fn get(&self) -> Result<Connection> {
        match tokio::time::timeout(STORE_TIMEOUT, self.pool.get()).await {
            Ok(conn) => conn.map_err(fail),
            Err(_) => Err(AppError::unavailable(
                "redis",
                "no connection within the timeout",
            )),
        }
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.get().await?;
        let _: String = deadpool_redis::redis::cmd("PING")
            .query_async(&mut *conn)
            .await
            .map_err(command_failed)?;
        Ok(())
    }
}

/// A lazy pool: the service starts while Redis is down, and answers 503 until it is up.
pub fn connect(url: &str) -> Result<RedisPool, String> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let manager =
        Manager::new_with_config(url, connection).map_err(|e| format!("REDIS_URL: {e}"))?;
    let mut config = PoolConfig::new(32);
    config.timeouts = Timeouts {
        wait: Some(STORE_TIMEOUT),
        create: Some(STORE_TIMEOUT),
        recycle: Some(STORE_TIMEOUT),
    };
    let pool = Pool::builder(manager)
        .config(config)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| format!("REDIS_URL: {e}"))?;
    Ok(RedisPool { pool })
}

fn fail(e: PoolError) -> AppError {
    AppError::unavailable("redis", e)
}

/// A Redis that is gone or frozen is 503; a refused command is a defect.
pub fn command_failed(e: RedisError) -> AppError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        AppError::unavailable("redis", e)
    } else {
        AppError::internal(e)
    }
}
