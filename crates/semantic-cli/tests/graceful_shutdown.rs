//! `semantic serve` under real signals: SIGTERM drains (readiness 503, new
//! requests 503, the stream in flight completes), persists every agent and
//! exits 0; a restarted server serves those agents from disk. A second
//! signal, or `--shutdown-timeout`, cuts the wait short but still persists.
//! Logs on a non-terminal stderr are JSON lines carrying request ids.

mod support;
use support::model_path;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Serve {
    async fn start(cache: &Path, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = cache.join(format!("serve-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_semantic"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--context-tokens", "4096", "--max-sequences", "4"])
            .arg("--model")
            .arg(model_path())
            .arg("--cache-dir")
            .arg(cache)
            .args(extra)
            .env_remove("SEMANTIC_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("semantic serve starts");
        let serve = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = client.get(serve.url("/health/startup")).send().await;
            if r.is_ok_and(|r| r.status() == 200) {
                return serve;
            }
            assert!(Instant::now() < deadline, "no startup: {}", serve.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn signal(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    /// Wait (bounded) for the process to exit; returns its status and how long it took.
    async fn exited(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < within, "still running: {}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn messages(history: &[(&str, &str)]) -> Value {
    Value::Array(
        history
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    )
}

async fn turn(client: &reqwest::Client, serve: &Serve, agent: &str, history: &[(&str, &str)]) -> Value {
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
        let agents = model.unwrap().path().join("agents");
        for file in std::fs::read_dir(agents).into_iter().flatten() {
            names.push(file.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

/// A long streaming request (ignore_eos keeps it going to max_tokens).
async fn long_stream(client: &reqwest::Client, serve: &Serve, agent: &str, max_tokens: u32) -> reqwest::Response {
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
    let cache = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut serve = Serve::start(cache.path(), &[]).await;
    let history = [("user", "Name three colours.")];
    let first = turn(&client, &serve, "finished-agent", &history).await;
    let reply = first["choices"][0]["message"]["content"].as_str().unwrap().to_owned();

    let stream = long_stream(&client, &serve, "streaming-agent", 96).await;
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
    assert!(lines.iter().any(|l| l["span"]["request_id"] == "turn-of-finished-agent"
        && l["message"] == "request finished"));
    assert!(lines.iter().any(|l| l["message"] == "drained: every request in flight finished"));
    assert!(!log.contains("Name three colours"), "prompts are never logged");

    // A restart serves the finished turn from its file.
    let serve = Serve::start(cache.path(), &[]).await;
    let next = [
        ("user", "Name three colours."),
        ("assistant", reply.as_str()),
        ("user", "And two more."),
    ];
    let again = turn(&client, &serve, "finished-agent", &next).await;
    assert_eq!(again["usage"]["cache_source"], "disk", "{again}");
    let cached = again["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    assert!(cached >= first["usage"]["prompt_tokens"].as_u64().unwrap(), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_or_the_timeout_cuts_the_drain_short_but_still_persists() {
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
