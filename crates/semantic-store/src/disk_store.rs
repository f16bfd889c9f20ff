//! One model's agent files: atomic saves, verified loads, a header-only index.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::MmapOptions;
use semantic_domain::{AgentId, AgentKey, KvState, TenantId};

use crate::error::StoreError;
use crate::format::{self, FileHeader};
use crate::layout;
use crate::record::{AgentRecord, AgentRecordMeta, Compat, LoadOutcome};

/// The agent files of one model under a cache root.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
    /// `<root>/models/<prefix>`: every tenant's agent files of this model.
    model_dir: PathBuf,
    fingerprint: String,
    prefix: String,
    /// Files moved to quarantine by this process (metrics, tests).
    quarantined: AtomicU64,
}

impl DiskStore {
    /// Open (creating directories as needed) the store of the model with this
    /// hex fingerprint under `root` (the `--cache-dir`), move files of the
    /// layout before tenants into the open tenant's folder, and delete temp
    /// files that crashed saves left behind.
    pub fn open(root: &Path, model_fingerprint: &str) -> Result<Self, StoreError> {
        let prefix = layout::fingerprint_prefix(model_fingerprint)?;
        let model_dir = layout::model_dir(root, &prefix);
        crate::telemetry::register();
        for dir in [&model_dir, &layout::quarantine_dir(root)] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
        }
        migrate_legacy_layout(&model_dir)?;
        for (_, dir) in layout::tenant_dirs(&model_dir)? {
            let removed = layout::remove_stale_temps(&dir);
            if removed > 0 {
                tracing::info!(dir = %dir.display(), removed, "removed temp files left by interrupted saves");
            }
        }
        Ok(Self {
            root: root.to_owned(),
            model_dir,
            fingerprint: model_fingerprint.to_owned(),
            prefix,
            quarantined: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding this model's agent files (every tenant's).
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// The directory holding `tenant`'s agent files of this model.
    pub fn tenant_dir(&self, tenant: &TenantId) -> PathBuf {
        layout::tenant_agents_dir(&self.model_dir, tenant)
    }

    pub fn model_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Files this store moved to quarantine since it was opened.
    pub fn quarantined_count(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }

    /// Where `agent`'s file lives (whether or not it exists).
    pub fn path_for(&self, agent: &AgentKey) -> PathBuf {
        self.tenant_dir(&agent.tenant)
            .join(layout::agent_file_name(&agent.agent))
    }

    /// Every agent with a readable header, from headers only (the blobs are
    /// never read, so this is fast on a large cache). Files with a damaged
    /// header are quarantined; files of a newer format are skipped and kept;
    /// stale temp files are deleted. A file whose metadata names another
    /// tenant or agent than its path is damaged (quarantined). Every
    /// tenant's, sorted by tenant and agent id.
    pub fn index(&self) -> Result<Vec<AgentRecordMeta>, StoreError> {
        let mut metas = Vec::new();
        for (_, dir) in layout::tenant_dirs(&self.model_dir)? {
            layout::remove_stale_temps(&dir);
            for path in layout::list_dir(&dir)? {
                let Some(key) = layout::key_of_file(&path) else {
                    if !layout::is_temp_file(&path) {
                        tracing::debug!(path = %path.display(), "ignoring a file that is not an agent file");
                    }
                    continue;
                };
                match read_header_of(&path, Some(&key)) {
                    Ok(header) => metas.push(header.meta),
                    Err(err) => self.set_aside(&path, &err),
                }
            }
        }
        metas.sort_by(|a, b| a.agent.cmp(&b.agent));
        Ok(metas)
    }

    /// Quarantine a file the index could not read, or just log why it skipped it.
    fn set_aside(&self, path: &Path, err: &StoreError) {
        if !err.is_corrupt() {
            tracing::warn!(error = %err, "skipping agent file");
            return;
        }
        match self.quarantine(path, &err.to_string()) {
            Ok(to) => {
                tracing::warn!(error = %err, quarantined = %to.display(), "quarantined agent file")
            }
            Err(q) => {
                tracing::warn!(error = %err, quarantine_error = %q, "cannot quarantine agent file")
            }
        }
    }

    /// The metadata in a file's header; reads the header only.
    pub fn read_header(path: &Path) -> Result<AgentRecordMeta, StoreError> {
        read_header_of(path, None).map(|h| h.meta)
    }

    /// Read and verify `agent`'s file: header, exact size, agent id, then
    /// compatibility (a mismatch returns the tokens without reading the
    /// blob), then the blob's checksum. A damaged file is `Err(Corrupt)`:
    /// the caller quarantines it.
    pub fn load(&self, agent: &AgentKey, compat: &Compat) -> Result<LoadOutcome, StoreError> {
        let path = self.path_for(agent);
        let (file, header) = match open_checked(&path, Some(agent)) {
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    agent: agent.clone(),
                    path,
                })
            }
            other => other?,
        };
        if let Some(reason) = compat.mismatch(&header.meta) {
            return Ok(LoadOutcome::Mismatch {
                meta: header.meta,
                reason,
            });
        }
        let kv_state = read_blob(file, &header, &path)?;
        Ok(LoadOutcome::Usable(AgentRecord {
            meta: header.meta,
            kv_state,
        }))
    }

    /// Write `record` atomically: a temp file in the same directory, fsync,
    /// rename over the old file, fsync the directory. A crash at any point
    /// leaves either the old file or the new one, never a mix; a failed save
    /// removes its temp file. Returns the bytes written.
    pub fn save(&self, record: &AgentRecord) -> Result<u64, StoreError> {
        self.check_record(record)?;
        let header = format::encode_header(&record.meta, format::checksum(&record.kv_state))
            .map_err(|reason| StoreError::InvalidRecord {
                agent: record.meta.agent.clone(),
                reason: format!("cannot encode the header: {reason}"),
            })?;
        let dir = self.tenant_dir(&record.meta.agent.tenant);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
        }
        let temp = layout::temp_path(&dir, &record.meta.agent.agent);
        let target = self.path_for(&record.meta.agent);
        let written = write_synced(&temp, &header, &record.kv_state)
            .and_then(|n| {
                fs::rename(&temp, &target)
                    .map(|()| n)
                    .map_err(|e| StoreError::io("rename a finished temp file onto", &target, e))
            })
            .inspect_err(|_| {
                let _ = fs::remove_file(&temp);
            })?;
        layout::sync_dir(&dir)?;
        Ok(written)
    }

    fn check_record(&self, record: &AgentRecord) -> Result<(), StoreError> {
        let meta = &record.meta;
        let invalid = |reason: String| StoreError::InvalidRecord {
            agent: meta.agent.clone(),
            reason,
        };
        if meta.kv_bytes != record.kv_state.len() as u64 {
            return Err(invalid(format!(
                "meta.kv_bytes is {} but the blob is {} bytes",
                meta.kv_bytes,
                record.kv_state.len()
            )));
        }
        if meta.model_fingerprint != self.fingerprint {
            return Err(invalid(format!(
                "its model fingerprint {} is not this store's {}",
                meta.model_fingerprint, self.fingerprint
            )));
        }
        Ok(())
    }

    /// Delete `agent`'s file; `false` if there was none.
    pub fn remove(&self, agent: &AgentKey) -> Result<bool, StoreError> {
        let path = self.path_for(agent);
        match fs::remove_file(&path) {
            Ok(()) => {
                layout::sync_dir(&self.tenant_dir(&agent.tenant))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove", &path, e)),
        }
    }

    /// Delete every agent file (and temp file) of this model, every
    /// tenant's; returns how many agent files went.
    pub fn remove_all(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (_, dir) in layout::tenant_dirs(&self.model_dir)? {
            removed += remove_agent_files(&dir, None)?.len();
            layout::sync_dir(&dir)?;
        }
        Ok(removed)
    }

    /// Move a bad file to `<root>/quarantine/` with a `.reason.txt` beside
    /// it, so it is never loaded again but can still be inspected.
    pub fn quarantine(&self, path: &Path, reason: &str) -> Result<PathBuf, StoreError> {
        let now_ms = unix_ms_now();
        let dir = layout::quarantine_dir(&self.root);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
        let dest = layout::quarantine_path(&self.root, &self.prefix, path, now_ms);
        fs::rename(path, &dest).map_err(|e| StoreError::io("move into quarantine", path, e))?;
        self.quarantined.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::quarantined();
        let note = format!(
            "reason: {reason}\noriginal: {}\nquarantined_unix_ms: {now_ms}\n",
            path.display()
        );
        let reason_path = layout::reason_path(&dest);
        // The file is already out of the way; a missing note only loses the why.
        if let Err(e) = fs::write(&reason_path, note) {
            tracing::warn!(path = %reason_path.display(), error = %e, "cannot write quarantine reason");
        }
        Ok(dest)
    }
}

