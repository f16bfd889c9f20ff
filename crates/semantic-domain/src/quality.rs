//! The arithmetic of `semantic bench quality`: how a next-token
//! distribution scores the token that followed (negative log-likelihood,
//! perplexity), how far one distribution is from another (KL divergence,
//! top-1 agreement), and which positions of a text are scored.
//!
//! The method mirrors llama.cpp's `llama-perplexity`, so the figures are
//! comparable: the text is cut into chunks of `n_ctx` tokens, each chunk
//! is evaluated from an empty cache (its first token replaced by BOS when
//! the vocabulary adds one), and only the second half of each chunk is
//! scored, so every scored token has at least `n_ctx / 2` tokens of
//! context. Logits are `f32`; sums run in `f64`.

use crate::TokenId;

/// A row of logits turned into a normalised distribution's constants:
/// `log p_i = logit_i - log_z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogSoftmax {
    /// `log(sum_i exp(logit_i))`, computed around the largest logit.
    pub log_z: f64,
    /// The index of the largest logit (the greedy token; the first on ties).
    pub argmax: usize,
}

impl LogSoftmax {
    /// The constants of `logits` (which must not be empty).
    pub fn of(logits: &[f32]) -> Self {
        let (argmax, max) = largest(logits);
        let max = f64::from(max);
        let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
        Self {
            log_z: max + sum.ln(),
            argmax,
        }
    }

    /// `log p` of the entry with this logit.
    pub fn log_prob(&self, logit: f32) -> f64 {
        f64::from(logit) - self.log_z
    }
}

/// The first largest entry and its value; `(0, -inf)` for an empty row.
fn largest(logits: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &x) in logits.iter().enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best
}

/// Negative log-likelihood of `target` under the distribution of `logits`
/// (`-log p_target`, in nats). `None` when `target` is outside the row.
pub fn nll(logits: &[f32], norm: &LogSoftmax, target: TokenId) -> Option<f64> {
    let logit = logits.get(usize::try_from(target).ok()?)?;
    Some(-norm.log_prob(*logit))
}

/// `KL(p || q) = sum_i p_i (log p_i - log q_i)` in nats, for the
/// distributions of two logit rows over the same vocabulary (`p` is the
/// reference). Never negative up to rounding; 0 for identical rows.
pub fn kl_divergence(p: &[f32], p_norm: &LogSoftmax, q: &[f32], q_norm: &LogSoftmax) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&x, &y)| {
            let log_p = p_norm.log_prob(x);
            let log_q = q_norm.log_prob(y);
            log_p.exp() * (log_p - log_q)
        })
        .sum()
}

/// Perplexity of a mean negative log-likelihood: `exp(mean NLL)`.
pub fn perplexity(mean_nll: f64) -> f64 {
    mean_nll.exp()
}

/// How a token stream is cut into evaluated chunks, as llama-perplexity
/// cuts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunking {
    /// Tokens per chunk (the context length under test).
    pub n_ctx: usize,
    /// Chunks evaluated.
    pub chunks: usize,
}

impl Chunking {
    /// Up to `max_chunks` whole chunks of `n_ctx` out of `available`
    /// tokens; `None` if not even one fits (or `n_ctx` is under 2).
    pub fn new(available: usize, n_ctx: usize, max_chunks: usize) -> Option<Self> {
        if n_ctx < 2 {
            return None;
        }
        let chunks = (available / n_ctx).min(max_chunks);
        (chunks > 0).then_some(Self { n_ctx, chunks })
    }

    /// The first scored position of a chunk: its second half.
    pub fn first_scored(&self) -> usize {
        self.n_ctx / 2
    }

    /// Whether the output at position `pos` of a chunk is scored: it is in
    /// the second half and the token it predicts (at `pos + 1`) is in the
    /// chunk.
    pub fn is_scored(&self, pos: usize) -> bool {
        pos >= self.first_scored() && pos + 1 < self.n_ctx
    }

    /// Scored positions per chunk.
    pub fn scored_per_chunk(&self) -> usize {
        self.n_ctx - 1 - self.first_scored()
    }

    /// Chunk `index` of `tokens` as evaluated: `n_ctx` tokens, the first
    /// replaced by `bos` when the vocabulary adds one (`Some`).
    /// `None` past the end of `tokens`.
    pub fn chunk(
        &self,
        tokens: &[TokenId],
        index: usize,
        bos: Option<TokenId>,
    ) -> Option<Vec<TokenId>> {
        let start = index.checked_mul(self.n_ctx)?;
        let mut chunk = tokens.get(start..start.checked_add(self.n_ctx)?)?.to_vec();
        if let (Some(bos), Some(first)) = (bos, chunk.first_mut()) {
            *first = bos;
        }
        Some(chunk)
    }
}

