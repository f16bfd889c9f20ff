//! The one way tests run a real `semantic serve` child process (signals,
//! restarts, crashes, logs); killed when dropped.
//!
//! The child listens on `--port 0`: the kernel picks a free port at bind
//! time and the server names it in its `listening` log line, which is read
//! back here. No port is chosen first and bound later, so two tests (or
//! anything else on the machine) can never race for one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::model_path;

/// Longest wait for the listener, then for the model to load.
const STARTUP: Duration = Duration::from_secs(120);

pub struct Serve {
    child: Child,
    pub port: u16,
    pub base: String,
    log: PathBuf,
}

impl Serve {
    /// `semantic serve` on the test model, caching under `cache`, with
    /// `extra` arguments (a small context and 4 sequences unless `extra`
    /// sets them); returns once `/health/startup` answers 200.
    pub async fn start(cache: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(cache, extra, &[]).await
    }

    /// [`Serve::start`] with environment variables set for the child.
    pub async fn start_with_env(cache: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(&model_path(), cache, extra, env).await
    }

    /// [`Serve::start`] serving `model` instead of the default test model.
    pub async fn start_model(model: &Path, cache: &Path, extra: &[&str]) -> Self {
        Self::spawn(model, cache, extra, &[]).await
    }

    async fn spawn(model: &Path, cache: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let log = unique_log(cache);
        let mut command = Command::new(env!("CARGO_BIN_EXE_semantic"));
        command
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .arg("--model")
            .arg(model)
            .arg("--cache-dir")
            .arg(cache)
            .args(extra)
            .env_remove("SEMANTIC_LOG_FORMAT")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (flag, value) in [("--context-tokens", "4096"), ("--max-sequences", "4")] {
            if !extra.contains(&flag) {
                command.args([flag, value]);
            }
        }
        let mut child = command.spawn().expect("semantic serve starts");
        let port = wait_for_port(&mut child, &log).await;
        let serve = Self {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        serve.wait_started().await;
        serve
    }

    async fn wait_started(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + STARTUP;
        loop {
            let r = client.get(self.url("/health/startup")).send().await;
            if r.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "no startup: {}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's `/metrics` text, with `key` as bearer token when the
    /// server has API keys.
    pub async fn metrics_text(&self, key: Option<&str>) -> String {
        let mut request = reqwest::Client::new().get(self.url("/metrics"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap().text().await.unwrap()
    }

    pub fn signal(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    /// SIGKILL and reap: a crash, with no chance to persist anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// A log file of its own under `cache` (a restart on the same cache keeps
/// the earlier one).
fn unique_log(cache: &Path) -> PathBuf {
    (0..)
        .map(|n| cache.join(format!("serve-{n}.log")))
        .find(|p| !p.exists())
        .unwrap()
}

/// The port the child bound, from its `listening` log line.
async fn wait_for_port(child: &mut Child, log: &Path) -> u16 {
    let deadline = Instant::now() + STARTUP;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = text.lines().find_map(listening_port) {
            return port;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("semantic serve exited with {status} before listening: {text}");
        }
        assert!(Instant::now() < deadline, "never listened: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The port in a `listening; loading the model` line (text or JSON logs).
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening; loading the model") {
        return None;
    }
    let after = &line[line.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
