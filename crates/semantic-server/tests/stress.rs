//! Overload, bounded: 150 concurrent requests against a queue of 32 on the
//! real model. Nothing fails with a 5xx; what does not fit is refused with
//! 429 and `Retry-After`; everything accepted completes.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use support::{engine_config, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_150_against_a_queue_of_32_is_429_or_complete_never_5xx() {
    let mut config = engine_config();
    config.queue_capacity = 32;
    config.max_sequences = 4;
    let server = TestServer::start_with(config).await;
    let requests = (0..150).map(|i| {
        let body = json!({
            "model": "default", "max_tokens": 16, "temperature": 0, "ignore_eos": true,
            "session_id": format!("burst-{i}"),
            "messages": [{"role": "user", "content": format!("Count to ten, request {i}.")}],
        });
        let server = &server;
        async move {
            let r = server.chat(&body).await;
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = r.json().await.unwrap();
            (status, retry_after, body)
        }
    });
    let results = tokio::time::timeout(Duration::from_secs(600), join_all(requests))
        .await
        .expect("the burst finishes");
    let mut ok = 0;
    let mut refused = 0;
    for (status, retry_after, body) in &results {
        match status {
            200 => {
                ok += 1;
                assert_eq!(body["usage"]["completion_tokens"], 16, "{body}");
            }
            429 => {
                refused += 1;
                let secs: u64 = retry_after
                    .as_deref()
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                assert!(secs >= 1);
                assert_eq!(body["error"]["type"], "rate_limit_error");
                assert_eq!(body["error"]["code"], "queue_full");
            }
            other => panic!("status {other}: {body}"),
        }
    }
    eprintln!("burst of 150 against a queue of 32: {ok} completed, {refused} refused with 429");
    assert_eq!(ok + refused, 150);
    assert!(ok >= 32, "at least a queue's worth is served: {ok}");
    assert!(refused >= 1, "a burst of 150 must overflow a queue of 32");
    // The server is still healthy afterwards.
    assert_eq!(server.get("/health/ready").await.status(), 200);
    server.shutdown().await;
}
