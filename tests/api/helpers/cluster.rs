//! A real Redis Cluster on free local ports, started from `redis-server` and `redis-cli`
//! (Debian's redis-server and redis-tools), stopped and removed on drop. Three masters, each
//! with as many replicas as asked.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::helpers::{TempDir, free_port};

pub struct RedisCluster {
    /// Every node's process and port, masters first as `redis-cli --cluster create` assigns
    /// them (it makes the first three masters).
    pub nodes: Vec<(u16, Option<Child>)>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Three masters, no replicas.
    pub fn start() -> Self {
        Self::with_replicas(0)
    }

    /// Three masters with `replicas` replicas each. A node that stops answering is failed
    /// over after one second (`cluster-node-timeout`).
    pub fn with_replicas(replicas: usize) -> Self {
        let dir = TempDir::new();
        let ports: Vec<u16> = (0..3 * (1 + replicas)).map(|_| cluster_port()).collect();
        let nodes = ports
            .iter()
            .map(|&port| {
                let child = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--cluster-node-timeout", "1000"])
                    .args(["--dir", &dir.path().to_string_lossy()])
                    .args(["--save", "", "--appendonly", "no"])
                    .args(["--logfile", &format!("{port}.log")])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (Debian's redis-server package)");
                (port, Some(child))
            })
            .collect();
        let cluster = RedisCluster { nodes, _dir: dir };
        for port in cluster.ports() {
            wait_for(port, "PING", "PONG");
        }
        let create = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports().iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli (Debian's redis-tools package)");
        assert!(
            create.status.success(),
            "{}",
            String::from_utf8_lossy(&create.stdout)
        );
        for port in cluster.ports() {
            wait_for(port, "CLUSTER INFO", "cluster_state:ok");
        }
        cluster
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(port, _)| *port).collect()
    }

    /// Every node, for `REDIS_CLUSTER_URLS`.
    pub fn urls(&self) -> String {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Each live node's own keys under `prefix`, with their hash slots.
    pub async fn keys_by_node(&self, prefix: &str) -> Vec<Vec<(String, i64)>> {
        let mut by_node = Vec::new();
        for (port, child) in &self.nodes {
            if child.is_none() {
                continue;
            }
            let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
            if !matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
                continue;
            }
            let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
            let mut with_slots = Vec::new();
            for key in keys {
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                with_slots.push((key, slot));
            }
            by_node.push(with_slots);
        }
        by_node
    }
}

/// Waits up to 20 s for `command` on the node at `port` to print `expected`.
pub fn wait_for(port: u16, command: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(command.split(' '))
            .output()
            .expect("redis-cli");
        if String::from_utf8_lossy(&out.stdout).contains(expected) {
            return;
        }
        assert!(Instant::now() < deadline, "node {port}: no {expected}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}
