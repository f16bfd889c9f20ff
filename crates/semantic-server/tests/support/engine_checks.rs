//! What tests check on the engine behind the server: that it went idle
//! (a cancelled generation freed its sequence), how many tokens it sampled,
//! and failing every generation in flight by shutting it down.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use semantic_engine::EngineHandle;

/// Poll the engine until no sequence is running or holding KV cells.
pub async fn wait_until_idle(engine: &EngineHandle, deadline: Duration) {
    let start = Instant::now();
    loop {
        let snap = engine.snapshot().await.unwrap();
        if snap.running == 0 && snap.waiting == 0 && snap.kv_tokens == 0 {
            return;
        }
        assert!(start.elapsed() < deadline, "engine still busy: {snap:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tokens sampled by the engine since it started.
pub fn sampled_tokens(engine: &EngineHandle) -> u64 {
    engine.counters().sampled_tokens.load(Ordering::Relaxed)
}

/// Shut the engine down (on the blocking pool: it joins its thread), which
/// fails every generation in flight.
pub async fn shut_down_engine(engine: &EngineHandle) {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .unwrap();
}
