//! `REDIS_WAIT_REPLICAS` and a Redis Cluster failover: three masters with one replica each,
//! two instances of the service under a login and refresh load, a master SIGKILLed mid-load
//! while its replica lags behind (`FAILOVER_LAG=0`: while it is up to date). Without WAIT,
//! logins and rotations the dead master acknowledged but had not replicated are lost
//! (measured, printed); with `REDIS_WAIT_REPLICAS=1` none is. The figures go to stdout: run
//! with `--nocapture` to see them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::cluster::RedisCluster;
use crate::helpers::replicated::ReplicatedRedis;
use crate::helpers::*;

/// Sends `send` again while it answers 503, for up to 20 s: where a test needs a login or a
/// refresh to go through, a replica that a loaded machine keeps past a WAIT's 250 ms is an
/// outage the client retries, not a failure. A refresh retried this way stays inside the
/// grace window and gets the same successors.
async fn until_served(mut send: impl AsyncFnMut() -> Response) -> Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = send().await;
        if response.status() != 503 || Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login_ok(address: &str, email: &str) -> Response {
    until_served(async || login_at(address, email, PASSWORD).await).await
}

async fn refresh_ok(address: &str, refresh: &str) -> Response {
    until_served(async || refresh_at(address, refresh).await).await
}

/// The status and error code of an answer, and the tokens of a 200.
async fn read(response: Response) -> (u16, String, Option<Session>) {
    let status = response.status().as_u16();
    let session = (status == 200).then(|| session_from(&response));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    (status, code, session)
}

/// Production settings with sessions on `cluster`, waiting for `replicas` replicas.
fn cluster_settings(urls: &str, prefix: &str, replicas: &str) -> Vec<(String, String)> {
    vec![
        // Blank counts as unset: the users' store stays, sessions go to the cluster.
        ("REDIS_URL".into(), String::new()),
        ("REDIS_CLUSTER_URLS".into(), urls.to_owned()),
        ("REDIS_KEY_PREFIX".into(), prefix.to_owned()),
        ("REDIS_WAIT_REPLICAS".into(), replicas.to_owned()),
        // Longer than any recovery measured (8 s): a retry after a failover is never reuse.
        ("REFRESH_REUSE_GRACE".into(), "30s".into()),
        // Many logins of few users, from one address.
        ("LOGIN_ATTEMPTS_LIMIT".into(), "100000".into()),
        ("LOGIN_ATTEMPTS_IP_LIMIT".into(), "100000".into()),
    ]
}

fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The slot of a user's keys: they all carry the `{user}` hash tag.
fn user_slot(cluster: &RedisCluster, session: &Session) -> u16 {
    let user = claims_of(&session.access)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    cluster.slot_of(&format!("{{{user}}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli (Debian's redis-server and redis-tools): run with --include-ignored"]
async fn wait_goes_to_the_master_that_took_the_write() {
    let cluster = RedisCluster::with_replicas(1);
    let prefix = format!("wait-{}:", Uuid::new_v4().simple());
    let urls = cluster.urls();
    let waiting = cluster_settings(&urls, &prefix, "1");
    let a = spawn_app_on(TestStore::fresh().await, &pairs(&waiting)).await;
    let not_waiting = cluster_settings(&urls, &prefix, "0");
    let b = a.sibling(&pairs(&not_waiting)).await;

    // Two users whose slots have different masters.
    let port = cluster.live_port();
    let first_email = a.register_user().await;
    let first = session_from(&login_ok(&a.address, &first_email).await);
    let second = session_from(&login_ok(&a.address, &first_email).await);
    let (master, replicas) = cluster.serving(port, user_slot(&cluster, &first));
    let (other_email, other) = loop {
        let email = a.register_user().await;
        let login = login_ok(&a.address, &email).await;
        assert_eq!(login.status(), 200);
        let session = session_from(&login);
        if cluster.serving(port, user_slot(&cluster, &session)).0.id != master.id {
            break (email, session);
        }
    };
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    let replica = replicas[0].port;

    // With the replica of the first user's master frozen, its writes are not acknowledged
    // by the instance that waits for a replica...
    cluster.freeze(replica, true);
    assert_error(
        refresh_at(&a.address, &first.refresh).await,
        503,
        "service_unavailable",
    )
    .await;
    assert_eq!(
        login_at(&a.address, &first_email, PASSWORD).await.status(),
        503
    );
    assert_eq!(logout_at(&a.address, &second.access).await.status(), 503);
    // ...while the other user's master, whose replica answers, acknowledges at once on the
    // same instance: the WAIT went to the first user's master, not to any node.
    // (A 503 here is retried: a loaded machine may keep that replica past 250 ms too, while
    // the frozen one never answers.)
    let rotated = refresh_ok(&a.address, &other.refresh).await;
    assert_eq!(rotated.status(), 200);
    let other = session_from(&rotated);
    assert_eq!(login_ok(&a.address, &other_email).await.status(), 200);
    // And the instance that does not wait writes to the same master as usual.
    assert_eq!(login_at(&b, &first_email, PASSWORD).await.status(), 200);

    // Thawed, the replica catches up; the client retries the refresh it was refused, with
    // the token it still holds: the rotation the master made meanwhile is in its grace
    // window, so the retry gets its successors, or the token rotates now.
    cluster.freeze(replica, false);
    let deadline = Instant::now() + Duration::from_secs(15);
    let retried = loop {
        let (status, code, session) = read(refresh_at(&a.address, &first.refresh).await).await;
        match status {
            200 => break session.unwrap(),
            503 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{status} {code}"),
        }
    };
    assert_eq!(me_at(&b, &retried.access).await.status(), 200);
    assert_eq!(logout_at(&a.address, &retried.access).await.status(), 200);
    assert_error(me_at(&b, &retried.access).await, 401, "session_revoked").await;
    assert_eq!(me_at(&b, &other.access).await.status(), 200);
    // A 503 promises nothing either way: the refused logout had ended its session on the
    // master, and it stays ended.
    assert_error(me_at(&b, &second.access).await, 401, "session_revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (Debian's redis-server): run with --include-ignored"]
async fn on_one_server_a_write_waits_for_its_replica_and_a_read_does_not() {
    let redis = ReplicatedRedis::start();
    let (url, prefix) = (redis.url(), format!("wait-{}:", Uuid::new_v4().simple()));
    let settings = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("REDIS_WAIT_REPLICAS", "1"),
    ];
    let app = spawn_app_on(TestStore::fresh().await, &settings).await;
    let email = app.register_user().await;
    let login = login_ok(&app.address, &email).await;
    assert_eq!(login.status(), 200);
    let session = session_from(&login);

    redis.freeze_replica(true);
    assert_error(
        refresh_at(&app.address, &session.refresh).await,
        503,
        "service_unavailable",
    )
    .await;
    assert_eq!(login_at(&app.address, &email, PASSWORD).await.status(), 503);
    // Reads go on the shared connection, which no WAIT holds.
    assert_eq!(me_at(&app.address, &session.access).await.status(), 200);

    redis.freeze_replica(false);
    let deadline = Instant::now() + Duration::from_secs(15);
    let retried = loop {
        let (status, code, next) = read(refresh_at(&app.address, &session.refresh).await).await;
        match status {
            200 => break next.unwrap(),
            503 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{status} {code}"),
        }
    };
    assert_eq!(logout_at(&app.address, &retried.access).await.status(), 200);
    assert_error(
        me_at(&app.address, &retried.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Login,
    Refresh,
}

/// One answer the load got.
struct Answer {
    at: Instant,
    instance: usize,
    kind: Kind,
    status: u16,
    code: String,
}

/// What the load's clients saw and hold.
#[derive(Default)]
struct Load {
    answers: Mutex<Vec<Answer>>,
    /// Every session a login acknowledged, with the tokens of its last acknowledged answer.
    sessions: Mutex<Vec<Session>>,
    /// Sessions whose last acknowledged refresh token was refused during the load.
    lost: Mutex<BTreeMap<usize, String>>,
    stop: AtomicBool,
}

impl Load {
    fn record(&self, instance: usize, kind: Kind, status: u16, code: &str) {
        self.answers.lock().unwrap().push(Answer {
            at: Instant::now(),
            instance,
            kind,
            status,
            code: code.to_owned(),
        });
    }

    /// Sends until the answer is not a 503, as a client retries an outage; the retries of a
    /// refresh present the same token, which is still the last one acknowledged.
    async fn send(
        &self,
        instance: usize,
        kind: Kind,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> (u16, String, Option<Session>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, code, session) = read(request().send().await.unwrap()).await;
            self.record(instance, kind, status, &code);
            if status != 503 || Instant::now() > deadline {
                return (status, code, session);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One client: logs in, refreshes a chain of tokens, logs in again, until told to stop
/// (between two acknowledged answers, so that every held token is an acknowledged one).
async fn client(load: Arc<Load>, instance: usize, address: String, email: String) {
    while !load.stop.load(Ordering::Relaxed) {
        let (status, code, session) = load
            .send(instance, Kind::Login, || {
                plain_client()
                    .post(format!("{address}/api/auth/login"))
                    .json(&json!({"email": email, "password": PASSWORD}))
            })
            .await;
        let Some(mut held) = session else {
            // Recorded; the figures tell.
            let _ = (status, code);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let index = {
            let mut sessions = load.sessions.lock().unwrap();
            sessions.push(Session {
                access: held.access.clone(),
                refresh: held.refresh.clone(),
            });
            sessions.len() - 1
        };
        for _ in 0..10 {
            if load.stop.load(Ordering::Relaxed) {
                break;
            }
            let token = held.refresh.clone();
            let (status, code, next) = load
                .send(instance, Kind::Refresh, || {
                    plain_client()
                        .post(format!("{address}/api/auth/refresh"))
                        .bearer_auth(&token)
                })
                .await;
            let Some(next) = next else {
                if status == 401 {
                    let during = format!("refused during the load: {code}");
                    load.lost.lock().unwrap().insert(index, during);
                }
                break;
            };
            load.sessions.lock().unwrap()[index] = Session {
                access: next.access.clone(),
                refresh: next.refresh.clone(),
            };
            held = next;
        }
    }
}

/// Whether every instance has answered only successes for the last `steady`, with some.
fn all_serving(load: &Load, instances: usize, steady: Duration) -> bool {
    let answers = load.answers.lock().unwrap();
    let since = Instant::now() - steady;
    (0..instances).all(|instance| {
        let recent: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.instance == instance && a.at >= since)
            .collect();
        !recent.is_empty() && recent.iter().all(|a| a.status == 200)
    })
}

/// Latency percentiles of `count` sequential calls answered 200, in ms. A measurement, not a
/// check: on a loaded machine a replica may miss the 250 ms of a WAIT, and that 503 is
/// retried (printed, not counted).
async fn latencies(count: usize, mut call: impl AsyncFnMut() -> u16) -> (f64, f64) {
    let mut ms = Vec::new();
    let mut refused = 0;
    while ms.len() < count {
        let started = Instant::now();
        let status = call().await;
        if status == 200 {
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        } else {
            refused += 1;
            assert!(refused <= count, "more refusals than calls: {status}");
        }
    }
    if refused > 0 {
        println!("{refused} calls of the latency measurement were refused and retried");
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Refreshes per second of twelve clients, two per user, on both instances, for two seconds.
async fn refresh_rate(instances: &[String; 2], users: &[String]) -> f64 {
    let mut sessions = Vec::new();
    for (i, email) in users.iter().chain(users).enumerate() {
        let address = instances[i % 2].clone();
        let login = login_ok(&address, email).await;
        sessions.push((address, session_from(&login)));
    }
    let until = Instant::now() + Duration::from_secs(2);
    let mut clients = Vec::new();
    for (address, mut held) in sessions {
        clients.push(tokio::spawn(async move {
            let mut done = 0u32;
            while Instant::now() < until {
                let response = refresh_at(&address, &held.refresh).await;
                // A measurement: a 503 (a WAIT missed on a loaded machine) is retried.
                if response.status() == 200 {
                    held = session_from(&response);
                    done += 1;
                }
            }
            done
        }));
    }
    let started = Instant::now();
    let mut done = 0;
    for client in clients {
        done += client.await.unwrap();
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

/// Writes of `key` per second on one connection to the master at `port` that serves it, 64
/// in flight at a time, each followed by `WAIT replicas 250` when `replicas` > 0: the ceiling
/// of one instance's waited writes to one master, since a `WAIT` holds its connection until
/// it returns.
async fn write_rate(port: u16, key: &str, replicas: u32) -> f64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    let mut done = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        let mut batch = Vec::new();
        for _ in 0..64 {
            let mut conn = conn.clone();
            let key = key.to_owned();
            batch.push(tokio::spawn(async move {
                let mut pipe = redis::pipe();
                pipe.cmd("INCR").arg(&key);
                if replicas > 0 {
                    pipe.cmd("WAIT").arg(replicas).arg(250);
                }
                let answers: Vec<i64> = pipe.query_async(&mut conn).await.unwrap();
                if replicas > 0 {
                    assert!(answers[1] >= i64::from(replicas));
                }
            }));
        }
        for write in batch {
            write.await.unwrap();
            done += 1;
        }
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

/// The figures of one failover.
struct Figures {
    unavailable: usize,
    recovery: Option<Duration>,
    sessions: usize,
    /// Each lost session, by its index, and how it was found lost.
    lost: BTreeMap<usize, String>,
    other_5xx: Vec<String>,
    false_reused: usize,
}

/// `lagging`: the replica has fallen behind when its master is killed.
async fn failover(replicas: &str, lagging: bool) -> Figures {
    let mut cluster = RedisCluster::with_replicas(1);
    let prefix = format!("failover-{}:", Uuid::new_v4().simple());
    let settings = cluster_settings(&cluster.urls(), &prefix, replicas);
    let a = spawn_app_on(TestStore::fresh().await, &pairs(&settings)).await;
    let b = a.sibling(&pairs(&settings)).await;
    let instances = [a.address.clone(), b];
    let port = cluster.live_port();

    // Users, most of them on the master that is to die.
    let mut target = None;
    let mut users: Vec<String> = Vec::new();
    let mut elsewhere = 0;
    while users.len() < 6 {
        let email = a.register_user().await;
        let session = session_from(&login_ok(&a.address, &email).await);
        let master = cluster.serving(port, user_slot(&cluster, &session)).0;
        let target = target.get_or_insert_with(|| master.clone());
        if master.id == target.id {
            users.push(email);
        } else if elsewhere < 2 {
            elsewhere += 1;
            users.push(email);
        }
    }
    let target = target.unwrap();
    let replica = cluster.serving(port, target.slots[0].0).1[0].port;

    // What waiting costs, on the healthy cluster: sequential refreshes and logins.
    let mut held = session_from(&login_ok(&a.address, &users[0]).await);
    let (refresh_p50, refresh_p99) = latencies(200, async || {
        let response = refresh_at(&a.address, &held.refresh).await;
        let status = response.status().as_u16();
        // A 503 may have rotated all the same: the retry, inside the grace window, gets it.
        if status == 200 {
            held = session_from(&response);
        }
        status
    })
    .await;
    let (login_p50, login_p99) = latencies(20, async || {
        login_at(&a.address, &users[0], PASSWORD)
            .await
            .status()
            .as_u16()
    })
    .await;
    let refreshes = refresh_rate(&instances, &users).await;
    let user = claims_of(&held.access)["sub"].as_str().unwrap().to_owned();
    let key = format!("{prefix}{{{user}}}:rate");
    let (plain, waited) = (
        write_rate(target.port, &key, 0).await,
        write_rate(target.port, &key, 1).await,
    );
    println!(
        "one connection to a master, 64 writes in flight: {plain:.0} writes/s, \
         {waited:.0} with WAIT 1 after each"
    );
    println!(
        "REDIS_WAIT_REPLICAS={replicas}: one client: refresh p50 {refresh_p50:.2} ms p99 \
         {refresh_p99:.2} ms, login p50 {login_p50:.2} ms p99 {login_p99:.2} ms; \
         12 clients on both instances: {refreshes:.0} refreshes/s"
    );

    // The load: three clients per instance.
    let load = Arc::new(Load::default());
    let mut clients = Vec::new();
    for (i, email) in users.iter().enumerate() {
        let instance = i % instances.len();
        clients.push(tokio::spawn(client(
            load.clone(),
            instance,
            instances[instance].clone(),
            email.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let served_before = load.answers.lock().unwrap().len();

    // The replica falls behind, as over a slow link: frozen, while one large write fills
    // the master's connection to it beyond the kernel's buffers, so that what the master
    // acknowledges next waits in the master's memory, and dies with it. On one machine a
    // killed master loses nothing otherwise: the kernel still delivers what it was sending.
    if lagging {
        cluster.freeze(replica, true);
        let mut master = redis::Client::open(format!("redis://127.0.0.1:{}", target.port))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("SET")
            .arg(format!("{prefix}{{{user}}}:ballast"))
            .arg(vec![b'x'; 32 << 20])
            .query_async(&mut master)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }

    // Kill the master, wait for its replica to take over, then start the dead one again:
    // it comes back as the new master's replica (which a master needs for WAIT to succeed).
    let killed = Instant::now();
    cluster.kill(target.port);
    if lagging {
        cluster.freeze(replica, false);
    }
    let promoted = loop {
        let port = cluster.live_port();
        let nodes = cluster.nodes_seen_by(port);
        let slot = target.slots[0].0;
        if let Some(node) = nodes.iter().find(|n| {
            n.master && !n.failed && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
        }) && node.port != target.port
        {
            break node.port;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "no failover: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let promoted_after = killed.elapsed();
    cluster.restart(target.port);

    // Load stays on until both instances have served only successes for two seconds.
    let deadline = killed + Duration::from_secs(25);
    let recovered = loop {
        if all_serving(&load, instances.len(), Duration::from_secs(2)) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    // Every session's last acknowledged tokens, on both instances.
    let sessions = std::mem::take(&mut *load.sessions.lock().unwrap());
    let mut lost = load.lost.lock().unwrap().clone();
    let lost_during_load = lost.len();
    let mut false_reused = 0;
    for (index, session) in sessions.iter().enumerate() {
        let mut answers = Vec::new();
        for address in &instances {
            answers.push(me_at(address, &session.access).await.status().as_u16());
        }
        // A 503 (the replica slow to confirm, on a loaded machine) is retried as a client
        // would; a lost session answers 401 however often it is asked.
        let (status, code, _) = read(refresh_ok(&instances[0], &session.refresh).await).await;
        answers.push(status);
        false_reused += usize::from(code == "refresh_reused");
        // The same token again, elsewhere: inside the grace window, the same successors.
        let (status, code, _) = read(refresh_ok(&instances[1], &session.refresh).await).await;
        answers.push(status);
        false_reused += usize::from(code == "refresh_reused");
        if answers.iter().any(|&s| s != 200) {
            lost.entry(index)
                .or_insert_with(|| format!("refused at the end: {answers:?} {code}"));
        }
    }

    let answers = load.answers.lock().unwrap();
    let failed_after: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.at >= killed && a.status != 200)
        .collect();
    let recovery = (0..instances.len())
        .filter_map(|i| {
            failed_after
                .iter()
                .filter(|a| a.instance == i)
                .map(|a| a.at)
                .max()
        })
        .max()
        .map(|last| last - killed);
    println!(
        "REDIS_WAIT_REPLICAS={replicas}: the replica on port {promoted} took over from {}{}",
        target.port,
        if lagging {
            ", which it lagged behind"
        } else {
            ""
        }
    );
    let figures = Figures {
        unavailable: answers.iter().filter(|a| a.status == 503).count(),
        recovery: recovered.then_some(recovery.unwrap_or_default()),
        sessions: sessions.len(),
        lost,
        other_5xx: answers
            .iter()
            .filter(|a| a.status >= 500 && a.status != 503)
            .map(|a| format!("{:?} {} {}", a.kind, a.status, a.code))
            .collect(),
        false_reused: false_reused
            + answers
                .iter()
                .filter(|a| a.code == "refresh_reused")
                .count(),
    };
    println!(
        "REDIS_WAIT_REPLICAS={replicas}: {} answers ({served_before} before the kill); \
         promoted after {:.2} s; {} answered 503; every instance serving again {:.2} s after \
         the kill; {} of {} acknowledged sessions lost ({lost_during_load} found during the \
         load) {:?}; other 5xx {:?}; false refresh_reused {}",
        answers.len(),
        promoted_after.as_secs_f64(),
        figures.unavailable,
        figures.recovery.map_or(f64::NAN, |d| d.as_secs_f64()),
        figures.lost.len(),
        figures.sessions,
        figures.lost,
        figures.other_5xx,
        figures.false_reused,
    );
    figures
}

/// `FAILOVER_LAG=0` kills a master whose replica is up to date; by default it lags.
fn lagging() -> bool {
    std::env::var("FAILOVER_LAG").map_or(true, |v| v != "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli (Debian's redis-server and redis-tools): run with --include-ignored"]
async fn a_master_killed_under_load_loses_no_acknowledged_session_with_wait() {
    let without = failover("0", lagging()).await;
    let with = failover("1", lagging()).await;
    for (replicas, figures) in [("0", &without), ("1", &with)] {
        assert!(figures.unavailable > 0, "{replicas}: the kill hit the load");
        assert!(figures.sessions > 0, "{replicas}");
        assert!(
            figures.recovery.is_some(),
            "{replicas}: every instance serves again"
        );
        assert_eq!(figures.other_5xx, Vec::<String>::new(), "{replicas}");
        assert_eq!(figures.false_reused, 0, "{replicas}");
    }
    // Without WAIT a loss is possible, not certain: the figure above is printed, not asserted.
    assert_eq!(
        with.lost,
        BTreeMap::new(),
        "acknowledged sessions lost with WAIT"
    );
}
