//! `semantic cache` run as a user would, on files the store API wrote.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use semantic_domain::{AgentId, KvType};
use semantic_store::{AgentRecord, AgentRecordMeta, DiskStore};

const MODEL_A: &str = "aaaaaaaaaaaaaaaa1111";
const MODEL_B: &str = "bbbbbbbbbbbbbbbb2222";

/// Run `semantic cache ARGS` on `root`, passing the directory as a flag.
fn cache(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_semantic"))
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(root)
        .env_remove("SEMANTIC_CACHE_DIR")
        .output()
        .expect("semantic runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn save(root: &Path, fingerprint: &str, agent: &str, tokens: usize, age_ms: u64) -> PathBuf {
    save_for(root, fingerprint, "default", agent, tokens, age_ms)
}

fn save_for(
    root: &Path,
    fingerprint: &str,
    tenant: &str,
    agent: &str,
    tokens: usize,
    age_ms: u64,
) -> PathBuf {
    let store = DiskStore::open(root, fingerprint).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let kv_state: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let record = AgentRecord {
        meta: AgentRecordMeta {
            agent: semantic_domain::AgentKey::new(
                semantic_domain::TenantId::parse_any(tenant).unwrap(),
                AgentId::parse(agent).unwrap(),
            ),
            model_fingerprint: fingerprint.into(),
            engine_build: "b4242".into(),
            kv_type: KvType::Q8_0,
            tokens: (0..tokens as i32).collect(),
            kv_bytes: kv_state.len() as u64,
            created_unix_ms: now - age_ms,
        },
        kv_state: kv_state.into(),
    };
    store.save(&record).unwrap();
    store.path_for(&record.meta.agent)
}

#[test]
fn ls_inspect_verify_and_rm_work_on_the_cache_dir() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    save(root, MODEL_A, "alpha", 100, 5_000);
    let beta = save(root, MODEL_A, "beta", 3, 7_200_000);
    save(root, MODEL_B, "alpha", 20, 1_000);

    // ls: one row per file, newest first, through the env variable this time.
    let out = Command::new(env!("CARGO_BIN_EXE_semantic"))
        .args(["cache", "ls"])
        .env("SEMANTIC_CACHE_DIR", root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let starts = |row: &str, agent: &str| row.starts_with(&format!("{:<24} {agent} ", "default"));
    assert!(starts(rows[0], "alpha") && rows[0].contains("bbbbbbbbbbbbbbbb"));
    assert!(starts(rows[1], "alpha") && rows[1].contains("aaaaaaaaaaaaaaaa"));
    assert!(
        starts(rows[2], "beta") && rows[2].contains("2h ago"),
        "{stdout}"
    );
    assert!(rows.iter().all(|r| r.contains(" disk ")), "{stdout}");
    assert!(text(&out.stderr).contains("disk tier only"));

    // inspect: both models' copies, every field, a shortened token list.
    let out = cache(root, &["inspect", "alpha"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in [
        "models/aaaaaaaaaaaaaaaa/tenants/default/agents/alpha.safetensors",
        "models/bbbbbbbbbbbbbbbb/tenants/default/agents/alpha.safetensors",
        "tenant:            default",
        MODEL_A,
        MODEL_B,
        "semantic-agent-kv v1",
        "b4242",
        "q8_0",
        "token_count:       100",
        "[0, 1, 2, 3, 4, 5, 6, 7, …, 92, 93, 94, 95, 96, 97, 98, 99]",
        "kv_bytes:          50000",
        "kv_checksum:       crc32 ",
        "check:             OK",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    let missing = cache(root, &["inspect", "ghost"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no cached KV for agent ghost"));
    let traversal = cache(root, &["inspect", "../etc"]);
    assert!(!traversal.status.success());
    assert!(text(&traversal.stderr).contains("invalid agent id"));

    // verify: all good, then one corrupted file is named and fails the run.
    let out = cache(root, &["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout).matches("OK ").count(), 3);
    let mut bytes = std::fs::read(&beta).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&beta, bytes).unwrap();
    let out = cache(root, &["verify"]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("CORRUPT  {}", beta.display())) && stdout.contains("checksum"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("1 of 3"),
        "{}",
        text(&out.stderr)
    );

    // rm AGENT removes every model's copy; an unknown agent fails.
    let out = cache(root, &["rm", "alpha"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("removed ").count(), 2);
    let again = cache(root, &["rm", "alpha"]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("no cached KV for agent alpha"));
    assert!(!cache(root, &["rm"]).status.success(), "rm needs a target");

    // rm --all empties the cache.
    let out = cache(root, &["rm", "--all"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed 1 agent files"));
    let out = cache(root, &["ls"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("no cached agents"));
}

#[test]
fn every_command_can_be_narrowed_to_one_tenant() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path();
    save_for(root, MODEL_A, "team-a", "planner", 10, 1_000);
    save_for(root, MODEL_A, "team-b", "planner", 20, 2_000);

    let out = cache(root, &["ls"]);
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().skip(1).count(), 2, "{stdout}");
    let out = cache(root, &["ls", "--tenant", "team-b"]);
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(
        rows[0].starts_with("team-b") && rows[0].contains(" 20 "),
        "{stdout}"
    );

    let out = cache(root, &["inspect", "planner", "--tenant", "team-a"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("tenant:            team-a"), "{stdout}");
    assert!(!stdout.contains("team-b"), "{stdout}");
    let out = cache(root, &["verify", "--tenant", "team-a"]);
    assert_eq!(text(&out.stdout).matches("OK ").count(), 1);

    let out = cache(root, &["rm", "planner", "--tenant", "team-a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cache(root, &["rm", "planner", "--tenant", "team-a"]);
    assert!(
        text(&out.stderr).contains("for tenant team-a"),
        "{}",
        text(&out.stderr)
    );
    let out = cache(root, &["ls"]);
    assert!(text(&out.stdout).contains("team-b"));
    let bad = cache(root, &["ls", "--tenant", "../x"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("invalid --tenant"));
}
