//! `/v1/sessions` over real HTTP against the real model (SmolLM2-135M),
//! on 127.0.0.1 with ports chosen at run time: every participant's turn
//! after its first reuses its own KV (its view only grows at the end), a
//! turn equals a cold run of the same prompt, broadcast rounds answer one
//! prompt, whispers reach only their addressee, a moderator always names
//! a speaker, streamed rounds, limits and mistakes (409, 404, 400 naming
//! the field), other tenants see nothing, and a session continues after a
//! restart from its participants' files; deleting it removes only the
//! ephemeral participants' caches.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::sse::{read_to_end, read_until, sse_events};
use support::*;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use semantic_domain::responses::ResponseBudget;
use semantic_server::auth::ApiKey;
use semantic_server::{AuthConfig, ServerConfig};
use serde_json::{json, Value};

const KEY_A: &str = "sk-sessions-a";
const KEY_B: &str = "sk-sessions-b";
/// Tokens per turn: enough to say something, few enough to stay quick.
const TURN_TOKENS: u32 = 12;

fn auth() -> AuthConfig {
    let keys = [KEY_A, KEY_B].map(|key| ApiKey {
        key: key.to_owned(),
        tenant: None,
    });
    AuthConfig::new(keys, None).unwrap()
}

fn server_config() -> ServerConfig {
    ServerConfig {
        auth: auth(),
        ..ServerConfig::default()
    }
}

/// Two tenants (keys A and B), sessions in memory.
async fn server() -> TestServer {
    TestServer::start_custom(engine_config(), server_config(), None).await
}

/// Two tenants, a disk tier and the session database under `dir`.
async fn stored_server(dir: &Path) -> TestServer {
    let config = engine_config();
    let factory = Arc::new(TestEngines {
        config: config.clone(),
        cache_dir: Some(dir.to_owned()),
        refuse: None,
    });
    let db = semantic_store::ResponseDb::open(dir, ResponseBudget::default()).unwrap();
    TestServer::start_stored(config, server_config(), Some(factory), Some(Arc::new(db))).await
}

impl TestServer {
    /// `method path` as `key`, with a JSON body if given: status and body.
    async fn call(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(KEY_A, method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body
    }

    async fn create_session(&self, body: Value) -> String {
        let session = self.ok("POST", "/v1/sessions", Some(body)).await;
        session["id"].as_str().unwrap().to_owned()
    }
}

fn participant(id: &str, name: &str, role: &str) -> Value {
    json!({"id": id, "name": name, "role": role})
}

fn greedy() -> Value {
    json!({"temperature": 0, "max_tokens": TURN_TOKENS})
}

fn usage_of(turn: &Value) -> (u64, u64, u64, String) {
    let u = &turn["usage"];
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
        u["cache_source"].as_str().unwrap().to_owned(),
    )
}

/// What each participant's KV holds after its last turn (prompt + reply).
#[derive(Default)]
struct Held(HashMap<String, u64>);