/// Remove the agent files in `dir` (only `agent`'s when given, else all,
/// temp files included); returns the agent files removed.
pub(crate) fn remove_agent_files(
    dir: &Path,
    agent: Option<&AgentId>,
) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    for path in layout::list_dir(dir)? {
        let is_agent_file = match (layout::agent_of_file(&path), agent) {
            (Some(found), Some(wanted)) => found == *wanted,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let stray_temp = agent.is_none() && layout::is_temp_file(&path);
        if !(is_agent_file || stray_temp) {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) if is_agent_file => removed.push(path),
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", &path, e)),
        }
    }
    Ok(removed)
}

pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Create `temp` (never clobbering), write header and blob, fsync.
fn write_synced(temp: &Path, header: &[u8], blob: &[u8]) -> Result<u64, StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(|e| StoreError::io("create temp file", temp, e))?;
    file.write_all(header)
        .and_then(|()| file.write_all(blob))
        .map_err(|e| StoreError::io("write", temp, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("fsync", temp, e))?;
    Ok((header.len() + blob.len()) as u64)
}

/// Move the agent files of the layout before tenants
/// (`<model>/agents/*.safetensors`) into the open tenant's folder, by
/// rename (no copy), so an upgrade keeps every agent warm on disk. A file
/// whose name is taken there already stays where it was, with a warning.
fn migrate_legacy_layout(model_dir: &Path) -> Result<(), StoreError> {
    let legacy = layout::legacy_agents_dir(model_dir);
    let paths = layout::list_dir(&legacy)?;
    if paths.is_empty() {
        return Ok(());
    }
    let target = layout::tenant_agents_dir(model_dir, &TenantId::open());
    fs::create_dir_all(&target).map_err(|e| StoreError::io("create directory", &target, e))?;
    let mut moved = 0;
    for path in paths {
        let Some(name) = path.file_name() else {
            continue;
        };
        if layout::agent_of_file(&path).is_none() {
            continue;
        }
        let to = target.join(name);
        if to.exists() {
            tracing::warn!(from = %path.display(), to = %to.display(), "not migrating an agent file: the open tenant already has one of that name");
            continue;
        }
        fs::rename(&path, &to)
            .map_err(|e| StoreError::io("move into the open tenant", &path, e))?;
        moved += 1;
    }
    layout::sync_dir(&target)?;
    layout::sync_dir(&legacy)?;
    // Only temp files of dead writers can be left besides skipped files.
    layout::remove_stale_temps(&legacy);
    let _ = fs::remove_dir(&legacy);
    if moved > 0 {
        tracing::info!(
            moved,
            to = %target.display(),
            "moved agent files written before tenants into the open tenant `default`"
        );
    }
    Ok(())
}

