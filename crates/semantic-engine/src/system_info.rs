//! What llama.cpp was built with, as reported by the library itself.

use std::ffi::CStr;

/// Build facts of the linked llama.cpp.
#[derive(Clone, Debug)]
pub struct LlamaBuildInfo {
    /// The bindings crate that vendors llama.cpp, which pins its commit.
    pub bindings: &'static str,
    pub ggml_version: String,
    pub ggml_commit: String,
    /// The first 16 hex digits of the vendored sources' stamp (crate and
    /// patch set).
    pub patches: &'static str,
    /// `llama_print_system_info()`: the CPU features the kernels were built for.
    pub system_info: String,
}

/// Version of `llama-cpp-sys-2`, kept in step with Cargo.toml.
const BINDINGS: &str = "llama-cpp-sys-2 0.1.161";

/// The stamp `scripts/vendor-crates.sh` wrote for the vendored sources: a
/// SHA-256 of the crate and of our patch set, so two builds with different
/// patches (kernels, state format) never take each other's KV states.
const PATCH_STAMP: &str = include_str!("../../../vendor/llama-cpp-sys-2/.semantic-stamp");

fn c_str(ptr: *const std::os::raw::c_char) -> String {
    if ptr.is_null() {
        return "unknown".into();
    }
    // SAFETY: llama.cpp returns pointers to static NUL-terminated strings
    // (string literals or a static buffer), valid for the process lifetime.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_owned()
}

pub fn llama_build_info() -> LlamaBuildInfo {
    crate::model::backend();
    // SAFETY: these functions take no arguments and return static strings;
    // the backend is initialised above as llama_print_system_info expects.
    let (version, commit, system) = unsafe {
        (
            llama_cpp_sys_2::ggml_version(),
            llama_cpp_sys_2::ggml_commit(),
            llama_cpp_sys_2::llama_print_system_info(),
        )
    };
    LlamaBuildInfo {
        bindings: BINDINGS,
        ggml_version: c_str(version),
        ggml_commit: c_str(commit),
        patches: PATCH_STAMP.trim().get(..16).unwrap_or("unknown"),
        system_info: c_str(system),
    }
}

impl LlamaBuildInfo {
    /// A short identity of the engine build, stored with persisted KV state:
    /// state from a different build may not be byte-compatible.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}+ggml-{}-{}+patches-{}",
            self.bindings, self.ggml_version, self.ggml_commit, self.patches
        )
    }

    /// CPU features the CPU backend reports as enabled (e.g. AVX2, FMA).
    /// The report reads `CPU : SSE3 = 1 | AVX2 = 1 | … |`.
    pub fn cpu_features(&self) -> Vec<String> {
        self.system_info
            .split('|')
            .map(|part| part.rsplit(':').next().unwrap_or(part))
            .filter_map(|item| {
                let (name, value) = item.split_once('=')?;
                (value.trim() == "1").then(|| name.trim().to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enabled_cpu_features() {
        let info = LlamaBuildInfo {
            bindings: BINDINGS,
            ggml_version: "0".into(),
            ggml_commit: "x".into(),
            patches: "0123456789abcdef",
            system_info: "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | AVX2 = 1 | OPENMP = 1 |".into(),
        };
        assert_eq!(info.cpu_features(), ["SSE3", "AVX", "AVX2", "OPENMP"]);
        assert!(info.fingerprint().ends_with("+patches-0123456789abcdef"));
    }

    /// KV states of a build with other patches are a clean miss: the stamp
    /// of the vendored patch set is part of the engine build stored in
    /// every agent file (the store refuses a file of another build).
    #[test]
    fn the_engine_build_names_the_patch_set() {
        let info = llama_build_info();
        assert_eq!(info.patches.len(), 16, "{}", info.patches);
        assert!(info.patches.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(PATCH_STAMP.trim().starts_with(info.patches));
        assert!(info.fingerprint().contains(info.patches));
    }
}
