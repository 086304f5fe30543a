//! Pool or shared connection: the measurement behind `store/redis/mod.rs`.
//! `cargo bench --bench redis_connections` (Redis at `BENCH_REDIS_URL`, default
//! `redis://127.0.0.1:6379`) runs `/api/users/me`'s Redis work, one `MGET` of three keys
//! of one hash tag, from 64 concurrent tasks for 3 s each way, and prints round trips/s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;

const TASKS: usize = 64;
const RUN_FOR: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let keys: Vec<String> = ["tok", "sess", "stamp"]
        .iter()
        .map(|k| format!("bench-conn:{{u}}:{k}"))
        .collect();

    let pool = deadpool_redis::Config::from_url(url.as_str())
        .builder()
        .expect("pool config")
        .max_size(32)
        .runtime(deadpool_redis::Runtime::Tokio1)
        .build()
        .expect("pool");
    let pooled = run(keys.clone(), move || {
        let pool = pool.clone();
        async move { pool.get().await.expect("checkout") }
    })
    .await;
    println!("RESULT pool_of_32 {pooled:.0}");

    let client = redis::Client::open(url.as_str()).expect("url");
    let shared = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let one = run(keys.clone(), move || {
        let conn = shared.clone();
        async move { conn }
    })
    .await;
    println!("RESULT one_shared {one:.0}");

    let mut several = Vec::new();
    for _ in 0..4 {
        several.push(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("connect"),
        );
    }
    let next = Arc::new(AtomicU64::new(0));
    let four = run(keys, move || {
        let i = next.fetch_add(1, Ordering::Relaxed) as usize % several.len();
        let conn = several[i].clone();
        async move { conn }
    })
    .await;
    println!("RESULT four_shared {four:.0}");
}

/// MGETs per second from TASKS tasks, each taking its connection from `conn` per request,
/// as a request handler does.
async fn run<C, F>(keys: Vec<String>, conn: impl Fn() -> F + Send + Sync + 'static) -> f64
where
    C: ConnectionLike + Send,
    F: Future<Output = C> + Send,
{
    let conn = Arc::new(conn);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (conn, done, keys) = (conn.clone(), done.clone(), keys.clone());
        tasks.spawn(async move {
            while started.elapsed() < RUN_FOR {
                let mut c = conn().await;
                let _: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut c)
                    .await
                    .expect("MGET");
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    tasks.join_all().await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
