//! Real-model tests of per-agent KV reuse: hot and warm tiers, token-level
//! prefix reuse (repeat, extension, divergence) and shared prefixes. Every
//! reuse must give exactly the output of a cold run.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use common::*;
use semantic_domain::chat::ChatMessage;
use semantic_domain::tokens::common_prefix_len;
use semantic_domain::{AgentId, CacheSource, FinishReason, KvType, TokenId};
use semantic_engine::{Completion, EngineHandle, EvictTarget};

fn agent(name: &str) -> Option<AgentId> {
    Some(AgentId::parse(name).unwrap())
}

async fn run(engine: &EngineHandle, prompt: &[TokenId], who: Option<AgentId>) -> Completion {
    run_n(engine, prompt, who, 24).await
}

async fn run_n(
    engine: &EngineHandle,
    prompt: &[TokenId],
    who: Option<AgentId>,
    n: u32,
) -> Completion {
    let mut req = greedy(prompt.to_vec(), n);
    req.agent = who;
    engine.submit(req).unwrap().collect().await.unwrap()
}

fn conversation(engine: &EngineHandle, turns: &[(&str, &str)], next: &str) -> Vec<TokenId> {
    let mut messages = vec![ChatMessage::system("You are a helpful assistant.")];
    for (user, assistant) in turns {
        messages.push(ChatMessage::user(*user));
        messages.push(ChatMessage::assistant(*assistant));
    }
    messages.push(ChatMessage::user(next));
    engine.model().tokenize_chat(&messages, None).unwrap()
}

/// A prompt of a few hundred tokens: corpus context and a question.
fn long_prompt(engine: &EngineHandle) -> Vec<TokenId> {
    let context = engine.model().detokenize(&corpus_tokens(engine, 300));
    conversation(
        engine,
        &[],
        &format!("{context}\n\nSummarize the text above in one sentence."),
    )
}

