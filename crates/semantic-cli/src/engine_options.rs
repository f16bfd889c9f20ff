//! Engine settings shared by every command that loads a model.

use std::num::NonZeroU32;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use semantic_domain::max_tokens::DEFAULT_MAX_TOKENS;
use semantic_domain::{KvType, MaxTokensPolicy};
use semantic_engine::config::WeightRepack;
use semantic_engine::offload::GpuLayers;
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
    /// Disk for agents' cache files (KV plus tokens); past it the least
    /// recently used agents held only on disk are deleted.
    #[arg(long, default_value = "20GiB", env = "SEMANTIC_DISK_BUDGET")]
    pub disk_budget: ByteSize,
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
    /// Let a request reuse a common prefix (e.g. a system prompt) of any
    /// tenant's cached sequence, not only its own tenant's. Only for one
    /// trusted deployment: how much of a prompt is reused (`cached_tokens`,
    /// the first-token time) tells one tenant how much of its guess equals
    /// another tenant's context.
    #[arg(long, env = "SEMANTIC_SHARE_PREFIXES_ACROSS_TENANTS")]
    pub share_prefixes_across_tenants: bool,
    /// Let llama.cpp repack quantized weights (Q4_0, Q4_K, IQ4_NL, Q8_0) for
    /// faster CPU prompt processing. Off by default because it breaks batch
    /// invariance: a reply may then differ by batch and from a cold run.
    #[arg(long, env = "SEMANTIC_WEIGHT_REPACK")]
    pub weight_repack: bool,
    /// Model layers to offload to a GPU: a number, `all`, or `auto` (all
    /// when this build has a GPU backend and finds a device, else 0). Batch
    /// invariance is a CPU-backend guarantee; offloaded layers run
    /// llama.cpp's own GPU kernels.
    #[arg(long, default_value = "auto", env = "SEMANTIC_N_GPU_LAYERS")]
    pub n_gpu_layers: GpuLayers,
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
        config.disk_budget_bytes = self.disk_budget.0;
        config.share_prefixes_across_tenants = self.share_prefixes_across_tenants;
        config.gpu_layers = self.n_gpu_layers;
        config.weight_repack = if self.weight_repack {
            WeightRepack::On
        } else {
            WeightRepack::Off
        };
        config.validate()?;
        Ok(config)
    }
}

/// `serve`'s bounds on the work of one request (`generate` and the benches
/// always name their own `max_tokens`).
#[derive(Args, Debug, Clone)]
pub struct MaxTokensOptions {
    /// Most tokens a request that sets no max_tokens generates (default:
    /// 4096, or --max-tokens-cap if lower), never more than the context
    /// window has left after its prompt.
    #[arg(long, env = "SEMANTIC_DEFAULT_MAX_TOKENS")]
    pub default_max_tokens: Option<NonZeroU32>,
    /// Most tokens any request may generate (default: the context window).
    /// A request asking for more is clamped to it and finishes with reason
    /// `length` (`max_tokens`), or is refused with --strict-max-tokens.
    #[arg(long, env = "SEMANTIC_MAX_TOKENS_CAP")]
    pub max_tokens_cap: Option<NonZeroU32>,
    /// Refuse (400 naming the limit) a request whose max_tokens exceeds
    /// --max-tokens-cap or what the context window has left, instead of
    /// clamping it.
    #[arg(long, env = "SEMANTIC_STRICT_MAX_TOKENS")]
    pub strict_max_tokens: bool,
}

impl MaxTokensOptions {
    pub fn policy(&self) -> anyhow::Result<MaxTokensPolicy> {
        let cap = self.max_tokens_cap.map(NonZeroU32::get);
        let default = match (self.default_max_tokens.map(NonZeroU32::get), cap) {
            (Some(default), Some(cap)) if default > cap => {
                bail!("--default-max-tokens {default} is more than --max-tokens-cap {cap}")
            }
            (Some(default), _) => default,
            (None, cap) => DEFAULT_MAX_TOKENS.min(cap.unwrap_or(u32::MAX)),
        };
        Ok(MaxTokensPolicy {
            default,
            cap,
            strict: self.strict_max_tokens,
        })
    }
}

/// `serve`'s defaults for what a request leaves out, for models that need
/// them (a base model that never ends its turn, a template whose end
/// marker is plain text in the model's vocabulary).
#[derive(Args, Debug, Clone, Default)]
pub struct ReplyDefaultsOptions {
    /// A string that ends every reply, added to each request's own stop
    /// strings; the reply finishes as at an end-of-turn token (finish
    /// reason `stop`, Anthropic `end_turn`). Repeatable, e.g.
    /// `--stop '<|im_end|>'`.
    #[arg(long = "stop", env = "SEMANTIC_STOP")]
    pub stop: Vec<String>,
    /// The temperature of a request that sets none (default: the API's own
    /// default, 1); 0 is greedy.
    #[arg(long, env = "SEMANTIC_DEFAULT_TEMPERATURE")]
    pub default_temperature: Option<f32>,
}

impl ReplyDefaultsOptions {
    /// Put the settings into `config` and check them there.
    pub fn apply(&self, config: &mut EngineConfig) -> anyhow::Result<()> {
        config.turn_end = self.stop.clone();
        config.default_temperature = self.default_temperature;
        config.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(default: Option<u32>, cap: Option<u32>) -> MaxTokensOptions {
        MaxTokensOptions {
            default_max_tokens: default.and_then(NonZeroU32::new),
            max_tokens_cap: cap.and_then(NonZeroU32::new),
            strict_max_tokens: false,
        }
    }

    #[test]
    fn reply_defaults_are_checked_and_applied() {
        let mut config = EngineConfig::new("m.gguf");
        let good = ReplyDefaultsOptions {
            stop: vec!["<|im_end|>".into()],
            default_temperature: Some(0.0),
        };
        good.apply(&mut config).unwrap();
        assert_eq!(config.turn_end, ["<|im_end|>"]);
        assert_eq!(config.default_temperature, Some(0.0));
        let empty = ReplyDefaultsOptions {
            stop: vec![String::new()],
            ..good.clone()
        };
        assert!(empty
            .apply(&mut config)
            .unwrap_err()
            .to_string()
            .contains("--stop"));
        let hot = ReplyDefaultsOptions {
            default_temperature: Some(3.0),
            ..good
        };
        let err = hot.apply(&mut config).unwrap_err().to_string();
        assert!(err.contains("--default-temperature"), "{err}");
    }

    #[test]
    fn the_default_follows_a_lower_cap_and_may_not_exceed_a_set_one() {
        assert_eq!(options(None, None).policy().unwrap().default, 4096);
        assert_eq!(options(None, Some(100)).policy().unwrap().default, 100);
        assert_eq!(options(Some(8), Some(100)).policy().unwrap().default, 8);
        let err = options(Some(200), Some(100)).policy().unwrap_err();
        assert!(err.to_string().contains("--max-tokens-cap"), "{err}");
    }
}
