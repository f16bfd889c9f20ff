//! llama.cpp's side of constrained output: JSON schema → GBNF, and grammar
//! samplers.
//!
//! Both go through the `llama_rs_*` wrappers of llama-cpp-2's `common`
//! feature, which catch llama.cpp's C++ exceptions: a schema or grammar a
//! client sent can fail, never abort the process.

use llama_cpp_2::sampling::LlamaSampler;
use semantic_domain::Grammar;

use crate::model::LoadedModel;
use crate::EngineError;

/// Turn a JSON schema into GBNF whose start rule is `root`.
pub fn schema_to_gbnf(schema: &serde_json::Value) -> Result<String, EngineError> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
        EngineError::InvalidSchema(format!(
            "llama.cpp cannot turn this JSON schema into a grammar ({e})"
        ))
    })
}

/// A sampler that masks every token the grammar does not allow.
pub(crate) fn sampler(model: &LoadedModel, grammar: &Grammar) -> Result<LlamaSampler, String> {
    LlamaSampler::grammar(model.llama(), &grammar.gbnf, &grammar.root).map_err(|e| {
        format!(
            "llama.cpp rejected the grammar (root {:?}): {e}",
            grammar.root
        )
    })
}

/// Check that llama.cpp compiles `grammar` for this model's vocabulary.
pub fn check(model: &LoadedModel, grammar: &Grammar) -> Result<(), EngineError> {
    sampler(model, grammar)
        .map(drop)
        .map_err(EngineError::InvalidGrammar)
}