async fn hot_and_warm_match_cold(kv_type: KvType) {
    let mut cfg = config();
    cfg.kv_type = kv_type;
    let engine = start(cfg);
    let prompt = long_prompt(&engine);
    let cold = run(&engine, &prompt, None).await;
    assert_eq!(cold.usage.cached_tokens, 0);

    let first = run(&engine, &prompt, agent("a")).await;
    assert_eq!(
        first.tokens, cold.tokens,
        "{kv_type}: first agent turn differs from cold"
    );

    let hot = run(&engine, &prompt, agent("a")).await;
    assert_eq!(hot.usage.cache_source, CacheSource::Hot);
    assert_eq!(hot.usage.cached_tokens as usize, prompt.len() - 1);
    assert_eq!(
        hot.tokens, cold.tokens,
        "{kv_type}: hot reuse changed the output"
    );

    assert!(engine
        .evict_agent(
            semantic_domain::AgentKey::open(AgentId::parse("a").unwrap()),
            EvictTarget::Warm
        )
        .await
        .unwrap());
    let listed = engine.agents().await.unwrap();
    assert_eq!(listed[0].tier, "warm", "{listed:?}");
    let warm = run(&engine, &prompt, agent("a")).await;
    assert_eq!(warm.usage.cache_source, CacheSource::Warm);
    assert_eq!(warm.usage.cached_tokens as usize, prompt.len() - 1);
    assert_eq!(
        warm.tokens, cold.tokens,
        "{kv_type}: warm restore changed the output"
    );
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_and_warm_reuse_match_cold_runs_f16() {
    hot_and_warm_match_cold(KvType::F16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_and_warm_reuse_match_cold_runs_q8_0() {
    hot_and_warm_match_cold(KvType::Q8_0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_and_warm_reuse_match_cold_runs_q4_0() {
    hot_and_warm_match_cold(KvType::Q4_0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_and_divergence_reuse_exactly_the_common_prefix() {
    let engine = start(config());
    let q1 = "Name three colours of the rainbow.";
    let p1 = conversation(&engine, &[], q1);
    let t1 = run_n(&engine, &p1, agent("talker"), 96).await;
    // The reply ended on its own, so every reply token was fed back and the
    // agent's cache holds the prompt and the whole reply.
    assert_eq!(t1.reason, FinishReason::EndOfTurn, "{:?}", t1.text);
    let cached: Vec<TokenId> = p1.iter().chain(&t1.tokens).copied().collect();

    // The usual next turn: the client sends the reply back unchanged.
    let p2 = conversation(&engine, &[(q1, &t1.text)], "Now name two more.");
    let expected = common_prefix_len(&cached, &p2);
    assert!(
        expected > p1.len(),
        "the reply should be reused too ({expected} <= {})",
        p1.len()
    );
    let t2 = run_n(&engine, &p2, agent("talker"), 96).await;
    assert_eq!(t2.reason, FinishReason::EndOfTurn, "{:?}", t2.text);
    assert_eq!(t2.usage.cached_tokens as usize, expected);
    assert_eq!(t2.usage.cache_source, CacheSource::Hot);
    assert_eq!(
        t2.tokens,
        run_n(&engine, &p2, None, 96).await.tokens,
        "extension differs from cold"
    );

    // An edited earlier message: reuse stops at the edit.
    let cached2: Vec<TokenId> = p2.iter().chain(&t2.tokens).copied().collect();
    let p3 = conversation(
        &engine,
        &[("Name three colours of the sea.", &t1.text)],
        "Now name two more.",
    );
    let expected3 = common_prefix_len(&cached2, &p3);
    assert!(expected3 < p1.len());
    let t3 = run_n(&engine, &p3, agent("talker"), 96).await;
    assert_eq!(t3.usage.cached_tokens as usize, expected3);
    assert_eq!(
        t3.tokens,
        run_n(&engine, &p3, None, 96).await.tokens,
        "divergence differs from cold"
    );
    engine.shutdown();
}

/// Sharing gives exact output for every KV type: the attention kernels are
/// independent of where a sequence's cells sit in the cache (see
/// ARCHITECTURE.md, "Numerics").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_one_system_prompt_share_its_cells() {
    agents_share_one_system_prompt(KvType::F16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_one_system_prompt_share_its_cells_q8_0() {
    agents_share_one_system_prompt(KvType::Q8_0).await;
}

async fn agents_share_one_system_prompt(kv_type: KvType) {
    let mut cfg = config();
    cfg.kv_type = kv_type;
    let engine = start(cfg);
    let system = engine.model().detokenize(&corpus_tokens(&engine, 600));
    let prompt_for = |q: &str| {
        engine
            .model()
            .tokenize_chat(
                &[ChatMessage::system(system.as_str()), ChatMessage::user(q)],
                None,
            )
            .unwrap()
    };
    let first = prompt_for("What is this about?");
    let a = run(&engine, &first, agent("agent-0")).await;
    assert_eq!(a.usage.cached_tokens, 0);
    let before = engine.snapshot().await.unwrap().pool_used_blocks;
    for i in 1..10 {
        let p = prompt_for(&format!("Question number {i}: what is the main idea?"));
        let out = run(&engine, &p, agent(&format!("agent-{i}"))).await;
        assert_eq!(out.usage.cache_source, CacheSource::Shared, "agent {i}");
        let shared = common_prefix_len(&first, &p);
        assert!(
            out.usage.cached_tokens as usize >= shared - 1,
            "agent {i}: {:?}",
            out.usage
        );
        assert_eq!(
            out.tokens,
            run(&engine, &p, None).await.tokens,
            "agent {i}: shared differs from cold"
        );
    }
    let snap = engine.snapshot().await.unwrap();
    // Ten agents hold the 600-token system prompt (3 blocks) once: each new
    // agent adds only its own tail blocks.
    let full_copy_blocks = 10 * before;
    assert!(
        snap.pool_used_blocks < full_copy_blocks / 2,
        "{snap:?} vs {before} per agent"
    );
    engine.shutdown();
}
