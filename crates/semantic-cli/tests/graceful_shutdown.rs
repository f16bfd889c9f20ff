//! `semantic serve` under real signals: SIGTERM drains (readiness 503, new
//! requests 503, the stream in flight completes), persists every agent and
//! exits 0; a restarted server serves those agents from disk. A second
//! signal, or `--shutdown-timeout`, cuts the wait short but still persists.
//! Logs on a non-terminal stderr are JSON lines carrying request ids.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::serve_process::Serve;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

/// Each test runs real servers under real load; run one at a time so their
/// timings do not depend on each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn messages(history: &[(&str, &str)]) -> Value {
    Value::Array(
        history
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    )
}

async fn turn(
    client: &reqwest::Client,
    serve: &Serve,
    agent: &str,
    history: &[(&str, &str)],
) -> Value {
    let r = client
        .post(serve.url("/v1/chat/completions"))
        .header("x-agent-id", agent)
        .header("x-request-id", format!("turn-of-{agent}"))
        .json(&json!({"model": "default", "messages": messages(history), "max_tokens": 8, "temperature": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn agent_files(cache: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for model in std::fs::read_dir(cache.join("models")).unwrap() {
        let agents = model.unwrap().path().join("tenants/default/agents");
        for file in std::fs::read_dir(agents).into_iter().flatten() {
            names.push(file.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

/// A long streaming request (ignore_eos keeps it going to max_tokens).
async fn long_stream(
    client: &reqwest::Client,
    serve: &Serve,
    agent: &str,
    max_tokens: u32,
) -> reqwest::Response {
    let r = client
        .post(serve.url("/v1/chat/completions"))
        .header("x-agent-id", agent)
        .json(&json!({
            "model": "default", "stream": true, "temperature": 0, "ignore_eos": true,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_persists_exits_zero_and_a_restart_serves_from_disk() {
    let _serial = SERIAL.lock().await;
    let cache = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut serve = Serve::start(cache.path(), &[]).await;
    let history = [("user", "Name three colours.")];
    let first = turn(&client, &serve, "finished-agent", &history).await;
    let reply = first["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();

    let stream = long_stream(&client, &serve, "streaming-agent", 48).await;
    let mut chunks = stream.bytes_stream();
    let mut text = String::from_utf8_lossy(&chunks.next().await.unwrap().unwrap()).into_owned();
    serve.signal();

    // Readiness flips at once; new requests are refused with Retry-After.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client.get(serve.url("/health/ready")).send().await.unwrap();
        if r.status() == 503 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["failing"], json!(["draining"]));
            break;
        }
        assert!(Instant::now() < deadline, "readiness never turned 503");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = client
        .post(serve.url("/v1/chat/completions"))
        .json(&json!({"model": "default", "messages": messages(&history), "max_tokens": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.headers().contains_key("x-request-id"));
    let envelope: Value = refused.json().await.unwrap();
    assert_eq!(envelope["error"]["code"], "shutting_down");

    // The stream in flight runs to its end.
    while let Some(chunk) = chunks.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"finish_reason\":\"length\""));

    let (status, took) = serve.exited(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status:?}: {}", serve.log_text());
    assert!(took < Duration::from_secs(30));
    assert_eq!(
        agent_files(cache.path()),
        ["finished-agent.safetensors", "streaming-agent.safetensors"]
    );

    // JSON lines, with the request id on the lines of that request.
    let log = serve.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["span"]["request_id"] == "turn-of-finished-agent"
            && l["message"] == "request finished"));
    assert!(lines
        .iter()
        .any(|l| l["message"] == "drained: every request in flight finished"));
    assert!(
        !log.contains("Name three colours"),
        "prompts are never logged"
    );

    // A restart serves the finished turn from its file.
    let serve = Serve::start(cache.path(), &[]).await;
    let next = [
        ("user", "Name three colours."),
        ("assistant", reply.as_str()),
        ("user", "And two more."),
    ];
    let again = turn(&client, &serve, "finished-agent", &next).await;
    assert_eq!(again["usage"]["cache_source"], "disk", "{again}");
    let cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached >= first["usage"]["prompt_tokens"].as_u64().unwrap(),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_or_the_timeout_cuts_the_drain_short_but_still_persists() {
    let _serial = SERIAL.lock().await;
    for second_signal in [true, false] {
        let cache = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let timeout = if second_signal { "120s" } else { "1s" };
        let mut serve = Serve::start(cache.path(), &["--shutdown-timeout", timeout]).await;
        turn(&client, &serve, "done-agent", &[("user", "Hello there.")]).await;
        // Thousands of tokens: minutes on this model, far past either cut.
        let stream = long_stream(&client, &serve, "endless-agent", 3000).await;
        let mut chunks = stream.bytes_stream();
        chunks.next().await.unwrap().unwrap();
        serve.signal();
        if second_signal {
            tokio::time::sleep(Duration::from_millis(300)).await;
            serve.signal();
        }
        let (status, took) = serve.exited(Duration::from_secs(20)).await;
        assert!(status.success(), "exit {status:?}: {}", serve.log_text());
        assert!(took < Duration::from_secs(20));
        // The cut stream ends with an error event rather than hanging.
        let mut rest = String::new();
        while let Some(Ok(chunk)) = chunks.next().await {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!rest.contains("\"finish_reason\":\"length\""), "{rest}");
        assert!(agent_files(cache.path()).contains(&"done-agent.safetensors".to_owned()));
    }
}

/// The last turn of one agent that the server answered in full.
#[derive(Clone, Debug)]
struct Completed {
    history: Vec<(String, String)>,
    prompt_tokens: u64,
}

/// One agent talking until the server stops answering; returns its last
/// completed turn and every status it saw.
async fn agent_until_refused(
    base: String,
    agent: String,
    first_turns: Arc<AtomicUsize>,
) -> (Option<Completed>, Vec<u16>) {
    let client = reqwest::Client::new();
    let mut history = vec![("user".to_owned(), format!("I am {agent}. Say hello."))];
    let mut last = None;
    let mut statuses = Vec::new();
    for turn in 0..200 {
        let body = json!({
            "model": "default", "max_tokens": 8, "temperature": 0,
            "messages": history.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>(),
        });
        let sent = client
            .post(format!("{base}/v1/chat/completions"))
            .header("x-agent-id", &agent)
            .json(&body)
            .send()
            .await;
        let Ok(response) = sent else { break }; // the listener has closed
        statuses.push(response.status().as_u16());
        if response.status() != 200 {
            break; // 503: draining
        }
        let Ok(reply) = response.json::<Value>().await else {
            break;
        };
        let text = reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default();
        if last.is_none() {
            first_turns.fetch_add(1, Ordering::SeqCst);
        }
        last = Some(Completed {
            history: history.clone(),
            prompt_tokens: reply["usage"]["prompt_tokens"].as_u64().unwrap(),
        });
        history.push(("assistant".to_owned(), text.to_owned()));
        history.push(("user".to_owned(), format!("Turn {turn}: go on.")));
    }
    (last, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_from_ten_agents_loses_no_completed_turn() {
    let _serial = SERIAL.lock().await;
    let cache = tempfile::tempdir().unwrap();
    // Bounded so that on a loaded machine, where ten agents' turns can take
    // many seconds, the whole shutdown still fits in 30 s; what the cut
    // cancels was not completed, so it need not be on disk.
    let mut serve = Serve::start(cache.path(), &["--shutdown-timeout", "15s"]).await;
    let agents: Vec<String> = (0..10).map(|i| format!("load-agent-{i}")).collect();
    let first_turns = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = agents
        .iter()
        .map(|a| {
            let task = agent_until_refused(serve.base.clone(), a.clone(), first_turns.clone());
            tokio::spawn(task)
        })
        .collect();
    // Mid-load: every agent has completed a turn and keeps going (bounded
    // wait, for loaded machines), then a little more load.
    let deadline = Instant::now() + Duration::from_secs(120);
    while first_turns.load(Ordering::SeqCst) < agents.len() {
        assert!(
            Instant::now() < deadline,
            "agents could not complete a first turn"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    serve.signal();
    let (status, took) = serve.exited(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status:?}: {}", serve.log_text());
    assert!(took < Duration::from_secs(30));

    let mut completed = Vec::new();
    for (agent, task) in agents.iter().zip(tasks) {
        let (last, statuses) = task.await.unwrap();
        assert!(
            statuses.iter().all(|&s| s == 200 || s == 503),
            "{agent} saw {statuses:?}: only successes and drain refusals are allowed"
        );
        if let Some(last) = last {
            completed.push((agent.clone(), last));
        }
    }
    assert_eq!(completed.len(), agents.len(), "{completed:?}");

    // Every completed turn is on disk: each agent's last turn comes back
    // from its file after a restart.
    let serve = Serve::start(cache.path(), &[]).await;
    let client = reqwest::Client::new();
    for (agent, last) in completed {
        let body = json!({
            "model": "default", "max_tokens": 1, "temperature": 0,
            "messages": last.history.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>(),
        });
        let again: Value = client
            .post(serve.url("/v1/chat/completions"))
            .header("x-agent-id", &agent)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["usage"]["cache_source"], "disk", "{agent}: {again}");
        let cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap();
        // The whole prompt but its last token (which is always recomputed
        // to produce the first new token's logits).
        assert!(
            cached + 1 >= last.prompt_tokens,
            "{agent}: {cached} of {} cached",
            last.prompt_tokens
        );
    }
}
