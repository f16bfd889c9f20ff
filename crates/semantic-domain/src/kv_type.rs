//! KV cache element types and their sizes.

use std::fmt;
use std::str::FromStr;

/// How K and V cells are stored. Quantized types trade a little accuracy for
/// fitting 1.9x (q8_0) or 3.6x (q4_0) as many tokens in the same memory.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KvType {
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

impl KvType {
    pub const ALL: [KvType; 3] = [KvType::F16, KvType::Q8_0, KvType::Q4_0];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
        }
    }

    /// Bytes taken by `elements` values of this type (ggml block sizes: q8_0
    /// packs 32 values in 34 bytes, q4_0 packs 32 values in 18 bytes).
    pub fn bytes_for(self, elements: u64) -> u64 {
        match self {
            Self::F16 => elements * 2,
            Self::Q8_0 => elements.div_ceil(32) * 34,
            Self::Q4_0 => elements.div_ceil(32) * 18,
        }
    }

    /// Whether llama.cpp needs flash attention for this type (a quantized V
    /// cache is only supported on the flash-attention path).
    pub fn needs_flash_attention(self) -> bool {
        self != Self::F16
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown KV type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown KV type {0:?}; expected one of f16, q8_0, q4_0")]
pub struct UnknownKvType(pub String);

impl FromStr for KvType {
    type Err = UnknownKvType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKvType(s.to_owned()))
    }
}

/// The shape of a model's KV cache, enough to size memory budgets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KvGeometry {
    pub n_layer: u32,
    pub n_head_kv: u32,
    /// Width of one K (and one V) head.
    pub head_dim: u32,
}

impl KvGeometry {
    /// Bytes of KV cache one token occupies with the given type (K and V, all layers).
    pub fn bytes_per_token(&self, kv_type: KvType) -> u64 {
        let per_layer = u64::from(self.n_head_kv) * u64::from(self.head_dim);
        2 * u64::from(self.n_layer) * kv_type.bytes_for(per_layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively_and_rejects_unknown() {
        assert_eq!("Q4_0".parse::<KvType>(), Ok(KvType::Q4_0));
        assert!("q5_1"
            .parse::<KvType>()
            .unwrap_err()
            .to_string()
            .contains("q5_1"));
    }

    #[test]
    fn smollm2_geometry_sizes() {
        // SmolLM2-135M: 30 layers, 3 KV heads of 64.
        let g = KvGeometry {
            n_layer: 30,
            n_head_kv: 3,
            head_dim: 64,
        };
        assert_eq!(g.bytes_per_token(KvType::F16), 23_040);
        assert_eq!(g.bytes_per_token(KvType::Q8_0), 12_240);
        assert_eq!(g.bytes_per_token(KvType::Q4_0), 6_480);
    }
}
