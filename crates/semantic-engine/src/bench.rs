//! `semantic bench engine`: the engine's prefill and decode throughput next
//! to a bare llama.cpp loop (no scheduler, no channels) on the same model,
//! context shape and machine, measured in the same run.
//!
//! This is a benchmark, not a test: nothing here asserts on speed.

use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use semantic_domain::{GenerateRequest, GenerationEvent, SamplingParams, TokenId};

use crate::corpus::{Corpus, CorpusError};
use crate::llama_compute::{new_context, ContextShape};
use crate::{EngineConfig, EngineError, EngineHandle};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    pub prefill_lengths: Vec<usize>,
    pub decode_batches: Vec<usize>,
    /// Tokens generated per sequence in the decode runs.
    pub decode_tokens: usize,
    /// Prompt length of each sequence in the decode runs.
    pub decode_prompt: usize,
    pub repeats: usize,
}

impl Default for BenchPlan {
    fn default() -> Self {
        Self {
            prefill_lengths: vec![512, 2048],
            decode_batches: vec![1, 4, 8],
            decode_tokens: 64,
            decode_prompt: 64,
            repeats: 3,
        }
    }
}

/// One line of the table: tokens per second, medians over the repeats.
#[derive(Clone, Debug)]
pub struct BenchRow {
    pub name: String,
    pub engine_tps: f64,
    pub bare_tps: f64,
}

impl BenchRow {
    pub fn ratio(&self) -> f64 {
        self.engine_tps / self.bare_tps
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("bare llama.cpp loop failed: {0}")]
    Bare(String),
    #[error("engine request failed: {0}")]
    Request(String),
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len().is_multiple_of(2) {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    }
}

/// Run the whole plan; `progress` receives a line per measurement.
pub fn run(
    config: &EngineConfig,
    corpus: &Corpus,
    plan: &BenchPlan,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BenchRow>, BenchError> {
    let engine = EngineHandle::start(config.clone(), |_| {})?;
    let shape = ContextShape {
        context_tokens: config.total_blocks() * config.block_tokens,
        max_sequences: config.max_sequences,
        batch_tokens: config.step_token_budget,
        threads: config.threads(),
        kv_type: config.kv_type,
    };
    let mut bare = BareLoop::new(&engine, shape)?;
    let mut rows = Vec::new();
    for &n in &plan.prefill_lengths {
        let (mut e, mut b) = (Vec::new(), Vec::new());
        for r in 0..plan.repeats {
            let prompt = corpus.tokens(engine.model(), n, r)?;
            e.push(engine_prefill(&engine, prompt.clone())?);
            b.push(bare.prefill(&prompt)?);
            progress(&format!(
                "prefill {n}: engine {:.0} tok/s, bare {:.0} tok/s",
                e[r], b[r]
            ));
        }
        rows.push(row(format!("prefill {n} tokens"), e, b));
    }
    for &batch in &plan.decode_batches {
        let (mut e, mut b) = (Vec::new(), Vec::new());
        for r in 0..plan.repeats {
            let prompts = (0..batch)
                .map(|i| corpus.tokens(engine.model(), plan.decode_prompt, r * batch + i))
                .collect::<Result<Vec<_>, _>>()?;
            e.push(engine_decode(&engine, &prompts, plan.decode_tokens)?);
            b.push(bare.decode(&prompts, plan.decode_tokens)?);
            progress(&format!(
                "decode x{batch}: engine {:.1} tok/s, bare {:.1} tok/s",
                e[r], b[r]
            ));
        }
        rows.push(row(format!("decode batch {batch}"), e, b));
    }
    drop(bare);
    engine.shutdown();
    Ok(rows)
}

fn row(name: String, engine: Vec<f64>, bare: Vec<f64>) -> BenchRow {
    BenchRow {
        name,
        engine_tps: median(engine),
        bare_tps: median(bare),
    }
}

/// Prefill throughput as the engine itself timed it (submit to first token,
/// less queueing).
fn engine_prefill(engine: &EngineHandle, prompt: Vec<TokenId>) -> Result<f64, BenchError> {
    let n = prompt.len() as f64;
    let mut stream = engine.submit(GenerateRequest::new(
        prompt,
        SamplingParams::greedy(1),
        None,
    ))?;
    loop {
        match stream.blocking_next() {
            Some(GenerationEvent::Finished { timings, .. }) => {
                return Ok(n / (timings.first_token - timings.queue));
            }
            Some(GenerationEvent::Failed { message }) => return Err(BenchError::Request(message)),
            Some(_) => {}
            None => return Err(BenchError::Request("stream ended".into())),
        }
    }
}

/// Decode throughput of `prompts.len()` concurrent sequences: tokens that
/// arrive after every sequence has its first token, over that window.
fn engine_decode(
    engine: &EngineHandle,
    prompts: &[Vec<TokenId>],
    tokens: usize,
) -> Result<f64, BenchError> {
    let sampling = SamplingParams {
        ignore_eos: true,
        ..SamplingParams::greedy(tokens as u32)
    };
    let streams = prompts
        .iter()
        .map(|p| engine.submit(GenerateRequest::new(p.clone(), sampling.clone(), None)))
        .collect::<Result<Vec<_>, _>>()?;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut arrivals = Vec::new();
                while let Some(ev) = s.blocking_next() {
                    match ev {
                        GenerationEvent::Token { .. } => arrivals.push(Instant::now()),
                        GenerationEvent::Finished { .. } => return Ok(arrivals),
                        GenerationEvent::Failed { message } => return Err(message),
                        GenerationEvent::Text { .. } => {}
                    }
                }
                Err("stream ended".to_owned())
            })
        })
        .collect();
    let mut all = Vec::new();
    for r in readers {
        let arrivals = r
            .join()
            .map_err(|_| BenchError::Request("reader panicked".into()))?
            .map_err(BenchError::Request)?;
        all.push(arrivals);
    }
    let start = all.iter().filter_map(|a| a.first()).max().copied();
    let end = all.iter().filter_map(|a| a.last()).max().copied();
    let (Some(start), Some(end)) = (start, end) else {
        return Err(BenchError::Request("no tokens".into()));
    };
    let counted = all.iter().flatten().filter(|&&t| t > start).count();
    Ok(counted as f64 / secs(end - start))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// The baseline: llama.cpp driven directly, the way its own examples do.
