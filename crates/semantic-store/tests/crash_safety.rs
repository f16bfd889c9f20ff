//! A writer killed at random moments never leaves a damaged agent file.
//!
//! The test binary re-executes itself as the writer (`crash_child_writer`,
//! which only acts when `CHILD_DIR_ENV` is set), SIGKILLs it at random
//! times, and checks that every agent file loads as exactly one of the
//! versions the child wrote. SIGKILL keeps the page cache, so this proves
//! the temp-file + rename protocol; fsync's part (power loss) cannot be
//! tested from user space.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use semantic_domain::{AgentId, AgentKey, KvType, TenantId};
use semantic_store::{verify_all, AgentRecord, AgentRecordMeta, Compat, DiskStore, LoadOutcome};

const CHILD_DIR_ENV: &str = "SEMANTIC_STORE_CRASH_CHILD_DIR";
const CHILD_BASE_ENV: &str = "SEMANTIC_STORE_CRASH_CHILD_BASE";
const FINGERPRINT: &str = "00112233445566778899aabbccddeeff";
const BUILD: &str = "crash-test";
const AGENTS: [&str; 3] = ["alpha", "beta", "gamma"];
const KILLS: usize = 24;

/// Version `v`'s blob: 1-4 MB, every 8 bytes a function of `v` and position.
fn blob(v: u64) -> Vec<u8> {
    let len = (1 + v % 4) as usize * 1_000_000 + (v % 7) as usize;
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(&(v.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i).to_le_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn agent_of(v: u64) -> AgentKey {
    AgentKey::open(AgentId::parse(AGENTS[(v % 3) as usize]).unwrap())
}

/// Version `v` of its agent's record; `tokens[0]` names the version.
fn version(v: u64) -> AgentRecord {
    let kv_state = blob(v);
    AgentRecord {
        meta: AgentRecordMeta {
            agent: agent_of(v),
            model_fingerprint: FINGERPRINT.into(),
            engine_build: BUILD.into(),
            kv_type: KvType::Q8_0,
            tokens: (0..(v % 50) as i32 + 1).map(|t| v as i32 + t).collect(),
            kv_bytes: kv_state.len() as u64,
            created_unix_ms: v,
        },
        kv_state: kv_state.into(),
    }
}

/// The writer process: saves versions base, base+1, ... until killed
/// (or for 30 s at most, so a lost parent never leaves it running).
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let base: u64 = std::env::var(CHILD_BASE_ENV).unwrap().parse().unwrap();
    let store = DiskStore::open(Path::new(&dir), FINGERPRINT).unwrap();
    let started = Instant::now();
    let mut v = base;
    while started.elapsed() < Duration::from_secs(30) {
        store.save(&version(v)).unwrap();
        v += 1;
    }
}

/// Every agent file loads as exactly one written version; returns how many
/// agent files and how many leftover temp files there are.
fn check_agents_dir(root: &Path, store: &DiskStore) -> (usize, usize) {
    let compat = Compat {
        model_fingerprint: FINGERPRINT.into(),
        engine_build: BUILD.into(),
        kv_type: KvType::Q8_0,
    };
    let (mut agents, mut temps) = (0, 0);
    for entry in std::fs::read_dir(store.tenant_dir(&TenantId::open())).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            temps += 1;
            continue;
        }
        let id =
            AgentKey::open(AgentId::parse(name.strip_suffix(".safetensors").unwrap()).unwrap());
        let loaded = match store.load(&id, &compat) {
            Ok(LoadOutcome::Usable(record)) => record,
            other => panic!("{name} after a kill: {other:?}"),
        };
        let v = loaded.meta.created_unix_ms;
        assert!(loaded == version(v), "{name} is not version {v}");
        agents += 1;
    }
    let verified = verify_all(root, None);
    assert_eq!(verified.len(), agents);
    for (path, result) in verified {
        assert!(result.is_ok(), "{}: {result:?}", path.display());
    }
    (agents, temps)
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_damaged_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = DiskStore::open(dir.path(), FINGERPRINT).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["crash_child_writer", "--exact", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_BASE_ENV, (kill as u64 * 1_000_000).to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..400)));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        check_agents_dir(dir.path(), &store);
    }
    let (agents, temps) = check_agents_dir(dir.path(), &store);
    assert!(agents > 0, "the child never finished a save");
    assert!(std::fs::read_dir(dir.path().join("quarantine"))
        .unwrap()
        .next()
        .is_none());
    // Kills that landed mid-save leave temp files: evidence the test bites.
    eprintln!(
        "{KILLS} kills, {temps} interrupted saves left temp files, {agents} agent files intact"
    );
}
