//! Many clients at once over real HTTP against the real model: 32 streaming
//! clients with distinct agents all finish, and each gets exactly the text
//! its prompt gives when sent alone (batching is invisible).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use std::time::{Duration, Instant};

use futures::StreamExt;
use semantic_domain::KvType;
use serde_json::{json, Value};

const CLIENTS: usize = 32;
const MAX_TOKENS: u32 = 16;

fn prompt(i: usize) -> String {
    let topics = ["animal", "colour", "fruit", "city"];
    let letter = char::from(b'A' + (i % 26) as u8);
    format!(
        "Name one {} that starts with the letter {letter}.",
        topics[i / 8 % 4]
    )
}

fn body(i: usize, stream: bool) -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "user", "content": prompt(i)}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    })
}

/// The streamed text of one agent's turn; asserts the stream ended in [DONE].
async fn stream_text(server: &TestServer, i: usize) -> String {
    let r = server
        .client
        .post(server.url("/v1/chat/completions"))
        .header("x-agent-id", format!("concurrent-{i}"))
        .json(&body(i, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "client {i}");
    let mut raw = String::new();
    let mut bytes = r.bytes_stream();
    while let Some(piece) = bytes.next().await {
        raw.push_str(&String::from_utf8_lossy(&piece.unwrap()));
    }
    let events: Vec<&str> = raw
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "client {i}: {raw}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Both KV types tested give bit-identical output for reused, restored and
/// shared cells (ARCHITECTURE.md, Numerics): f16 through our one f16
/// attention kernel, q8_0 through llama.cpp's per-cell one.
async fn start_server(kv_type: KvType, max_sequences: u32) -> TestServer {
    let mut config = engine_config();
    config.kv_type = kv_type;
    config.max_sequences = max_sequences;
    TestServer::start_with(config).await
}

/// Every client's streamed text, all sent at once.
async fn all_at_once(server: &TestServer) -> Vec<String> {
    let started = Instant::now();
    let together = futures::future::join_all((0..CLIENTS).map(|i| stream_text(server, i)));
    let together = tokio::time::timeout(Duration::from_secs(300), together)
        .await
        .expect("all clients finish within 300 s");
    eprintln!("{CLIENTS} concurrent streams took {:?}", started.elapsed());
    together
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_streaming_agents_all_complete_each_in_its_own_cache() {
    let server = start_server(KvType::F16, 16).await;
    let together = all_at_once(&server).await;
    for (i, text) in together.iter().enumerate() {
        assert!(!text.is_empty(), "client {i} got no text");
    }
    let agents: Value = server.get("/v1/agents").await.json().await.unwrap();
    let agents = agents["data"].as_array().unwrap();
    assert_eq!(agents.len(), CLIENTS);
    assert!(agents.iter().all(|a| a["tokens"].as_u64().unwrap() > 0));
    // Nothing is left queued or running.
    let snap = server.engine.snapshot().await.unwrap();
    assert_eq!((snap.waiting, snap.running), (0, 0));
    server.shutdown().await;
}

/// Each client's greedy text, sent alone one after another, equals what it
/// streams when all 32 run at once. Exact because every sequence's KV cells
/// stay in position order (our llama.cpp patch, ARCHITECTURE.md) and the
/// attention kernels sum each sequence's own cells in that order, in the
/// same tiles, however the batch, the evictions and the prefixes shared
/// across agents (these prompts share their first ~40 tokens) lay them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_streaming_agents_each_get_their_solo_output() {
    solo_equals_concurrent(start_server(KvType::F16, 16).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_streaming_agents_each_get_their_solo_output_with_q8_0_kv() {
    solo_equals_concurrent(start_server(KvType::Q8_0, 16).await).await;
}

/// The same with only 4 sequences in the engine: agents are evicted to RAM,
/// restored and queued while others run, so cells are freed and refilled
/// all the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_streaming_agents_through_four_sequences_get_their_solo_output() {
    solo_equals_concurrent(start_server(KvType::F16, 4).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_streaming_agents_through_four_sequences_with_q8_0_kv() {
    solo_equals_concurrent(start_server(KvType::Q8_0, 4).await).await;
}

async fn solo_equals_concurrent(server: TestServer) {
    if let Some(why) = server.engine.model().info().offload.exactness_note() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut alone = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let r: Value = server.chat(&body(i, false)).await.json().await.unwrap();
        alone.push(
            r["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let together = all_at_once(&server).await;
    for (i, (solo, concurrent)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(solo, concurrent, "client {i}: {:?}", prompt(i));
    }
    server.shutdown().await;
}
