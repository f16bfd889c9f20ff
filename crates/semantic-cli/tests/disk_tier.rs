//! The disk tier end to end on the real model and real files: agents
//! survive a restart and are served from their files; bad files are
//! quarantined and the request still succeeds, prefilled from scratch.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::model_path;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use semantic_domain::chat::ChatMessage;
use semantic_domain::persistence::AgentPersistence;
use semantic_domain::{AgentId, CacheSource, GenerateRequest, KvType, SamplingParams, TokenId};
use semantic_engine::system_info::llama_build_info;
use semantic_engine::{Completion, EngineConfig, EngineHandle};
use semantic_store::{Compat, DiskStore, StorePersistence};

fn compat(kv_type: KvType) -> Compat {
    Compat {
        model_fingerprint: semantic_engine::fingerprint::model_fingerprint(&model_path()).unwrap(),
        engine_build: llama_build_info().fingerprint(),
        kv_type,
    }
}

fn start(cache: &Path, kv_type: KvType) -> (EngineHandle, Arc<StorePersistence>) {
    start_with_budget(
        cache,
        kv_type,
        EngineConfig::new(model_path()).disk_budget_bytes,
    )
}

fn start_with_budget(
    cache: &Path,
    kv_type: KvType,
    disk_budget: u64,
) -> (EngineHandle, Arc<StorePersistence>) {
    let c = compat(kv_type);
    let store = DiskStore::open(cache, &c.model_fingerprint).unwrap();
    let persistence = Arc::new(StorePersistence::new(Arc::new(store), c).unwrap());
    let mut config = EngineConfig::new(model_path());
    config.context_tokens = 4096;
    config.max_sequences = 8;
    config.kv_type = kv_type;
    config.disk_budget_bytes = disk_budget;
    let dyn_p: Arc<dyn AgentPersistence> = persistence.clone();
    (
        EngineHandle::start_with(config, Some(dyn_p), |_| {}).unwrap(),
        persistence,
    )
}

fn prompt(engine: &EngineHandle, i: usize) -> Vec<TokenId> {
    let topic = ["rivers", "mountains", "deserts", "forests"][i % 4];
    let messages = [
        ChatMessage::system("You are a helpful assistant. Answer briefly."),
        ChatMessage::user(format!("Agent {i} asks: tell me one fact about {topic}.")),
    ];
    engine.model().tokenize_chat(&messages, None).unwrap()
}

async fn turn(engine: &EngineHandle, prompt: &[TokenId], agent: &str) -> Completion {
    let request = GenerateRequest::new(
        prompt.to_vec(),
        SamplingParams::greedy(16),
        Some(AgentId::parse(agent).unwrap()),
    );
    engine.submit(request).unwrap().collect().await.unwrap()
}

async fn shutdown(engine: EngineHandle) {
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .unwrap();
}

/// Start, run 3 agents, stop, start again: all 3 are found on disk and
/// served from their files with the same output, for every KV type.
async fn restart_round_trip(kv_type: KvType) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = start(dir.path(), kv_type);
    let mut firsts = Vec::new();
    for i in 0..3 {
        let p = prompt(&engine, i);
        firsts.push((p.clone(), turn(&engine, &p, &format!("agent-{i}")).await));
    }
    shutdown(engine).await;

    let (engine, _) = start(dir.path(), kv_type);
    let listed = engine.agents().await.unwrap();
    assert_eq!(listed.len(), 3, "{kv_type}: {listed:?}");
    assert!(listed.iter().all(|a| a.tier == "disk"), "{listed:?}");
    for (i, (p, first)) in firsts.iter().enumerate() {
        let again = turn(&engine, p, &format!("agent-{i}")).await;
        assert_eq!(
            again.usage.cache_source,
            CacheSource::Disk,
            "{kv_type} agent-{i}: {:?}",
            again.usage
        );
        assert_eq!(
            again.usage.cached_tokens as usize,
            p.len() - 1,
            "{kv_type} agent-{i}"
        );
        assert_eq!(
            again.tokens, first.tokens,
            "{kv_type} agent-{i}: output changed after restore"
        );
    }
    shutdown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_survive_a_restart_and_are_served_from_disk() {
    for kv_type in KvType::ALL {
        restart_round_trip(kv_type).await;
    }
}

fn agent_file(persistence: &StorePersistence, agent: &str) -> PathBuf {
    let key = semantic_domain::AgentKey::open(AgentId::parse(agent).unwrap());
    persistence.store().path_for(&key)
}

