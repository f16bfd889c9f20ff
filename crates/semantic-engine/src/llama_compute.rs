//! The llama.cpp adapter: runs the scheduler's batches on a llama context.
//!
//! Lives on the engine thread only; llama.cpp contexts are not thread-safe.

use std::collections::HashMap;
use std::num::NonZeroU32;

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use semantic_domain::{KvType, SamplingParams, TokenId};

use crate::backend::{BackendError, BatchToken, ComputeBackend, SlotId};
use crate::model::LoadedModel;
use crate::telemetry;
use crate::EngineError;

/// Context geometry for one engine.
#[derive(Clone, Copy, Debug)]
pub struct ContextShape {
    pub context_tokens: u32,
    pub max_sequences: u32,
    pub batch_tokens: u32,
    pub threads: u32,
    pub kv_type: KvType,
}

pub fn kv_cache_type(kv: KvType) -> KvCacheType {
    match kv {
        KvType::F16 => KvCacheType::F16,
        KvType::Q8_0 => KvCacheType::Q8_0,
        KvType::Q4_0 => KvCacheType::Q4_0,
    }
}

/// Create a context with one unified KV cache shared by all sequences.
pub fn new_context<'m>(
    model: &'m LoadedModel,
    shape: ContextShape,
) -> Result<LlamaContext<'m>, EngineError> {
    let n_ctx = NonZeroU32::new(shape.context_tokens)
        .ok_or_else(|| EngineError::ContextCreate("context size is 0".into()))?;
    // Flash attention always: its CPU kernel walks only the cells of the
    // query's own sequence, in position order, so a sequence's output does
    // not depend on which other sequences share the batch or where its cells
    // sit in the unified cache. The plain path sums over every cell and
    // rounds differently with the batch's layout, which changes greedy output.
    // It is also required for quantized V caches.
    let flash = llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED;
    let params = LlamaContextParams::default()
        .with_n_ctx(Some(n_ctx))
        .with_n_batch(shape.batch_tokens)
        .with_n_ubatch(shape.batch_tokens.min(512))
        .with_n_seq_max(shape.max_sequences)
        .with_kv_unified(true)
        // A full-size sliding-window cache: cells older than the window stay
        // (masked, not dropped), so an agent's cache can be reused from any
        // position, as with full attention. The small default cache would
        // drop them as the sequence moves on, and a return that diverges
        // behind the window would have to recompute everything.
        .with_swa_full(true)
        .with_n_threads(shape.threads as i32)
        .with_n_threads_batch(shape.threads as i32)
        .with_type_k(kv_cache_type(shape.kv_type))
        .with_type_v(kv_cache_type(shape.kv_type))
        .with_flash_attention_policy(flash);
    model
        .llama()
        .new_context(crate::model::backend(), params)
        .map_err(|e| EngineError::ContextCreate(e.to_string()))
}

/// The free part of one request's sampler chain: greedy, or
/// top-k/top-p/temperature and a seeded draw.
pub fn sampler_for(params: &SamplingParams) -> LlamaSampler {
    if params.is_greedy() {
        return LlamaSampler::greedy();
    }
    let mut chain = Vec::new();
    if params.top_k > 0 {
        chain.push(LlamaSampler::top_k(params.top_k as i32));
    }
    if params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature));
    let seed = params.seed.unwrap_or_else(rand::random);
    // Fold the 64-bit seed into llama.cpp's 32-bit one without dropping bits.
    chain.push(LlamaSampler::dist((seed ^ (seed >> 32)) as u32));
    LlamaSampler::chain_simple(chain)
}

/// One slot's sampling state. A grammar that failed to compile is kept as
/// its error, so the sequence fails at its first sample instead of running
/// unconstrained (submit checks grammars, so this is a safety net).
enum SlotSampler {
    Free(LlamaSampler),
    Constrained {
        grammar: LlamaSampler,
        chain: LlamaSampler,
    },
    Broken(String),
}

