//! `semantic serve` under memory pressure, on the real model over real
//! HTTP: more agents than the KV pool and the warm tier hold return in
//! round-robin order, two at a time. Every request must complete within a
//! bound (the bug this guards against: returning agents waited forever
//! while the tiers moved their state back and forth), returning turns must
//! be served from what the tiers kept (`cache_source`, `cached_tokens`),
//! and outputs must equal cold runs.
//!
//! SmolLM2-135M keeps 23,040 bytes of f16 KV per token, so an agent of
//! ~750 tokens is ~17 MB and the KV pool holds whole 256-token blocks.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::serve_process::Serve;

use std::time::Duration;

use semantic_engine::corpus::Corpus;
use serde_json::{json, Value};

/// Real servers under real load: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AGENTS: usize = 6;
const TURNS: usize = 3;
/// About 700 tokens of system prompt per agent.
const SYSTEM_CHARS: usize = 3000;
const MAX_TOKENS: u32 = 12;
/// Far above any request's honest time here, far below "forever".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);
const QUESTIONS: [&str; TURNS] = [
    "Summarise the text above in one sentence.",
    "Which detail of it matters most?",
    "Give the text a short title.",
];

/// What one turn returned.
#[derive(Clone, Debug)]
struct Reply {
    text: String,
    prompt_tokens: u64,
    cached_tokens: u64,
    source: String,
}

