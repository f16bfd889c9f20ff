//! Where a model's layers are computed: how many go to a GPU, on which
//! backend, and what that means for the exactness we promise.
//!
//! semantic's batch- and layout-invariance (a reply does not depend on its
//! batch, chunking or cache layout; hot = warm = disk = cold token for token)
//! is proven for the CPU backend with our kernel patches. GPU backends run
//! llama.cpp's own kernels, which make no such promise, so a model with
//! layers on a GPU is recorded as another engine build (its saved states are
//! a clean miss for a CPU engine and back) and exactness is not claimed.

use serde::Serialize;

use crate::EngineError;

/// `--n-gpu-layers`: how many of the model's layers to offload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuLayers {
    /// Every layer when this build has a GPU backend and it found a device,
    /// none otherwise.
    #[default]
    Auto,
    /// Exactly this many (0: CPU only). More than the model has means all.
    Count(u32),
}

impl std::str::FromStr for GpuLayers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(GpuLayers::Auto),
            "all" => Ok(GpuLayers::Count(ALL_LAYERS)),
            n => n
                .parse()
                .map(GpuLayers::Count)
                .map_err(|_| format!("expected a number of layers, `all` or `auto`, not {n:?}")),
        }
    }
}

/// What llama.cpp is asked for to offload every layer (its count is capped
/// at the model's layers plus the output layer).
pub const ALL_LAYERS: u32 = 999;

/// The placement a model is loaded with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Offload {
    /// Layers asked of llama.cpp (0 on the CPU; [`ALL_LAYERS`] for all).
    pub gpu_layers: u32,
    /// The backend computing the offloaded layers (`CPU` when none is).
    pub backend: String,
}

impl Offload {
    /// Decide the placement for `requested`, given the GPU backend this
    /// build found (`None`: a CPU build, or no device).
    pub fn plan(requested: GpuLayers, gpu: Option<&str>) -> Result<Offload, EngineError> {
        match (requested, gpu) {
            (GpuLayers::Auto, None) | (GpuLayers::Count(0), _) => Ok(Offload::cpu()),
            (GpuLayers::Auto, Some(backend)) => Ok(Offload {
                gpu_layers: ALL_LAYERS,
                backend: backend.to_owned(),
            }),
            (GpuLayers::Count(n), Some(backend)) => Ok(Offload {
                gpu_layers: n,
                backend: backend.to_owned(),
            }),
            (GpuLayers::Count(n), None) => Err(EngineError::InvalidConfig {
                setting: "n_gpu_layers",
                reason: format!(
                    "{n} layers asked for a GPU, but this build has no GPU backend or found no GPU \
                     (build with --features vulkan, cuda or metal, or use 0)"
                ),
            }),
        }
    }

    /// The placement of this build for `requested` (see [`Offload::plan`]).
    pub fn detect(requested: GpuLayers) -> Result<Offload, EngineError> {
        crate::model::backend();
        Offload::plan(requested, gpu_backend().as_deref())
    }

    fn cpu() -> Offload {
        Offload {
            gpu_layers: 0,
            backend: "CPU".into(),
        }
    }

    /// Whether any layer runs on a GPU.
    pub fn uses_gpu(&self) -> bool {
        self.gpu_layers > 0
    }

    /// Whether batch- and layout-invariance hold: on the CPU backend only.
    pub fn exactness_promised(&self) -> bool {
        !self.uses_gpu()
    }

    /// Why exactness is not claimed on this placement (`None` on the CPU):
    /// the exactness tests print it and skip instead of claiming it.
    pub fn exactness_note(&self) -> Option<String> {
        (!self.exactness_promised()).then(|| {
            format!(
                "batch and layout invariance are promised on the CPU backend only; \
                 this engine offloads {} layers to {}",
                self.gpu_layers, self.backend
            )
        })
    }

    /// What this placement adds to the engine build recorded with saved
    /// states: other kernels, so a state saved on a GPU is a clean miss on
    /// the CPU and back. Empty on the CPU, so CPU caches stay valid.
    pub fn build_suffix(&self) -> String {
        if !self.uses_gpu() {
            return String::new();
        }
        let layers = if self.gpu_layers >= ALL_LAYERS {
            "all".to_owned()
        } else {
            self.gpu_layers.to_string()
        };
        format!("+gpu-{}-{layers}", self.backend.to_lowercase())
    }
}

/// The backend of the first GPU device llama.cpp found, if any.
fn gpu_backend() -> Option<String> {
    use llama_cpp_2::LlamaBackendDeviceType as Kind;
    llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .find(|d| matches!(d.device_type, Kind::Gpu | Kind::IntegratedGpu))
        .map(|d| d.backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_offloads_everything_only_when_a_gpu_is_there() {
        let cpu = Offload::plan(GpuLayers::Auto, None).unwrap();
        assert_eq!((cpu.gpu_layers, cpu.backend.as_str()), (0, "CPU"));
        assert!(cpu.exactness_promised());
        assert_eq!(cpu.build_suffix(), "");

        let gpu = Offload::plan(GpuLayers::Auto, Some("Vulkan")).unwrap();
        assert_eq!(gpu.gpu_layers, ALL_LAYERS);
        assert!(!gpu.exactness_promised());
        assert_eq!(gpu.build_suffix(), "+gpu-vulkan-all");
    }

    #[test]
    fn a_count_is_kept_zero_is_the_cpu_and_a_cpu_build_refuses_layers() {
        let some = Offload::plan(GpuLayers::Count(12), Some("CUDA")).unwrap();
        assert_eq!(some.build_suffix(), "+gpu-cuda-12");
        assert_eq!(
            Offload::plan(GpuLayers::Count(0), Some("CUDA")).unwrap(),
            Offload::cpu()
        );
        let err = Offload::plan(GpuLayers::Count(12), None).unwrap_err();
        assert!(err.to_string().contains("no GPU backend"), "{err}");
    }

    #[test]
    fn parses_auto_all_and_counts() {
        assert_eq!("auto".parse::<GpuLayers>(), Ok(GpuLayers::Auto));
        assert_eq!("all".parse::<GpuLayers>(), Ok(GpuLayers::Count(ALL_LAYERS)));
        assert_eq!("0".parse::<GpuLayers>(), Ok(GpuLayers::Count(0)));
        assert!("many".parse::<GpuLayers>().is_err());
    }

    #[test]
    fn this_cpu_build_runs_on_the_cpu() {
        if cfg!(any(feature = "cuda", feature = "vulkan", feature = "metal")) {
            return;
        }
        let offload = Offload::detect(GpuLayers::Auto).unwrap();
        assert_eq!(offload, Offload::cpu());
    }
}
