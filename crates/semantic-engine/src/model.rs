//! Loading a GGUF model and the model-level operations that are safe from
//! any thread (tokenizing, detokenizing, chat templating).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use semantic_domain::chat::ChatMessage;
use semantic_domain::chat_template::ChatTemplate;
use semantic_domain::{KvGeometry, TokenId};

use crate::config::WeightRepack;
use crate::gguf::{GgufError, GgufHeader};
use crate::offload::{GpuLayers, Offload};
use crate::EngineError;

/// llama.cpp's process-wide backend, initialised once and never freed.
static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();

/// The process-wide llama.cpp backend.
pub fn backend() -> &'static LlamaBackend {
    BACKEND.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        match LlamaBackend::init() {
            Ok(b) => b,
            // `init` only fails when called twice, which the OnceLock rules out.
            Err(e) => unreachable!("llama backend initialised twice: {e}"),
        }
    })
}

/// What a client or operator may want to know about the loaded model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelInfo {
    /// The name clients use in the `model` field (the file name without `.gguf`).
    pub id: String,
    /// `general.name` from the GGUF, when present.
    pub display_name: Option<String>,
    pub path: PathBuf,
    pub architecture: String,
    pub context_length: u32,
    pub vocab_size: u32,
    pub n_params: u64,
    pub size_bytes: u64,
    /// SHA-256 of the GGUF header (metadata and tensor layout); persisted KV
    /// states are only reused under the same fingerprint.
    pub fingerprint: String,
    /// Tokens a sliding-window attention layer sees (`None`: every layer
    /// attends to the whole context).
    pub sliding_window: Option<u32>,
    /// Layers on a GPU and the backend computing them.
    pub offload: Offload,
    #[serde(skip)]
    pub kv_geometry: KvGeometry,
}

/// How a model's weights are laid out and placed: what loading it asks of
/// llama.cpp beyond the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub weight_repack: WeightRepack,
    pub gpu_layers: GpuLayers,
}

/// A loaded GGUF: the llama.cpp model plus what we derived from it.
pub struct LoadedModel {
    llama: LlamaModel,
    info: ModelInfo,
    template: ChatTemplate,
}

/// Read the header with our bounded reader before llama.cpp sees the file:
/// a hostile header (absurd counts or lengths) is refused here with an
/// error naming the field, instead of reaching llama.cpp's parser.
fn check_gguf(path: &Path) -> Result<GgufHeader, EngineError> {
    if !path.is_file() {
        return Err(EngineError::ModelNotFound(path.to_owned()));
    }
    GgufHeader::read_file(path).map_err(|e| EngineError::ModelLoad {
        path: path.to_owned(),
        reason: match e {
            GgufError::Io(e) => format!("cannot read the file: {e}"),
            GgufError::BadMagic(_) => "not a GGUF file (bad magic bytes)".into(),
            e => format!("invalid GGUF header: {e}"),
        },
    })
}

impl LoadedModel {
    /// Load a GGUF file, reporting progress in [0, 1].
    pub fn load(
        path: &Path,
        placement: Placement,
        progress: impl FnMut(f32) + 'static,
    ) -> Result<Self, EngineError> {
        let header = check_gguf(path)?;
        let offload = Offload::detect(placement.gpu_layers)?;
        let mut progress = progress;
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(offload.gpu_layers)
            .with_use_extra_bufts(placement.weight_repack == WeightRepack::On)
            .with_progress_callback(move |p| {
                progress(p);
                true
            });
        let llama = LlamaModel::load_from_file(backend(), path, &params).map_err(|e| {
            EngineError::ModelLoad {
                path: path.to_owned(),
                reason: format!("llama.cpp rejected it ({e}); is the file truncated or corrupt?"),
            }
        })?;
        let fingerprint = crate::fingerprint::fingerprint_of_header(path, header.data_offset)?;
        let info = model_info(&llama, path, fingerprint, offload);
        let template = chat_template(&llama)?;
        Ok(Self {
            llama,
            info,
            template,
        })
    }

    pub fn llama(&self) -> &LlamaModel {
        &self.llama
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Tokenize text that may contain the template's special tokens.
    pub fn tokenize(&self, text: &str) -> Vec<TokenId> {
        let vocab = self.llama.vocab();
        let bos = token_text(&self.llama, vocab.bos());
        let add_bos = vocab.should_add_bos() && !(bos.is_empty() || text.starts_with(&bos));
        vocab
            .tokenize(text.as_bytes(), add_bos, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// Render a conversation with the model's own chat template and tokenize it.
    pub fn tokenize_chat(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[serde_json::Value]>,
    ) -> Result<Vec<TokenId>, EngineError> {
        let prompt = self.template.render(messages, tools, true)?;
        Ok(self.tokenize(&prompt))
    }

    /// The bytes a token contributes to the visible text (special tokens add none).
    pub fn token_bytes(&self, token: TokenId) -> Vec<u8> {
        self.llama
            .vocab()
            .token_to_piece(LlamaToken(token), false, None)
    }

    pub fn detokenize(&self, tokens: &[TokenId]) -> String {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| self.token_bytes(t)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn is_end_of_generation(&self, token: TokenId) -> bool {
        self.llama.vocab().is_eog(LlamaToken(token))
    }

    pub fn vocab_size(&self) -> u32 {
        self.info.vocab_size
    }
}

fn token_text(model: &LlamaModel, token: LlamaToken) -> String {
    String::from_utf8_lossy(&model.vocab().token_to_piece(token, true, None)).into_owned()
}

fn chat_template(llama: &LlamaModel) -> Result<ChatTemplate, EngineError> {
    let vocab = llama.vocab();
    let bos = token_text(llama, vocab.bos());
    let eos = token_text(llama, vocab.eos());
    match llama.chat_template(None) {
        Ok(source) => {
            let source = source.to_string().unwrap_or_default();
            Ok(ChatTemplate::new(&source, &bos, &eos)?)
        }
        // Base models carry no template; ChatML is the most common format.
        Err(_) => Ok(ChatTemplate::chatml(&bos, &eos)),
    }
}

fn meta_u32(llama: &LlamaModel, key: &str) -> Option<u32> {
    llama.meta_val_str(key).ok()?.trim().parse().ok()
}

fn model_info(llama: &LlamaModel, path: &Path, fingerprint: String, offload: Offload) -> ModelInfo {
    let architecture = llama
        .meta_val_str("general.architecture")
        .unwrap_or_else(|_| "unknown".into());
    let n_head = llama.n_head().max(1);
    let head_dim = meta_u32(llama, &format!("{architecture}.attention.key_length"))
        .unwrap_or(llama.n_embd() as u32 / n_head);
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    ModelInfo {
        id,
        display_name: llama.meta_val_str("general.name").ok(),
        path: path.to_owned(),
        context_length: llama.n_ctx_train(),
        vocab_size: llama.n_vocab().max(0) as u32,
        n_params: llama.n_params(),
        size_bytes: llama.size(),
        fingerprint,
        sliding_window: meta_u32(llama, &format!("{architecture}.attention.sliding_window"))
            .filter(|&w| w > 0),
        offload,
        kv_geometry: KvGeometry {
            n_layer: llama.n_layer(),
            n_head_kv: llama.n_head_kv(),
            head_dim,
        },
        architecture,
    }
}