async fn chat(client: &reqwest::Client, base: &str, agent: &str, messages: &[Value]) -> Reply {
    let body = json!({
        "model": "default", "messages": messages,
        "max_tokens": MAX_TOKENS, "temperature": 0,
    });
    let response = tokio::time::timeout(
        REQUEST_TIMEOUT,
        client
            .post(format!("{base}/v1/chat/completions"))
            .header("x-agent-id", agent)
            .json(&body)
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("agent {agent}: no answer within {REQUEST_TIMEOUT:?}"))
    .expect("request sent");
    let status = response.status();
    let v: Value = response.json().await.expect("JSON body");
    assert_eq!(status, 200, "agent {agent}: {v}");
    Reply {
        text: v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        cached_tokens: v["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        source: v["usage"]["cache_source"].as_str().unwrap_or("").to_owned(),
    }
}

/// One agent's conversation.
struct Conversation {
    id: String,
    messages: Vec<Value>,
    replies: Vec<Reply>,
}

fn conversations(run: &str, variant: usize) -> Vec<Conversation> {
    let corpus = Corpus::generated();
    (0..AGENTS)
        .map(|i| {
            let system: String = corpus
                .text(variant + i)
                .chars()
                .take(SYSTEM_CHARS)
                .collect();
            Conversation {
                id: format!("{run}-{i}"),
                messages: vec![json!({"role": "system", "content": system})],
                replies: Vec::new(),
            }
        })
        .collect()
}

/// Every agent's turns in rounds, two requests at a time.
async fn rotate(serve: &Serve, convs: &mut [Conversation]) {
    let client = reqwest::Client::new();
    for (turn, question) in QUESTIONS.iter().enumerate() {
        for conv in convs.iter_mut() {
            conv.messages
                .push(json!({"role": "user", "content": question}));
        }
        for pair in convs.chunks_mut(2) {
            let replies = futures::future::join_all(
                pair.iter()
                    .map(|c| chat(&client, &serve.base, &c.id, &c.messages)),
            )
            .await;
            for (conv, reply) in pair.iter_mut().zip(replies) {
                conv.messages
                    .push(json!({"role": "assistant", "content": reply.text}));
                conv.replies.push(reply);
            }
        }
        eprintln!("round {} done", turn + 1);
    }
}

/// Returning turns reused at least the agent's whole previous prompt less
/// one token, from one of `sources`.
fn assert_returning_turns_reused(convs: &[Conversation], sources: &[&str]) {
    for conv in convs {
        for turn in 1..TURNS {
            let (before, now) = (&conv.replies[turn - 1], &conv.replies[turn]);
            assert!(
                sources.contains(&now.source.as_str()),
                "agent {} turn {}: source {} not in {sources:?}",
                conv.id,
                turn + 1,
                now.source
            );
            assert!(
                now.cached_tokens + 1 >= before.prompt_tokens,
                "agent {} turn {}: {} cached of a {}-token history",
                conv.id,
                turn + 1,
                now.cached_tokens,
                before.prompt_tokens
            );
        }
    }
}

/// The last turns of the first `n` agents, run cold on `reference` (a
/// server with nothing cached that shares no prefix with them), equal
/// what the server under pressure answered.
async fn assert_equal_cold(reference: &Serve, convs: &[Conversation], n: usize) {
    let client = reqwest::Client::new();
    for conv in &convs[..n] {
        // The whole conversation but the last reply: the last turn's prompt.
        let prompt = &conv.messages[..conv.messages.len() - 1];
        let cold = chat(
            &client,
            &reference.base,
            &format!("cold-{}", conv.id),
            prompt,
        )
        .await;
        assert_eq!(cold.source, "cold", "reference run reused something");
        let pressured = conv.replies.last().expect("replies");
        assert_eq!(
            pressured.text, cold.text,
            "agent {} differs from cold",
            conv.id
        );
    }
}

/// Sum of `semantic_cache_evictions_total` over every tier pair.
async fn tier_moves(serve: &Serve) -> f64 {
    let text = serve.metrics_text(None).await;
    text.lines()
        .filter(|l| l.starts_with("semantic_cache_evictions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn pressure_run(run: &str, variant: usize, budgets: &[&str], sources: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), budgets).await;
    let mut convs = conversations(run, variant);
    rotate(&serve, &mut convs).await;
    assert_returning_turns_reused(&convs, sources);
    let requests = (AGENTS * TURNS) as f64;
    let moves = tier_moves(&serve).await;
    assert!(
        moves <= 4.0 * requests,
        "{run}: {moves} tier moves for {requests} requests"
    );
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = Serve::start(ref_dir.path(), &[]).await;
    assert_equal_cold(&reference, &convs, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hot_and_one_warm_serve_six_returning_agents() {
    let _serial = SERIAL.lock().await;
    // Pool: 8 blocks of 256 tokens (two agents); warm: one agent.
    pressure_run(
        "two-hot",
        0,
        &["--kv-budget", "48MiB", "--warm-budget", "24MiB"],
        &["warm", "disk"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_larger_than_the_warm_budget_come_straight_from_disk() {
    let _serial = SERIAL.lock().await;
    pressure_run(
        "big",
        100,
        &["--kv-budget", "48MiB", "--warm-budget", "8MiB"],
        &["disk"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_barely_larger_than_one_agent_serves_them_one_at_a_time() {
    let _serial = SERIAL.lock().await;
    // Pool: 4 blocks (1,024 tokens), one ~770-token agent at a time.
    pressure_run(
        "one-fits",
        200,
        &["--kv-budget", "24MiB", "--warm-budget", "24MiB"],
        &["warm", "disk"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_larger_than_the_pool_is_refused_and_disturbs_nothing() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--kv-budget", "24MiB"]).await;
    let client = reqwest::Client::new();
    let mut convs = conversations("fits", 300);
    let conv = &mut convs[0];
    conv.messages
        .push(json!({"role": "user", "content": QUESTIONS[0]}));
    let first = chat(&client, &serve.base, &conv.id, &conv.messages).await;
    // About 2,000 tokens: more than the whole 1,024-token pool.
    let huge: String = Corpus::generated().text(999).chars().take(9000).collect();
    let r = client
        .post(serve.url("/v1/chat/completions"))
        .header("x-agent-id", "too-big")
        .json(&json!({"model": "default", "max_tokens": 4,
            "messages": [{"role": "user", "content": huge}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("KV pool holds 1024 tokens") && message.contains("--kv-budget"),
        "{message}"
    );
    // The agent already there is untouched: its next turn is hot.
    conv.messages
        .push(json!({"role": "assistant", "content": first.text}));
    conv.messages
        .push(json!({"role": "user", "content": QUESTIONS[1]}));
    let second = chat(&client, &serve.base, &conv.id, &conv.messages).await;
    assert_eq!(second.source, "hot");
    assert!(second.cached_tokens + 1 >= first.prompt_tokens);
}
