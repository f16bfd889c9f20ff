//! `semantic cache`: look at and clean the persisted agent KV files directly
//! on `--cache-dir`, with no server running. The CLI sees the disk tier
//! only; a running server may also hold agents in RAM or in the engine.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use semantic_domain::{AgentId, TenantId};
use semantic_store::{format::CHECKSUM_ALGO, AgentRecordMeta};

use crate::cli::{CacheArgs, CacheCommand, CacheRmArgs};

/// Token ids shown at each end of the list by `inspect`.
const TOKENS_SHOWN: usize = 8;

pub fn run(args: CacheArgs) -> anyhow::Result<()> {
    let root = cache_dir(args.cache_dir)?;
    let tenant = args.tenant.as_deref().map(parse_tenant).transpose()?;
    let tenant = tenant.as_ref();
    match args.command {
        CacheCommand::Ls => list(&root, tenant),
        CacheCommand::Inspect { agent } => inspect(&root, &parse_agent(&agent)?, tenant),
        CacheCommand::Verify => verify(&root, tenant),
        CacheCommand::Rm(rm) => remove(&root, rm, tenant),
    }
}

/// The same default as `serve`, so both look at the same files.
fn cache_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(dir) => Ok(dir),
        None => Ok(dirs::data_dir()
            .context("no user data directory; pass --cache-dir")?
            .join("semantic")
            .join("cache")),
    }
}

/// Validate before any path is built from it.
fn parse_agent(raw: &str) -> anyhow::Result<AgentId> {
    AgentId::parse(raw).with_context(|| format!("invalid agent id {raw:?}"))
}

fn parse_tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse_any(raw).with_context(|| format!("invalid --tenant {raw:?}"))
}

/// `under <root>`, and `for tenant <t>` when filtering, for messages.
fn scope(root: &Path, tenant: Option<&TenantId>) -> String {
    match tenant {
        Some(t) => format!("under {} for tenant {t}", root.display()),
        None => format!("under {}", root.display()),
    }
}

fn list(root: &Path, tenant: Option<&TenantId>) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (path, result) in semantic_store::list_all(root, tenant) {
        match result {
            Ok(meta) => rows.push((file_size(&path).unwrap_or(meta.kv_bytes), meta)),
            Err(err) => eprintln!("warning: {err}"),
        }
    }
    if rows.is_empty() {
        eprintln!("no cached agents {}", scope(root, tenant));
        return Ok(());
    }
    rows.sort_by_key(|(_, meta)| std::cmp::Reverse(meta.created_unix_ms));
    let now = now_ms();
    println!(
        "{:<24} {:<24} {:<16} {:<4} {:>8} {:>10}  LAST USE",
        "TENANT", "AGENT", "MODEL", "TIER", "TOKENS", "SIZE"
    );
    for (size, meta) in &rows {
        println!(
            "{:<24} {:<24} {:<16} {:<4} {:>8} {:>10}  {}",
            meta.agent.tenant.as_str(),
            meta.agent.agent.as_str(),
            model_prefix(&meta.model_fingerprint),
            "disk",
            meta.tokens.len(),
            human_bytes(*size),
            age(now, meta.created_unix_ms)
        );
    }
    eprintln!("tier: this command reads the disk tier only; a running server may also hold agents in RAM or in the engine");
    Ok(())
}

fn inspect(root: &Path, agent: &AgentId, tenant: Option<&TenantId>) -> anyhow::Result<()> {
    let paths = semantic_store::find_agent(root, agent, tenant)?;
    if paths.is_empty() {
        bail!("no cached KV for agent {agent} {}", scope(root, tenant));
    }
    let mut damaged = 0;
    for (i, path) in paths.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{:<18} {}", "path:", path.display());
        if let Some(size) = file_size(path) {
            println!("{:<18} {size} bytes ({})", "file size:", human_bytes(size));
        }
        match semantic_store::read_file_header(path) {
            Ok(header) => {
                print_meta(&header.meta, header.format_version, header.kv_checksum);
                match semantic_store::verify_file(path, &header.meta.agent) {
                    Ok(_) => println!("{:<18} OK (size and checksum verified)", "check:"),
                    Err(err) => {
                        damaged += 1;
                        println!("{:<18} CORRUPT: {err}", "check:");
                    }
                }
            }
            Err(err) => {
                damaged += 1;
                println!("{:<18} CORRUPT: {err}", "check:");
            }
        }
    }
    if damaged > 0 {
        bail!(
            "{damaged} of {} files for agent {agent} are damaged",
            paths.len()
        );
    }
    Ok(())
}

