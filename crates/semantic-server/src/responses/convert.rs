//! Validating a Responses request into what the engine takes: sampling,
//! tools (function tools only: hosted and client-specific tool types are
//! skipped and logged, never refused), `tool_choice` and `text.format`.

use semantic_domain::tools::{OutputFormat, Target, ToolChoice, ToolField, ToolSpec, ToolUseError};
use semantic_domain::SamplingParams;
use serde_json::{json, Value};

use super::types::ResponsesRequest;
use crate::error::{check_sampling, ApiError, ParamNames};
use crate::openai::tools::{choice_keyword, json_schema_format};
use crate::tool_use::ToolRequest;

/// The function tools of a request, and where each stood in `tools`
/// (skipped tools shift positions; errors name the client's index).
#[derive(Debug, Default)]
pub struct Tools {
    pub request: ToolRequest,
    /// `positions[i]`: the index in the client's `tools` of `request.tools[i]`.
    pub positions: Vec<usize>,
}

/// Read `tools`, `tool_choice`, `parallel_tool_calls` and `text.format`.
pub fn tools(req: &ResponsesRequest) -> Result<Tools, ApiError> {
    let mut specs = Vec::new();
    let mut positions = Vec::new();
    let mut skipped = Vec::new();
    for (index, tool) in req.tools.iter().flatten().enumerate() {
        let at = format!("tools[{index}]");
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "function" {
            skipped.push(if kind.is_empty() { "(untyped)" } else { kind });
            continue;
        }
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return Err(
                ApiError::invalid_request(format!("{at}.name must be a string"))
                    .with_param(format!("{at}.name")),
            );
        };
        specs.push(ToolSpec {
            name: name.to_owned(),
            description: tool
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            parameters: match tool.get("parameters") {
                None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
                Some(p) => p.clone(),
            },
        });
        positions.push(index);
    }
    if !skipped.is_empty() {
        tracing::info!(tool_types = ?skipped, "skipping tools the served model cannot call");
    }
    let request = ToolRequest {
        tools: specs,
        choice: tool_choice(req.tool_choice.as_ref())?,
        format: output_format(req.text.as_ref().and_then(|t| t.format.as_ref()))?,
        single_call: req.parallel_tool_calls == Some(false),
    };
    Ok(Tools { request, positions })
}

/// `auto`, `none`, `required` or `{"type": "function", "name": …}`; a
/// hosted tool's choice (`{"type": "web_search"}`, `allowed_tools`) leaves
/// the model free, as `auto`.
fn tool_choice(choice: Option<&Value>) -> Result<ToolChoice, ApiError> {
    let bad = |what: String| {
        Err(ApiError::invalid_request(format!(
            "tool_choice {what}; expected \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"name\": \"...\"}}"
        ))
        .with_param("tool_choice"))
    };
    match choice {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match choice_keyword(s) {
            Some(choice) => Ok(choice),
            None => bad(format!("is {s:?}")),
        },
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("function") => match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(ToolChoice::Function(name.to_owned())),
                None => Err(ApiError::invalid_request(
                    "tool_choice.name must name a function tool",
                )
                .with_param("tool_choice.name")),
            },
            Some(_) => Ok(ToolChoice::Auto),
            None => bad("has no type".into()),
        },
        Some(other) => bad(format!("is {other}")),
    }
}

/// `text.format`: `text`, `json_object` or `json_schema` (flat: `name`,
/// `schema`, `strict` beside `type`).
fn output_format(format: Option<&Value>) -> Result<OutputFormat, ApiError> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(OutputFormat::Text);
    };
    let kind = format
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" => Ok(OutputFormat::Text),
        "json_object" => Ok(OutputFormat::JsonObject),
        "json_schema" => json_schema_format(
            format.get("name").and_then(Value::as_str).unwrap_or_default(),
            format.get("schema").cloned(),
            "text.format",
        ),
        other => Err(ApiError::invalid_request(format!(
            "text.format.type {other:?} is not supported; use \"text\", \"json_object\" or \"json_schema\""
        ))
        .with_param("text.format.type")),
    }
}

/// A tool-use error as a 400 naming the Responses field; `positions` maps
/// our tool indices back to the client's.
pub fn tool_error(positions: Vec<usize>) -> impl FnOnce(ToolUseError) -> ApiError {
    move |e| {
        let param = match e.target {
            Target::Tools => "tools".to_owned(),
            Target::Tool { index, field } => {
                let field = match field {
                    ToolField::Name => "name",
                    ToolField::Parameters => "parameters",
                };
                let index = positions.get(index).copied().unwrap_or(index);
                format!("tools[{index}].{field}")
            }
            Target::ToolChoice => "tool_choice".to_owned(),
            Target::OutputSchema => "text.format.schema".to_owned(),
        };
        ApiError::invalid_request(format!("{param}: {}", e.message)).with_param(param)
    }
}

/// Sampling with OpenAI's defaults (temperature 1 unless
/// `--default-temperature` says otherwise, top_p 1), validated now.
pub fn sampling(
    req: &ResponsesRequest,
    default_temperature: Option<f32>,
) -> Result<SamplingParams, ApiError> {
    let params = SamplingParams {
        max_tokens: req.max_output_tokens,
        ..SamplingParams::requested(req.temperature, req.top_p, default_temperature)
    };
    check_sampling(&params, ParamNames::RESPONSES)?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse;

    fn request(body: Value) -> ResponsesRequest {
        parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn hosted_tools_are_skipped_and_indices_kept() {
        let req = request(json!({"model": "m", "input": "x", "tools": [
            {"type": "web_search"},
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "name": "g"},
        ], "tool_choice": {"type": "function", "name": "g"}}));
        let tools = tools(&req).unwrap();
        let names: Vec<_> = tools
            .request
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["f", "g"]);
        assert_eq!(tools.positions, [1, 3]);
        assert_eq!(tools.request.choice, ToolChoice::Function("g".into()));
        let e = tool_error(tools.positions)(ToolUseError::new(
            Target::Tool {
                index: 1,
                field: ToolField::Parameters,
            },
            "bad",
        ));
        assert_eq!(e.param.as_deref(), Some("tools[3].parameters"));
    }

    #[test]
    fn formats_and_choices() {
        let req = request(
            json!({"model": "m", "text": {"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}}}}),
        );
        assert!(matches!(
            tools(&req).unwrap().request.format,
            OutputFormat::JsonSchema(_)
        ));
        let req = request(json!({"model": "m", "text": {"format": {"type": "yaml"}}}));
        assert_eq!(
            tools(&req).unwrap_err().param.as_deref(),
            Some("text.format.type")
        );
        let req = request(json!({"model": "m", "tool_choice": {"type": "web_search_preview"}}));
        assert_eq!(tools(&req).unwrap().request.choice, ToolChoice::Auto);
        let req = request(json!({"model": "m", "tool_choice": "sometimes"}));
        assert_eq!(
            tools(&req).unwrap_err().param.as_deref(),
            Some("tool_choice")
        );
        let req = request(json!({"model": "m", "temperature": 9}));
        let e = sampling(&req, None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }
}