/// Running totals of one KV type's scores against the reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct QualityTotals {
    /// Positions scored.
    pub scored: u64,
    /// Sum of the negative log-likelihoods of the scored tokens (nats).
    pub nll_sum: f64,
    /// Sum of KL(reference || this) over the scored positions (nats).
    pub kl_sum: f64,
    /// Largest KL at one position.
    pub kl_max: f64,
    /// Positions whose most likely token equals the reference's.
    pub top1_same: u64,
}

impl QualityTotals {
    /// Add one scored position.
    pub fn add(&mut self, nll: f64, kl: f64, top1_same: bool) {
        self.scored += 1;
        self.nll_sum += nll;
        self.kl_sum += kl;
        self.kl_max = self.kl_max.max(kl);
        self.top1_same += u64::from(top1_same);
    }

    fn mean(&self, sum: f64) -> f64 {
        if self.scored == 0 {
            f64::NAN
        } else {
            sum / self.scored as f64
        }
    }

    pub fn mean_nll(&self) -> f64 {
        self.mean(self.nll_sum)
    }

    pub fn perplexity(&self) -> f64 {
        perplexity(self.mean_nll())
    }

    pub fn mean_kl(&self) -> f64 {
        self.mean(self.kl_sum)
    }

    /// Share of positions with the reference's top token, in [0, 1].
    pub fn top1_agreement(&self) -> f64 {
        self.mean(self.top1_same as f64)
    }
}

/// Score one position: the reference row's NLL of `target` goes into
/// `reference` (its KL to itself is 0), and each compared row's NLL, KL
/// from the reference and top-1 agreement into its own totals (`rows` and
/// `totals` pair up in order). `None` if `target` is outside a row.
pub fn score_position(
    reference_row: &[f32],
    rows: &[&[f32]],
    target: TokenId,
    reference: &mut QualityTotals,
    totals: &mut [QualityTotals],
) -> Option<()> {
    let ref_norm = LogSoftmax::of(reference_row);
    reference.add(nll(reference_row, &ref_norm, target)?, 0.0, true);
    for (row, t) in rows.iter().zip(totals.iter_mut()) {
        let norm = LogSoftmax::of(row);
        let kl = kl_divergence(reference_row, &ref_norm, row, &norm);
        t.add(nll(row, &norm, target)?, kl, norm.argmax == ref_norm.argmax);
    }
    Some(())
}

