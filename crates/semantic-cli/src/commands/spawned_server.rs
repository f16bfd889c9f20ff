//! A `semantic serve` child process for benchmarks that talk HTTP.
//!
//! The benchmark measures the server as clients see it, so it runs the real
//! binary (this executable) rather than an in-process router, and it can
//! restart it, which is the only honest way to measure the disk tier: after
//! a restart nothing of an agent is left in the engine or in RAM.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use semantic_domain::KvType;

use crate::openai_client::OpenAiClient;

/// Longest wait for a (re)started server's `/health/startup` to answer 200.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for a graceful exit after SIGTERM (it persists every agent).
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// What the child is started with.
pub struct SpawnOptions {
    pub model: PathBuf,
    pub kv_type: KvType,
    /// Holds the cache directory and the server's log.
    pub work_dir: PathBuf,
    /// More `semantic serve` arguments (budgets, limits).
    pub extra_args: Vec<OsString>,
}

/// A running `semantic serve` on a loopback port; killed when dropped.
pub struct SpawnedServer {
    options: SpawnOptions,
    child: Option<Child>,
    client: OpenAiClient,
}

impl SpawnedServer {
    pub async fn start(options: SpawnOptions) -> anyhow::Result<Self> {
        let (child, client) = launch(&options).await?;
        Ok(Self {
            options,
            child: Some(child),
            client,
        })
    }

    pub fn client(&self) -> &OpenAiClient {
        &self.client
    }

    /// The child's process id while it runs (for sampling its memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the child keeps its agents' files.
    pub fn cache_dir(&self) -> PathBuf {
        self.options.work_dir.join("cache")
    }

    /// Stop gracefully (SIGTERM, so agents are persisted) and start again
    /// on the same cache directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let (child, client) = launch(&self.options).await?;
        self.child = Some(child);
        self.client = client;
        Ok(())
    }

    /// SIGTERM and wait for the exit; kill if it does not come in time.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        terminate(&child)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the server")? {
                if !status.success() {
                    bail!(
                        "the server exited with {status}; log:\n{}",
                        log_tail(&self.options.work_dir)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Start the child on a free port and wait until it serves.
async fn launch(options: &SpawnOptions) -> anyhow::Result<(Child, OpenAiClient)> {
    let port = free_port()?;
    let exe = std::env::current_exe().context("cannot find the semantic executable")?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path(&options.work_dir))
        .context("cannot create the server log")?;
    let mut child = Command::new(exe)
        .args(serve_args(options, port))
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the server log")?)
        .stderr(log)
        .spawn()
        .context("cannot start `semantic serve`")?;
    let client = OpenAiClient::new(&format!("http://127.0.0.1:{port}"), None)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while !client.is_started().await {
        if let Some(status) = child.try_wait().context("cannot wait for the server")? {
            bail!(
                "`semantic serve` exited with {status} before serving; log:\n{}",
                log_tail(&options.work_dir)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`semantic serve` did not answer within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((child, client))
}

fn serve_args(options: &SpawnOptions, port: u16) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["serve", "--host", "127.0.0.1", "--port"]
        .into_iter()
        .map(OsString::from)
        .collect();
    args.push(port.to_string().into());
    args.push("--cache-dir".into());
    args.push(options.work_dir.join("cache").into());
    args.push("--model".into());
    args.push(options.model.clone().into());
    args.push("--kv-type".into());
    args.push(options.kv_type.as_str().into());
    args.extend(options.extra_args.iter().cloned());
    args
}

/// A port the kernel just handed out (the listener is closed at once; the
/// child binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn log_path(work_dir: &Path) -> PathBuf {
    work_dir.join("server.log")
}

/// The last lines of the server's log, for error messages.
fn log_tail(work_dir: &Path) -> String {
    let text = std::fs::read_to_string(log_path(work_dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(unix)]
fn terminate(child: &Child) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).context("process id out of range")?;
    // SAFETY: kill(2) has no memory effects; `pid` is our own child, not yet
    // reaped (we hold its `Child`), so the id cannot have been reused.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot send SIGTERM to the server");
    }
    Ok(())
}

#[cfg(not(unix))]
fn terminate(child: &Child) -> anyhow::Result<()> {
    // No SIGTERM: the server cannot persist on the way out.
    let _ = child;
    bail!("restarting the server needs Unix signals")
}
