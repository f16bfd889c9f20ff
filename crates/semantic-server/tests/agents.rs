//! Agents' KV caches over real HTTP: turns of one agent reuse its cache,
//! and `/v1/agents` lists, evicts and deletes it. Real model (SmolLM2-135M),
//! real server on 127.0.0.1 with a port chosen at run time.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use futures::StreamExt;
use semantic_domain::chat::ChatMessage;
use semantic_engine::EngineHandle;
use serde_json::{json, Value};

const SYSTEM: &str = "You are a helpful assistant.";
const FIRST: &str = "Name three colours of the rainbow.";
const SECOND: &str = "Which one is warmest?";

/// How a request names its agent.
#[derive(Clone, Copy)]
enum Agent<'a> {
    Body(&'a str),
    Header(&'a str),
    /// OpenAI's `prompt_cache_key`.
    CacheKey(&'a str),
}

/// Agent-aware requests on top of the shared test server.
trait AgentRequests {
    fn chat_request(&self, agent: Agent<'_>, body: Value) -> reqwest::RequestBuilder;
    async fn turn(&self, agent: Agent<'_>, messages: Value) -> Value;
    async fn evict(&self, id: &str, body: Value) -> reqwest::Response;
}

impl AgentRequests for TestServer {
    fn chat_request(&self, agent: Agent<'_>, mut body: Value) -> reqwest::RequestBuilder {
        let request = self.client.post(self.url("/v1/chat/completions"));
        match agent {
            Agent::Body(id) => {
                body["session_id"] = json!(id);
                request.json(&body)
            }
            Agent::Header(id) => request.header("X-Agent-ID", id).json(&body),
            Agent::CacheKey(id) => {
                body["prompt_cache_key"] = json!(id);
                request.json(&body)
            }
        }
    }

    /// One non-streaming turn; returns the whole response body.
    async fn turn(&self, agent: Agent<'_>, messages: Value) -> Value {
        let response = self
            .chat_request(agent, chat_body(messages))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn evict(&self, id: &str, body: Value) -> reqwest::Response {
        let url = self.url(&format!("/v1/agents/{id}/evict"));
        self.client.post(url).json(&body).send().await.unwrap()
    }
}

fn chat_body(messages: Value) -> Value {
    json!({"model": "default", "messages": messages, "temperature": 0, "max_tokens": 8})
}

fn first_turn() -> Value {
    json!([{"role": "system", "content": SYSTEM}, {"role": "user", "content": FIRST}])
}

/// The conversation after the first reply, with a new question.
fn second_turn(first: &Value) -> Value {
    let reply = first["choices"][0]["message"]["content"].as_str().unwrap();
    json!([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": SECOND},
    ])
}

fn cached(usage: &Value) -> u64 {
    usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or_else(|| panic!("no cached_tokens in {usage}"))
}

/// Tokens of the first turn's templated prompt: the least a second turn reuses.
fn first_prompt_len(engine: &EngineHandle) -> u64 {
    let messages = [ChatMessage::system(SYSTEM), ChatMessage::user(FIRST)];
    engine.model().tokenize_chat(&messages, None).unwrap().len() as u64
}

/// `GET /v1/agents/{id}`, asserting 200.
async fn agent_card(server: &TestServer, id: &str) -> Value {
    let response = server.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body
}

/// The second turn reuses exactly what the engine holds for the agent: the
/// first prompt plus the reply's computed tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_turn_of_a_session_reuses_the_first() {
    let server = TestServer::start().await;
    let agent = Agent::Body("session-1");
    let first = server.turn(agent, first_turn()).await;
    assert_eq!(cached(&first["usage"]), 0, "{first}");
    assert_eq!(first["usage"]["cache_source"], "cold", "{first}");
    let card = agent_card(&server, "session-1").await;
    assert_eq!(card["tier"], "hot", "{card}");
    let held = card["tokens"].as_u64().unwrap();
    assert!(held > first_prompt_len(&server.engine), "{card}");

    let second = server.turn(agent, second_turn(&first)).await;
    let usage = &second["usage"];
    assert_eq!(cached(usage), held, "{second}");
    assert!(cached(usage) < usage["prompt_tokens"].as_u64().unwrap());
    assert_eq!(usage["cache_source"], "hot", "{second}");
    server.shutdown().await;
}

/// `X-Agent-ID` names the agent like `session_id`; the streamed final usage
/// chunk carries the same fields as a whole response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_header_works_like_session_id_and_streams_usage() {
    let server = TestServer::start().await;
    let agent = Agent::Header("header-agent");
    let first = server.turn(agent, first_turn()).await;
    let held = agent_card(&server, "header-agent").await["tokens"]
        .as_u64()
        .unwrap();

    let mut body = chat_body(second_turn(&first));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = server.chat_request(agent, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let usage_chunk = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|c| c["usage"].is_object())
        .unwrap_or_else(|| panic!("no usage chunk in {text}"));
    let usage = &usage_chunk["usage"];
    assert_eq!(cached(usage), held, "{usage}");
    assert_eq!(usage["cache_source"], "hot", "{usage}");
    server.shutdown().await;
}

/// OpenAI's `prompt_cache_key` names the agent when no header and no
/// `session_id` does; `session_id` wins over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_cache_key_names_the_agent_after_session_id() {
    let server = TestServer::start().await;
    let agent = Agent::CacheKey("key-agent");
    let first = server.turn(agent, first_turn()).await;
    let held = agent_card(&server, "key-agent").await["tokens"]
        .as_u64()
        .unwrap();
    let second = server.turn(agent, second_turn(&first)).await;
    assert_eq!(cached(&second["usage"]), held, "{second}");
    assert_eq!(second["usage"]["cache_source"], "hot", "{second}");

    let mut body = chat_body(first_turn());
    body["session_id"] = json!("session-wins");
    body["prompt_cache_key"] = json!("key-loses");
    let r = server.chat(&body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(server.get("/v1/agents/session-wins").await.status(), 200);
    assert_eq!(server.get("/v1/agents/key-loses").await.status(), 404);
    server.shutdown().await;
}

/// Listed, evicted to RAM, then restored from there on the next turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_agent_is_restored_from_the_warm_tier() {
    let server = TestServer::start().await;
    let agent = Agent::Body("warm-agent");
    let first = server.turn(agent, first_turn()).await;
    let list: Value = server.get("/v1/agents").await.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let entry = &list["data"][0];
    assert_eq!(entry["id"], "warm-agent", "{list}");
    assert!(entry["last_used_at"].as_u64().unwrap() > 1_600_000_000);
    let held = entry["tokens"].as_u64().unwrap();

    let evicted = server.evict("warm-agent", json!({"tier": "warm"})).await;
    assert_eq!(evicted.status(), 200);
    let evicted: Value = evicted.json().await.unwrap();
    assert_eq!(evicted, json!({"id": "warm-agent", "tier": "warm"}));
    let card = agent_card(&server, "warm-agent").await;
    assert_eq!(card["tier"], "warm", "{card}");
    assert!(card["bytes"].as_u64().unwrap() > 0, "{card}");

    let second = server.turn(agent, second_turn(&first)).await;
    assert_eq!(second["usage"]["cache_source"], "warm", "{second}");
    assert_eq!(cached(&second["usage"]), held, "{second}");
    server.shutdown().await;
}

/// After a delete the agent is unknown and its next turn starts cold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_agent_starts_cold() {
    let server = TestServer::start().await;
    let agent = Agent::Body("gone");
    let first = server.turn(agent, first_turn()).await;
    let response = server.delete("/v1/agents/gone").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"id": "gone", "deleted": true}));
    assert_error(server.get("/v1/agents/gone").await, 404, "agent_not_found").await;
    assert_error(
        server.delete("/v1/agents/gone").await,
        404,
        "agent_not_found",
    )
    .await;

    let second = server.turn(agent, second_turn(&first)).await;
    assert_eq!(cached(&second["usage"]), 0, "{second}");
    assert_eq!(second["usage"]["cache_source"], "cold", "{second}");
    server.shutdown().await;
}

