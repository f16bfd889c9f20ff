//! Engine settings shared by every command that loads a model.

use std::path::PathBuf;

use clap::Args;
use semantic_domain::KvType;
use semantic_engine::EngineConfig;

use crate::byte_size::ByteSize;

#[derive(Args, Debug, Clone)]
pub struct EngineOptions {
    /// GGUF model file (default: SmolLM2-135M-Instruct Q4_1 fetched by scripts/fetch-model.sh).
    #[arg(long, env = "SEMANTIC_MODEL")]
    pub model: Option<PathBuf>,
    /// KV cells shared by all live sequences (ignored when --kv-budget is set).
    #[arg(long, default_value_t = 16_384, env = "SEMANTIC_CONTEXT_TOKENS")]
    pub context_tokens: u32,
    /// Size the KV pool from a byte budget (e.g. 2GiB) and the model's geometry.
    #[arg(long, env = "SEMANTIC_KV_BUDGET")]
    pub kv_budget: Option<ByteSize>,
    /// RAM for agents' caches evicted from the engine (the warm tier).
    #[arg(long, default_value = "1GiB", env = "SEMANTIC_WARM_BUDGET")]
    pub warm_budget: ByteSize,
    /// Most sequences decoding at once.
    #[arg(long, default_value_t = 32, env = "SEMANTIC_MAX_SEQUENCES")]
    pub max_sequences: u32,
    /// Most tokens per engine step (decode tokens plus prefill chunks).
    #[arg(long, default_value_t = 512, env = "SEMANTIC_STEP_TOKEN_BUDGET")]
    pub step_token_budget: u32,
    /// Requests allowed to wait for admission before new ones are refused.
    #[arg(long, default_value_t = 64, env = "SEMANTIC_QUEUE_CAPACITY")]
    pub queue_capacity: usize,
    /// KV cache element type: f16, q8_0 (half the memory, bit-exact reuse in
    /// any batch) or q4_0.
    #[arg(long, default_value = "f16", env = "SEMANTIC_KV_TYPE")]
    pub kv_type: KvType,
    /// CPU threads for llama.cpp (default: all cores).
    #[arg(long, env = "SEMANTIC_THREADS")]
    pub threads: Option<u32>,
}

impl EngineOptions {
    pub fn to_config(&self) -> anyhow::Result<EngineConfig> {
        let model = crate::model_path::resolve(self.model.as_deref())?;
        let mut config = EngineConfig::new(model);
        config.context_tokens = self.context_tokens;
        config.max_sequences = self.max_sequences;
        config.step_token_budget = self.step_token_budget;
        config.queue_capacity = self.queue_capacity;
        config.kv_type = self.kv_type;
        config.threads = self.threads;
        config.kv_budget_bytes = self.kv_budget.map(|b| b.0);
        config.warm_budget_bytes = self.warm_budget.0;
        config.validate()?;
        Ok(config)
    }
}
