//! Real-model tests of grammar-constrained generation: whatever SmolLM2
//! would rather say, the output matches the grammar and generation ends
//! cleanly once the grammar is complete.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use common::*;
use semantic_domain::tools::constraint::{call_schema, compose};
use semantic_domain::tools::{parse_reply, ToolSpec};
use semantic_domain::{FinishReason, Grammar, SamplingParams};
use semantic_engine::grammar::schema_to_gbnf;
use semantic_engine::EngineError;
use serde_json::{json, Value};

fn color_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "green", "blue"]},
            "count": {"type": "integer"},
        },
        "required": ["color", "count"],
        "additionalProperties": false,
    })
}

fn assert_matches_color_schema(text: &str) {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    let color = doc["color"].as_str().expect("color is a string");
    assert!(["red", "green", "blue"].contains(&color), "{text}");
    assert!(doc["count"].is_i64(), "{text}");
    assert_eq!(doc.as_object().unwrap().len(), 2, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_grammar_constrains_greedy_and_seeded_output() {
    let engine = start(config());
    let grammar = Grammar::new(schema_to_gbnf(&color_schema()).unwrap());
    let prompt = chat_prompt(&engine, "Describe a fruit in one word.");
    let mut request = greedy(prompt.clone(), 64);
    request.sampling.grammar = Some(grammar.clone());
    let out = engine.submit(request).unwrap().collect().await.unwrap();
    assert_eq!(out.reason, FinishReason::EndOfTurn, "{:?}", out.text);
    assert_matches_color_schema(&out.text);

    let seeded = SamplingParams {
        temperature: 1.0,
        seed: Some(7),
        max_tokens: Some(64),
        grammar: Some(grammar),
        ..SamplingParams::default()
    };
    let mut texts = Vec::new();
    for _ in 0..2 {
        let mut request = greedy(prompt.clone(), 64);
        request.sampling = seeded.clone();
        let out = engine.submit(request).unwrap().collect().await.unwrap();
        assert_eq!(out.reason, FinishReason::EndOfTurn, "{:?}", out.text);
        assert_matches_color_schema(&out.text);
        texts.push(out.text);
    }
    assert_eq!(texts[0], texts[1], "same seed, same constrained output");
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_tool_call_grammar_yields_a_parseable_call() {
    let engine = start(config());
    let tool = ToolSpec {
        name: "set_light".into(),
        description: Some("Switch a light".into()),
        parameters: color_schema(),
    };
    let part = schema_to_gbnf(&call_schema(&tool)).unwrap();
    let mut request = greedy(chat_prompt(&engine, "Turn the light blue."), 96);
    request.sampling.grammar = Some(compose(&[part], None));
    let out = engine.submit(request).unwrap().collect().await.unwrap();
    assert_eq!(out.reason, FinishReason::EndOfTurn, "{:?}", out.text);
    assert!(out.text.starts_with("<tool_call>"), "{:?}", out.text);
    let reply = parse_reply(&out.text, std::slice::from_ref(&tool.name), true);
    assert_eq!(reply.calls.len(), 1, "{:?}", out.text);
    assert_eq!(reply.calls[0].name, "set_light");
    assert_matches_color_schema(&reply.calls[0].arguments.to_string());
    assert_eq!(reply.content, None);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grammar_and_schema_are_typed_errors() {
    let engine = start(config());
    for gbnf in ["root ::= [", "root ::= undefined-rule", "other ::= \"x\""] {
        let mut request = greedy(chat_prompt(&engine, "Hi"), 8);
        request.sampling.grammar = Some(Grammar::new(gbnf));
        match engine.submit(request) {
            Err(EngineError::InvalidGrammar(message)) => {
                assert!(message.contains("grammar"), "{message}")
            }
            Err(other) => panic!("{gbnf}: expected InvalidGrammar, got {other:?}"),
            Ok(_) => panic!("{gbnf}: accepted"),
        }
    }
    let bad = json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}});
    assert!(matches!(
        schema_to_gbnf(&bad),
        Err(EngineError::InvalidSchema(_))
    ));
    engine.shutdown();
}

#[test]
fn tool_parameters_with_local_refs_convert_once_rebased() {
    let tool = ToolSpec {
        name: "plan".into(),
        description: None,
        parameters: json!({
            "type": "object",
            "properties": {"step": {"$ref": "#/$defs/Step"}},
            "required": ["step"],
            "$defs": {"Step": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
        }),
    };
    let gbnf = schema_to_gbnf(&call_schema(&tool)).unwrap();
    assert!(gbnf.contains("root ::="), "{gbnf}");
}
