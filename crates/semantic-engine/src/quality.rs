//! `semantic bench quality`: what a quantized KV cache costs in quality,
//! measured through our own llama.cpp contexts (the ones
//! [`new_context`] makes for the engine: unified KV, flash attention with
//! our kernels, full-size sliding-window cache).
//!
//! The method is llama-perplexity's, so figures compare with it (see
//! [`semantic_domain::quality`]): the text is tokenized as that tool does,
//! cut into chunks of `n_ctx` tokens, each chunk evaluated from an empty
//! cache with BOS first when the vocabulary adds one, and the second half
//! of each chunk scored. An f16 reference context and one context per
//! compared KV type evaluate every batch in lockstep; each scored
//! position's logits are compared at once (NLL, KL from f16, top-1), so no
//! more than one batch of logits per context is ever held (Gemma 3's
//! vocabulary is 262K entries: a chunk's logits would be gigabytes).

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use semantic_domain::quality::{score_position, Chunking, QualityTotals};
use semantic_domain::{KvType, TokenId};

use crate::llama_compute::{new_context, ContextShape};
use crate::{EngineError, LoadedModel};

/// One evaluation: a context length and the KV types compared with f16.
#[derive(Clone, Debug)]
pub struct QualityPlan {
    /// Tokens per chunk: the context length under test.
    pub n_ctx: u32,
    /// Most chunks evaluated (fewer if the tokens run out).
    pub max_chunks: usize,
    /// Tokens per `llama_decode` (llama.cpp keeps this many rows of logits
    /// per context: 256 MiB for Gemma 3 at 256).
    pub batch_tokens: u32,
    pub threads: u32,
    /// KV types scored against the f16 reference (f16 here gives a second
    /// f16 context: its KL must be 0).
    pub compared: Vec<KvType>,
}

/// One KV type's totals.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KvScore {
    pub kv_type: KvType,
    #[serde(flatten)]
    pub totals: QualityTotals,
}

/// What one evaluation measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QualityReport {
    pub n_ctx: u32,
    pub chunks: usize,
    /// The f16 reference (its KL is 0 by definition).
    pub reference: QualityTotals,
    pub compared: Vec<KvScore>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the text has {have} tokens; a context of {n_ctx} needs at least that many")]
    TooFewTokens { have: usize, n_ctx: u32 },
    #[error("llama_decode failed ({kv_type} KV): {reason}")]
    Decode { kv_type: KvType, reason: String },
    #[error("token {0} is outside the model's vocabulary")]
    Token(TokenId),
}

/// The text's tokens as llama-perplexity takes them: BOS first when the
/// vocabulary adds one, special-token text left as text.
pub fn evaluation_tokens(model: &LoadedModel, text: &str) -> Vec<TokenId> {
    model
        .llama()
        .vocab()
        .tokenize(text.as_bytes(), true, false)
        .into_iter()
        .map(|t| t.0)
        .collect()
}

/// The token each chunk starts with, if the vocabulary adds BOS.
fn chunk_bos(model: &LoadedModel) -> Option<TokenId> {
    let vocab = model.llama().vocab();
    vocab.should_add_bos().then(|| vocab.bos().0)
}

/// One context under test.
struct Evaluated<'m> {
    kv_type: KvType,
    ctx: LlamaContext<'m>,
}

impl Evaluated<'_> {
    fn decode(&mut self, batch: &mut LlamaBatch<'_>) -> Result<(), QualityError> {
        self.ctx.decode(batch).map_err(|e| QualityError::Decode {
            kv_type: self.kv_type,
            reason: e.to_string(),
        })
    }
}

