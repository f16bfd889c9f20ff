//! `semantic bench quality`: perplexity and KL divergence from f16 per KV
//! type, model and context length, as a Markdown table (and JSON).
//!
//! The evaluation itself is `semantic_engine::quality`; this command picks
//! the models, cuts one text from the corpus that is long enough for every
//! model (and can write it out, so llama-perplexity can be run on exactly
//! the same text), and reports.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use semantic_domain::quality::delta_percent;
use semantic_domain::KvType;
use semantic_engine::corpus::Corpus;
use semantic_engine::quality::{self, QualityPlan, QualityReport};
use semantic_engine::system_info::llama_build_info;
use semantic_engine::LoadedModel;
use serde_json::{json, Value};

use super::bench::cpu_model;
use super::bench_server::model_file;
use crate::cli::BenchQualityArgs;
use crate::model_path::SECOND_MODEL_FILE;
use crate::progress::LoadProgress;

/// The corpus variant evaluated (its generated article and the ones after).
const VARIANT: usize = 0;

/// One line of the table.
struct Row {
    model: String,
    n_ctx: u32,
    chunks: usize,
    kv_type: KvType,
    scored: u64,
    ppl: f64,
    reference_ppl: f64,
    mean_kl: f64,
    max_kl: f64,
    top1: f64,
}

