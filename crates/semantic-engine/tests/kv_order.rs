//! Patch 0001's fallback, driven on purpose: a returning agent whose cache
//! reaches the top of a nearly full context, with the only free cells below
//! its first one. llama.cpp then places its new cells with the stock search,
//! out of position order; the counter behind
//! `semantic_kv_order_fallbacks_total` must see it, and the test reports
//! whether the agent's reply still equals a cold run. Its own test binary,
//! because the counter is process-wide.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use common::*;
use semantic_domain::{AgentId, CacheSource, TenantId, TokenId};
use semantic_engine::llama_compute::kv_order_fallbacks;
use semantic_engine::{Completion, EngineConfig, EngineHandle};

const GENERATED: u32 = 16;

/// Four blocks of 256 cells and two sequences: two agents fill it.
fn small_context() -> EngineConfig {
    let mut c = config();
    c.context_tokens = 1024;
    c.block_tokens = 256;
    c.max_sequences = 2;
    c
}

async fn turn(engine: &EngineHandle, prompt: &[TokenId], agent: &str) -> Completion {
    let mut req = greedy(prompt.to_vec(), GENERATED);
    req.agent = Some(AgentId::parse(agent).unwrap());
    engine.submit(req).unwrap().collect().await.unwrap()
}

async fn cold(engine: &EngineHandle, prompt: &[TokenId]) -> Vec<TokenId> {
    let mut req = greedy(prompt.to_vec(), GENERATED);
    req.tenant = TenantId::parse("cold-reference").unwrap();
    let c = engine.submit(req).unwrap().collect().await.unwrap();
    assert_eq!(c.usage.cache_source, CacheSource::Cold);
    c.tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_full_to_the_top_falls_back_and_is_counted() {
    let engine = start(small_context());
    let text = corpus_tokens(&engine, 1200);
    // "low" takes the lowest cells, "high" the ones after it up to ~900.
    turn(&engine, &text[..480], "low").await;
    let high_prompt = {
        let other = semantic_engine::corpus::Corpus::generated()
            .tokens(engine.model(), 420, 1)
            .unwrap();
        other[1..].to_vec()
    };
    let first = turn(&engine, &high_prompt, "high").await;
    let before = kv_order_fallbacks();

    // "high" returns with 250 new tokens: they need a third block, so "low"
    // is evicted, freeing only cells *below* "high"'s first one; above its
    // last there are ~100. Its new cells cannot all stay in position order.
    let mut returning: Vec<TokenId> = high_prompt.clone();
    returning.extend(&first.tokens);
    returning.extend(&text[480..730]);
    let back = turn(&engine, &returning, "high").await;
    assert_eq!(back.usage.cache_source, CacheSource::Hot);
    let fallbacks = kv_order_fallbacks() - before;
    assert!(
        fallbacks > 0,
        "no free cell above the agent's last one, yet no fallback was counted"
    );

    let reference = cold(&engine, &returning).await;
    let exact = back.tokens == reference;
    eprintln!(
        "patch 0001 fallback fired {fallbacks} time(s); the returning agent's reply {} a cold run",
        if exact {
            "still equals"
        } else {
            "differs from"
        }
    );
    engine.shutdown();
}