impl SlotSampler {
    fn new(model: &LoadedModel, params: &SamplingParams) -> Self {
        let chain = sampler_for(params);
        match &params.grammar {
            None => Self::Free(chain),
            Some(g) => match crate::grammar::sampler(model, g) {
                Ok(grammar) => Self::Constrained { grammar, chain },
                Err(e) => Self::Broken(e),
            },
        }
    }

    fn sample(&mut self, ctx: &LlamaContext<'_>, index: i32) -> Result<TokenId, BackendError> {
        match self {
            Self::Free(s) => Ok(s.sample(ctx, index).0),
            Self::Constrained { grammar, chain } => sample_constrained(grammar, chain, ctx, index),
            Self::Broken(e) => Err(BackendError::Sample(e.clone())),
        }
    }
}

/// Sample under a grammar the way llama.cpp's common sampler does: draw
/// from the free chain, and only if the grammar rejects that token mask the
/// whole vocabulary and draw again. Checking one token is far cheaper than
/// masking ~50K, and the result is the same: greedy picks the best allowed
/// token either way, and a rejected draw redrawn from the masked
/// distribution leaves every allowed token with probability p/Z.
///
/// The grammar's accept goes through the exception-catching wrapper: if no
/// allowed token is left, llama.cpp throws, and a C++ exception crossing
/// into Rust would abort the server.
fn sample_constrained(
    grammar: &mut LlamaSampler,
    chain: &mut LlamaSampler,
    ctx: &LlamaContext<'_>,
    index: i32,
) -> Result<TokenId, BackendError> {
    let no_token = || BackendError::Sample("the grammar allows no token".into());
    let mut candidates = ctx.token_data_array_ith(index);
    candidates.apply_sampler(chain);
    let first = candidates.selected_token().ok_or_else(no_token)?;
    let mut probe = LlamaTokenDataArray::new(vec![LlamaTokenData::new(first, 0.0, 0.0)], false);
    probe.apply_sampler(grammar);
    let token = if probe.data[0].logit().is_finite() {
        first
    } else {
        let mut candidates = ctx.token_data_array_ith(index);
        candidates.apply_sampler(grammar);
        candidates.apply_sampler(chain);
        candidates.selected_token().ok_or_else(no_token)?
    };
    grammar
        .try_accept(token)
        .map_err(|e| BackendError::Sample(format!("the grammar cannot continue: {e}")))?;
    chain.accept(token);
    Ok(token.0)
}

pub struct LlamaCompute<'m> {
    model: &'m LoadedModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    samplers: HashMap<SlotId, SlotSampler>,
    /// What a reuse of this model's per-sequence memory must respect.
    memory: MemoryKind,
    /// [`kv_order_fallbacks`] as of this context's last decode.
    order_fallbacks_seen: u64,
}

/// How many times, in this process, patch 0001 could not place a ubatch's
/// KV cells after their sequences' last cells (a nearly full or fragmented
/// cache) and fell back to llama.cpp's stock search: the sequence concerned
/// may have left position order, which batch invariance relies on.
pub fn kv_order_fallbacks() -> u64 {
    // SAFETY: added by our patch 0001 to llama.h; it takes no arguments and
    // only loads an atomic counter.
    unsafe { llama_cpp_sys_2::llama_semantic_kv_order_fallbacks() }
}

/// How a model's per-sequence memory may be reused at a shorter position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Full attention: every cell stays; any prefix can be continued.
    Attention,
    /// Sliding-window layers of this window: cells older than it may have
    /// been dropped.
    SlidingWindow(u32),
    /// Recurrent or hybrid (Mamba, Qwen3-Next, Granite 4, Jamba): one state
    /// summarises the whole sequence and cannot be rewound, so it can only
    /// be continued exactly where it ends.
    Recurrent,
}

impl MemoryKind {
    fn of(model: &LoadedModel) -> Self {
        let llama = model.llama();
        if llama.is_recurrent() || llama.is_hybrid() {
            Self::Recurrent
        } else {
            model
                .info()
                .sliding_window
                .map_or(Self::Attention, Self::SlidingWindow)
        }
    }