fn print_meta(meta: &AgentRecordMeta, format_version: u32, kv_checksum: u32) {
    let field =
        |name: &str, value: &dyn std::fmt::Display| println!("{:<18} {value}", format!("{name}:"));
    field(
        "format",
        &format_args!("{} v{format_version}", semantic_store::format::FORMAT_NAME),
    );
    field("agent_id", &meta.agent.agent);
    field("tenant", &meta.agent.tenant);
    field("model_fingerprint", &meta.model_fingerprint);
    field("engine_build", &meta.engine_build);
    field("kv_type", &meta.kv_type);
    field("token_count", &meta.tokens.len());
    field("tokens", &token_summary(&meta.tokens));
    field(
        "kv_bytes",
        &format_args!("{} ({})", meta.kv_bytes, human_bytes(meta.kv_bytes)),
    );
    field(
        "kv_checksum",
        &format_args!("{CHECKSUM_ALGO} {kv_checksum:08x}"),
    );
    field(
        "created_unix_ms",
        &format_args!(
            "{} ({}, {})",
            meta.created_unix_ms,
            rfc3339_utc(meta.created_unix_ms),
            age(now_ms(), meta.created_unix_ms)
        ),
    );
}

fn verify(root: &Path, tenant: Option<&TenantId>) -> anyhow::Result<()> {
    let reports = semantic_store::verify_all(root, tenant);
    if reports.is_empty() {
        println!("no agent files {}", scope(root, tenant));
        return Ok(());
    }
    let mut corrupt = 0;
    for (path, result) in &reports {
        match result {
            Ok(meta) => println!(
                "OK       {} ({} tokens, {})",
                path.display(),
                meta.tokens.len(),
                human_bytes(meta.kv_bytes)
            ),
            Err(err) => {
                corrupt += 1;
                println!("CORRUPT  {}: {err}", path.display());
            }
        }
    }
    if corrupt > 0 {
        bail!(
            "{corrupt} of {} agent files failed verification",
            reports.len()
        );
    }
    println!("all {} agent files verified", reports.len());
    Ok(())
}

fn remove(root: &Path, args: CacheRmArgs, tenant: Option<&TenantId>) -> anyhow::Result<()> {
    let agent = match (&args.agent, args.all) {
        (Some(raw), false) => Some(parse_agent(raw)?),
        (None, true) => None,
        _ => bail!("pass either an agent id or --all"),
    };
    let removed = semantic_store::remove_everywhere(root, agent.as_ref(), tenant)?;
    for path in &removed {
        println!("removed {}", path.display());
    }
    match (agent, removed.len()) {
        (Some(agent), 0) => bail!("no cached KV for agent {agent} {}", scope(root, tenant)),
        (None, 0) => println!("nothing to remove {}", scope(root, tenant)),
        (None, n) => println!("removed {n} agent files"),
        (Some(_), _) => {}
    }
    Ok(())
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn model_prefix(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}

/// First and last few ids, so a 100K-token agent stays one line.
fn token_summary(tokens: &[i32]) -> String {
    let join = |ids: &[i32]| {
        ids.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if tokens.len() <= 2 * TOKENS_SHOWN {
        return format!("[{}]", join(tokens));
    }
    let (head, tail) = (
        &tokens[..TOKENS_SHOWN],
        &tokens[tokens.len() - TOKENS_SHOWN..],
    );
    format!("[{}, …, {}]", join(head), join(tail))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn age(now_ms: u64, then_ms: u64) -> String {
    let Some(secs) = now_ms.checked_sub(then_ms).map(|ms| ms / 1000) else {
        return "in the future".into();
    };
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from Unix milliseconds (proleptic Gregorian,
/// Howard Hinnant's days-to-civil), to avoid a date crate for one line.
fn rfc3339_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_sizes_and_token_lists() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_709_251_199_123), "2024-02-29T23:59:59.123Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(47 * 1024 * 1024), "47.0 MiB");
        assert_eq!(age(10_000, 4_000), "6s ago");
        assert_eq!(age(0, 1), "in the future");
        assert_eq!(token_summary(&[1, 2, 3]), "[1, 2, 3]");
        let many: Vec<i32> = (0..100).collect();
        assert_eq!(
            token_summary(&many),
            "[0, 1, 2, 3, 4, 5, 6, 7, …, 92, 93, 94, 95, 96, 97, 98, 99]"
        );
    }
}
