//! A minimal OpenAI-compatible HTTP client for benchmarks.
//!
//! It speaks only what every compatible server implements (streaming chat
//! completions, `/v1/models`) plus, optionally, our agent extension
//! (`X-Agent-ID`, `POST /v1/agents/{id}/evict`), so one benchmark can
//! measure `semantic` next to llama.cpp's server, vLLM or Ollama. SSE is
//! parsed by hand: the format is a few lines of `data: <json>`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};

/// A server's OpenAI API, reached over plain HTTP.
pub struct OpenAiClient {
    http: reqwest::Client,
    /// `scheme://host:port`, without a trailing `/` or `/v1`.
    base: String,
    api_key: Option<String>,
}

/// What a streamed chat completion told us.
#[derive(Clone, Debug)]
pub struct StreamedTurn {
    /// Request sent until the first chunk with visible text (or, if the
    /// reply has none, the chunk that finished it).
    pub ttft: Duration,
    pub text: String,
    pub usage: Option<TurnUsage>,
}

/// What one request got: its status and, on success, the reply.
#[derive(Clone, Debug)]
pub struct ChatOutcome {
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<u64>,
    /// Request sent until the whole reply was read.
    pub latency: Duration,
    /// On 200: the reply (for a non-streamed one, `ttft` is the latency).
    pub turn: Option<StreamedTurn>,
}

/// The final usage chunk; the details are optional on foreign servers.
#[derive(Clone, Debug, Default)]
pub struct TurnUsage {
    pub prompt_tokens: u32,
    pub cached_tokens: Option<u32>,
    /// Our extension: which tier served the cached tokens.
    pub cache_source: Option<String>,
}

/// The outcome of asking the server to evict an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Done; the agent's tier now.
    Moved(String),
    /// The server has no such endpoint (404 for the route, 405, 501).
    Unsupported,
}