struct BareLoop<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    chunk: usize,
}

impl<'m> BareLoop<'m> {
    fn new(engine: &'m EngineHandle, shape: ContextShape) -> Result<Self, BenchError> {
        Ok(Self {
            ctx: new_context(engine.model(), shape)?,
            batch: LlamaBatch::new(shape.batch_tokens as usize, 1),
            chunk: shape.batch_tokens as usize,
        })
    }

    fn decode(&mut self, prompts: &[Vec<TokenId>], tokens: usize) -> Result<f64, BenchError> {
        self.ctx.clear_kv_cache();
        let mut samplers: Vec<LlamaSampler> =
            prompts.iter().map(|_| LlamaSampler::greedy()).collect();
        self.batch.clear();
        for (s, p) in prompts.iter().enumerate() {
            for (i, &t) in p.iter().enumerate() {
                self.add(t, i, s as i32, i + 1 == p.len())?;
            }
        }
        self.run()?;
        let mut last: Vec<i32> = (0..prompts.len())
            .map(|s| prompts[..=s].iter().map(Vec::len).sum::<usize>() as i32 - 1)
            .collect();
        let start = Instant::now();
        for step in 0..tokens - 1 {
            let sampled: Vec<LlamaToken> = samplers
                .iter_mut()
                .zip(&last)
                .map(|(s, &i)| s.sample(&self.ctx, i))
                .collect();
            self.batch.clear();
            for (s, t) in sampled.iter().enumerate() {
                self.add(t.0, prompts[s].len() + step, s as i32, true)?;
                last[s] = s as i32;
            }
            self.run()?;
        }
        let elapsed = secs(start.elapsed());
        self.ctx.clear_kv_cache();
        Ok((prompts.len() * (tokens - 1)) as f64 / elapsed)
    }

    fn prefill(&mut self, prompt: &[TokenId]) -> Result<f64, BenchError> {
        self.ctx.clear_kv_cache();
        let start = Instant::now();
        for (c, chunk) in prompt.chunks(self.chunk).enumerate() {
            self.batch.clear();
            for (j, &t) in chunk.iter().enumerate() {
                let pos = c * self.chunk + j;
                self.add(t, pos, 0, pos + 1 == prompt.len())?;
            }
            self.run()?;
        }
        let mut sampler = LlamaSampler::greedy();
        let _first = sampler.sample(&self.ctx, self.batch.n_tokens() - 1);
        let elapsed = secs(start.elapsed());
        self.ctx.clear_kv_cache();
        Ok(prompt.len() as f64 / elapsed)
    }

    fn add(&mut self, t: TokenId, pos: usize, seq: i32, logits: bool) -> Result<(), BenchError> {
        self.batch
            .add(LlamaToken(t), pos as i32, &[seq], logits)
            .map_err(|e| BenchError::Bare(e.to_string()))
    }

    fn run(&mut self) -> Result<(), BenchError> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| BenchError::Bare(e.to_string()))
    }
}
