//! Real-model tests of the engine: answers, batching, chunked prefill,
//! cancellation and bad input. No mocks: llama.cpp runs SmolLM2-135M.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use semantic_domain::{FinishReason, GenerationEvent, SamplingParams};
use semantic_engine::{EngineConfig, EngineError, EngineHandle};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_answer_names_paris() {
    let engine = start(config());
    let prompt = chat_prompt(&engine, "What is the capital of France?");
    let out = engine
        .submit(greedy(prompt, 32))
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(out.text.contains("Paris"), "answer was {:?}", out.text);
    assert!(out.usage.completion_tokens > 0);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_match_solo_runs_token_for_token() {
    let engine = start(config());
    if let Some(why) = engine.model().info().offload.exactness_note() {
        eprintln!("skipped: {why}");
        return;
    }
    let questions = [
        "What is the capital of France?",
        "Write a haiku about the sea.",
        "List three prime numbers.",
        "Explain what a Markov chain is in one sentence.",
    ];
    let prompts: Vec<_> = questions.iter().map(|q| chat_prompt(&engine, q)).collect();
    let mut solo = Vec::new();
    for p in &prompts {
        solo.push(
            engine
                .submit(greedy(p.clone(), 48))
                .unwrap()
                .collect()
                .await
                .unwrap(),
        );
    }
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| engine.submit(greedy(p.clone(), 48)).unwrap())
        .collect();
    let mut together = Vec::new();
    for s in streams {
        together.push(s.collect().await.unwrap());
    }
    for (i, (a, b)) in solo.iter().zip(&together).enumerate() {
        assert_eq!(a.tokens, b.tokens, "prompt {i} diverged when batched");
        assert_eq!(a.text, b.text);
    }
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_prefill_matches_whole_prefill() {
    let mut chunked_cfg = config();
    chunked_cfg.step_token_budget = 256;
    let chunked = start(chunked_cfg);
    if let Some(why) = chunked.model().info().offload.exactness_note() {
        eprintln!("skipped: {why}");
        return;
    }
    let prompt = corpus_tokens(&chunked, 2000);
    let a = chunked
        .submit(greedy(prompt.clone(), 24))
        .unwrap()
        .collect()
        .await
        .unwrap();
    chunked.shutdown();

    let mut whole_cfg = config();
    whole_cfg.step_token_budget = 2048;
    let whole = start(whole_cfg);
    let b = whole
        .submit(greedy(prompt, 24))
        .unwrap()
        .collect()
        .await
        .unwrap();
    whole.shutdown();
    assert_eq!(
        a.tokens, b.tokens,
        "chunked {:?} vs whole {:?}",
        a.text, b.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_free_their_sequences() {
    let engine = start(config());
    let prompt = chat_prompt(&engine, "Tell me a long story about a dragon.");
    for _ in 0..50 {
        let mut stream = engine.submit(greedy(prompt.clone(), 200)).unwrap();
        // Wait for the first token, so the request is mid-stream, then go away.
        match stream.next().await {
            Some(GenerationEvent::Token { .. }) => {}
            other => panic!("expected a first token, got {other:?}"),
        }
        drop(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snap = engine.snapshot().await.unwrap();
        if snap.running == 0 && snap.waiting == 0 {
            assert_eq!(snap.kv_tokens, 0, "KV cells leaked: {snap:?}");
            assert_eq!(snap.pool_used_blocks, 0, "blocks leaked: {snap:?}");
            break;
        }
        assert!(Instant::now() < deadline, "sequences still live: {snap:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = engine
        .submit(greedy(prompt, 16))
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.usage.completion_tokens, 16);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let engine = start(config());
    let err = |r| {
        engine
            .submit(r)
            .err()
            .map(|e: EngineError| e.to_string())
            .unwrap_or_default()
    };

    assert!(err(greedy(vec![], 8)).contains("empty"));

    let window = engine.context_window() as usize;
    let too_long = vec![1; window + 10];
    let msg = err(greedy(too_long, 8));
    assert!(msg.contains("context window"), "{msg}");

    let mut zero = greedy(vec![1, 2, 3], 8);
    zero.sampling.max_tokens = Some(0);
    assert!(err(zero).contains("max_tokens"));

    // More than the window has left is clamped to it (the default policy);
    // only `--strict-max-tokens` refuses it (semantic-server's tests/max_tokens.rs).
    let mut too_many = greedy(vec![1, 2, 3], 8);
    too_many.sampling.max_tokens = Some(window as u32);
    assert!(engine.submit(too_many).is_ok());

    assert!(err(greedy(vec![1, -5, 3], 8)).contains("vocabulary"));

    let mut hot = greedy(vec![1, 2, 3], 8);
    hot.sampling = SamplingParams {
        temperature: 9.0,
        ..SamplingParams::default()
    };
    assert!(err(hot).contains("temperature"));

    // The engine still serves after all of that.
    let prompt = chat_prompt(&engine, "Say hi.");
    let out = engine
        .submit(greedy(prompt, 4))
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.reason, FinishReason::MaxTokens);
    engine.shutdown();
}

#[test]
fn missing_truncated_and_foreign_model_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("semantic-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let start_err = |path: std::path::PathBuf| {
        EngineHandle::start(EngineConfig::new(path), |_| {})
            .err()
            .map(|e| e.to_string())
    };

    let missing = start_err(dir.join("nope.gguf")).unwrap();
    assert!(
        missing.contains("not found") && missing.contains("nope.gguf"),
        "{missing}"
    );

    let not_gguf = dir.join("text.gguf");
    std::fs::write(&not_gguf, b"hello, I am not a model").unwrap();
    assert!(start_err(not_gguf).unwrap().contains("not a GGUF"));

    let real = std::fs::read(model_path()).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &real[..real.len() / 3]).unwrap();
    let msg = start_err(truncated).unwrap();
    assert!(
        msg.contains("truncated.gguf") && msg.contains("failed to load"),
        "{msg}"
    );

    let a_dir = dir.join("a-directory.gguf");
    std::fs::create_dir_all(&a_dir).unwrap();
    assert!(start_err(a_dir).unwrap().contains("not found"));

    // Crafted headers claiming absurd counts or lengths (a hostile file
    // handed to --model or a hot swap) are refused, never allocated.
    let header = |n_tensors: u64, n_kv: u64, rest: &[u8]| {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(n_tensors.to_le_bytes());
        bytes.extend(n_kv.to_le_bytes());
        bytes.extend(rest);
        bytes.extend([0u8; 64]);
        bytes
    };
    // Our header reader refuses them, naming the field, before llama.cpp.
    let huge = 1u64 << 62;
    for (name, bytes, names) in [
        (
            "tensors",
            header(huge, 0, &[]),
            "claims 4611686018427387904 tensors",
        ),
        (
            "kv",
            header(0, 1 << 60, &[]),
            "claims 1152921504606846976 metadata keys",
        ),
        (
            "key-length",
            header(0, 1, &huge.to_le_bytes()),
            "bytes in metadata key 0",
        ),
    ] {
        let path = dir.join(format!("absurd-{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        let started = std::time::Instant::now();
        let msg = start_err(path).unwrap();
        assert!(
            started.elapsed().as_secs() < 2,
            "{name}: {:?}",
            started.elapsed()
        );
        assert!(
            msg.contains("failed to load") && msg.contains(names),
            "{name}: {msg}"
        );
    }

    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seed_sampling_is_reproducible_and_stop_strings_cut() {
    let engine = start(config());
    let prompt = chat_prompt(&engine, "Write a short poem about autumn.");
    let sampled = |seed| semantic_domain::GenerateRequest {
        prompt: prompt.clone(),
        sampling: SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            top_k: 40,
            seed: Some(seed),
            max_tokens: Some(24),
            ..SamplingParams::default()
        },
        tenant: semantic_domain::TenantId::open(),
        agent: None,
    };
    let a = engine.submit(sampled(7)).unwrap().collect().await.unwrap();
    let b = engine.submit(sampled(7)).unwrap().collect().await.unwrap();
    assert_eq!(a.tokens, b.tokens);

    // Stop on a string the greedy answer is known to contain.
    let greedy_out = engine
        .submit(greedy(prompt.clone(), 24))
        .unwrap()
        .collect()
        .await
        .unwrap();
    let words: Vec<&str> = greedy_out.text.split_whitespace().collect();
    assert!(words.len() > 3, "{:?}", greedy_out.text);
    let stop = words[3].to_string();
    let mut req = greedy(prompt, 24);
    req.sampling.stop = vec![stop.clone()];
    let cut = engine.submit(req).unwrap().collect().await.unwrap();
    assert_eq!(cut.reason, FinishReason::StopString(stop.clone()));
    assert!(
        !cut.text.contains(&stop),
        "{:?} still contains {stop:?}",
        cut.text
    );
    assert!(greedy_out.text.starts_with(&cut.text));
    engine.shutdown();
}
