//! Where files live under the cache root.
//!
//! ```text
//! <root>/models/<first 16 hex digits of the model fingerprint>/tenants/<tenant>/agents/<agent>.safetensors
//! <root>/models/<prefix>/tenants/<tenant>/agents/<agent>.safetensors.<pid>.<n>.tmp   (a save in progress)
//! <root>/quarantine/<unix_ms>-<prefix>-<agent>.safetensors[.reason.txt]
//! ```
//!
//! One directory per model keeps caches of different models apart, and
//! switching back to a model finds its agents again; one per tenant keeps
//! tenants' agents apart (the file's metadata names its tenant too, so a
//! file moved into another tenant's folder is a mismatch, not a hit).
//! Before tenants, files lived in `<root>/models/<prefix>/agents/`: they
//! belong to the open tenant (`default`) and are moved into its folder
//! when the store opens. Agent ids and tenant names are validated to be safe
//! file names, so no path built here can leave its directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use semantic_domain::{AgentId, AgentKey, TenantId};

use crate::error::StoreError;

pub const MODELS_DIR: &str = "models";
pub const TENANTS_DIR: &str = "tenants";
pub const AGENTS_DIR: &str = "agents";
pub const QUARANTINE_DIR: &str = "quarantine";
/// Extension of a complete agent file.
pub const AGENT_EXT: &str = ".safetensors";
/// Extension of a save in progress (or one a crash interrupted).
pub const TEMP_EXT: &str = ".tmp";
/// Suffix of the file that says why a quarantined file was set aside.
pub const REASON_EXT: &str = ".reason.txt";
/// Hex digits of the fingerprint used to name a model's directory.
pub const FINGERPRINT_PREFIX_LEN: usize = 16;
/// A temp file untouched this long belongs to a dead writer. A live writer
/// touches its file continuously, so this never races a save in progress
/// (in this process or another one sharing the directory).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Check that a fingerprint is hex (it names a directory) and return the
/// directory name: its first 16 digits, lowercased.
pub fn fingerprint_prefix(fingerprint: &str) -> Result<String, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidFingerprint {
        fingerprint: fingerprint.to_owned(),
        reason: reason.to_owned(),
    };
    if fingerprint.is_empty() {
        return Err(invalid("it is empty"));
    }
    if !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("only hex digits are allowed"));
    }
    let len = fingerprint.len().min(FINGERPRINT_PREFIX_LEN);
    Ok(fingerprint[..len].to_ascii_lowercase())
}

/// `<root>/models/<prefix>`: everything of one model.
pub fn model_dir(root: &Path, prefix: &str) -> PathBuf {
    root.join(MODELS_DIR).join(prefix)
}

/// `<model dir>/tenants/<tenant>/agents`.
pub fn tenant_agents_dir(model_dir: &Path, tenant: &TenantId) -> PathBuf {
    model_dir
        .join(TENANTS_DIR)
        .join(tenant.as_str())
        .join(AGENTS_DIR)
}

/// `<model dir>/agents`: where agent files lived before tenants.
pub fn legacy_agents_dir(model_dir: &Path) -> PathBuf {
    model_dir.join(AGENTS_DIR)
}

/// Every tenant's agents directory of one model, with its tenant;
/// directories not named for a valid tenant are skipped.
pub fn tenant_dirs(model_dir: &Path) -> Result<Vec<(TenantId, PathBuf)>, StoreError> {
    Ok(list_dir(&model_dir.join(TENANTS_DIR))?
        .into_iter()
        .filter_map(|dir| {
            let tenant = TenantId::parse_any(dir.file_name()?.to_str()?).ok()?;
            let agents = dir.join(AGENTS_DIR);
            agents.is_dir().then_some((tenant, agents))
        })
        .collect())
}

pub fn quarantine_dir(root: &Path) -> PathBuf {
    root.join(QUARANTINE_DIR)
}

pub fn agent_file_name(agent: &AgentId) -> String {
    format!("{agent}{AGENT_EXT}")
}

/// The agent a complete agent file is named for; `None` for anything else
/// (temp files, strays, names that are not valid agent ids).
pub fn agent_of_file(path: &Path) -> Option<AgentId> {
    let name = path.file_name()?.to_str()?;
    AgentId::parse(name.strip_suffix(AGENT_EXT)?).ok()
}

/// The tenant and agent a file's path names: the agent from its name, the
/// tenant from `tenants/<tenant>/agents/` above it (a file of the legacy
/// layout belongs to the open tenant).
pub fn key_of_file(path: &Path) -> Option<AgentKey> {
    let agent = agent_of_file(path)?;
    let tenant_dir = path.parent()?.parent()?;
    let under_tenants = tenant_dir
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == TENANTS_DIR);
    let tenant = if under_tenants {
        TenantId::parse_any(tenant_dir.file_name()?.to_str()?).ok()?
    } else {
        TenantId::open()
    };
    Some(AgentKey::new(tenant, agent))
}

pub fn is_temp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(TEMP_EXT))
}

/// A fresh temp path next to the agent's file: unique per process and save,
/// so concurrent savers never share one.
pub fn temp_path(dir: &Path, agent: &AgentId) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{agent}{AGENT_EXT}.{}.{n}{TEMP_EXT}",
        std::process::id()
    ))
}

/// Entries of a directory, or none when it does not exist.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

/// Every agents directory under `root` — each tenant's of each model, and
/// the legacy ones a store has not migrated yet — with its tenant, for
/// commands that span models.
pub fn all_agents_dirs(root: &Path) -> Result<Vec<(TenantId, PathBuf)>, StoreError> {
    let mut dirs = Vec::new();
    for model in list_dir(&root.join(MODELS_DIR))? {
        dirs.extend(tenant_dirs(&model)?);
        let legacy = legacy_agents_dir(&model);
        if legacy.is_dir() {
            dirs.push((TenantId::open(), legacy));
        }
    }
    Ok(dirs)
}

/// Delete temp files in `dir` untouched for [`STALE_TEMP_AGE`]; returns how
/// many went. Failures are logged, not returned: a leftover is harmless.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(paths) = list_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for path in paths.into_iter().filter(|p| is_temp_file(p)) {
        let age = fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|mtime| now.duration_since(mtime).ok());
        if age.is_some_and(|age| age >= STALE_TEMP_AGE) {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove stale temp file")
                }
            }
        }
    }
    removed
}

/// fsync a directory so a rename or removal in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// A quarantine path for `original` that does not exist yet.
pub fn quarantine_path(root: &Path, prefix: &str, original: &Path, unix_ms: u64) -> PathBuf {
    let name = original
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unnamed".to_owned());
    let dir = quarantine_dir(root);
    let mut candidate = dir.join(format!("{unix_ms}-{prefix}-{name}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = dir.join(format!("{unix_ms}-{n}-{prefix}-{name}"));
        n += 1;
    }
    candidate
}

/// The file next to a quarantined file that says why it is there.
pub fn reason_path(quarantined: &Path) -> PathBuf {
    let mut name = quarantined.as_os_str().to_owned();
    name.push(REASON_EXT);
    PathBuf::from(name)
}
