//! Sessions and login counters in Redis, over one shared multiplexed connection (or a
//! cluster connection).
//!
//! Why not a pool: every deadpool-redis checkout sends `UNWATCH` and `PING` before the
//! command, so `/api/users/me` paid three round trips for one `MGET`. With 64 concurrent
//! tasks doing that `MGET` (`cargo bench --bench redis_connections`), a pool of 32 gave
//! about 46k/s, one shared multiplexed connection 285k/s, four shared ones 210k/s: one
//! connection pipelines the commands of all requests on one socket. None of our commands
//! can block it (no `BLPOP`, no `WATCH`; atomic work is a script or a `MULTI` sent as one
//! pipeline). `docs/performance.md` has the figures.
//!
//! The one exception is `WAIT` (`REDIS_WAIT_REPLICAS`, see `write.rs`): it holds its
//! connection until replicas answer, so writes that wait get a connection of their own and
//! never delay the reads of other requests.

pub mod attempts;
pub mod entry;
pub mod sessions;
pub mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult,
    Value,
};
use tokio::runtime::Handle;
use tokio::sync::OnceCell;

use crate::config::RedisTarget;
use crate::store::error::{Result, STORE_TIMEOUT, StoreError};

/// A Redis command takes well under a millisecond; no answer this late means a frozen server.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A handle to Redis, cheap to clone. Nothing connects until the first command, so the
/// service starts while Redis is down and answers 503 until it is up.
#[derive(Clone)]
pub struct Redis {
    target: Arc<Target>,
    /// Where writes that wait for replicas go: a second connection (or cluster connection)
    /// when `replicas` > 0, else the shared one.
    writes: Arc<Target>,
    /// `REDIS_WAIT_REPLICAS`.
    replicas: u32,
}

enum Target {
    Single(Single),
    /// Connected on first use; then it follows the cluster's slots and reconnects by itself.
    Cluster(LazyCluster),
}

/// One server's shared connection, replaced after a failure: the next command after a
/// timeout or a drop connects anew, and a connection that failed in any way (refused,
/// a rejected password, a full server) is never kept.
struct Single {
    client: redis::Client,
    config: AsyncConnectionConfig,
    /// The connection and its generation, so that a failure drops only the connection it
    /// happened on, not one made since.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// The runtime that drives connections: the service's main one, not an HTTP worker's,
    /// so that no worker's CPU-bound work delays the Redis answers of the others.
    runtime: Handle,
}

struct LazyCluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
    runtime: Handle,
}

/// One connection of either kind, for the commands, pipelines and scripts of `redis`.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Small request-and-answer writes: Nagle's algorithm would hold them back.
fn tcp() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

impl Redis {
    /// Checks the settings only; see the type for when it connects. Call it on the runtime
    /// that should drive the connections. `replicas`: `REDIS_WAIT_REPLICAS`.
    pub fn new(target: &RedisTarget, replicas: u32) -> Result<Self, String> {
        let shared = Arc::new(Target::new(target, RESPONSE_TIMEOUT)?);
        let writes = if replicas > 0 {
            // A WAIT holds the connection: writes queue behind it (see `write.rs`).
            Arc::new(Target::new(target, STORE_TIMEOUT)?)
        } else {
            shared.clone()
        };
        Ok(Redis {
            target: shared,
            writes,
            replicas,
        })
    }

    /// Runs `work` on the shared connection, bounded by the store timeout as a whole:
    /// a request waits no longer than that for Redis, connecting included, then answers 503.
    pub async fn run<T>(&self, work: impl AsyncFnOnce(&mut Conn) -> RedisResult<T>) -> Result<T> {
        self.target.run(work).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.run(async |conn| redis::cmd("PING").query_async::<String>(conn).await)
            .await
            .map(drop)
    }
}

impl Target {
    fn new(target: &RedisTarget, response_timeout: Duration) -> Result<Self, String> {
        let runtime = Handle::current();
        Ok(match target {
            RedisTarget::Single(url) => {
                let info = url
                    .as_str()
                    .into_connection_info()
                    .map_err(|e| format!("REDIS_URL: {e}"))?
                    .set_tcp_settings(tcp());
                let client = redis::Client::open(info).map_err(|e| format!("REDIS_URL: {e}"))?;
                Target::Single(Single {
                    client,
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(response_timeout)),
                    current: Mutex::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                    generation: AtomicU64::new(0),
                    runtime,
                })
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(response_timeout)
                    .tcp_settings(tcp())
                    .retries(2)
                    .build()
                    .map_err(|e| format!("REDIS_CLUSTER_URLS: {e}"))?;
                Target::Cluster(LazyCluster {
                    client,
                    conn: OnceCell::new(),
                    runtime,
                })
            }
        })
    }

    async fn run<T>(&self, work: impl AsyncFnOnce(&mut Conn) -> RedisResult<T>) -> Result<T> {
        let bounded = async {
            let (generation, mut conn) = self.conn().await?;
            let result = work(&mut conn).await;
            if let (Err(e), Target::Single(single)) = (&result, self)
                && lost(e)
            {
                single.discard(generation);
            }
            result.map_err(command_failed)
        };
        match tokio::time::timeout(STORE_TIMEOUT, bounded).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::unavailable(
                "redis",
                "no answer within the timeout",
            )),
        }
    }

    async fn conn(&self) -> Result<(u64, Conn)> {
        match self {
            Target::Single(single) => {
                let (generation, conn) = single.conn().await?;
                Ok((generation, Conn::Single(conn)))
            }
            Target::Cluster(cluster) => {
                let conn = cluster
                    .conn
                    .get_or_try_init(|| {
                        let client = cluster.client.clone();
                        on(&cluster.runtime, async move {
                            client.get_async_connection().await
                        })
                    })
                    .await
                    .map_err(|e| StoreError::unavailable("redis", e))?;
                Ok((0, Conn::Cluster(conn.clone())))
            }
        }
    }
}

impl Single {
    fn held(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn conn(&self) -> Result<(u64, MultiplexedConnection)> {
        if let Some(held) = self.held() {
            return Ok(held);
        }
        let _turn = self.connecting.lock().await;
        if let Some(held) = self.held() {
            return Ok(held);
        }
        let (client, config) = (self.client.clone(), self.config.clone());
        // Any failure to connect is the store being unavailable, whatever its kind.
        let conn = on(&self.runtime, async move {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        })
        .await
        .map_err(|e| StoreError::unavailable("redis", e))?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    fn discard(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current
            .as_ref()
            .is_some_and(|(held, _)| *held == generation)
        {
            *current = None;
        }
    }
}

/// Runs `connect` as a task of `runtime`, where the connection's driver then lives.
async fn on<T: Send + 'static>(
    runtime: &Handle,
    connect: impl Future<Output = RedisResult<T>> + Send + 'static,
) -> RedisResult<T> {
    runtime.spawn(connect).await.map_err(|e| {
        RedisError::from(std::io::Error::other(format!(
            "connecting was cancelled: {e}"
        )))
    })?
}

/// Whether the connection an error came on can no longer be trusted.
fn lost(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// A Redis that is gone or frozen is 503; a refused command is a defect.
pub fn command_failed(e: RedisError) -> StoreError {
    if lost(&e) || e.is_cluster_error() {
        StoreError::unavailable("redis", e)
    } else {
        StoreError::failed("redis", e)
    }
}