/// Past `--disk-budget` the least recently used agents held only on disk
/// are deleted, at start-up (a smaller budget than the files hold) and as
/// new turns are saved; a deleted agent comes back cold, with the same
/// output, and is no longer listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_keeps_within_its_budget_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, persistence) = start(dir.path(), KvType::F16);
    let mut firsts = Vec::new();
    for i in 0..5 {
        let p = prompt(&engine, i);
        firsts.push((p.clone(), turn(&engine, &p, &format!("agent-{i}")).await));
        // Written one after the other, so their files' times (their last
        // use after a restart) order them as their turns were.
        engine.persist_all().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    shutdown(engine).await;
    let sizes: Vec<u64> = (0..5)
        .map(|i| {
            let path = agent_file(&persistence, &format!("agent-{i}"));
            std::fs::metadata(path).unwrap().len()
        })
        .collect();
    drop(persistence);
    // Room for two and a half files: the three oldest must go at start-up.
    let largest = *sizes.iter().max().unwrap();
    let budget = largest * 5 / 2;
    let (engine, persistence) = start_with_budget(dir.path(), KvType::F16, budget);
    let mut listed: Vec<String> = engine
        .agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.agent.agent.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["agent-3", "agent-4"], "kept the two newest");
    for i in 0..5 {
        let exists = agent_file(&persistence, &format!("agent-{i}")).exists();
        assert_eq!(exists, i >= 3, "agent-{i}'s file");
    }

    // A deleted agent returns: recomputed, same output, and its new file
    // pushes the least recently used disk-only agent (agent-3) out.
    let (p, first) = &firsts[0];
    let again = turn(&engine, p, "agent-0").await;
    assert_ne!(
        again.usage.cache_source,
        CacheSource::Disk,
        "{:?}",
        again.usage
    );
    assert_eq!(
        again.tokens, first.tokens,
        "a deleted agent's output changed"
    );
    persistence.flush();
    shutdown(engine).await;
    let on_disk: Vec<bool> = (0..5)
        .map(|i| agent_file(&persistence, &format!("agent-{i}")).exists())
        .collect();
    assert_eq!(
        on_disk,
        [true, false, false, false, true],
        "files after agent-0's turn"
    );
    let total: u64 = std::fs::read_dir(
        persistence
            .store()
            .tenant_dir(&semantic_domain::TenantId::open()),
    )
    .unwrap()
    .map(|e| e.unwrap().metadata().unwrap().len())
    .sum();
    assert!(total <= budget, "{total} bytes on disk, budget {budget}");
}

/// Corrupt `path` in one of the ways a disk or a crash can.
fn damage(path: &Path, how: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    match how {
        "truncated" => bytes.truncate(bytes.len() / 2),
        "flipped" => {
            let at = bytes.len() - 100;
            bytes[at] ^= 0xff;
        }
        "garbage" => bytes = b"this is not a safetensors file at all".to_vec(),
        _ => unreachable!(),
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_quarantined_and_requests_still_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, persistence) = start(dir.path(), KvType::F16);
    let names = ["truncated", "flipped", "garbage", "other-kv-type"];
    let mut prompts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = prompt(&engine, i);
        turn(&engine, &p, name).await;
        prompts.push(p);
    }
    let paths: Vec<PathBuf> = names
        .iter()
        .map(|n| {
            persistence
                .store()
                .path_for(&semantic_domain::AgentKey::open(AgentId::parse(n).unwrap()))
        })
        .collect();
    shutdown(engine).await;
    drop(persistence);
    for (path, how) in paths.iter().zip(&names[..3]) {
        damage(path, how);
    }

    // The last agent's file is intact but was written with f16 KV: a q8_0
    // engine must not use it. Its directory is the same model's.
    let (engine, persistence) = start(dir.path(), KvType::Q8_0);
    for (i, name) in names.iter().enumerate() {
        let out = turn(&engine, &prompts[i], name).await;
        assert_eq!(
            out.usage.cache_source,
            CacheSource::Cold,
            "{name}: {:?}",
            out.usage
        );
        assert_eq!(out.usage.cached_tokens, 0, "{name}");
        assert!(out.usage.completion_tokens > 0, "{name}");
    }
    assert_eq!(persistence.unusable_files(), 4);
    let quarantined = std::fs::read_dir(dir.path().join("quarantine"))
        .unwrap()
        .count();
    assert!(quarantined >= 4, "{quarantined} entries in quarantine");
    shutdown(engine).await;
}