impl OpenAiClient {
    /// `base_url` may end in `/v1` (as SDKs take it) or not.
    pub fn new(base_url: &str, api_key: Option<String>) -> anyhow::Result<Self> {
        if !base_url.starts_with("http://") {
            bail!("--base-url must be an http:// URL (this build has no TLS), got {base_url:?}");
        }
        let trimmed = base_url.trim_end_matches('/');
        let base = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_owned();
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            api_key,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// True once `GET /health/startup` answers 200: our server has loaded
    /// the model and indexed its disk tier.
    pub async fn is_started(&self) -> bool {
        let probe = self.request(reqwest::Method::GET, "/health/startup");
        match probe.timeout(Duration::from_secs(2)).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    /// The first model id of `GET /v1/models`, the name requests must use.
    pub async fn first_model(&self) -> anyhow::Result<String> {
        let response = self
            .request(reqwest::Method::GET, "/v1/models")
            .send()
            .await
            .with_context(|| format!("cannot reach {}/v1/models", self.base))?;
        let body = json_body(response, "GET /v1/models").await?;
        body["data"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("GET /v1/models lists no model: {body}"))
    }

    /// Send one streaming chat completion for `agent` and time its first token.
    pub async fn chat_stream(
        &self,
        agent: Option<&str>,
        body: Value,
    ) -> anyhow::Result<StreamedTurn> {
        let (response, started) = self.send_chat(agent, body, true).await?;
        if !response.status().is_success() {
            json_body(response, "POST /v1/chat/completions").await?;
            bail!("POST /v1/chat/completions failed without an error body");
        }
        read_stream(response, started).await
    }

    /// One chat completion, streamed or not, whatever the server answers:
    /// refusals (429, 503, ...) are outcomes here, not errors, so load
    /// tests can count them. Errors are transport failures and broken bodies.
    pub async fn chat_outcome(
        &self,
        agent: Option<&str>,
        body: Value,
        stream: bool,
    ) -> anyhow::Result<ChatOutcome> {
        let (response, started) = self.send_chat(agent, body, stream).await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let turn = match (status, stream) {
            (200, true) => Some(read_stream(response, started).await?),
            (200, false) => {
                let body = json_body(response, "POST /v1/chat/completions").await?;
                Some(StreamedTurn {
                    ttft: started.elapsed(),
                    text: body["choices"][0]["message"]["content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    usage: body.get("usage").map(usage_of),
                })
            }
            _ => {
                let _ = response.bytes().await;
                None
            }
        };
        Ok(ChatOutcome {
            status,
            retry_after,
            latency: started.elapsed(),
            turn,
        })
    }

    /// Send a chat completion for `agent` (streamed with a final usage chunk,
    /// or whole); returns the response and when the request went out.
    async fn send_chat(
        &self,
        agent: Option<&str>,
        mut body: Value,
        stream: bool,
    ) -> anyhow::Result<(reqwest::Response, Instant)> {
        body["stream"] = json!(stream);
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        let mut request = self
            .request(reqwest::Method::POST, "/v1/chat/completions")
            .json(&body);
        if let Some(agent) = agent {
            request = request.header("X-Agent-ID", agent);
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}/v1/chat/completions", self.base))?;
        Ok((response, started))
    }

    /// A streamed chat completion abandoned after its first bytes, as a
    /// client that gives up does; returns the status it got.
    pub async fn chat_abandoned(&self, agent: Option<&str>, body: Value) -> anyhow::Result<u16> {
        let (response, _) = self.send_chat(agent, body, true).await?;
        let status = response.status().as_u16();
        let mut body = response.bytes_stream();
        // The first chunk (or the error body) arrives, then the connection
        // is dropped with the rest unread.
        let _ = body.next().await;
        Ok(status)
    }

    /// `GET path`: the status and the body as text, whatever the status.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("GET {path}: cannot read the response"))?;
        Ok((status, text))
    }

    /// `POST path` with a JSON body: the status, whatever it is.
    pub async fn post_status(&self, path: &str, body: Value) -> anyhow::Result<u16> {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        Ok(status)
    }

    /// `POST /v1/agents/{id}/evict` (our extension).
    pub async fn evict(&self, agent: &str, tier: &str) -> anyhow::Result<Eviction> {
        let response = self
            .request(reqwest::Method::POST, &format!("/v1/agents/{agent}/evict"))
            .json(&json!({"tier": tier}))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status().as_u16();
        if matches!(status, 405 | 501) {
            return Ok(Eviction::Unsupported);
        }
        if status == 404 {
            // Our server says which agent it lacks; anything else lacks the route.
            let text = response.text().await.unwrap_or_default();
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            if code.as_deref() == Some("agent_not_found") {
                bail!("evicting agent {agent}: the server does not know it ({text})");
            }
            return Ok(Eviction::Unsupported);
        }
        let body = json_body(response, "POST /v1/agents/{id}/evict").await?;
        let tier = body["tier"].as_str().unwrap_or("unknown").to_owned();
        Ok(Eviction::Moved(tier))
    }
}

/// The JSON body of a response, or an error quoting the server's message.
async fn json_body(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{what}: cannot read the response"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        bail!("{what} answered {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: the body is not JSON: {text}"))
}

/// Read SSE `data:` lines until `[DONE]` (or the end of the body).
async fn read_stream(
    response: reqwest::Response,
    started: Instant,
) -> anyhow::Result<StreamedTurn> {
    let mut parser = ChunkParser::default();
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    while let Some(bytes) = body.next().await {
        pending.extend_from_slice(&bytes.context("the response stream broke")?);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if parser.line(line.trim_end(), started)? {
                return parser.finish();
            }
        }
    }
    parser.finish()
}

/// Accumulates one completion's SSE chunks.
#[derive(Default)]
struct ChunkParser {
    ttft: Option<Duration>,
    text: String,
    usage: Option<TurnUsage>,
}

impl ChunkParser {
    /// Take one line; true at `[DONE]`.
    fn line(&mut self, line: &str, started: Instant) -> anyhow::Result<bool> {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            return Ok(false); // comments, `event:` lines, blank separators
        };
        if data == "[DONE]" {
            return Ok(true);
        }
        let chunk: Value =
            serde_json::from_str(data).with_context(|| format!("bad SSE chunk: {data}"))?;
        if let Some(message) = chunk["error"]["message"].as_str() {
            bail!("the server failed mid-stream: {message}");
        }
        let choice = &chunk["choices"][0];
        let content = choice["delta"]["content"].as_str().unwrap_or("");
        let finished = !choice["finish_reason"].is_null();
        if self.ttft.is_none() && (!content.is_empty() || finished) {
            self.ttft = Some(started.elapsed());
        }
        self.text.push_str(content);
        if chunk["usage"].is_object() {
            self.usage = Some(usage_of(&chunk["usage"]));
        }
        Ok(false)
    }

    fn finish(self) -> anyhow::Result<StreamedTurn> {
        let ttft = self
            .ttft
            .context("the stream ended before any token or finish_reason")?;
        Ok(StreamedTurn {
            ttft,
            text: self.text,
            usage: self.usage,
        })
    }
}

fn usage_of(usage: &Value) -> TurnUsage {
    let number = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    TurnUsage {
        prompt_tokens: number(&usage["prompt_tokens"]).unwrap_or(0),
        cached_tokens: number(&usage["prompt_tokens_details"]["cached_tokens"]),
        cache_source: usage["cache_source"].as_str().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_visible_token_sets_ttft_and_usage_is_read() {
        let started = Instant::now();
        let mut p = ChunkParser::default();
        let lines = [
            r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            ": keep-alive",
            r#"data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            r#"data: {"choices":[],"usage":{"prompt_tokens":12,"prompt_tokens_details":{"cached_tokens":9},"cache_source":"hot"}}"#,
        ];
        for line in lines {
            assert!(!p.line(line, started).unwrap());
        }
        assert!(p.line("data: [DONE]", started).unwrap());
        let turn = p.finish().unwrap();
        assert_eq!(turn.text, "Hi");
        let usage = turn.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.cached_tokens), (12, Some(9)));
        assert_eq!(usage.cache_source.as_deref(), Some("hot"));
    }

    #[test]
    fn mid_stream_errors_and_empty_streams_are_errors() {
        let mut p = ChunkParser::default();
        let err = p
            .line(r#"data: {"error":{"message":"boom"}}"#, Instant::now())
            .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert!(ChunkParser::default().finish().is_err());
    }

    #[test]
    fn base_url_accepts_a_v1_suffix_and_refuses_https() {
        let c = OpenAiClient::new("http://127.0.0.1:8080/v1/", None).unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert!(OpenAiClient::new("https://api.example.com", None).is_err());
    }
}