/// Ids are validated before anything is looked up; unknown ones are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_are_400_and_unknown_ones_404() {
    let server = TestServer::start().await;
    let long = "x".repeat(129);
    for bad in ["..%2Fetc%2Fpasswd", "a%20b", "%C3%A9", long.as_str()] {
        let path = format!("/v1/agents/{bad}");
        let body = assert_error(server.get(&path).await, 400, "invalid_agent_id").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("agent id"),
            "{body}"
        );
        assert_error(server.delete(&path).await, 400, "invalid_agent_id").await;
        let evict = server.evict(bad, json!({"tier": "warm"})).await;
        assert_error(evict, 400, "invalid_agent_id").await;
    }
    assert_error(
        server.get("/v1/agents/nobody").await,
        404,
        "agent_not_found",
    )
    .await;
    let evict = server.evict("nobody", json!({"tier": "disk"})).await;
    assert_error(evict, 404, "agent_not_found").await;

    server.turn(Agent::Body("known"), first_turn()).await;
    let response = server.evict("known", json!({"tier": "cold"})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "tier", "{body}");
    let response = server.delete("/v1/agents/known?keep_disk=maybe").await;
    assert_eq!(response.status(), 400);
    server.shutdown().await;
}

/// While a request of the agent runs, delete and evict answer 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_agent_is_409() {
    let server = TestServer::start().await;
    let agent = Agent::Body("busy");
    server.turn(agent, first_turn()).await;
    let mut body = chat_body(json!([{"role": "user", "content": "Count from 1 to 300."}]));
    body["max_tokens"] = json!(400);
    body["stream"] = json!(true);
    let response = server.chat_request(agent, body).send().await.unwrap();
    let mut stream = response.bytes_stream();
    // The role chunk comes at once; the first content chunk means it runs.
    let mut seen = String::new();
    while seen.matches("\"content\":\"").count() < 2 {
        let chunk = stream.next().await.expect("stream ends early").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_error(server.delete("/v1/agents/busy").await, 409, "agent_busy").await;
    let evict = server.evict("busy", json!({"tier": "warm"})).await;
    assert_error(evict, 409, "agent_busy").await;
    drop(stream);
    server.shutdown().await;
}
