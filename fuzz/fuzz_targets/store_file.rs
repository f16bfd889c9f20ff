//! See `semantic_store::format::fuzz_file` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    semantic_store::format::fuzz_file(data);
});
