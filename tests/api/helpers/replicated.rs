//! One Redis server with one replica (`--replicaof`), on free local ports, started from
//! `redis-server` and stopped on drop: the single-server deployment of `REDIS_WAIT_REPLICAS`.

use std::process::{Child, Command, Stdio};

use crate::helpers::cluster::wait_for;
use crate::helpers::{TempDir, free_port};

pub struct ReplicatedRedis {
    master: u16,
    children: Vec<Child>,
    _dir: TempDir,
}

impl ReplicatedRedis {
    pub fn start() -> Self {
        let dir = TempDir::new();
        let (master, replica) = (free_port(), free_port());
        let spawn = |port: u16, extra: &[String]| {
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--dir", &dir.path().to_string_lossy()])
                .args(["--dbfilename", &format!("dump-{port}.rdb")])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--logfile", &format!("{port}.log")])
                .args(extra)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server (Debian's redis-server package)")
        };
        let children = vec![
            spawn(master, &[]),
            spawn(
                replica,
                &["--replicaof".into(), "127.0.0.1".into(), master.to_string()],
            ),
        ];
        let redis = ReplicatedRedis {
            master,
            children,
            _dir: dir,
        };
        wait_for(master, "PING", "PONG");
        wait_for(replica, "INFO replication", "master_link_status:up");
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.master)
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the replica.
    pub fn freeze_replica(&self, frozen: bool) {
        let pid = self.children[1].id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for ReplicatedRedis {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
