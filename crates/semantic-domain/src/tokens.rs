//! Token ids and token-sequence helpers.

/// A token id in the model's vocabulary (llama.cpp uses `int32_t`).
pub type TokenId = i32;

/// Length of the longest common prefix of two token sequences.
///
/// This is the rule for KV reuse: cells past the first differing token must
/// never be reused, or the output would differ from a cold run.
pub fn common_prefix_len(a: &[TokenId], b: &[TokenId]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_covers_repeat_extension_and_divergence() {
        assert_eq!(common_prefix_len(&[1, 2, 3], &[1, 2, 3]), 3);
        assert_eq!(common_prefix_len(&[1, 2, 3], &[1, 2, 3, 4, 5]), 3);
        assert_eq!(common_prefix_len(&[1, 2, 3], &[1, 9, 3]), 1);
        assert_eq!(common_prefix_len(&[], &[1]), 0);
    }
}