/// Read a file's header, checking that it holds `expected` when given (a
/// renamed or moved file must not be restored as another agent, or for
/// another tenant).
pub(crate) fn read_header_of(
    path: &Path,
    expected: Option<&AgentKey>,
) -> Result<FileHeader, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    let len = file_len(&file, path)?;
    let header = format::read_header(&mut BufReader::new(file), len, path)?;
    check_agent(&header, expected, path)?;
    Ok(header)
}

/// Open a file, read its header and check its exact size; the returned
/// file is positioned at the blob.
pub(crate) fn open_checked(
    path: &Path,
    expected: Option<&AgentKey>,
) -> Result<(File, FileHeader), StoreError> {
    let mut file = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    let len = file_len(&file, path)?;
    // Unbuffered, so the file's position stays exactly at the blob.
    let header = format::read_header(&mut file, len, path)?;
    check_agent(&header, expected, path)?;
    let expected_len = header.expected_file_len();
    if len != expected_len {
        let what = if len < expected_len {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(StoreError::corrupt(
            path,
            format!("file is {len} bytes but its header describes {expected_len} ({what})"),
        ));
    }
    Ok((file, header))
}

fn file_len(file: &File, path: &Path) -> Result<u64, StoreError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| StoreError::io("stat", path, e))
}

