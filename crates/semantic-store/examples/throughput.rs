//! Save and load throughput of one agent record on this machine.
//!
//! `cargo run --release -p semantic-store --example throughput -- [MB] [DIR]`
//! (default 50 MB in a temp dir under the system temp directory). Save
//! includes the checksum, fsync of the file and of the directory; load
//! includes the checksum and reads from the page cache (the file was just
//! written), so it is the warm-restore figure, not a cold-disk one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use semantic_domain::{AgentId, AgentKey, KvType};
use semantic_store::{AgentRecord, AgentRecordMeta, Compat, DiskStore, LoadOutcome};

const FINGERPRINT: &str = "feedfacecafebeef";
const RUNS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("semantic-store-bench-{}", std::process::id())),
    };
    let store = DiskStore::open(&dir, FINGERPRINT)?;
    let kv_state: Vec<u8> = (0..mb * 1_000_000).map(|i| (i * 31 % 251) as u8).collect();
    let record = AgentRecord {
        meta: AgentRecordMeta {
            agent: AgentKey::open(AgentId::parse("bench")?),
            model_fingerprint: FINGERPRINT.into(),
            engine_build: "bench".into(),
            kv_type: KvType::F16,
            tokens: (0..2048).collect(),
            kv_bytes: kv_state.len() as u64,
            created_unix_ms: 0,
        },
        kv_state: kv_state.into(),
    };
    let compat = Compat {
        model_fingerprint: FINGERPRINT.into(),
        engine_build: "bench".into(),
        kv_type: KvType::F16,
    };
    let (mut saves, mut loads) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        store.save(&record)?;
        saves.push(t.elapsed());
        let t = Instant::now();
        let LoadOutcome::Usable(loaded) = store.load(&record.meta.agent, &compat)? else {
            return Err("bench record did not load as usable".into());
        };
        loads.push(t.elapsed());
        assert_eq!(loaded.kv_state.len(), record.kv_state.len());
    }
    report("save", mb, &mut saves);
    report("load", mb, &mut loads);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn report(what: &str, mb: usize, times: &mut [Duration]) {
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{what} {mb} MB: median {:.1} ms = {:.0} MB/s (min {:.1} ms, max {:.1} ms, {} runs)",
        median.as_secs_f64() * 1e3,
        mb as f64 / median.as_secs_f64(),
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}
