//! DiskStore on real files in temp directories.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use safetensors::SafeTensors;
use semantic_domain::{KvType, TenantId};
use tempfile::TempDir;

use crate::format::{encode_raw_header, FORMAT_NAME};
use crate::layout;
use crate::test_support::{agent, blob, compat, open, record, tenant_agent, FINGERPRINT};
use crate::{
    find_agent, list_all, remove_everywhere, verify_all, Compat, DiskStore, LoadOutcome, StoreError,
};

fn usable(outcome: LoadOutcome) -> crate::AgentRecord {
    match outcome {
        LoadOutcome::Usable(record) => record,
        LoadOutcome::Mismatch { reason, .. } => panic!("unexpected mismatch: {reason}"),
    }
}

/// Assert `result` is `Corrupt`, its message names `path` and contains `needle`.
fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, path: &Path, needle: &str) {
    let err = result.expect_err("expected a corrupt file");
    let msg = err.to_string();
    assert!(err.is_corrupt(), "not Corrupt: {msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(needle), "expected {needle:?} in {msg}");
}

/// The `__metadata__` of a file we wrote, to forge variants of it.
fn metadata_of(path: &Path) -> HashMap<String, String> {
    let bytes = fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().clone().unwrap()
}

/// Write a file with `map` as metadata (sealed with a valid meta checksum).
fn forge(path: &Path, mut map: HashMap<String, String>, kv_state: &[u8]) {
    let mut bytes = encode_raw_header(&mut map, kv_state.len()).unwrap();
    bytes.extend_from_slice(kv_state);
    fs::write(path, bytes).unwrap();
}

fn saved(store: &DiskStore, id: &str) -> PathBuf {
    store
        .save(&record(id, vec![1, 2, 3, 4], blob(7, 4096)))
        .unwrap();
    store.path_for(&agent(id))
}

#[test]
fn round_trip_is_byte_exact_and_standard_safetensors() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let rec = record("agent-1", vec![1, -5, 151_000, 0, 42], blob(1, 300_001));
    let written = store.save(&rec).unwrap();
    let path = store.path_for(&rec.meta.agent);
    assert_eq!(written, fs::metadata(&path).unwrap().len());

    let loaded = usable(store.load(&rec.meta.agent, &compat()).unwrap());
    assert_eq!(loaded, rec);

    // Any safetensors reader sees one U8 tensor holding the blob.
    let bytes = fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensor = st.tensor("kv_state").unwrap();
    assert_eq!(tensor.shape(), &[300_001]);
    assert_eq!(tensor.data(), rec.kv_state.as_bytes());
    assert_eq!(metadata_of(&path)["format"], FORMAT_NAME);
    assert_eq!(metadata_of(&path)["kv_checksum_algo"], "crc32");
}

#[test]
fn empty_blob_and_tokens_round_trip() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let rec = record("empty", vec![], vec![]);
    store.save(&rec).unwrap();
    assert_eq!(usable(store.load(&rec.meta.agent, &compat()).unwrap()), rec);
}

#[test]
fn index_reads_headers_only() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    saved(&store, "a");
    let b = saved(&store, "b");
    // Cut the blob short: the header is intact, the data is not.
    let len = fs::metadata(&b).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(len - 100)
        .unwrap();

    let index = store.index().unwrap();
    let agents: Vec<_> = index.iter().map(|m| m.agent.agent.as_str()).collect();
    assert_eq!(agents, ["a", "b"]);
    assert_eq!(index[1].tokens, [1, 2, 3, 4]);
    assert_eq!(index[1].kv_bytes, 4096);
    assert_corrupt(store.load(&agent("b"), &compat()), &b, "truncated");
}

#[test]
fn damaged_files_are_corrupt_and_named() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let load = |id: &str| store.load(&agent(id), &compat());

    let p = saved(&store, "short");
    fs::write(&p, [1u8, 2, 3]).unwrap();
    assert_corrupt(load("short"), &p, "too short");

    let p = saved(&store, "mid-header");
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..40]).unwrap();
    assert_corrupt(load("mid-header"), &p, "truncated");

    let p = saved(&store, "trailing");
    let mut bytes = fs::read(&p).unwrap();
    bytes.push(0);
    fs::write(&p, bytes).unwrap();
    assert_corrupt(load("trailing"), &p, "trailing bytes");

    let p = saved(&store, "flipped");
    let mut bytes = fs::read(&p).unwrap();
    let last = bytes.len() - 1000;
    bytes[last] ^= 0x01;
    fs::write(&p, bytes).unwrap();
    assert_corrupt(load("flipped"), &p, "checksum mismatch");

    let p = saved(&store, "garbage");
    let mut bytes = 16u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"this is not json");
    fs::write(&p, bytes).unwrap();
    assert_corrupt(load("garbage"), &p, "not a valid safetensors header");

    let p = saved(&store, "huge");
    let mut bytes = fs::read(&p).unwrap();
    bytes[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    fs::write(&p, bytes).unwrap();
    assert_corrupt(load("huge"), &p, "more than the 100000000 allowed");

    let p = saved(&store, "longer-than-file");
    let mut bytes = fs::read(&p).unwrap();
    bytes[..8].copy_from_slice(&50_000_000u64.to_le_bytes());
    fs::write(&p, bytes).unwrap();
    assert_corrupt(load("longer-than-file"), &p, "truncated");
}

