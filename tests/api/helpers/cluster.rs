//! A real Redis Cluster on free local ports, started from `redis-server` and `redis-cli`
//! (Debian's redis-server and redis-tools), stopped and removed on drop. Three masters, each
//! with as many replicas as asked.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::helpers::{TempDir, free_port};

pub struct RedisCluster {
    /// Every node's process and port, masters first as `redis-cli --cluster create` assigns
    /// them (it makes the first three masters). `None`: killed.
    pub nodes: Vec<(u16, Option<Child>)>,
    dir: TempDir,
}

/// One node as `CLUSTER NODES` lists it.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub master: bool,
    /// Down as its peers see it (`fail` or `fail?`).
    pub failed: bool,
    /// A replica's master's id.
    pub replica_of: Option<String>,
    /// A master's slot ranges.
    pub slots: Vec<(u16, u16)>,
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
            .map(|&port| (port, Some(spawn_node(&dir, port))))
            .collect();
        let cluster = RedisCluster { nodes, dir };
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
        // Replicas count for `WAIT` only once synced.
        for port in cluster.ports().into_iter().skip(3) {
            wait_for(port, "INFO replication", "master_link_status:up");
        }
        cluster
    }

    /// SIGKILLs the node at `port`: no goodbye to its peers or clients, writes not yet
    /// sent to its replicas are gone.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|(p, _)| *p == port).unwrap();
        if let Some(mut child) = node.1.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts a killed node again on its port and cluster config: it rejoins, and a master
    /// that was failed over comes back as a replica of the node that took its place.
    pub fn restart(&mut self, port: u16) {
        let child = spawn_node(&self.dir, port);
        let node = self.nodes.iter_mut().find(|(p, _)| *p == port).unwrap();
        assert!(node.1.is_none(), "node {port} is running");
        node.1 = Some(child);
        wait_for(port, "PING", "PONG");
    }

    /// Freezes (`true`, SIGSTOP) or thaws (SIGCONT) the node at `port`: it keeps its
    /// connections but answers nothing.
    pub fn freeze(&self, port: u16, frozen: bool) {
        let (_, child) = self.nodes.iter().find(|(p, _)| *p == port).unwrap();
        let pid = child.as_ref().unwrap().id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// The cluster as the live node at `port` sees it (`CLUSTER NODES`).
    pub fn nodes_seen_by(&self, port: u16) -> Vec<Node> {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "CLUSTER", "NODES"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse_node)
            .collect()
    }

    /// The master (as `port` sees it) that serves `slot`, and its replicas.
    pub fn serving(&self, port: u16, slot: u16) -> (Node, Vec<Node>) {
        let nodes = self.nodes_seen_by(port);
        let master = nodes
            .iter()
            .find(|n| n.master && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .unwrap_or_else(|| panic!("no master for slot {slot}: {nodes:?}"))
            .clone();
        let replicas = nodes
            .iter()
            .filter(|n| n.replica_of.as_deref() == Some(&master.id))
            .cloned()
            .collect();
        (master, replicas)
    }

    /// The hash slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &self.live_port().to_string(),
                "CLUSTER",
                "KEYSLOT",
                key,
            ])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// A live node's port.
    pub fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|(_, child)| child.is_some())
            .map(|(port, _)| *port)
            .unwrap()
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

/// One line of `CLUSTER NODES`: id, ip:port@bus, flags, master id, ping, pong, epoch,
/// link state, slots.
fn parse_node(line: &str) -> Option<Node> {
    let fields: Vec<&str> = line.split(' ').collect();
    let port = fields
        .get(1)?
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = fields.get(2)?;
    let slots = fields
        .iter()
        .skip(8)
        .filter(|f| !f.starts_with('['))
        .filter_map(|range| {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    Some(Node {
        id: fields.first()?.to_string(),
        port,
        master: flags.contains("master"),
        failed: flags.contains("fail"),
        replica_of: fields.get(3).filter(|m| **m != "-").map(|m| m.to_string()),
        slots,
    })
}

fn spawn_node(dir: &TempDir, port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--cluster-node-timeout", "1000"])
        .args(["--dir", &dir.path().to_string_lossy()])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--logfile", &format!("{port}.log")])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian's redis-server package)")
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
