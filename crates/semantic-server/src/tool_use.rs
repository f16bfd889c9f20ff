//! Tool use and constrained output for any API family.
//!
//! An adapter maps its wire shapes onto a [`ToolRequest`] and gets back
//! what to render (messages and template `tools`), the grammar to sample
//! under, and a [`ReplyParser`] to read calls out of the output. Errors are
//! [`ToolUseError`]s with API-neutral targets; each adapter turns them into
//! its own `param` paths.

use semantic_domain::chat::ChatMessage;
use semantic_domain::tools::constraint::{self, call_schema, compose};
use semantic_domain::tools::prompt::prompt_input;
use semantic_domain::tools::spec::validate;
use semantic_domain::tools::{
    OutputFormat, PromptInput, ReplyParser, Target, ToolChoice, ToolField, ToolSpec, ToolUseError,
};
use semantic_domain::Grammar;
use semantic_engine::grammar::{check, schema_to_gbnf};
use semantic_engine::LoadedModel;

/// The tool-related part of a request, API-neutral.
#[derive(Clone, Debug, Default)]
pub struct ToolRequest {
    pub tools: Vec<ToolSpec>,
    pub choice: ToolChoice,
    pub format: OutputFormat,
    /// At most one call per reply (the client disabled parallel calls).
    pub single_call: bool,
}

/// Read a request's `tools` (absent means none) with `read`, which gets
/// each entry's index so its errors can name the entry's path.
pub fn read_tools<T, E>(
    tools: Option<Vec<T>>,
    mut read: impl FnMut(usize, T) -> Result<ToolSpec, E>,
) -> Result<Vec<ToolSpec>, E> {
    let entries = tools.unwrap_or_default().into_iter().enumerate();
    entries.map(|(index, entry)| read(index, entry)).collect()
}

/// What the request needs to render, constrain and parse its reply.
#[derive(Debug)]
pub struct ToolUse {
    pub prompt: PromptInput,
    pub grammar: Option<Grammar>,
    /// `None` when no call can be made (no tools, or `tool_choice: none`).
    pub parser: Option<ReplyParser>,
}

/// Validate the request's tools and build its prompt input, grammar and
/// parser. Converting schemas and compiling the grammar run llama.cpp code
/// (milliseconds for large schemas): call this off the async runtime.
pub fn prepare(
    model: &LoadedModel,
    request: &ToolRequest,
    messages: &[ChatMessage],
) -> Result<ToolUse, ToolUseError> {
    validate(&request.tools, &request.choice)?;
    let prompt = prompt_input(messages, &request.tools, model.template().supports_tools());
    let plan = constraint::plan(&request.tools, &request.choice, &request.format);
    let grammar = grammar(model, &request.tools, &plan)?;
    let parser = (!request.tools.is_empty() && request.choice != ToolChoice::None).then(|| {
        let names = request.tools.iter().map(|t| t.name.clone()).collect();
        let parser = ReplyParser::new(names, plan.forces_call());
        if request.single_call {
            parser.at_most_one_call()
        } else {
            parser
        }
    });
    Ok(ToolUse {
        prompt,
        grammar,
        parser,
    })
}

/// One grammar part: its GBNF and the field to blame if llama.cpp rejects it.
struct Part {
    gbnf: String,
    target: Target,
}

fn grammar(
    model: &LoadedModel,
    tools: &[ToolSpec],
    plan: &constraint::ConstraintPlan,
) -> Result<Option<Grammar>, ToolUseError> {
    if plan.is_unconstrained() {
        return Ok(None);
    }
    let mut calls = Vec::new();
    for &index in &plan.calls {
        let target = Target::Tool {
            index,
            field: ToolField::Parameters,
        };
        calls.push(part(&call_schema(&tools[index]), target)?);
    }
    let document = match &plan.document {
        Some(schema) => Some(part(schema, Target::OutputSchema)?),
        None => None,
    };
    let call_gbnf: Vec<String> = calls.iter().map(|p| p.gbnf.clone()).collect();
    let grammar = compose(&call_gbnf, document.as_ref().map(|d| d.gbnf.as_str()));
    if let Err(e) = check(model, &grammar) {
        // Blame the first part that fails alone; the composition itself is ours.
        let all = calls.iter().chain(document.as_ref());
        let culprit = all
            .clone()
            .find(|p| check(model, &Grammar::new(p.gbnf.clone())).is_err())
            .or_else(|| all.last())
            .map_or(Target::Tools, |p| p.target);
        return Err(ToolUseError::new(culprit, e.to_string()));
    }
    Ok(Some(grammar))
}

/// A fresh call id: `prefix` and 24 random hex digits (`call_…` for
/// OpenAI, `toolu_…` for Anthropic).
pub fn call_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &hex[..24])
}

fn part(schema: &serde_json::Value, target: Target) -> Result<Part, ToolUseError> {
    schema_to_gbnf(schema)
        .map(|gbnf| Part { gbnf, target })
        .map_err(|e| ToolUseError::new(target, e.to_string()))
}