#[test]
fn inconsistent_metadata_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let kv = blob(7, 4096);
    let cases: [(&str, &str, &str, &str); 6] = [
        ("wrong-format", "format", "gguf-kv", "format is \"gguf-kv\""),
        (
            "bad-tokens",
            "tokens",
            "[1,\"two\",3,4]",
            "not a JSON array of i32",
        ),
        (
            "big-token",
            "tokens",
            "[1,2,3,4294967296]",
            "not a JSON array of i32",
        ),
        ("bad-count", "token_count", "five", "is not a number"),
        ("wrong-count", "token_count", "5", "token_count is 5"),
        ("bad-kv-type", "kv_type", "q5_1", "q5_1"),
    ];
    for (id, key, value, needle) in cases {
        let p = saved(&store, id);
        let mut map = metadata_of(&p);
        map.insert(key.into(), value.into());
        forge(&p, map, &kv);
        assert_corrupt(store.load(&agent(id), &compat()), &p, needle);
    }

    // A bit flip inside the header (no re-sealing) fails the metadata checksum.
    let p = saved(&store, "flipped-token");
    let mut bytes = fs::read(&p).unwrap();
    let at = find(&bytes, b"[1,2,3,4]").unwrap() + 3;
    bytes[at] = b'7';
    fs::write(&p, bytes).unwrap();
    assert_corrupt(
        store.load(&agent("flipped-token"), &compat()),
        &p,
        "metadata checksum",
    );

    // A file renamed to another agent's name is not that agent.
    let p = saved(&store, "original");
    let renamed = store.path_for(&agent("impostor"));
    fs::rename(&p, &renamed).unwrap();
    assert_corrupt(
        store.load(&agent("impostor"), &compat()),
        &renamed,
        "holds agent original",
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn newer_format_version_is_unsupported_and_kept() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let p = saved(&store, "future");
    let mut map = metadata_of(&p);
    map.insert("format_version".into(), "2".into());
    forge(&p, map, &blob(7, 4096));
    let err = store.load(&agent("future"), &compat()).unwrap_err();
    assert!(matches!(err, StoreError::Unsupported { .. }), "{err}");
    assert!(store.index().unwrap().is_empty());
    assert!(p.exists(), "a newer build's file must not be quarantined");
}

#[test]
fn incompatible_files_are_mismatches_that_keep_tokens() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    saved(&store, "a");
    let variants = [
        (
            Compat {
                model_fingerprint: "fedcba9876543210".into(),
                ..compat()
            },
            "model fingerprint",
        ),
        (
            Compat {
                kv_type: KvType::Q8_0,
                ..compat()
            },
            "KV type f16 differs from the configured q8_0",
        ),
        (
            Compat {
                engine_build: "b9999".into(),
                ..compat()
            },
            "engine build",
        ),
    ];
    for (compat, needle) in variants {
        match store.load(&agent("a"), &compat).unwrap() {
            LoadOutcome::Mismatch { meta, reason } => {
                assert_eq!(meta.tokens, [1, 2, 3, 4]);
                assert!(reason.contains(needle), "{reason}");
            }
            LoadOutcome::Usable(_) => panic!("{needle}: loaded as usable"),
        }
    }
}

#[test]
fn missing_agent_is_not_found() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let err = store.load(&agent("ghost"), &compat()).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("ghost.safetensors"), "{err}");
}