pub fn run(args: BenchQualityArgs) -> anyhow::Result<()> {
    check_sizes(&args)?;
    let threads = args.threads.unwrap_or_else(available_threads);
    let models = model_files(&args.models)?
        .iter()
        .map(|path| load(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let corpus = Corpus::from_option(args.corpus.as_deref())?;
    let text = evaluated_text(&corpus, &models, args.tokens)?;
    if let Some(path) = &args.dump_text {
        write_file(path, &text)?;
        eprintln!(
            "wrote the evaluated text ({} bytes) to {}",
            text.len(),
            path.display()
        );
    }
    print_header(threads, &args, text.len());
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for model in &models {
        rows.extend(measure_model(model, &text, &args, threads)?);
    }
    print_table(&rows);
    println!("\n{:.0} s in all.", started.elapsed().as_secs_f64());
    print_reproduce_hint(&args);
    if let Some(path) = &args.json {
        let body = json_report(&args, threads, text.len(), &rows);
        write_file(path, &serde_json::to_string_pretty(&body)?)?;
    }
    Ok(())
}

/// Every context length must be at least 1 token and fit `--tokens`.
fn check_sizes(args: &BenchQualityArgs) -> anyhow::Result<()> {
    let Some(longest) = args.contexts.iter().copied().max() else {
        bail!("--contexts needs at least one length");
    };
    if args.contexts.contains(&0) {
        bail!("--contexts: a context length of 0");
    }
    if args.tokens < longest as usize {
        bail!(
            "--tokens {} is less than the longest context ({longest}): not one chunk would fit",
            args.tokens
        );
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// One model at every context length: its rows of the table.
fn measure_model(
    model: &LoadedModel,
    text: &str,
    args: &BenchQualityArgs,
    threads: u32,
) -> anyhow::Result<Vec<Row>> {
    let tokens = quality::evaluation_tokens(model, text);
    let id = &model.info().id;
    let mut rows = Vec::new();
    for &n_ctx in &args.contexts {
        let plan = QualityPlan {
            n_ctx,
            max_chunks: args.tokens / n_ctx as usize,
            batch_tokens: args.batch_tokens.max(1),
            threads,
            compared: compared_types(&args.kv_types),
        };
        let report = quality::measure(model, &tokens, &plan, |done, all| {
            eprintln!("  {id} ctx {n_ctx}: chunk {done}/{all}");
        })
        .with_context(|| format!("evaluating {id} at {n_ctx} tokens"))?;
        let new_rows = rows_of(id, &report, args.kv_types.contains(&KvType::F16));
        for r in &new_rows {
            eprintln!(
                "  {id} ctx {n_ctx} {}: PPL {:.4}, mean KL {:.6} ({:.1} s)",
                r.kv_type, r.ppl, r.mean_kl, report.seconds
            );
        }
        rows.extend(new_rows);
    }
    Ok(rows)
}

/// The KV types evaluated beside the f16 reference, each once.
fn compared_types(kv_types: &[KvType]) -> Vec<KvType> {
    let mut compared = Vec::new();
    for &kv in kv_types {
        if kv != KvType::F16 && !compared.contains(&kv) {
            compared.push(kv);
        }
    }
    compared
}

fn available_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// `--model` paths, else the default model and the second test model when
/// it is beside it.
fn model_files(explicit: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if !explicit.is_empty() {
        return explicit.iter().map(|p| model_file(Some(p))).collect();
    }
    let default = model_file(None)?;
    let mut files = vec![default.clone()];
    if let Some(second) = default.parent().map(|dir| dir.join(SECOND_MODEL_FILE)) {
        if second.is_file() {
            files.push(second);
        }
    }
    Ok(files)
}

fn load(path: &Path) -> anyhow::Result<LoadedModel> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let progress = LoadProgress::new(&name);
    let model = LoadedModel::load(path, Default::default(), progress.callback())
        .with_context(|| format!("cannot load {}", path.display()))?;
    progress.finish();
    Ok(model)
}

/// One text with at least `tokens` tokens for every model: the longest of
/// the generated texts each needs (shorter ones are its prefixes).
fn evaluated_text(
    corpus: &Corpus,
    models: &[LoadedModel],
    tokens: usize,
) -> anyhow::Result<String> {
    let mut longest = String::new();
    for model in models {
        let text = corpus.text_for_tokens(model, tokens, VARIANT)?;
        if text.len() > longest.len() {
            longest = text;
        }
    }
    Ok(longest)
}

fn rows_of(model: &str, report: &QualityReport, with_f16: bool) -> Vec<Row> {
    let reference_ppl = report.reference.perplexity();
    let row = |kv_type, t: &semantic_domain::quality::QualityTotals| Row {
        model: model.to_owned(),
        n_ctx: report.n_ctx,
        chunks: report.chunks,
        kv_type,
        scored: t.scored,
        ppl: t.perplexity(),
        reference_ppl,
        mean_kl: t.mean_kl(),
        max_kl: t.kl_max,
        top1: t.top1_agreement(),
    };
    let mut rows = Vec::new();
    if with_f16 {
        rows.push(row(KvType::F16, &report.reference));
    }
    rows.extend(report.compared.iter().map(|s| row(s.kv_type, &s.totals)));
    rows
}

fn print_header(threads: u32, args: &BenchQualityArgs, text_bytes: usize) {
    let info = llama_build_info();
    println!("machine: {} ({threads} threads)", cpu_model());
    println!("engine:  {} | batch {}", info.bindings, args.batch_tokens);
    println!("cpu:     {}", info.cpu_features().join(" "));
    println!(
        "text:    {} tokens per model and context from {} ({text_bytes} bytes)",
        args.tokens,
        args.corpus
            .as_deref()
            .map_or("the generated corpus (variant 0)".to_owned(), |d| d
                .display()
                .to_string())
    );
}

/// How to check the f16 figures with llama.cpp on the same text.
fn print_reproduce_hint(args: &BenchQualityArgs) {
    let runs: Vec<String> = args
        .contexts
        .iter()
        .map(|&c| format!("-c {c} --chunks {}", args.tokens / c as usize))
        .collect();
    println!(
        "f16 with llama.cpp: llama-perplexity -m MODEL -f TEXT -fa on, with {} \
         (TEXT from --dump-text; it needs twice the context in tokens)",
        runs.join(" / ")
    );
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| model | context | KV | chunks | scored | PPL | ΔPPL vs f16 | mean KL | max KL | top-1 same |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.4} | {:+.3} % | {:.6} | {:.4} | {:.2} % |",
            r.model,
            r.n_ctx,
            r.kv_type,
            r.chunks,
            r.scored,
            r.ppl,
            delta_percent(r.ppl, r.reference_ppl),
            r.mean_kl,
            r.max_kl,
            100.0 * r.top1
        );
    }
}

fn json_report(args: &BenchQualityArgs, threads: u32, text_bytes: usize, rows: &[Row]) -> Value {
    let results: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "model": r.model,
                "context": r.n_ctx,
                "chunks": r.chunks,
                "kv_type": r.kv_type,
                "scored": r.scored,
                "perplexity": r.ppl,
                "delta_perplexity_percent": delta_percent(r.ppl, r.reference_ppl),
                "mean_kl": r.mean_kl,
                "max_kl": r.max_kl,
                "top1_agreement": r.top1,
            })
        })
        .collect();
    json!({
        "machine": cpu_model(),
        "threads": threads,
        "engine": llama_build_info().bindings,
        "batch_tokens": args.batch_tokens,
        "tokens": args.tokens,
        "text_bytes": text_bytes,
        "results": results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_is_the_reference_and_each_type_is_compared_once() {
        let kv = [KvType::F16, KvType::Q4_0, KvType::Q8_0, KvType::Q4_0];
        assert_eq!(compared_types(&kv), vec![KvType::Q4_0, KvType::Q8_0]);
        assert!(compared_types(&[KvType::F16]).is_empty());
    }
}
