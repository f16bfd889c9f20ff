//! `semantic bench engine`: engine vs bare llama.cpp, side by side.

use semantic_engine::bench::{self, BenchPlan};
use semantic_engine::corpus::Corpus;
use semantic_engine::system_info::llama_build_info;

use crate::cli::BenchEngineArgs;

pub fn run(args: BenchEngineArgs) -> anyhow::Result<()> {
    let config = args.engine.to_config()?;
    let corpus = Corpus::from_option(args.corpus.as_deref())?;
    let plan = BenchPlan {
        repeats: args.repeats.max(1),
        decode_tokens: args.decode_tokens.max(2),
        ..BenchPlan::default()
    };
    let info = llama_build_info();
    println!("machine: {} ({} threads)", cpu_model(), config.threads());
    println!("model:   {}", config.model_path.display());
    println!(
        "engine:  {} | step budget {} | kv {}",
        info.bindings, config.step_token_budget, config.kv_type
    );
    println!("cpu:     {}", info.cpu_features().join(" "));
    let rows = bench::run(&config, &corpus, &plan, |line| eprintln!("  {line}"))?;
    println!();
    println!("| benchmark | engine tok/s | bare llama.cpp tok/s | engine / bare |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.3} |",
            r.name,
            r.engine_tps,
            r.bare_tps,
            r.ratio()
        );
    }
    println!(
        "\nmedians of {} runs each; engine and bare loop alternate within each run",
        plan.repeats
    );
    Ok(())
}

/// The CPU model name, for the report header.
pub(super) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}
