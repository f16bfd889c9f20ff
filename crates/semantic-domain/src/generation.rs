//! What a caller asks the engine for, and what streams back.

use crate::{AgentId, AgentKey, SamplingParams, TenantId, TokenId};

/// One generation: a tokenized prompt, how to sample, the tenant it runs
/// for and (optionally) the agent of that tenant whose KV cache it extends.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    pub prompt: Vec<TokenId>,
    pub sampling: SamplingParams,
    /// Whose caches the request may see: its own agent's, and shared
    /// prefixes of this tenant only.
    pub tenant: TenantId,
    pub agent: Option<AgentId>,
}

impl GenerateRequest {
    /// A request of the open tenant (a server without keys, tests).
    pub fn new(prompt: Vec<TokenId>, sampling: SamplingParams, agent: Option<AgentId>) -> Self {
        Self {
            prompt,
            sampling,
            tenant: TenantId::open(),
            agent,
        }
    }

    /// The full key of the request's agent, if it names one.
    pub fn agent_key(&self) -> Option<AgentKey> {
        let agent = self.agent.clone()?;
        Some(AgentKey::new(self.tenant.clone(), agent))
    }
}

/// Why a generation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// The model produced an end-of-generation token (EOS or end-of-turn).
    EndOfTurn,
    /// A stop string matched; it is not part of the output.
    StopString(String),
    /// `max_tokens` reached.
    MaxTokens,
    /// The sequence filled the context window.
    ContextFull,
    /// The caller went away or asked to stop.
    Cancelled,
}

impl FinishReason {
    /// The OpenAI `finish_reason` this maps to.
    pub fn openai(&self) -> &'static str {
        match self {
            Self::EndOfTurn | Self::StopString(_) | Self::Cancelled => "stop",
            Self::MaxTokens | Self::ContextFull => "length",
        }
    }
}

/// Where the reused part of a prompt's KV came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CacheSource {
    /// Nothing reused: the whole prompt was prefilled.
    #[default]
    Cold,
    /// The agent's own cells, still resident in the engine.
    Hot,
    /// The agent's state, restored from RAM.
    Warm,
    /// The agent's state, restored from its file.
    Disk,
    /// Another sequence's cells with the same prefix (e.g. a system prompt).
    Shared,
}

impl CacheSource {
    /// Every source, e.g. to give each its metric series from start-up.
    pub const ALL: [Self; 5] = [Self::Cold, Self::Hot, Self::Warm, Self::Disk, Self::Shared];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Disk => "disk",
            Self::Shared => "shared",
        }
    }
}

/// Token counts of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens whose KV was reused instead of prefilled.
    pub cached_tokens: u32,
    pub cache_source: CacheSource,
}

/// Where the time of one generation went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    /// Submitted until first scheduled (admitted with its KV in place).
    pub queue: f64,
    /// The last part of `queue`: finding and restoring the reused KV at
    /// admission (hot cells taken over, a warm or disk state restored, a
    /// shared prefix copied). Reading an agent's file happens earlier, while
    /// the request waits, on the loader thread.
    pub restore: f64,
    /// Submitted until the first token was sampled.
    pub first_token: f64,
    /// Submitted until finished.
    pub total: f64,
}

/// One event on a generation's stream.
#[derive(Clone, Debug, PartialEq)]
pub enum GenerationEvent {
    /// A token was sampled. `text` is what it adds to the visible output; it
    /// may be empty while a multi-byte character or a possible stop string is
    /// still incomplete.
    Token { id: TokenId, text: String },
    /// Text held back (an incomplete character or a possible stop string)
    /// and released when the generation ends; it follows the last token.
    Text { text: String },
    /// The generation ended; no event follows.
    Finished {
        reason: FinishReason,
        usage: Usage,
        timings: Timings,
    },
    /// The generation failed; no event follows.
    Failed { message: String },
}
