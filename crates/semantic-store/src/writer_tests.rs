//! The background writer on real files.

use std::fs;
use std::sync::{Arc, Mutex};

use tempfile::TempDir;

use crate::test_support::{agent, blob, compat, open, record};
use crate::{LoadOutcome, PersistWriter};

fn loaded_tokens(store: &crate::DiskStore, id: &str) -> Vec<i32> {
    match store.load(&agent(id), &compat()).unwrap() {
        LoadOutcome::Usable(r) => r.meta.tokens,
        LoadOutcome::Mismatch { reason, .. } => panic!("{reason}"),
    }
}

#[test]
fn coalesces_to_the_newest_record() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    let writer = PersistWriter::start(Arc::clone(&store)).unwrap();
    // Built first so the submissions arrive faster than a write takes.
    let versions: Vec<_> = (1..=10)
        .map(|v| record("a", vec![v], blob(v as u64, 2_000_000)))
        .collect();
    for rec in versions {
        writer.submit(rec);
    }
    writer.flush();
    assert_eq!(loaded_tokens(&store, "a"), [10]);
    let stats = writer.stats();
    assert_eq!(stats.submitted, 10);
    assert_eq!(stats.written + stats.coalesced, 10, "{stats:?}");
    assert!(stats.written >= 1 && stats.written < 10, "{stats:?}");
    assert_eq!((stats.failed, stats.queued), (0, 0));
    assert!(stats.last_write.is_some());
}

/// Without a flush, a record waits `SETTLE` before it is written, so a
/// newer turn of the same agent that arrives meanwhile replaces it and only
/// the newer one reaches the disk.
#[test]
fn a_record_replaced_while_settling_is_never_written() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    let writer = PersistWriter::start(Arc::clone(&store)).unwrap();
    writer.submit(record("a", vec![1], blob(1, 1_000)));
    writer.submit(record("a", vec![2], blob(2, 1_000)));
    assert_eq!(writer.stats().written, 0, "written before settling");
    let deadline = std::time::Instant::now() + crate::writer::SETTLE * 20;
    while writer.stats().written == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(crate::writer::SETTLE / 10);
    }
    assert_eq!(loaded_tokens(&store, "a"), [2]);
    let stats = writer.stats();
    assert_eq!((stats.written, stats.coalesced), (1, 1), "{stats:?}");
}

#[test]
fn flush_waits_for_everything_submitted_before_it() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    let writer = PersistWriter::start(Arc::clone(&store)).unwrap();
    for i in 0..20 {
        writer.submit(record(
            &format!("agent-{i}"),
            vec![i],
            blob(i as u64, 100_000),
        ));
    }
    writer.flush();
    for i in 0..20 {
        assert_eq!(loaded_tokens(&store, &format!("agent-{i}")), [i]);
    }
    assert_eq!(writer.stats().written, 20);
    // Flushing an idle writer returns at once.
    writer.flush();
}

#[test]
fn shutdown_drains_the_queue() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    let writer = PersistWriter::start(Arc::clone(&store)).unwrap();
    for i in 0..5 {
        writer.submit(record(&format!("a{i}"), vec![i], blob(1, 500_000)));
    }
    writer.shutdown();
    assert_eq!(store.index().unwrap().len(), 5);

    // Dropping does the same.
    let writer = PersistWriter::start(Arc::clone(&store)).unwrap();
    writer.submit(record("dropped", vec![7], blob(1, 10)));
    drop(writer);
    assert_eq!(loaded_tokens(&store, "dropped"), [7]);
}

#[test]
fn errors_are_counted_and_reported_not_fatal() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    // A directory where the file should go makes the save fail, even as root
    // (a read-only directory would not stop root).
    fs::create_dir_all(store.path_for(&agent("blocked")).join("x")).unwrap();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    let hook: crate::OnWritten = Box::new(move |agent, result, _took| {
        let line = match result {
            Ok(bytes) => format!("{agent} ok {bytes}"),
            Err(e) => format!("{agent} err {e}"),
        };
        sink.lock().unwrap().push(line);
    });
    let writer = PersistWriter::start_with(Arc::clone(&store), Some(hook)).unwrap();
    writer.submit(record("blocked", vec![1], blob(1, 1000)));
    writer.submit(record("fine", vec![2], blob(2, 1000)));
    writer.flush();

    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed), (1, 1), "{stats:?}");
    let reports = reports.lock().unwrap();
    assert!(reports[0].starts_with("default/blocked err"), "{reports:?}");
    assert!(reports[0].contains("blocked.safetensors"), "{reports:?}");
    assert!(reports[1].starts_with("default/fine ok"), "{reports:?}");
    assert_eq!(loaded_tokens(&store, "fine"), [2]);
}

#[test]
fn a_panicking_hook_does_not_stop_the_writer() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    let hook: crate::OnWritten = Box::new(|_, _, _| panic!("hook bug"));
    let writer = PersistWriter::start_with(Arc::clone(&store), Some(hook)).unwrap();
    writer.submit(record("a", vec![1], blob(1, 10)));
    writer.flush();
    writer.submit(record("b", vec![2], blob(2, 10)));
    writer.flush();
    assert_eq!(writer.stats().written, 2);
}

#[test]
fn cancel_drops_a_queued_record() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(dir.path()));
    let writer = PersistWriter::start(Arc::clone(&store)).unwrap();
    // Keep the thread busy with a large write so the next one stays queued.
    writer.submit(record("big", vec![1], blob(1, 20_000_000)));
    writer.submit(record("gone", vec![2], blob(2, 10)));
    let cancelled = writer.cancel(&agent("gone"));
    writer.flush();
    assert_eq!(store.path_for(&agent("gone")).exists(), !cancelled);
    assert!(!writer.cancel(&agent("gone")));
}
