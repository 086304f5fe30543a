//! The service's own binary as a child process, for what only a process shows: its log
//! lines, its start with no store configured, and its signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// The binary, started in `dir` with the dev keys and `env`, and nothing else: no
/// `DATABASE_URL`, no `REDIS_URL` unless `env` has them. Its log lines are collected; it is
/// killed (SIGKILL, as a crash) on drop.
pub struct Binary {
    child: Child,
    pub address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    pub async fn start(dir: &TempDir) -> Self {
        Self::start_with(dir, &[]).await
    }

    pub async fn start_with(dir: &TempDir, env: &[(&str, &str)]) -> Self {
        Self::start_on(dir, free_port(), env).await
    }

    /// As `start_with`, on a given port: a restart that clients find where they left it.
    pub async fn start_on(dir: &TempDir, port: u16, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rs256-auth"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("HASH_CONCURRENCY", "2")
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for kind in ["ACCESS", "REFRESH"] {
            for part in ["PRIVATE", "PUBLIC"] {
                let file = key_path(&format!("{}_{}", kind.to_lowercase(), part.to_lowercase()));
                command.env(format!("{kind}_TOKEN_{part}_KEY_FILE"), file);
            }
        }
        let mut child = command.spawn().expect("rs256-auth");
        let log = Arc::new(Mutex::new(Vec::new()));
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let binary = Binary {
            child,
            address: format!("http://127.0.0.1:{port}"),
            log,
        };
        binary.wait_until_serving().await;
        binary
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = plain_client()
                .get(format!("{}/api/healthchecker", self.address))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the binary did not serve: {:?}",
                self.log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal (`libc::SIGTERM`, ...).
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid, with a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
    }

    /// The exit status, once the process has exited; None if it still runs after `within`.
    pub async fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