fn set_age(path: &Path, age: Duration) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn temp_files_are_ignored_and_stale_ones_cleaned() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let p = saved(&store, "a");
    let dir_of = store.tenant_dir(&TenantId::open());
    let fresh = layout::temp_path(&dir_of, &agent("a").agent);
    let stale = layout::temp_path(&dir_of, &agent("b").agent);
    fs::write(&fresh, b"half a save").unwrap();
    fs::write(&stale, b"a crashed save").unwrap();
    set_age(&stale, Duration::from_secs(120));

    let index = store.index().unwrap();
    assert_eq!(index.len(), 1);
    assert!(fresh.exists(), "a save in progress must survive");
    assert!(!stale.exists(), "a stale temp must be deleted");
    usable(store.load(&agent("a"), &compat()).unwrap());
    assert!(matches!(
        store.load(&agent("b"), &compat()),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(verify_all(dir.path(), None).len(), 1);

    set_age(&fresh, Duration::from_secs(61));
    drop(store);
    let _reopened = open(dir.path());
    assert!(!fresh.exists(), "open deletes stale temps");
    assert!(p.exists());
}

#[test]
fn save_replaces_an_existing_file() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    store.save(&record("a", vec![1], blob(1, 10_000))).unwrap();
    let newer = record("a", vec![1, 2], blob(2, 5_000));
    store.save(&newer).unwrap();
    assert_eq!(usable(store.load(&agent("a"), &compat()).unwrap()), newer);
    assert_eq!(
        layout::list_dir(&store.tenant_dir(&TenantId::open()))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn save_rejects_inconsistent_records() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let mut rec = record("a", vec![1], blob(1, 10));
    rec.meta.kv_bytes = 11;
    let err = store.save(&rec).unwrap_err();
    assert!(err.to_string().contains("kv_bytes is 11"), "{err}");

    let mut rec = record("a", vec![1], blob(1, 10));
    rec.meta.model_fingerprint = "abcdef".into();
    let err = store.save(&rec).unwrap_err();
    assert!(err.to_string().contains("not this store's"), "{err}");
    assert!(layout::list_dir(&store.tenant_dir(&TenantId::open()))
        .unwrap()
        .is_empty());
}

#[test]
fn failed_save_leaves_no_temp_file() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    // A directory squatting on the target makes the rename fail, even as root.
    let target = store.path_for(&agent("a"));
    fs::create_dir_all(target.join("occupied")).unwrap();
    let err = store
        .save(&record("a", vec![1], blob(1, 1000)))
        .unwrap_err();
    assert!(err.to_string().contains("a.safetensors"), "{err}");
    let left = layout::list_dir(&store.tenant_dir(&TenantId::open())).unwrap();
    assert_eq!(left, [target]);
}

#[test]
fn quarantine_moves_the_file_and_keeps_the_reason() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let p = saved(&store, "bad");
    let moved = store.quarantine(&p, "checksum mismatch in test").unwrap();
    assert!(!p.exists());
    assert!(moved.starts_with(dir.path().join("quarantine")));
    assert!(moved.exists());
    let reason = fs::read_to_string(layout::reason_path(&moved)).unwrap();
    assert!(reason.contains("checksum mismatch in test"), "{reason}");
    assert!(reason.contains(&p.display().to_string()), "{reason}");

    // Quarantining a second file of the same name does not overwrite the first.
    let p = saved(&store, "bad");
    let again = store.quarantine(&p, "again").unwrap();
    assert_ne!(again, moved);
    assert!(moved.exists() && again.exists());
}

#[test]
fn index_quarantines_unreadable_headers() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    saved(&store, "good");
    let bad = saved(&store, "bad");
    fs::write(&bad, b"\x05\0\0\0\0\0\0\0{oops").unwrap();
    let index = store.index().unwrap();
    assert_eq!(index.len(), 1);
    assert!(!bad.exists());
    let quarantined = layout::list_dir(&dir.path().join("quarantine")).unwrap();
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    let note = quarantined
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".reason.txt"))
        .unwrap();
    let reason = fs::read_to_string(note).unwrap();
    assert!(reason.contains("bad.safetensors"), "{reason}");
}

#[test]
fn paths_stay_inside_the_agents_dir() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    for id in ["...", "a.b-c_d", "..a", "-", "_", &"x".repeat(128)] {
        let path = store.path_for(&agent(id));
        let tenant_dir = store.tenant_dir(&TenantId::open());
        assert_eq!(path.parent(), Some(tenant_dir.as_path()), "{id}");
        assert_eq!(layout::key_of_file(&path), Some(agent(id)));
        store.save(&record(id, vec![1], blob(3, 10))).unwrap();
        usable(store.load(&agent(id), &compat()).unwrap());
    }
    for bad in ["../x", "", "zz", "abc/def", "0123 4567"] {
        let err = DiskStore::open(dir.path(), bad).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidFingerprint { .. }),
            "{bad}"
        );
    }
}