    /// Whether a sequence whose cells span positions `pos_min..=pos_max`
    /// (negative: none) can go on at position `keep` (see
    /// [`ComputeBackend::can_continue_at`]). Starting over (`keep` 0) is
    /// always possible.
    pub fn can_continue_at(self, pos_min: i64, pos_max: i64, keep: u32) -> bool {
        let keep = i64::from(keep);
        if keep == 0 {
            return true;
        }
        match self {
            Self::Attention => true,
            // llama.cpp drops a sequence's cells from its start only, so what
            // is left is [pos_min, pos_max]: the token at `keep` needs the
            // positions of its window below it.
            Self::SlidingWindow(window) => {
                pos_min >= 0 && pos_min <= (keep - i64::from(window)).max(0)
            }
            // The state is that of position pos_max: only the next one fits.
            Self::Recurrent => pos_min >= 0 && keep == pos_max + 1,
        }
    }
}

impl<'m> LlamaCompute<'m> {
    pub fn new(model: &'m LoadedModel, shape: ContextShape) -> Result<Self, EngineError> {
        let ctx = new_context(model, shape)?;
        Ok(Self {
            model,
            ctx,
            batch: LlamaBatch::new(shape.batch_tokens as usize, 1),
            samplers: HashMap::new(),
            memory: MemoryKind::of(model),
            order_fallbacks_seen: kv_order_fallbacks(),
        })
    }

    /// Count the fallbacks the last decode caused (see [`kv_order_fallbacks`]).
    fn note_order_fallbacks(&mut self) {
        let now = kv_order_fallbacks();
        if now > self.order_fallbacks_seen {
            telemetry::kv_order_fallbacks(now - self.order_fallbacks_seen);
            tracing::warn!(
                fallbacks = now,
                "KV cells placed out of position order: the cache is nearly full or fragmented, \
                 and the sequences concerned may lose batch invariance"
            );
            self.order_fallbacks_seen = now;
        }
    }

    pub fn context(&mut self) -> &mut LlamaContext<'m> {
        &mut self.ctx
    }
}

