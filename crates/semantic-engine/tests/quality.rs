//! `semantic_engine::quality` on the real model, kept cheap (two chunks
//! of 256 tokens): perplexity is finite and plausible, an f16 context
//! scored against the f16 reference diverges by exactly nothing, and q8_0
//! KV by a little.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use semantic_domain::KvType;
use semantic_engine::corpus::Corpus;
use semantic_engine::quality::{evaluation_tokens, measure, QualityPlan};
use semantic_engine::LoadedModel;

#[test]
fn f16_against_itself_is_exact_and_q8_0_is_close() {
    let model = LoadedModel::load(&common::model_path(), Default::default(), |_| {}).unwrap();
    let text = Corpus::generated().text_for_tokens(&model, 600, 0).unwrap();
    let tokens = evaluation_tokens(&model, &text);
    let plan = QualityPlan {
        n_ctx: 256,
        max_chunks: 2,
        batch_tokens: 128,
        threads: 2,
        compared: vec![KvType::F16, KvType::Q8_0],
    };
    let mut seen = Vec::new();
    let report = measure(&model, &tokens, &plan, |done, all| seen.push((done, all))).unwrap();
    assert_eq!(seen, vec![(1, 2), (2, 2)]);
    assert_eq!(report.chunks, 2);

    let reference = report.reference;
    assert_eq!(reference.scored, 2 * 127, "the second half of each chunk");
    let ppl = reference.perplexity();
    eprintln!("f16 perplexity {ppl:.3} over {} tokens", reference.scored);
    assert!(
        ppl.is_finite() && ppl > 1.0 && ppl < 1000.0,
        "perplexity {ppl}"
    );

    let f16 = report.compared[0].totals;
    assert_eq!(f16.nll_sum, reference.nll_sum, "same kernels, same numbers");
    assert!(f16.kl_max.abs() < 1e-9, "KL {}", f16.kl_max);
    assert_eq!(f16.top1_same, f16.scored);

    let q8 = report.compared[1].totals;
    eprintln!(
        "q8_0: perplexity {:.3}, mean KL {:.5}, top-1 {:.3}",
        q8.perplexity(),
        q8.mean_kl(),
        q8.top1_agreement()
    );
    assert!(q8.mean_kl() > 0.0 && q8.mean_kl() < 0.1, "{}", q8.mean_kl());
    assert!((q8.perplexity() / ppl - 1.0).abs() < 0.1);
}
