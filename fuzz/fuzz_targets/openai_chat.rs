//! See `semantic_server::fuzzing::openai_chat` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    semantic_server::fuzzing::openai_chat(data);
});