impl ComputeBackend for LlamaCompute<'_> {
    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), BackendError> {
        self.batch.clear();
        for t in batch {
            self.batch
                .add(LlamaToken(t.token), t.pos as i32, &[t.slot], t.logits)
                .map_err(|e| BackendError::Decode(e.to_string()))?;
        }
        let decoded = self
            .ctx
            .decode(&mut self.batch)
            .map_err(|e| BackendError::Decode(e.to_string()));
        self.note_order_fallbacks();
        decoded
    }

    fn start_sequence(&mut self, slot: SlotId, sampling: &SamplingParams) {
        self.samplers
            .insert(slot, SlotSampler::new(self.model, sampling));
    }

    fn sample(&mut self, slot: SlotId, index: usize) -> Result<TokenId, BackendError> {
        let sampler = self
            .samplers
            .entry(slot)
            .or_insert_with(|| SlotSampler::Free(LlamaSampler::greedy()));
        sampler.sample(&self.ctx, index as i32)
    }

    fn end_sequence(&mut self, slot: SlotId) {
        self.samplers.remove(&slot);
        // Removing a whole sequence (p0 = p1 = -1) cannot fail.
        let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
    }

    fn clear_cells(&mut self, slot: SlotId) {
        let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
    }

    fn truncate(&mut self, slot: SlotId, keep: u32) {
        // Removing a tail [keep, end) of a sequence is always supported by
        // the unified KV cache; a `false` would only come from recurrent models.
        let _ = self
            .ctx
            .clear_kv_cache_seq(Some(slot as u32), Some(keep), None);
    }

    fn share_prefix(&mut self, src: SlotId, dst: SlotId, tokens: u32) {
        let _ = self.ctx.copy_kv_cache_seq(src, dst, Some(0), Some(tokens));
    }

    fn snapshot(&mut self, slot: SlotId) -> Result<Vec<u8>, BackendError> {
        let flags = LlamaStateSeqFlags::empty();
        let size = self.ctx.state_seq_get_size_ext(slot, flags);
        let mut bytes = vec![0u8; size];
        // SAFETY: `bytes` has exactly the size llama.cpp reported for this
        // sequence's state, and nothing mutates the context in between
        // (we are on the only thread that touches it).
        let written = unsafe {
            self.ctx
                .state_seq_get_data_ext(bytes.as_mut_ptr(), slot, flags)
        };
        if written != size {
            return Err(BackendError::State(format!(
                "state of slot {slot}: {written} bytes written, {size} expected"
            )));
        }
        Ok(bytes)
    }

    fn restore(&mut self, slot: SlotId, state: &[u8]) -> Result<(), BackendError> {
        // SAFETY: llama.cpp parses the buffer defensively (it checks the cell
        // count, layer count, types and row sizes against this context and
        // fails with 0 instead of reading out of bounds). Callers only pass
        // states this engine produced: from RAM, or from files whose checksum,
        // model fingerprint, KV type and engine build were verified first.
        let ok = unsafe {
            self.ctx
                .state_seq_set_data_ext(state, slot, LlamaStateSeqFlags::empty())
        };
        if ok {
            Ok(())
        } else {
            let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
            Err(BackendError::State(format!(
                "llama.cpp rejected a {}-byte state",
                state.len()
            )))
        }
    }

    fn can_continue_at(&self, slot: SlotId, keep: u32) -> bool {
        if self.memory == MemoryKind::Attention {
            return true;
        }
        let pos_min = i64::from(self.ctx.kv_cache_seq_pos_min(slot));
        let pos_max = i64::from(self.ctx.kv_cache_seq_pos_max(slot));
        self.memory.can_continue_at(pos_min, pos_max, keep)
    }

    fn kv_tokens(&self, slot: SlotId) -> u32 {
        let max = self.ctx.kv_cache_seq_pos_max(slot);
        let min = self.ctx.kv_cache_seq_pos_min(slot);
        if max < 0 || min < 0 {
            0
        } else {
            (max - min + 1) as u32
        }
    }

    fn is_end_of_generation(&self, token: TokenId) -> bool {
        self.model.is_end_of_generation(token)
    }

    fn token_bytes(&self, token: TokenId) -> Vec<u8> {
        self.model.token_bytes(token)
    }
}

/// Free every sampler (llama.cpp objects) before the context goes away.
impl Drop for LlamaCompute<'_> {
    fn drop(&mut self) {
        self.samplers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryKind;

    #[test]
    fn full_attention_continues_anywhere() {
        assert!(MemoryKind::Attention.can_continue_at(0, 999, 10));
        assert!(MemoryKind::Attention.can_continue_at(-1, -1, 0));
    }

    #[test]
    fn a_sliding_window_needs_the_window_below_the_continuation() {
        let swa = MemoryKind::SlidingWindow(512);
        // All cells kept (a full-size cache): any position.
        assert!(swa.can_continue_at(0, 1999, 1500));
        // Cells below 300 dropped: 812 needs 300.., 811 would need 299.
        assert!(swa.can_continue_at(300, 1999, 812));
        assert!(!swa.can_continue_at(300, 1999, 811));
        // Inside the first window nothing may be missing.
        assert!(!swa.can_continue_at(1, 1999, 400));
        assert!(!swa.can_continue_at(-1, -1, 5), "no cells at all");
    }

    #[test]
    fn a_recurrent_state_continues_only_where_it_ends() {
        let rec = MemoryKind::Recurrent;
        assert!(
            rec.can_continue_at(0, 99, 100),
            "extends the whole sequence"
        );
        assert!(
            !rec.can_continue_at(0, 99, 99),
            "a shorter prefix cannot be rewound"
        );
        assert!(!rec.can_continue_at(0, 99, 50));
        assert!(
            rec.can_continue_at(0, 99, 0),
            "starting over is always possible"
        );
        assert!(!rec.can_continue_at(-1, -1, 1));
    }
}
