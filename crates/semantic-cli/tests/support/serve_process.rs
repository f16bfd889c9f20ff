//! A real `semantic serve` child process for tests that need signals,
//! restarts or its logs; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::model_path;

pub struct Serve {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Serve {
    pub async fn start(cache: &Path, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = cache.join(format!("serve-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_semantic"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--context-tokens", "4096", "--max-sequences", "4"])
            .arg("--model")
            .arg(model_path())
            .arg("--cache-dir")
            .arg(cache)
            .args(extra)
            .env_remove("SEMANTIC_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("semantic serve starts");
        let serve = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = client.get(serve.url("/health/startup")).send().await;
            if r.is_ok_and(|r| r.status() == 200) {
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "no startup: {}",
                serve.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn signal(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    /// Wait (bounded) for the process to exit; returns its status and how long it took.
    pub async fn exited(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "still running: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
