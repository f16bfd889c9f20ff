//! Sampling parameters and their validation.
//!
//! Validation lives here, not in the HTTP layer, so the CLI, the server and
//! the benchmarks all reject the same bad values with the same message.

use crate::grammar::Grammar;

/// Most stop strings one request may carry.
pub const MAX_STOP_STRINGS: usize = 16;
/// Longest stop string accepted, in bytes.
pub const MAX_STOP_LEN: usize = 256;

/// How the next token is chosen, and when generation ends.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy (argmax); otherwise the softmax temperature.
    pub temperature: f32,
    /// Nucleus sampling mass; 1.0 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: u32,
    /// Fixed seed: the same seed, prompt and parameters give the same output.
    /// `None` draws a fresh seed per request.
    pub seed: Option<u64>,
    /// Most tokens to generate, as asked. `None`: the request named no
    /// limit; the engine's submit replaces it by the effective limit
    /// ([`crate::MaxTokensPolicy::resolve`]) before it is scheduled.
    pub max_tokens: Option<u32>,
    /// Generation stops before the first occurrence of any of these strings;
    /// the stop string itself is not returned.
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (benchmarks only).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Only tokens that keep the output inside this grammar may be sampled;
    /// once it is complete only end-of-generation remains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<Grammar>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            max_tokens: None,
            stop: Vec::new(),
            ignore_eos: false,
            grammar: None,
        }
    }
}

impl SamplingParams {
    /// The defaults under what a request asked: its temperature, else the
    /// operator's default temperature, else 1; its top_p, else 1. Every
    /// API family starts from this, so they default alike.
    pub fn requested(
        temperature: Option<f32>,
        top_p: Option<f32>,
        default_temperature: Option<f32>,
    ) -> Self {
        let defaults = Self::default();
        Self {
            temperature: temperature
                .or(default_temperature)
                .unwrap_or(defaults.temperature),
            top_p: top_p.unwrap_or(defaults.top_p),
            ..defaults
        }
    }
}

/// A sampling parameter out of range; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidSampling {
    #[error("temperature must be between 0 and 2, got {0}")]
    Temperature(f32),
    #[error("top_p must be greater than 0 and at most 1, got {0}")]
    TopP(f32),
    #[error("max_tokens must be at least 1, got 0")]
    ZeroMaxTokens,
    #[error("at most {MAX_STOP_STRINGS} stop strings are allowed, got {0}")]
    TooManyStops(usize),
    #[error("stop strings must not be empty")]
    EmptyStop,
    #[error("a stop string may be at most {MAX_STOP_LEN} bytes, got {0}")]
    StopTooLong(usize),
}

impl SamplingParams {
    /// Greedy decoding with a token limit: the deterministic setting tests use.
    pub fn greedy(max_tokens: u32) -> Self {
        Self {
            temperature: 0.0,
            max_tokens: Some(max_tokens),
            ..Self::default()
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// Check every field; the first violation is returned.
    pub fn validate(&self) -> Result<(), InvalidSampling> {
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(InvalidSampling::Temperature(self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(InvalidSampling::TopP(self.top_p));
        }
        if self.max_tokens == Some(0) {
            return Err(InvalidSampling::ZeroMaxTokens);
        }
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(InvalidSampling::TooManyStops(self.stop.len()));
        }
        for stop in &self.stop {
            if stop.is_empty() {
                return Err(InvalidSampling::EmptyStop);
            }
            if stop.len() > MAX_STOP_LEN {
                return Err(InvalidSampling::StopTooLong(stop.len()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_greedy_are_valid() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        assert_eq!(SamplingParams::greedy(8).validate(), Ok(()));
        assert!(SamplingParams::greedy(8).is_greedy());
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let bad = |f: fn(&mut SamplingParams)| {
            let mut p = SamplingParams::default();
            f(&mut p);
            p.validate().unwrap_err().to_string()
        };
        assert!(bad(|p| p.temperature = -1.0).contains("temperature"));
        assert!(bad(|p| p.temperature = f32::NAN).contains("temperature"));
        assert!(bad(|p| p.top_p = 0.0).contains("top_p"));
        assert!(bad(|p| p.max_tokens = Some(0)).contains("max_tokens"));
        assert!(bad(|p| p.stop = vec![String::new()]).contains("stop"));
        assert!(bad(|p| p.stop = vec!["x".into(); 17]).contains("stop"));
    }
}
