use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use semantic_engine::LoadedModel;
use std::num::NonZeroU32;
fn main() {
    let m = LoadedModel::load(
        std::path::Path::new("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        |_| {},
    )
    .unwrap();
    let text = std::fs::read_to_string("../shared/corpus/markov_chain.txt").unwrap();
    let a: Vec<i32> = m.tokenize(&text)[..2048].to_vec();
    for (ub, kt) in [
        (512u32, KvCacheType::F16),
        (63, KvCacheType::F16),
        (512, KvCacheType::Q8_0),
        (512, KvCacheType::F16),
    ] {
        let p = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(4096))
            .with_n_batch(512)
            .with_n_ubatch(ub)
            .with_n_seq_max(4)
            .with_kv_unified(true)
            .with_flash_attention_policy(1)
            .with_n_threads(2)
            .with_n_threads_batch(2)
            .with_type_k(kt)
            .with_type_v(kt);
        let mut ctx = m
            .llama()
            .new_context(semantic_engine::model::backend(), p)
            .unwrap();
        let mut bt = LlamaBatch::new(512, 1);
        let t0 = std::time::Instant::now();
        for (c, ch) in a.chunks(512).enumerate() {
            bt.clear();
            for (j, t) in ch.iter().enumerate() {
                let i = c * 512 + j;
                bt.add(LlamaToken(*t), i as i32, &[0], i + 1 == a.len())
                    .unwrap();
            }
            ctx.decode(&mut bt).unwrap();
        }
        println!(
            "ubatch {ub} {:?}: prefill 2048 in {:.2}s",
            kt,
            t0.elapsed().as_secs_f64()
        );
    }
}
