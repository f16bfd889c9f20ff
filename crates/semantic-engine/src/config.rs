//! Engine configuration.

use std::path::PathBuf;

use crate::offload::GpuLayers;
use semantic_domain::{KvGeometry, KvType, MaxTokensPolicy, SamplingParams};

/// How the engine loads its model and schedules work.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The GGUF file to load.
    pub model_path: PathBuf,
    /// KV cells in the llama.cpp context, shared by all live sequences
    /// (unified KV). Rounded up to whole blocks.
    pub context_tokens: u32,
    /// Most sequences alive in the context at once.
    pub max_sequences: u32,
    /// Most tokens in one engine step (one llama batch): a decode token per
    /// running sequence plus prefill chunks of waiting ones.
    pub step_token_budget: u32,
    /// Tokens per KV accounting block.
    pub block_tokens: u32,
    /// Requests waiting for admission before submissions are refused.
    pub queue_capacity: usize,
    /// CPU threads for llama.cpp; `None` uses every core.
    pub threads: Option<u32>,
    pub kv_type: KvType,
    /// Size the context from a byte budget instead of `context_tokens`:
    /// the budget divided by the model's KV bytes per token for `kv_type`.
    pub kv_budget_bytes: Option<u64>,
    /// RAM for agents' states evicted from the context (the warm tier).
    pub warm_budget_bytes: u64,
    /// Bytes of agents' files on disk (KV blob plus tokens); past it the
    /// least recently used agents held only on disk are deleted.
    pub disk_budget_bytes: u64,
    /// Each request's effective `max_tokens`: the default when it names
    /// none, the cap, and whether asking beyond a limit is refused or
    /// clamped (applied at submit, see [`MaxTokensPolicy::resolve`]).
    pub max_tokens: MaxTokensPolicy,
    /// `--stop`: strings that end every reply's turn, added to each
    /// request's own stop strings (for models whose turn-end marker is not
    /// an end-of-generation token, or base models that never stop). A reply
    /// ending at one finishes as [`semantic_domain::FinishReason::EndOfTurn`].
    pub turn_end: Vec<String>,
    /// `--default-temperature`: the temperature of a request that sets
    /// none (the API families' own default, 1, otherwise).
    pub default_temperature: Option<f32>,
    /// Let a request share a prefix with any tenant's parked sequence, not
    /// only its own tenant's (see [`crate::PrefixSharing`]).
    pub share_prefixes_across_tenants: bool,
    /// Whether llama.cpp may repack quantized weights for its CPU GEMMs.
    pub weight_repack: WeightRepack,
    /// `--n-gpu-layers`: layers to offload to a GPU backend, if built in.
    pub gpu_layers: GpuLayers,
    /// Test hook, never set by the binary: admission finds no room, as a
    /// livelocked scheduler would, so the stuck-engine probe can be proven.
    pub stall_admission_for_tests: bool,
}

/// The disk tier's default budget: 20 GiB, about 900 agents of 2K tokens of
/// f16 KV on a 135M model, or 80 on an 8B one: enough that a developer's
/// agents stay on disk for days, small enough that a server left running
/// with new conversations every few seconds never fills its disk.
pub const DEFAULT_DISK_BUDGET_BYTES: u64 = 20 << 30;

/// Whether llama.cpp may repack quantized weights (Q4_0, Q4_K, IQ4_NL, Q8_0,
/// ...) into the interleaved layouts of its CPU "extra" buffer types.
///
/// Those layouts are multiplied by a GEMM kernel for several rows and a GEMV
/// for one, which round differently: a token's logits then depend on how
/// many rows its batch holds, so a request run among others, or a prompt
/// prefilled in chunks, or an agent's cached prefix, no longer gives the
/// greedy tokens of a cold solo run (Gemma 3 Q4_K_M diverged at the 11th).
/// Exactness is the product's promise, so repacking is off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightRepack {
    /// Weights keep the file's layout: every batch shape runs the same
    /// per-row dot products (batch-invariant).
    #[default]
    Off,
    /// Faster prompt processing on repackable weights, at the cost of
    /// batch invariance; recorded in the engine build of saved states.
    On,
}

impl WeightRepack {
    /// What this setting adds to the engine build recorded with persisted
    /// KV states: other arithmetic, so states of the other setting are a
    /// clean miss. Empty when off, so the default changes nothing.
    pub fn build_suffix(self) -> &'static str {
        match self {
            WeightRepack::Off => "",
            WeightRepack::On => "+repack",
        }
    }
}