#[test]
fn models_live_apart_under_one_root() {
    let dir = TempDir::new().unwrap();
    let store_a = open(dir.path());
    let other_fp = "FEDCBA98765432100000";
    let store_b = DiskStore::open(dir.path(), other_fp).unwrap();
    saved(&store_a, "shared");
    saved(&store_a, "only-a");
    let mut rec = record("shared", vec![9], blob(9, 100));
    rec.meta.model_fingerprint = other_fp.into();
    store_b.save(&rec).unwrap();
    assert!(store_b
        .model_dir()
        .starts_with(dir.path().join("models/fedcba9876543210")));

    assert_eq!(store_a.index().unwrap().len(), 2);
    assert_eq!(store_b.index().unwrap().len(), 1);
    assert_eq!(list_all(dir.path(), None).len(), 3);
    assert!(verify_all(dir.path(), None).iter().all(|(_, r)| r.is_ok()));
    assert_eq!(
        find_agent(dir.path(), &agent("shared").agent, None)
            .unwrap()
            .len(),
        2
    );

    let removed = remove_everywhere(dir.path(), Some(&agent("shared").agent), None).unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(list_all(dir.path(), None).len(), 1);
    assert!(store_a.remove(&agent("only-a")).unwrap());
    assert!(!store_a.remove(&agent("only-a")).unwrap());

    saved(&store_a, "x");
    saved(&store_a, "y");
    assert_eq!(store_a.remove_all().unwrap(), 2);
    assert!(list_all(dir.path(), None).is_empty());
    assert_eq!(store_a.model_fingerprint(), FINGERPRINT);
}

#[test]
fn verify_all_reports_each_bad_file() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    saved(&store, "good");
    let bad = saved(&store, "bad");
    let mut bytes = fs::read(&bad).unwrap();
    let at = bytes.len() - 1;
    bytes[at] ^= 0xff;
    fs::write(&bad, bytes).unwrap();

    let reports = verify_all(dir.path(), None);
    assert_eq!(reports.len(), 2);
    let (path, result) = reports.iter().find(|(_, r)| r.is_err()).unwrap();
    assert_eq!(path, &bad);
    let err = result.as_ref().unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    // Headers alone cannot see a blob error.
    assert!(list_all(dir.path(), None).iter().all(|(_, r)| r.is_ok()));
    // A root that does not exist is simply empty.
    assert!(verify_all(&dir.path().join("nowhere"), None).is_empty());
}

/// A record of `id` owned by `tenant`.
fn tenant_record(tenant: &str, id: &str, seed: u64) -> crate::AgentRecord {
    let mut rec = record(id, vec![1, 2, 3], blob(seed, 2048));
    rec.meta.agent = tenant_agent(tenant, id);
    rec
}

#[test]
fn tenants_keep_agents_of_the_same_id_apart() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let a = tenant_record("a", "planner", 1);
    let b = tenant_record("b", "planner", 2);
    store.save(&a).unwrap();
    store.save(&b).unwrap();
    let pa = store.path_for(&a.meta.agent);
    assert!(
        pa.ends_with("tenants/a/agents/planner.safetensors"),
        "{pa:?}"
    );
    assert_eq!(usable(store.load(&a.meta.agent, &compat()).unwrap()), a);
    assert_eq!(usable(store.load(&b.meta.agent, &compat()).unwrap()), b);
    let index: Vec<String> = store
        .index()
        .unwrap()
        .iter()
        .map(|m| m.agent.to_string())
        .collect();
    assert_eq!(index, ["a/planner", "b/planner"]);
    let only_b = TenantId::parse("b").unwrap();
    assert_eq!(list_all(dir.path(), Some(&only_b)).len(), 1);
    assert!(store.remove(&a.meta.agent).unwrap());
    assert!(store.path_for(&b.meta.agent).exists());
}

#[test]
fn a_file_moved_into_another_tenants_folder_is_not_loaded_for_it() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let a = tenant_record("a", "planner", 1);
    store.save(&a).unwrap();
    let as_b = tenant_agent("b", "planner");
    let into_b = store.path_for(&as_b);
    fs::create_dir_all(into_b.parent().unwrap()).unwrap();
    fs::copy(store.path_for(&a.meta.agent), &into_b).unwrap();
    assert_corrupt(store.load(&as_b, &compat()), &into_b, "of tenant a");
    // The index sets it aside too, and keeps A's own file.
    let index = store.index().unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!(index[0].agent, a.meta.agent);
    assert!(!into_b.exists());
}

#[test]
fn files_written_before_tenants_move_into_the_open_tenant() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let p = saved(&store, "old");
    // The layout and metadata before tenants: no `tenant` key, no tenants folder.
    let mut map = metadata_of(&p);
    map.remove("tenant");
    let legacy_dir = store.model_dir().join("agents");
    fs::create_dir_all(&legacy_dir).unwrap();
    let legacy = legacy_dir.join("old.safetensors");
    forge(&legacy, map, &blob(7, 4096));
    fs::remove_file(&p).unwrap();
    assert_eq!(
        list_all(dir.path(), None).len(),
        1,
        "listed before migration"
    );
    drop(store);

    let store = open(dir.path());
    assert!(!legacy.exists() && !legacy_dir.exists());
    assert!(p.exists(), "moved to {p:?}");
    let loaded = usable(store.load(&agent("old"), &compat()).unwrap());
    assert_eq!(loaded.meta.agent, agent("old"));
    assert_eq!(loaded.meta.tokens, [1, 2, 3, 4]);
}
