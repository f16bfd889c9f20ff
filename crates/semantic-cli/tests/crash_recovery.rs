//! Crash safety of the disk tier with real processes and real signals:
//! `semantic serve` is SIGKILLed while it persists agents' turns, again and
//! again. Afterwards no file is corrupt (`semantic cache verify` agrees), and
//! a restarted server serves every agent from its file.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::serve_process::Serve;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A minimal HTTP/1.1 client: one request per connection.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    http_as(port, None, method, path, body)
}

/// [`http`] with an API key.
fn http_as(
    port: u16,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         {auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let json = text
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok());
    Some((status, json.unwrap_or(Value::Null)))
}

fn turn_body(agent: usize) -> Value {
    json!({
        "model": "default",
        "session_id": format!("crash-agent-{agent}"),
        "temperature": 0,
        "max_tokens": 8,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": format!("Agent {agent}: say something about the number {agent}.")}
        ]
    })
}

/// Keep sending turns for four agents until told to stop, counting the
/// completed ones in `done`.
fn load(port: u16, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut agent = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Some((200, _)) = http(
                port,
                "POST",
                "/v1/chat/completions",
                Some(&turn_body(agent % 4)),
            ) {
                done.fetch_add(1, Ordering::SeqCst);
            }
            agent += 1;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_persistence_never_leaves_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let completed = Arc::new(AtomicUsize::new(0));
    for round in 0..6u64 {
        let server = Serve::start(dir.path(), &["--max-sequences", "8"]).await;
        let stop = Arc::new(AtomicBool::new(false));
        let before = completed.load(Ordering::SeqCst);
        let worker = load(server.port, stop.clone(), completed.clone());
        // Once a turn has completed and, under this load, had time to be
        // snapshotted (at most 2 s later while the engine is busy) and
        // written (0.5 s after that), kill at a different moment each
        // round, mid-turn or mid-write.
        let deadline = Instant::now() + Duration::from_secs(60);
        while completed.load(Ordering::SeqCst) == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(2_500 + round * 237 % 900));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
    }
    assert!(
        completed.load(Ordering::SeqCst) >= 6,
        "a turn should complete in every round"
    );

    let verify = Command::new(env!("CARGO_BIN_EXE_semantic"))
        .args(["cache", "verify", "--cache-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(
        !dir.path().join("quarantine").exists()
            || std::fs::read_dir(dir.path().join("quarantine"))
                .unwrap()
                .count()
                == 0
    );

    // Every agent with a file is served from it after a restart.
    let server = Serve::start(dir.path(), &["--max-sequences", "8"]).await;
    let (_, agents) = http(server.port, "GET", "/v1/agents", None).unwrap();
    let on_disk: Vec<String> = agents["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(!on_disk.is_empty(), "no agent file survived: {agents}");
    for id in &on_disk {
        let n: usize = id.trim_start_matches("crash-agent-").parse().unwrap();
        let (status, body) = http(
            server.port,
            "POST",
            "/v1/chat/completions",
            Some(&turn_body(n)),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["usage"]["cache_source"], "disk", "{id}: {body}");
        assert!(
            body["usage"]["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
    }
    server.kill();
}

/// A conversation on the sliding-window model whose user message (about
/// 1,100 tokens) is longer than Gemma 3's 512-token window, so its saved
/// state must hold cells the local layers no longer attend to (patch 0004).
fn gemma_turn(session: &str, history: &[Value]) -> Value {
    let facts: String = (0..110)
        .map(|i| {
            format!(
                "Stone {i} weighs {} grams and is {}. ",
                i * 7 % 13 + 1,
                ["red", "grey", "white"][i % 3]
            )
        })
        .collect();
    let mut messages = vec![
        json!({"role": "system", "content": "You keep an inventory of stones."}),
        json!({"role": "user", "content": format!("{facts}Which stone is the heaviest?")}),
    ];
    messages.extend(history.iter().cloned());
    json!({
        "model": "default",
        "session_id": session,
        "temperature": 0,
        "max_tokens": 12,
        "messages": messages,
    })
}

/// Agent files written so far, read from the server's own counter.
async fn files_written(server: &Serve) -> u64 {
    let text = server.metrics_text(Some(AGENT_KEY)).await;
    text.lines()
        .find(|l| l.starts_with("semantic_cache_persist_duration_seconds_count"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Two keys, two tenants: the cold reference shares nothing with the agent.
const AGENT_KEY: &str = "agent-tenant-key";
const COLD_KEY: &str = "cold-tenant-key";

/// The crash-loop promise on the second model (Gemma 3, sliding window):
/// an agent whose turn was saved survives a SIGKILL; after the restart its
/// next turn is served from its file, reusing its whole first turn, and the
/// greedy reply equals a cold run of the same conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_window_agent_survives_sigkill_and_returns_from_disk_equal_to_cold() {
    let dir = tempfile::tempdir().unwrap();
    let model = support::sliding_window_model_path();
    let args = [
        "--context-tokens",
        "4096",
        "--max-sequences",
        "2",
        "--api-key",
        AGENT_KEY,
        "--api-key",
        COLD_KEY,
    ];
    let server = Serve::start_model(&model, dir.path(), &args).await;
    let first_body = gemma_turn("gemma-agent", &[]);
    let chat = "/v1/chat/completions";
    let (status, first) = http_as(
        server.port,
        Some(AGENT_KEY),
        "POST",
        chat,
        Some(&first_body),
    )
    .unwrap();
    assert_eq!(status, 200, "{first}");
    let first_prompt = first["usage"]["prompt_tokens"].as_u64().unwrap();
    let first_total = first_prompt + first["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(
        first_prompt > 1_000,
        "the prompt must outgrow the window: {first}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_written(&server).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the agent's turn was never saved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();

    let server = Serve::start_model(&model, dir.path(), &args).await;
    let reply = first["choices"][0]["message"]["content"].as_str().unwrap();
    let history = [
        json!({"role": "assistant", "content": reply}),
        json!({"role": "user", "content": "And the lightest?"}),
    ];
    let (status, back) = http_as(
        server.port,
        Some(AGENT_KEY),
        "POST",
        chat,
        Some(&gemma_turn("gemma-agent", &history)),
    )
    .unwrap();
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["usage"]["cache_source"], "disk", "{back}");
    let cached = back["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached + 1 >= first_total,
        "reused {cached} of the first turn's {first_total} tokens: {back}"
    );
    let (status, cold) = http_as(
        server.port,
        Some(COLD_KEY),
        "POST",
        chat,
        Some(&gemma_turn("gemma-agent", &history)),
    )
    .unwrap();
    assert_eq!(status, 200, "{cold}");
    assert_eq!(cold["usage"]["cache_source"], "cold", "{cold}");
    assert_eq!(
        back["choices"][0]["message"]["content"], cold["choices"][0]["message"]["content"],
        "the restored agent's reply differs from a cold run"
    );
    eprintln!(
        "Gemma agent: first turn {first_total} tokens; after SIGKILL and restart, from disk \
         with {cached} of {} prompt tokens reused, reply equal to a cold run",
        back["usage"]["prompt_tokens"]
    );
    server.kill();
}
