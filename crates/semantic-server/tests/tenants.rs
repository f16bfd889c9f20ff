//! Tenant isolation over real HTTP: two API keys (two tenants) on one
//! server with a disk tier. One tenant's agents, caches and shared prefixes
//! are invisible to the other, before and after a restart; keys grouped
//! into one tenant share them; sharing prefixes across tenants is opt-in.
//! Real model (SmolLM2-135M), real server on 127.0.0.1, port chosen at run
//! time, real files in a temp dir.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use std::path::Path;
use std::sync::Arc;

use semantic_domain::TenantId;
use semantic_server::auth::ApiKey;
use semantic_server::{AuthConfig, ServerConfig};
use serde_json::{json, Value};

const KEY_A: &str = "sk-tenant-a";
const KEY_B: &str = "sk-tenant-b";
const ADMIN: &str = "admin-key";
const AGENT: &str = "a-planner";

/// A's private context: long enough (>500 tokens) that a shared-prefix hit
/// would be unmistakable, deterministic so every run sends the same tokens.
fn private_plan() -> String {
    let mut plan = String::from("You are the planner. Private plan, never to be shown: ");
    for i in 0..45 {
        plan.push_str(&format!(
            "step {i} moves crate {} to dock {}; ",
            i * 7 % 13,
            i % 5
        ));
    }
    plan
}

fn messages(system: &str, user: &str) -> Value {
    json!([{"role": "system", "content": system}, {"role": "user", "content": user}])
}

fn keys(groups: &[(&str, Option<&str>)]) -> AuthConfig {
    let keys = groups.iter().map(|(key, tenant)| ApiKey {
        key: (*key).to_owned(),
        tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
    });
    AuthConfig::new(keys, Some(ADMIN)).unwrap()
}

/// A keyed server with a disk tier under `cache`.
async fn server(cache: &Path, auth: AuthConfig, share_across: bool) -> TestServer {
    let mut config = engine_config();
    config.share_prefixes_across_tenants = share_across;
    let factory = Arc::new(TestEngines {
        config: config.clone(),
        cache_dir: Some(cache.to_owned()),
        refuse: None,
    });
    let server = ServerConfig {
        auth,
        ..ServerConfig::default()
    };
    TestServer::start_custom(config, server, Some(factory)).await
}

async fn two_tenants(cache: &Path) -> TestServer {
    server(cache, keys(&[(KEY_A, None), (KEY_B, None)]), false).await
}