fn check_agent(
    header: &FileHeader,
    expected: Option<&AgentKey>,
    path: &Path,
) -> Result<(), StoreError> {
    match expected {
        Some(key) if header.meta.agent != *key => Err(StoreError::corrupt(
            path,
            format!(
                "file holds agent {} of tenant {} but its path is for agent {} of tenant {}",
                header.meta.agent.agent, header.meta.agent.tenant, key.agent, key.tenant
            ),
        )),
        _ => Ok(()),
    }
}

/// The blob that follows the header, checksum verified. Mapped read-only
/// from the file rather than copied: a 4K-token agent is ~94 MB in f16, and
/// copying it into a fresh buffer (page faults, zeroing, the copy) was most
/// of the time a returning agent's file took to load.
fn read_blob(file: File, header: &FileHeader, path: &Path) -> Result<KvState, StoreError> {
    let len = usize::try_from(header.meta.kv_bytes)
        .map_err(|_| StoreError::corrupt(path, "blob is larger than this machine's memory"))?;
    let blob = match map_blob(&file, header.data_offset, len) {
        Some(mapped) => mapped,
        None => copy_blob(file, len, path)?,
    };
    verify_checksum(header, format::checksum(&blob), path)?;
    Ok(blob)
}

/// `len` bytes at `offset`, mapped and populated; None where mapping is not
/// possible (an empty blob, a filesystem without mmap): the caller reads.
fn map_blob(file: &File, offset: u64, len: usize) -> Option<KvState> {
    if len == 0 {
        return None;
    }
    // SAFETY: a mapping is undefined behaviour if the file is changed or
    // truncated while mapped. Agent files never are: the writer replaces a
    // file by renaming a finished temp file over it (the mapped inode stays
    // as it was), and removal and quarantine unlink or rename it. The length
    // was checked against the file's size before this call.
    let mapped = unsafe {
        MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)
    };
    mapped.ok().map(KvState::new)
}

/// The blob read into memory (without zero-filling the buffer first).
fn copy_blob(file: File, len: usize, path: &Path) -> Result<KvState, StoreError> {
    let mut blob = Vec::new();
    blob.try_reserve_exact(len)
        .map_err(|e| StoreError::io("allocate memory for", path, io::Error::other(e)))?;
    let read = file
        .take(len as u64)
        .read_to_end(&mut blob)
        .map_err(|e| StoreError::io("read the blob of", path, e))?;
    if read != len {
        return Err(StoreError::corrupt(
            path,
            format!("blob ends after {read} of {len} bytes"),
        ));
    }
    Ok(KvState::from(blob))
}

pub(crate) fn verify_checksum(
    header: &FileHeader,
    actual: u32,
    path: &Path,
) -> Result<(), StoreError> {
    if actual == header.kv_checksum {
        return Ok(());
    }
    Err(StoreError::corrupt(
        path,
        format!(
            "kv_state checksum mismatch: header says {:08x}, blob hashes to {actual:08x}",
            header.kv_checksum
        ),
    ))
}