impl Held {
    /// Check that `turn` reused at least its speaker's previous prompt and
    /// reply (less the one token always recomputed), then hold it.
    fn check(&mut self, turn: &Value, expect_source: &str) {
        let speaker = turn["speaker"].as_str().unwrap().to_owned();
        let (prompt, completion, cached, source) = usage_of(turn);
        let previous = self.0.get(&speaker).copied();
        // Shown with --nocapture: the figures the report quotes.
        eprintln!(
            "turn {} {speaker}: prompt {prompt}, reply {completion}, cached {cached} ({source}), \
             held before {previous:?}",
            turn["turn"]
        );
        if let Some(previous) = previous {
            assert!(
                cached + 1 >= previous,
                "{speaker} reused {cached} of the {previous} tokens it held: {turn}"
            );
            assert_eq!(source, expect_source, "{turn}");
        }
        self.0.insert(speaker, prompt + completion);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_turns_reuse_each_participants_cache_and_match_a_cold_run() {
    let server = server().await;
    let id = server
        .create_session(json!({
            "participants": [
                participant("ann", "Ann", "You plan trips."),
                participant("bob", "Bob", "You watch the budget."),
                participant("cat", "Cat", "You know the weather."),
                participant("dan", "Dan", "You book hotels."),
            ],
            "topology": "round_robin",
            "sampling": greedy(),
            "initial_prompt": "Plan a weekend in Lisbon together.",
        }))
        .await;
    let mut held = Held::default();
    for _ in 0..2 {
        let round = server
            .ok("POST", &format!("/v1/sessions/{id}/round"), Some(json!({})))
            .await;
        let turns = round["turns"].as_array().unwrap();
        let speakers: Vec<&str> = turns
            .iter()
            .map(|t| t["speaker"].as_str().unwrap())
            .collect();
        assert_eq!(speakers, ["ann", "bob", "cat", "dan"], "{round}");
        for turn in turns {
            held.check(turn, "hot");
        }
    }
    // The third round turn by turn; Dan's prompt is fetched before his turn.
    let mut dan_view = Value::Null;
    for expected in ["ann", "bob", "cat", "dan"] {
        if expected == "dan" {
            dan_view = server
                .ok("GET", &format!("/v1/sessions/{id}?participant=dan"), None)
                .await;
        }
        let turn = server
            .ok("POST", &format!("/v1/sessions/{id}/turn"), Some(json!({})))
            .await;
        assert_eq!(turn["speaker"], expected, "{turn}");
        held.check(&turn, "hot");
        if expected == "dan" {
            // The same prompt, cold (tenant B shares nothing with A).
            let cold = server
                .call(
                    KEY_B,
                    "POST",
                    "/v1/chat/completions",
                    Some(json!({"model": "default", "messages": dan_view["messages"],
                                "temperature": 0, "max_tokens": TURN_TOKENS})),
                )
                .await
                .1;
            assert_eq!(cold["usage"]["cache_source"], "cold", "{cold}");
            assert_eq!(
                cold["usage"]["prompt_tokens"],
                turn["usage"]["prompt_tokens"]
            );
            assert_eq!(
                cold["usage"]["completion_tokens"],
                turn["usage"]["completion_tokens"]
            );
            assert_eq!(
                cold["choices"][0]["message"]["content"], turn["raw_text"],
                "Dan's hot turn and the cold run of his prompt differ"
            );
        }
    }
    let session = server.ok("GET", &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(session["turns"], 12);
    assert_eq!(session["transcript"].as_array().unwrap().len(), 13);
    // Tenant B sees nothing of A's session.
    for (method, path, body) in [
        ("GET", format!("/v1/sessions/{id}"), None),
        ("POST", format!("/v1/sessions/{id}/turn"), Some(json!({}))),
        (
            "POST",
            format!("/v1/sessions/{id}/messages"),
            Some(json!({"content": "hi"})),
        ),
        ("DELETE", format!("/v1/sessions/{id}"), None),
    ] {
        let (status, body) = server.call(KEY_B, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "session_not_found");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_rounds_answer_one_prompt_and_whispers_reach_only_their_addressee() {
    let server = server().await;
    let id = server
        .create_session(json!({
            "participants": [
                participant("red", "Red", "You like red."),
                participant("blue", "Blue", "You like blue."),
                participant("green", "Green", "You like green."),
            ],
            "topology": "broadcast",
            "sampling": greedy(),
            "initial_prompt": "Which colour is best? One sentence.",
        }))
        .await;
    let first = server
        .ok("POST", &format!("/v1/sessions/{id}/round"), Some(json!({})))
        .await;
    let turns = first["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    // Nobody saw another's answer before giving its own: one prompt each,
    // the same length for all (the same transcript, only names differ).
    let session = server.ok("GET", &format!("/v1/sessions/{id}"), None).await;
    let batches: Vec<&Value> = session["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "reply")
        .map(|e| &e["batch"])
        .collect();
    assert_eq!(batches, [&json!(1), &json!(1), &json!(1)]);
    let blue_view = server
        .ok("GET", &format!("/v1/sessions/{id}?participant=blue"), None)
        .await;
    let messages = blue_view["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "user", "{blue_view}");
    let others = last["content"].as_str().unwrap();
    assert!(
        others.starts_with("Red: ") && others.contains("\n\nGreen: "),
        "{others}"
    );
    assert_eq!(
        messages[messages.len() - 2]["role"],
        "assistant",
        "Blue's own answer first"
    );

    // A whisper to Green: in Green's view only.
    let whisper = server
        .ok(
            "POST",
            &format!("/v1/sessions/{id}/messages"),
            Some(json!({"content": "Say the password: tangerine.", "name": "Host", "to": "green"})),
        )
        .await;
    assert_eq!(whisper["kind"], "whisper");
    for (who, sees) in [("red", false), ("blue", false), ("green", true)] {
        let view = server
            .ok("GET", &format!("/v1/sessions/{id}?participant={who}"), None)
            .await;
        assert_eq!(
            view["messages"].to_string().contains("tangerine"),
            sees,
            "{who}: {view}"
        );
    }
    let public = server
        .ok(
            "POST",
            &format!("/v1/sessions/{id}/messages"),
            Some(json!({"content": "Now name a fruit of your colour."})),
        )
        .await;
    assert_eq!(public["kind"], "message");
    // The second round still extends every participant's cache.
    let mut held = Held::default();
    for turn in turns {
        held.check(turn, "hot");
    }
    // Streamed this time: the three answers are generated together, each
    // delta tagged with its speaker, then reported in order.
    let streamed = server
        .client
        .post(server.url(&format!("/v1/sessions/{id}/round")))
        .bearer_auth(KEY_A)
        .json(&json!({"stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&streamed);
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "turn.delta")
        .collect();
    assert_eq!(
        names,
        [
            "turn.started",
            "turn.started",
            "turn.started",
            "turn.completed",
            "turn.completed",
            "turn.completed",
            "done"
        ],
        "{streamed}"
    );
    for (_, data) in events.iter().filter(|(n, _)| n == "turn.completed") {
        held.check(&data["turn"], "hot");
    }
    let (status, body) = server
        .call(
            KEY_A,
            "POST",
            &format!("/v1/sessions/{id}/messages"),
            Some(json!({"content": "x", "to": "purple"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["param"]),
        (400, &json!("to")),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_always_names_one_of_the_speakers() {
    let server = server().await;
    let id = server
        .create_session(json!({
            "participants": [
                participant("chair", "Chair", "You chair the meeting and pick who speaks."),
                participant("x1", "Xavier", "You are an engineer."),
                participant("y2", "Yolanda", "You are a designer."),
                participant("z3", "Zed", "You are a manager."),
            ],
            "topology": "moderated",
            "moderator": "chair",
            // Sampled, not greedy: the grammar, not luck, keeps it valid.
            "sampling": {"temperature": 1.0, "seed": 7, "max_tokens": 8},
            "initial_prompt": "Decide what to build next.",
        }))
        .await;
    let mut speakers = Vec::new();
    let mut chair_held: Option<u64> = None;
    for _ in 0..4 {
        let turn = server
            .ok("POST", &format!("/v1/sessions/{id}/turn"), Some(json!({})))
            .await;
        let choice = &turn["chosen_by"];
        assert_eq!(choice["moderator"], "chair", "{turn}");
        assert_eq!(choice["options"], json!(["x1", "y2", "z3"]));
        speakers.push(turn["speaker"].as_str().unwrap().to_owned());
        // The chair's choices extend its own view too: its previous
        // question and answer are reused like any turn's prompt and reply.
        let (prompt, completion, cached, source) = usage_of(choice);
        eprintln!(
            "chair's choice: prompt {prompt}, reply {completion}, cached {cached} ({source})"
        );
        if let Some(previous) = chair_held {
            assert!(cached + 1 >= previous, "{choice}");
            assert_eq!(source, "hot", "{choice}");
        }
        chair_held = Some(prompt + completion);
    }
    // A round: a choice among those who have not spoken, the last without.
    let round = server
        .ok("POST", &format!("/v1/sessions/{id}/round"), Some(json!({})))
        .await;
    let mut in_round: Vec<&str> = round["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["speaker"].as_str().unwrap())
        .collect();
    assert!(round["turns"][2]["chosen_by"].is_null(), "{round}");
    in_round.sort_unstable();
    assert_eq!(in_round, ["x1", "y2", "z3"]);
    let session = server.ok("GET", &format!("/v1/sessions/{id}"), None).await;
    let choices: Vec<&Value> = session["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "choice")
        .collect();
    assert_eq!(choices.len(), 6, "4 turns and 2 in the round");
    for choice in choices {
        let options = choice["options"].as_array().unwrap();
        assert!(options.contains(&choice["chose"]), "{choice}");
    }
    eprintln!("moderated speakers: {speakers:?}");
    let (status, body) = server
        .call(
            KEY_A,
            "POST",
            &format!("/v1/sessions/{id}/turn"),
            Some(json!({"speaker": "chair"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["param"]),
        (400, &json!("speaker")),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_round_reports_each_turn_and_the_session_is_busy_meanwhile() {
    let server = server().await;
    let id = server
        .create_session(json!({
            "participants": [participant("p", "Pat", "You ask."), participant("q", "Quinn", "You answer.")],
            "topology": "turn_by_turn",
            "sampling": greedy(),
            "initial_prompt": "Talk about rivers.",
        }))
        .await;
    let response = server
        .client
        .post(server.url(&format!("/v1/sessions/{id}/round")))
        .bearer_auth(KEY_A)
        .json(&json!({"stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut bytes = response.bytes_stream().boxed();
    let mut seen = read_until(&mut bytes, "event: turn.started", 1).await;
    let (status, body) = server
        .call(
            KEY_A,
            "POST",
            &format!("/v1/sessions/{id}/turn"),
            Some(json!({"speaker": "p"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("session_busy")),
        "{body}"
    );
    read_to_end(&mut bytes, &mut seen).await;
    let events = sse_events(&seen);
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "turn.delta")
        .collect();
    assert_eq!(
        names,
        [
            "turn.started",
            "turn.completed",
            "turn.started",
            "turn.completed",
            "done"
        ]
    );
    let mut deltas: HashMap<String, String> = HashMap::new();
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
        if name == "turn.delta" {
            let text = data["delta"].as_str().unwrap();
            deltas
                .entry(data["speaker"].as_str().unwrap().to_owned())
                .or_default()
                .push_str(text);
        }
    }
    for (_, data) in events.iter().filter(|(n, _)| n == "turn.completed") {
        let turn = &data["turn"];
        let speaker = turn["speaker"].as_str().unwrap();
        assert_eq!(
            deltas[speaker],
            turn["raw_text"].as_str().unwrap(),
            "{turn}"
        );
    }
    // The turns were stored before they were reported.
    let session = server.ok("GET", &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(session["turns"], 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_session_is_409_and_mistakes_name_their_field() {
    let server = server().await;
    let base = |extra: Value| {
        let mut body = json!({
            "participants": [{"id": "a"}, {"id": "b", "lifecycle": "permanent"}],
            "topology": "round_robin",
            "sampling": greedy(),
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, param) in [
        (json!({"topology": "ring"}), "topology"),
        (json!({"participants": []}), "participants"),
        (
            json!({"participants": [{"id": "a"}, {"id": "a"}]}),
            "participants[1].id",
        ),
        (
            json!({"participants": [{"id": "../x"}]}),
            "participants[0].id",
        ),
        (json!({"topology": "moderated"}), "moderator"),
        (
            json!({"topology": "moderated", "moderator": "nobody"}),
            "moderator",
        ),
        (json!({"max_turns": 0}), "max_turns"),
        (
            json!({"sampling": {"temperature": 7}}),
            "sampling.temperature",
        ),
        (
            json!({"participants": [{"id": "a", "lifecycle": "forever"}]}),
            "participants[0].lifecycle",
        ),
    ] {
        let (status, body) = server
            .call(KEY_A, "POST", "/v1/sessions", Some(base(extra.clone())))
            .await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"]["param"], param, "{extra}: {body}");
    }
    let id = server
        .create_session(base(
            json!({"max_turns": 3, "initial_prompt": "Count to three."}),
        ))
        .await;
    let round = server
        .ok("POST", &format!("/v1/sessions/{id}/round"), Some(json!({})))
        .await;
    assert_eq!(round["finished"], false);
    let last = server
        .ok(
            "POST",
            &format!("/v1/sessions/{id}/turn"),
            Some(json!({"speaker": "b"})),
        )
        .await;
    assert_eq!(last["finished"], true, "{last}");
    for (path, body) in [
        ("turn", json!({})),
        ("round", json!({})),
        ("round", json!({"stream": true})),
        ("messages", json!({"content": "more"})),
    ] {
        let (status, err) = server
            .call(
                KEY_A,
                "POST",
                &format!("/v1/sessions/{id}/{path}"),
                Some(body),
            )
            .await;
        assert_eq!(status, 409, "{path}: {err}");
        assert_eq!(err["error"]["code"], "session_finished");
    }
    for (method, path) in [
        ("GET", "/v1/sessions/sess_missing".to_owned()),
        ("POST", "/v1/sessions/sess_missing/turn".to_owned()),
        ("DELETE", "/v1/sessions/sess_missing".to_owned()),
        ("GET", format!("/v1/sessions/{}", "x".repeat(300))),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (status, err) = server.call(KEY_A, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {err}");
    }
    // A view past the context window: a 400 naming the transcript, whole
    // or as the stream's error event; nothing is recorded.
    let long = server
        .create_session(json!({
            "participants": [{"id": "verbose", "system_prompt": "word ".repeat(12_000)}],
            "topology": "round_robin",
            "sampling": greedy(),
        }))
        .await;
    let (status, err) = server
        .call(
            KEY_A,
            "POST",
            &format!("/v1/sessions/{long}/turn"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, &err["error"]["param"]),
        (400, &json!("transcript")),
        "{err}"
    );
    assert_eq!(err["error"]["code"], "context_length_exceeded");
    let streamed = server
        .client
        .post(server.url(&format!("/v1/sessions/{long}/turn")))
        .bearer_auth(KEY_A)
        .json(&json!({"stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&streamed);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["turn.started", "error"], "{streamed}");
    assert_eq!(events[1].1["status"], 400);
    assert_eq!(events[1].1["error"]["param"], "transcript");
    let after = server
        .ok("GET", &format!("/v1/sessions/{long}"), None)
        .await;
    assert_eq!(after["turns"], 0);

    let (status, err) = server
        .call(
            KEY_A,
            "GET",
            &format!("/v1/sessions/{id}?participant=zz"),
            None,
        )
        .await;
    assert_eq!(
        (status, &err["error"]["param"]),
        (400, &json!("participant"))
    );
    let (status, _) = server.call(KEY_A, "GET", "/v1/sessions/x", None).await;
    assert_eq!(status, 404);
    let (status, _) = server
        .client
        .get(server.url("/v1/sessions/x"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401, "behind the API key");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_continues_after_a_restart_from_disk_and_delete_keeps_permanent_agents() {
    let dir = tempfile::tempdir().unwrap();
    let server = stored_server(dir.path()).await;
    let id = server
        .create_session(json!({
            "participants": [
                participant("eve", "Eve", "You tell stories."),
                {"id": "sessions-test-keeper", "name": "Kim", "role": "You keep notes.",
                 "lifecycle": "permanent"},
            ],
            "topology": "round_robin",
            "sampling": greedy(),
            "initial_prompt": "Tell a story about a lighthouse.",
        }))
        .await;
    let mut held = Held::default();
    let round = server
        .ok("POST", &format!("/v1/sessions/{id}/round"), Some(json!({})))
        .await;
    for turn in round["turns"].as_array().unwrap() {
        held.check(turn, "hot");
    }
    let before = server.ok("GET", &format!("/v1/sessions/{id}"), None).await;
    server.shutdown().await;

    let server = stored_server(dir.path()).await;
    let after = server.ok("GET", &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(after, before, "the session survived the restart");
    let round = server
        .ok("POST", &format!("/v1/sessions/{id}/round"), Some(json!({})))
        .await;
    for turn in round["turns"].as_array().unwrap() {
        held.check(turn, "disk");
    }
    let eve_agent = format!("{id}.eve");
    for agent in [eve_agent.as_str(), "sessions-test-keeper"] {
        let (status, card) = server
            .call(KEY_A, "GET", &format!("/v1/agents/{agent}"), None)
            .await;
        assert_eq!(status, 200, "{agent}: {card}");
    }
    let deleted = server
        .ok("DELETE", &format!("/v1/sessions/{id}"), None)
        .await;
    assert_eq!(deleted["removed_agents"], json!([eve_agent]));
    assert_eq!(deleted["kept_agents"], json!(["sessions-test-keeper"]));
    let (status, _) = server
        .call(KEY_A, "GET", &format!("/v1/agents/{eve_agent}"), None)
        .await;
    assert_eq!(status, 404, "the ephemeral participant's cache is gone");
    let (status, _) = server
        .call(KEY_A, "GET", "/v1/agents/sessions-test-keeper", None)
        .await;
    assert_eq!(status, 200, "the permanent participant's cache stays");
    let (status, _) = server
        .call(KEY_A, "GET", &format!("/v1/sessions/{id}"), None)
        .await;
    assert_eq!(status, 404);
    server.shutdown().await;
}
