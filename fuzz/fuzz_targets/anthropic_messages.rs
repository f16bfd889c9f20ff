//! See `semantic_server::fuzzing::anthropic_messages` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    semantic_server::fuzzing::anthropic_messages(data);
});