impl EngineConfig {
    /// The engine build recorded with saved KV states: llama.cpp's build and
    /// patch set, plus whatever else changes the arithmetic (weight
    /// repacking, GPU offload), so a state computed otherwise is a clean
    /// miss. Detects the GPU backend, so it fails as loading would on an
    /// impossible `--n-gpu-layers`.
    pub fn engine_build(&self) -> Result<String, crate::EngineError> {
        let offload = crate::offload::Offload::detect(self.gpu_layers)?;
        Ok(crate::system_info::llama_build_info().fingerprint()
            + self.weight_repack.build_suffix()
            + &offload.build_suffix())
    }

    /// What loading the model asks of llama.cpp beyond the file.
    pub fn placement(&self) -> crate::model::Placement {
        crate::model::Placement {
            weight_repack: self.weight_repack,
            gpu_layers: self.gpu_layers,
        }
    }

    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            context_tokens: 16_384,
            max_sequences: 32,
            step_token_budget: 512,
            block_tokens: 256,
            queue_capacity: 64,
            threads: None,
            kv_type: KvType::F16,
            kv_budget_bytes: None,
            warm_budget_bytes: 1 << 30,
            disk_budget_bytes: DEFAULT_DISK_BUDGET_BYTES,
            max_tokens: MaxTokensPolicy::default(),
            turn_end: Vec::new(),
            default_temperature: None,
            share_prefixes_across_tenants: false,
            weight_repack: WeightRepack::Off,
            gpu_layers: GpuLayers::Auto,
            stall_admission_for_tests: false,
        }
    }

    /// Check values that would otherwise fail deep inside llama.cpp.
    pub fn validate(&self) -> Result<(), crate::EngineError> {
        let bad = |setting: &'static str, reason: String| {
            Err(crate::EngineError::InvalidConfig { setting, reason })
        };
        if self.step_token_budget == 0 {
            return bad("step_token_budget", "must be at least 1".into());
        }
        if self.block_tokens == 0 {
            return bad("block_tokens", "must be at least 1".into());
        }
        if self.context_tokens < self.block_tokens {
            return bad(
                "context_tokens",
                format!("must be at least one block ({} tokens)", self.block_tokens),
            );
        }
        if !(1..=256).contains(&self.max_sequences) {
            return bad("max_sequences", "must be between 1 and 256".into());
        }
        if self.threads == Some(0) {
            return bad("threads", "must be at least 1".into());
        }
        if let Err(reason) = self.max_tokens.validate() {
            return bad("max_tokens", reason.into());
        }
        // The request rules, so an operator's default passes exactly where
        // a client's value would.
        let turn_end = SamplingParams {
            stop: self.turn_end.clone(),
            ..SamplingParams::default()
        };
        if let Err(reason) = turn_end.validate() {
            return bad("turn_end (--stop)", reason.to_string());
        }
        if let Some(temperature) = self.default_temperature {
            let default = SamplingParams {
                temperature,
                ..SamplingParams::default()
            };
            if let Err(reason) = default.validate() {
                return bad(
                    "default_temperature (--default-temperature)",
                    reason.to_string(),
                );
            }
        }
        Ok(())
    }

    /// Replace `context_tokens` by what `kv_budget_bytes` holds for this
    /// model (whole blocks, at least one).
    pub fn apply_kv_budget(&mut self, geometry: &KvGeometry) -> Result<(), crate::EngineError> {
        let Some(budget) = self.kv_budget_bytes else {
            return Ok(());
        };
        let per_token = geometry.bytes_per_token(self.kv_type).max(1);
        let blocks = budget / (per_token * u64::from(self.block_tokens));
        if blocks == 0 {
            return Err(crate::EngineError::InvalidConfig {
                setting: "kv_budget",
                reason: format!(
                    "{budget} bytes hold less than one block of {} tokens ({} bytes per token with {})",
                    self.block_tokens, per_token, self.kv_type
                ),
            });
        }
        self.context_tokens =
            u32::try_from(blocks * u64::from(self.block_tokens)).unwrap_or(u32::MAX);
        Ok(())
    }

    /// Whole blocks covering `context_tokens`.
    pub fn total_blocks(&self) -> u32 {
        self.context_tokens.div_ceil(self.block_tokens)
    }

    pub fn threads(&self) -> u32 {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1)
        })
    }
}