/// `100 * (ppl / reference - 1)`: the perplexity change in percent.
pub fn delta_percent(ppl: f64, reference: f64) -> f64 {
    100.0 * (ppl / reference - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn log_softmax_of_equal_logits_is_uniform() {
        let row = [3.0f32; 4];
        let norm = LogSoftmax::of(&row);
        assert!(close(norm.log_prob(3.0), -(4f64.ln()), 1e-12));
        assert_eq!(norm.argmax, 0, "the first of equal logits");
    }

    #[test]
    fn log_softmax_is_stable_for_huge_logits() {
        let row = [1000.0f32, 999.0, -1000.0];
        let norm = LogSoftmax::of(&row);
        let z = 1.0 + (-1f64).exp() + (-2000f64).exp();
        assert!(close(norm.log_z, 1000.0 + z.ln(), 1e-9));
        assert_eq!(norm.argmax, 0);
        assert!(norm.log_z.is_finite());
    }

    #[test]
    fn nll_is_minus_log_of_the_targets_probability() {
        // p = softmax([ln 1, ln 3]) = [0.25, 0.75]
        let row = [0.0f32, 3f32.ln()];
        let norm = LogSoftmax::of(&row);
        assert!(close(nll(&row, &norm, 1).unwrap(), -(0.75f64.ln()), 1e-6));
        assert!(close(nll(&row, &norm, 0).unwrap(), 4f64.ln(), 1e-6));
        assert_eq!(nll(&row, &norm, 2), None);
        assert_eq!(nll(&row, &norm, -1), None);
    }

    #[test]
    fn perplexity_of_a_uniform_guess_is_the_vocabulary_size() {
        let row = [0.0f32; 50];
        let norm = LogSoftmax::of(&row);
        let mut totals = QualityTotals::default();
        for t in 0..10 {
            totals.add(nll(&row, &norm, t).unwrap(), 0.0, true);
        }
        assert!(close(totals.perplexity(), 50.0, 1e-9));
    }

    #[test]
    fn kl_of_identical_rows_is_zero_and_shifts_do_not_matter() {
        let p = [0.5f32, -1.0, 2.0, 0.0];
        // Adding a constant to every logit leaves the distribution alone.
        let q: Vec<f32> = p.iter().map(|x| x + 7.0).collect();
        let (pn, qn) = (LogSoftmax::of(&p), LogSoftmax::of(&q));
        assert!(close(kl_divergence(&p, &pn, &p, &pn), 0.0, 1e-12));
        assert!(close(kl_divergence(&p, &pn, &q, &qn), 0.0, 1e-6));
    }

    #[test]
    fn kl_matches_its_closed_form_and_is_asymmetric() {
        // p = [0.25, 0.75], q = [0.5, 0.5]
        let p = [0.0f32, 3f32.ln()];
        let q = [0.0f32, 0.0];
        let (pn, qn) = (LogSoftmax::of(&p), LogSoftmax::of(&q));
        let want_pq = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        let want_qp = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!(close(kl_divergence(&p, &pn, &q, &qn), want_pq, 1e-6));
        assert!(close(kl_divergence(&q, &qn, &p, &pn), want_qp, 1e-6));
        assert!(want_pq > 0.0 && (want_pq - want_qp).abs() > 1e-3);
    }

    #[test]
    fn chunking_scores_the_second_half_like_llama_perplexity() {
        let c = Chunking::new(2100, 512, usize::MAX).unwrap();
        assert_eq!(c.chunks, 4, "whole chunks only");
        assert_eq!(c.first_scored(), 256);
        assert_eq!(c.scored_per_chunk(), 255);
        assert!(!c.is_scored(255));
        assert!(c.is_scored(256));
        assert!(c.is_scored(510));
        assert!(!c.is_scored(511), "the last output predicts past the chunk");
        assert_eq!(Chunking::new(2100, 512, 2).unwrap().chunks, 2);
        assert_eq!(Chunking::new(500, 512, 9), None);
        assert_eq!(Chunking::new(10, 1, 9), None);
    }

    #[test]
    fn each_chunk_starts_with_bos_when_the_vocabulary_adds_one() {
        let tokens: Vec<TokenId> = (10..20).collect();
        let c = Chunking::new(tokens.len(), 4, 9).unwrap();
        assert_eq!(c.chunks, 2);
        assert_eq!(c.chunk(&tokens, 0, Some(1)).unwrap(), vec![1, 11, 12, 13]);
        assert_eq!(c.chunk(&tokens, 1, Some(1)).unwrap(), vec![1, 15, 16, 17]);
        assert_eq!(c.chunk(&tokens, 1, None).unwrap(), vec![14, 15, 16, 17]);
        assert_eq!(c.chunk(&tokens, 2, None), None);
    }

    #[test]
    fn a_position_scores_the_reference_and_each_compared_row() {
        let reference_row = [0.0f32, 3f32.ln()]; // [0.25, 0.75]
        let same = reference_row;
        let flat = [0.0f32, 0.0]; // [0.5, 0.5]: top-1 tie goes to 0
        let (mut r, mut t) = (QualityTotals::default(), [QualityTotals::default(); 2]);
        score_position(&reference_row, &[&same, &flat], 1, &mut r, &mut t).unwrap();
        assert!(close(r.nll_sum, -(0.75f64.ln()), 1e-6));
        assert_eq!((r.kl_sum, r.top1_same), (0.0, 1));
        assert!(close(t[0].kl_sum, 0.0, 1e-12));
        assert_eq!(t[0].top1_same, 1);
        assert!(close(t[1].nll_sum, 2f64.ln(), 1e-6));
        assert!(t[1].kl_sum > 0.1);
        assert_eq!(t[1].top1_same, 0);
        assert_eq!(
            score_position(&reference_row, &[&same], 5, &mut r, &mut t),
            None
        );
    }

    #[test]
    fn totals_average_and_count_agreement() {
        let mut t = QualityTotals::default();
        assert!(t.mean_kl().is_nan());
        t.add(1.0, 0.02, true);
        t.add(3.0, 0.04, false);
        assert!(close(t.mean_nll(), 2.0, 1e-12));
        assert!(close(t.perplexity(), 2f64.exp(), 1e-9));
        assert!(close(t.mean_kl(), 0.03, 1e-12));
        assert!(close(t.kl_max, 0.04, 1e-12));
        assert!(close(t.top1_agreement(), 0.5, 1e-12));
        assert!(close(delta_percent(10.5, 10.0), 5.0, 1e-9));
    }
}
