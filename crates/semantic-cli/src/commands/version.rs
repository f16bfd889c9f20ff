//! `semantic version`.

use semantic_engine::offload::{GpuLayers, Offload};
use semantic_engine::system_info::llama_build_info;

pub fn run() -> anyhow::Result<()> {
    let info = llama_build_info();
    println!("semantic {}", env!("CARGO_PKG_VERSION"));
    println!("git commit:   {}", env!("SEMANTIC_GIT_COMMIT"));
    println!(
        "llama.cpp:    {} (ggml {}, commit {})",
        info.bindings, info.ggml_version, info.ggml_commit
    );
    println!(
        "patches:      {} (stamp of the vendored crate and patches/)",
        info.patches
    );
    let features = info.cpu_features();
    println!(
        "cpu features: {}",
        if features.is_empty() {
            "baseline only".into()
        } else {
            features.join(" ")
        }
    );
    println!("system info:  {}", info.system_info);
    let offload = Offload::detect(GpuLayers::Auto)?;
    if offload.uses_gpu() {
        println!(
            "gpu backend:  {} (--n-gpu-layers defaults to all; batch invariance is promised on the CPU backend only)",
            offload.backend
        );
    } else {
        println!(
            "gpu backend:  none (--n-gpu-layers defaults to 0: the CPU backend, batch-invariant)"
        );
    }
    Ok(())
}