/// Evaluate `tokens` (from [`evaluation_tokens`]) under `plan`;
/// `progress(done, chunks)` after each chunk.
pub fn measure(
    model: &LoadedModel,
    tokens: &[TokenId],
    plan: &QualityPlan,
    mut progress: impl FnMut(usize, usize),
) -> Result<QualityReport, QualityError> {
    let started = Instant::now();
    let chunking = Chunking::new(tokens.len(), plan.n_ctx as usize, plan.max_chunks).ok_or(
        QualityError::TooFewTokens {
            have: tokens.len(),
            n_ctx: plan.n_ctx,
        },
    )?;
    let open = |kv_type| -> Result<Evaluated<'_>, QualityError> {
        let shape = ContextShape {
            context_tokens: plan.n_ctx,
            max_sequences: 1,
            batch_tokens: plan.batch_tokens,
            threads: plan.threads,
            kv_type,
        };
        Ok(Evaluated {
            kv_type,
            ctx: new_context(model, shape)?,
        })
    };
    let mut reference = open(KvType::F16)?;
    let mut compared = plan
        .compared
        .iter()
        .map(|&kv| open(kv))
        .collect::<Result<Vec<_>, _>>()?;
    let mut totals = Totals {
        reference: QualityTotals::default(),
        compared: vec![QualityTotals::default(); compared.len()],
    };
    let bos = chunk_bos(model);
    let mut batch = LlamaBatch::new(plan.batch_tokens as usize, 1);
    for index in 0..chunking.chunks {
        let chunk = chunking
            .chunk(tokens, index, bos)
            .ok_or(QualityError::TooFewTokens {
                have: tokens.len(),
                n_ctx: plan.n_ctx,
            })?;
        let mut lockstep = Lockstep {
            reference: &mut reference,
            compared: &mut compared,
            batch: &mut batch,
            chunking,
        };
        lockstep.run_chunk(&chunk, plan.batch_tokens as usize, &mut totals)?;
        progress(index + 1, chunking.chunks);
    }
    Ok(QualityReport {
        n_ctx: plan.n_ctx,
        chunks: chunking.chunks,
        reference: totals.reference,
        compared: plan
            .compared
            .iter()
            .zip(totals.compared)
            .map(|(&kv_type, totals)| KvScore { kv_type, totals })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

struct Totals {
    reference: QualityTotals,
    compared: Vec<QualityTotals>,
}

/// The contexts of one evaluation, driven batch by batch together.
struct Lockstep<'a, 'm> {
    reference: &'a mut Evaluated<'m>,
    compared: &'a mut [Evaluated<'m>],
    batch: &'a mut LlamaBatch<'static>,
    chunking: Chunking,
}

impl Lockstep<'_, '_> {
    /// One chunk from an empty cache, `step` tokens per decode.
    fn run_chunk(
        &mut self,
        chunk: &[TokenId],
        step: usize,
        totals: &mut Totals,
    ) -> Result<(), QualityError> {
        self.reference.ctx.clear_kv_cache();
        for e in self.compared.iter_mut() {
            e.ctx.clear_kv_cache();
        }
        for (b, part) in chunk.chunks(step.max(1)).enumerate() {
            let start = b * step;
            let scored = self.fill_batch(part, start)?;
            self.reference.decode(self.batch)?;
            for e in self.compared.iter_mut() {
                e.decode(self.batch)?;
            }
            for (row, pos) in scored {
                let target = chunk[pos + 1];
                self.score(row, target, totals)?;
            }
        }
        Ok(())
    }

    /// Put `part` (positions from `start`) in the batch, asking for logits
    /// where a position is scored; returns (batch row, position) of those.
    fn fill_batch(
        &mut self,
        part: &[TokenId],
        start: usize,
    ) -> Result<Vec<(i32, usize)>, QualityError> {
        self.batch.clear();
        let mut scored = Vec::new();
        for (i, &token) in part.iter().enumerate() {
            let pos = start + i;
            // Outputs from the first scored position to the chunk's end,
            // the last one (which predicts past the chunk) included, as
            // llama-perplexity asks for them: the rows of the last layers
            // then match its, and so do kernels that treat a batch's rows
            // by groups (llama.cpp's repacked Q4_K matmuls).
            let logits = pos >= self.chunking.first_scored();
            self.batch
                .add(LlamaToken(token), pos as i32, &[0], logits)
                .map_err(|e| QualityError::Decode {
                    kv_type: self.reference.kv_type,
                    reason: e.to_string(),
                })?;
            if self.chunking.is_scored(pos) {
                scored.push((i as i32, pos));
            }
        }
        Ok(scored)
    }

    fn score(&self, row: i32, target: TokenId, totals: &mut Totals) -> Result<(), QualityError> {
        let reference_row = self.reference.ctx.get_logits_ith(row);
        let rows: Vec<&[f32]> = self
            .compared
            .iter()
            .map(|e| e.ctx.get_logits_ith(row))
            .collect();
        score_position(
            reference_row,
            &rows,
            target,
            &mut totals.reference,
            &mut totals.compared,
        )
        .ok_or(QualityError::Token(target))
    }
}
