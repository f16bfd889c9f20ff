//! The generated benchmark prose against a real tokenizer: it must
//! tokenize like English text and hold enough tokens for the longest
//! benchmark prompts.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use semantic_domain::tokens::common_prefix_len;
use semantic_engine::corpus::Corpus;
use semantic_engine::LoadedModel;

fn tokenizer() -> LoadedModel {
    LoadedModel::load(&common::model_path(), Default::default(), |_| {}).expect("model loads")
}

#[test]
fn generated_prose_tokenizes_like_english() {
    let model = tokenizer();
    let corpus = Corpus::generated();
    for variant in [0, 1, 57] {
        let text = corpus.text(variant);
        let tokens = model.tokenize(&text);
        let ratio = text.len() as f64 / tokens.len() as f64;
        eprintln!(
            "variant {variant}: {} chars, {} tokens, {ratio:.2} chars/token",
            text.len(),
            tokens.len()
        );
        // English prose is 4 to 5 characters a token with a BPE tokenizer.
        assert!((3.8..5.2).contains(&ratio), "{ratio:.2} chars/token");
        assert!(tokens.len() >= 60_000, "only {} tokens", tokens.len());
    }
}

#[test]
fn exact_token_counts_are_prefixes_of_the_whole_text() {
    let model = tokenizer();
    let corpus = Corpus::generated();
    let whole = model.tokenize(&corpus.text(3));
    for n in [1, 64, 600, 2_048, 8_192] {
        let tokens = corpus.tokens(&model, n, 3).unwrap();
        assert_eq!(tokens.len(), n);
        assert_eq!(tokens[..], whole[..n], "{n} tokens");
    }
}

#[test]
fn variants_share_no_reusable_token_prefix() {
    let model = tokenizer();
    let corpus = Corpus::generated();
    let prompts: Vec<_> = (0..32)
        .map(|v| corpus.tokens(&model, 256, v).unwrap())
        .collect();
    for (i, a) in prompts.iter().enumerate() {
        for b in &prompts[i + 1..] {
            // The BOS token and perhaps a shared first syllable, never a
            // KV block's worth.
            assert!(common_prefix_len(a, b) <= 3, "{}", common_prefix_len(a, b));
        }
    }
}
