//! Operations across every model under a cache root, for `semantic cache`.
//! They only read or delete; they never create directories, so pointing the
//! CLI at a wrong path does not litter it.

use std::io::Read;
use std::path::{Path, PathBuf};

use semantic_domain::{AgentId, AgentKey, TenantId};

use crate::disk_store::{open_checked, read_header_of, remove_agent_files, verify_checksum};
use crate::error::StoreError;
use crate::format::FileHeader;
use crate::layout;
use crate::record::AgentRecordMeta;

/// One entry per agent file (or per directory that could not be listed).
pub type FileReport = (PathBuf, Result<AgentRecordMeta, StoreError>);

/// Headers of every agent file under `root`, all models, every tenant's or
/// only `tenant`'s; the blobs are not read.
pub fn list_all(root: &Path, tenant: Option<&TenantId>) -> Vec<FileReport> {
    for_each_agent_file(root, tenant, |path, agent| {
        read_header_of(path, Some(agent)).map(|h| h.meta)
    })
}

/// Fully check every agent file under `root` (all models, every tenant's or
/// only `tenant`'s): header, exact size, agent id and tenant, and blob
/// checksum (streamed, so memory stays small).
pub fn verify_all(root: &Path, tenant: Option<&TenantId>) -> Vec<FileReport> {
    for_each_agent_file(root, tenant, verify_file)
}

/// The full header of an agent file (checksum and format version included),
/// checking that it holds the agent and tenant its path names; reads the
/// header only.
pub fn read_file_header(path: &Path) -> Result<FileHeader, StoreError> {
    read_header_of(path, layout::key_of_file(path).as_ref())
}

/// Full check of one agent file, without holding its blob in memory.
pub fn verify_file(path: &Path, agent: &AgentKey) -> Result<AgentRecordMeta, StoreError> {
    let (file, header) = open_checked(path, Some(agent))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut reader = file.take(header.meta.kv_bytes);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|e| StoreError::io("read the blob of", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    verify_checksum(&header, hasher.finalize(), path)?;
    Ok(header.meta)
}

/// Paths of `agent`'s files under every model directory of `root`, of
/// every tenant or only `tenant`.
pub fn find_agent(
    root: &Path,
    agent: &AgentId,
    tenant: Option<&TenantId>,
) -> Result<Vec<PathBuf>, StoreError> {
    let name = layout::agent_file_name(agent);
    Ok(agents_dirs(root, tenant)?
        .into_iter()
        .map(|dir| dir.join(&name))
        .filter(|path| path.is_file())
        .collect())
}

/// Delete `agent`'s files (all models), or every agent file when `agent` is
/// `None`, of every tenant or only `tenant`; returns the files removed.
pub fn remove_everywhere(
    root: &Path,
    agent: Option<&AgentId>,
    tenant: Option<&TenantId>,
) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    for dir in agents_dirs(root, tenant)? {
        let gone = remove_agent_files(&dir, agent)?;
        if !gone.is_empty() {
            layout::sync_dir(&dir)?;
        }
        removed.extend(gone);
    }
    Ok(removed)
}

/// The agents directories under `root`, every tenant's or only `tenant`'s.
fn agents_dirs(root: &Path, tenant: Option<&TenantId>) -> Result<Vec<PathBuf>, StoreError> {
    Ok(layout::all_agents_dirs(root)?
        .into_iter()
        .filter(|(t, _)| tenant.is_none_or(|wanted| t == wanted))
        .map(|(_, dir)| dir)
        .collect())
}

fn for_each_agent_file(
    root: &Path,
    tenant: Option<&TenantId>,
    check: impl Fn(&Path, &AgentKey) -> Result<AgentRecordMeta, StoreError>,
) -> Vec<FileReport> {
    let dirs = match agents_dirs(root, tenant) {
        Ok(dirs) => dirs,
        Err(e) => return vec![(root.join(layout::MODELS_DIR), Err(e))],
    };
    let mut reports = Vec::new();
    for dir in dirs {
        match layout::list_dir(&dir) {
            Ok(paths) => reports.extend(paths.into_iter().filter_map(|path| {
                let agent = layout::key_of_file(&path)?;
                let result = check(&path, &agent);
                Some((path, result))
            })),
            Err(e) => reports.push((dir, Err(e))),
        }
    }
    reports
}
