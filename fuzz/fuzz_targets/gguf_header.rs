//! See `semantic_engine::gguf::fuzz_header` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    semantic_engine::gguf::fuzz_header(data);
});