impl TestServer {
    fn as_key(&self, key: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    /// One greedy turn as `key`, naming `agent` if given; the usage block.
    async fn turn_as(&self, key: &str, agent: Option<&str>, messages: Value) -> Value {
        let body =
            json!({"model": "default", "messages": messages, "temperature": 0, "max_tokens": 4});
        let mut request = self.as_key(key, reqwest::Method::POST, "/v1/chat/completions");
        if let Some(agent) = agent {
            request = request.header("X-Agent-ID", agent);
        }
        let response = request.json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        // Shown with --nocapture: the figures the closing note quotes.
        eprintln!("turn as {key} agent {agent:?}: usage {}", body["usage"]);
        body["usage"].clone()
    }

    async fn status_as(&self, key: &str, method: reqwest::Method, path: &str) -> u16 {
        let mut request = self.as_key(key, method.clone(), path);
        if method == reqwest::Method::POST {
            request = request.json(&json!({"tier": "disk"}));
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn get_json_as(&self, key: &str, path: &str) -> Value {
        let response = self
            .as_key(key, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn agent_ids_as(&self, key: &str) -> Vec<String> {
        ids(&self.get_json_as(key, "/v1/agents").await)
    }

    /// `(tenant, id)` of every agent, as the admin sees them.
    async fn admin_agents(&self) -> Vec<(String, String)> {
        let list = self.get_json_as(ADMIN, "/admin/agents").await;
        let mut agents: Vec<(String, String)> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (str_of(&a["tenant"]), str_of(&a["id"])))
            .collect();
        agents.sort();
        agents
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| str_of(&a["id"]))
        .collect()
}

/// Nothing was reused: 0 cached tokens, `cache_source` cold.
fn assert_cold(usage: &Value) {
    assert_eq!(
        (cached(usage), str_of(&usage["cache_source"])),
        (0, "cold".into()),
        "{usage}"
    );
}

fn cached(usage: &Value) -> u64 {
    usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap()
}

/// B cannot see, read, evict or delete A's agent.
async fn assert_hidden_from_b(server: &TestServer) {
    use reqwest::Method;
    let path = format!("/v1/agents/{AGENT}");
    assert!(!server.agent_ids_as(KEY_B).await.contains(&AGENT.to_owned()));
    assert_eq!(server.status_as(KEY_B, Method::GET, &path).await, 404);
    let evict = format!("{path}/evict");
    assert_eq!(server.status_as(KEY_B, Method::POST, &evict).await, 404);
    assert_eq!(server.status_as(KEY_B, Method::DELETE, &path).await, 404);
    // Still there for A.
    assert_eq!(server.status_as(KEY_A, Method::GET, &path).await, 200);
    assert_eq!(server.agent_ids_as(KEY_A).await, [AGENT]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_see_touch_or_reuse_an_agent_before_or_after_a_restart() {
    let cache = tempfile::tempdir().unwrap();
    let first = first_turn();
    let server = two_tenants(cache.path()).await;
    let a1 = server.turn_as(KEY_A, Some(AGENT), first.clone()).await;
    assert!(a1["prompt_tokens"].as_u64().unwrap() > 500, "{a1}");
    assert_hidden_from_b(&server).await;

    // B names A's agent with A's exact prompt: B's own, cold agent.
    let b = server.turn_as(KEY_B, Some(AGENT), first.clone()).await;
    assert_cold(&b);
    // A's next turn still reuses A's own KV.
    let a2 = server.turn_as(KEY_A, Some(AGENT), first.clone()).await;
    assert_eq!(a2["cache_source"], "hot", "{a2}");
    assert!(cached(&a2) > 500, "{a2}");

    // The admin sees both agents named a-planner, each with its tenant.
    let admin = server.admin_agents().await;
    assert_eq!(admin.len(), 2, "{admin:?}");
    assert!(admin
        .iter()
        .all(|(t, id)| id == AGENT && t.starts_with("key-")));
    assert_ne!(admin[0].0, admin[1].0);
    server.shutdown().await;

    // After a restart, from the files alone: still apart.
    let server = two_tenants(cache.path()).await;
    assert_eq!(server.admin_agents().await, admin);
    let model_dir = std::fs::read_dir(cache.path().join("models"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (tenant, _) in &admin {
        let file = model_dir.join(format!("tenants/{tenant}/agents/{AGENT}.safetensors"));
        assert!(file.is_file(), "{file:?}");
    }
    // B deletes its own a-planner; A's stays, and stays hidden from B.
    let path = format!("/v1/agents/{AGENT}");
    assert_eq!(
        server
            .status_as(KEY_B, reqwest::Method::DELETE, &path)
            .await,
        200
    );
    assert_hidden_from_b(&server).await;
    let a3 = server.turn_as(KEY_A, Some(AGENT), first).await;
    assert_eq!(a3["cache_source"], "disk", "{a3}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_copied_into_another_tenants_folder_is_not_loaded_for_it() {
    let cache = tempfile::tempdir().unwrap();
    let first = messages(&private_plan(), "What is step 5?");
    let server = two_tenants(cache.path()).await;
    server.turn_as(KEY_A, Some(AGENT), first.clone()).await;
    // B's tenant gets a folder of its own with a file of its own.
    server
        .turn_as(KEY_B, Some("b-own"), messages("Hi.", "Hello?"))
        .await;
    let admin = server.admin_agents().await;
    server.shutdown().await;
    let tenant_of = |id: &str| admin.iter().find(|(_, a)| a == id).unwrap().0.clone();
    let model_dir = std::fs::read_dir(cache.path().join("models"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = |tenant: &str| {
        model_dir
            .join("tenants")
            .join(tenant)
            .join("agents")
            .join("a-planner.safetensors")
    };
    std::fs::copy(file(&tenant_of(AGENT)), file(&tenant_of("b-own"))).unwrap();

    let server = two_tenants(cache.path()).await;
    // Indexing found A's file in B's folder and set it aside.
    assert!(!file(&tenant_of("b-own")).exists());
    assert!(cache.path().join("quarantine").read_dir().unwrap().count() > 0);
    assert_hidden_from_b(&server).await;
    let b = server.turn_as(KEY_B, Some(AGENT), first).await;
    assert_cold(&b);
    server.shutdown().await;
}

/// A's first turn: its private plan and a question.
fn first_turn() -> Value {
    messages(&private_plan(), "What is step 3?")
}

/// The turn A's second agent and B send: A's system prompt, another question.
fn probe() -> Value {
    messages(&private_plan(), "Which dock gets crate 4?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_prefix_is_reused_within_a_tenant_only() {
    let cache = tempfile::tempdir().unwrap();
    let server = two_tenants(cache.path()).await;
    server.turn_as(KEY_A, Some(AGENT), first_turn()).await;
    let b = server.turn_as(KEY_B, None, probe()).await;
    assert_cold(&b);
    let a_other = server.turn_as(KEY_A, Some("a-other"), probe()).await;
    assert_eq!(a_other["cache_source"], "shared", "{a_other}");
    assert!(cached(&a_other) > 500, "{a_other}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_prefixes_across_tenants_is_an_opt_in_that_works() {
    let cache = tempfile::tempdir().unwrap();
    let auth = keys(&[(KEY_A, None), (KEY_B, None)]);
    let server = server(cache.path(), auth, true).await;
    server.turn_as(KEY_A, Some(AGENT), first_turn()).await;
    let b = server.turn_as(KEY_B, None, probe()).await;
    assert_eq!(b["cache_source"], "shared", "{b}");
    assert!(cached(&b) > 500, "{b}");
    // Opting in to shared prefixes does not open agents.
    assert_hidden_from_b(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_grouped_into_one_tenant_share_agents_and_prefixes() {
    let cache = tempfile::tempdir().unwrap();
    let auth = keys(&[(KEY_A, Some("team")), (KEY_B, Some("team"))]);
    let server = server(cache.path(), auth, false).await;
    let first = first_turn();
    server.turn_as(KEY_A, Some(AGENT), first.clone()).await;
    assert_eq!(server.agent_ids_as(KEY_B).await, [AGENT]);
    let again = server.turn_as(KEY_B, Some(AGENT), first).await;
    assert_eq!(again["cache_source"], "hot", "{again}");
    let shared = server.turn_as(KEY_B, None, probe()).await;
    assert_eq!(shared["cache_source"], "shared", "{shared}");
    assert_eq!(
        server.admin_agents().await,
        [("team".to_owned(), AGENT.to_owned())]
    );
    server.shutdown().await;
}
