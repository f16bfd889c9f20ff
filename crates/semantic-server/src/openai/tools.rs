//! OpenAI's wire shapes for tools, `tool_choice` and `response_format`,
//! mapped onto the API-neutral [`ToolRequest`], and calls mapped back.

use semantic_domain::tools::spec::is_valid_tool_name;
use semantic_domain::tools::ToolUseError;
use semantic_domain::tools::{OutputFormat, ParsedCall, Target, ToolChoice, ToolField, ToolSpec};
use serde_json::{json, Value};

use super::types::{RequestTool, ResponseFormat, ResponseFunctionCall, ResponseToolCall};
use crate::error::ApiError;
use crate::tool_use::{call_id, read_tools, ToolRequest};

/// OpenAI's call ids: `call_` and 24 hex digits.
const CALL_ID_PREFIX: &str = "call_";

const CHOICE_SHAPES: &str =
    "\"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": \"...\"}}";

/// Read `tools`, `tool_choice` and `response_format`; `single_call` when
/// `parallel_tool_calls` is `false`.
pub fn tool_request(
    tools: Option<Vec<RequestTool>>,
    choice: Option<Value>,
    format: Option<ResponseFormat>,
    single_call: bool,
) -> Result<ToolRequest, ApiError> {
    Ok(ToolRequest {
        tools: read_tools(tools, tool)?,
        choice: tool_choice(choice)?,
        format: output_format(format)?,
        single_call,
    })
}

fn tool(index: usize, tool: RequestTool) -> Result<ToolSpec, ApiError> {
    if tool.kind != "function" {
        return Err(ApiError::invalid_request(format!(
            "tool type {:?} is not supported; only \"function\" tools are",
            tool.kind
        ))
        .with_param(format!("tools[{index}].type")));
    }
    let f = tool.function;
    Ok(ToolSpec {
        name: f.name,
        description: f.description,
        parameters: f
            .parameters
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

fn tool_choice(choice: Option<Value>) -> Result<ToolChoice, ApiError> {
    let bad = |param: &str, what: String| {
        Err(
            ApiError::invalid_request(format!("{param} {what}; expected {CHOICE_SHAPES}"))
                .with_param(param),
        )
    };
    match choice {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match choice_keyword(&s) {
            Some(choice) => Ok(choice),
            None => bad("tool_choice", format!("is {s:?}")),
        },
        Some(Value::Object(o)) => {
            if o.get("type").and_then(Value::as_str) != Some("function") {
                return bad("tool_choice.type", "must be \"function\"".into());
            }
            match o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => Ok(ToolChoice::Function(name.to_owned())),
                None => bad("tool_choice.function.name", "is missing".into()),
            }
        }
        Some(other) => bad("tool_choice", format!("is {other}")),
    }
}

/// OpenAI's `tool_choice` keywords (chat completions and Responses alike).
pub fn choice_keyword(keyword: &str) -> Option<ToolChoice> {
    match keyword {
        "auto" => Some(ToolChoice::Auto),
        "none" => Some(ToolChoice::None),
        "required" => Some(ToolChoice::Required),
        _ => None,
    }
}

/// A `json_schema` output format (chat's `response_format.json_schema`,
/// Responses' `text.format`): a valid name, and a schema object (none
/// means any JSON object). Errors name `{at}.name` / `{at}.schema`.
pub fn json_schema_format(
    name: &str,
    schema: Option<Value>,
    at: &str,
) -> Result<OutputFormat, ApiError> {
    if !is_valid_tool_name(name) {
        return Err(ApiError::invalid_request(format!(
            "{at}.name {name:?} must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"
        ))
        .with_param(format!("{at}.name")));
    }
    match schema {
        None | Some(Value::Null) => Ok(OutputFormat::JsonObject),
        Some(schema @ Value::Object(_)) => Ok(OutputFormat::JsonSchema(schema)),
        Some(_) => Err(
            ApiError::invalid_request(format!("{at}.schema must be a JSON object"))
                .with_param(format!("{at}.schema")),
        ),
    }
}

fn output_format(format: Option<ResponseFormat>) -> Result<OutputFormat, ApiError> {
    let Some(format) = format else {
        return Ok(OutputFormat::Text);
    };
    match format.kind.as_str() {
        "text" => Ok(OutputFormat::Text),
        "json_object" => Ok(OutputFormat::JsonObject),
        "json_schema" => {
            let Some(spec) = format.json_schema else {
                return Err(ApiError::invalid_request(
                    "response_format of type json_schema needs a json_schema object",
                )
                .with_param("response_format.json_schema"));
            };
            json_schema_format(&spec.name, spec.schema, "response_format.json_schema")
        }
        other => Err(ApiError::invalid_request(format!(
            "response_format type {other:?} is not supported; use \"text\", \"json_object\" or \"json_schema\""
        ))
        .with_param("response_format.type")),
    }
}

/// A tool-use error as a 400 naming the OpenAI field.
pub fn api_error(e: ToolUseError) -> ApiError {
    let param = match e.target {
        Target::Tools => "tools".to_owned(),
        Target::Tool { index, field } => {
            let field = match field {
                ToolField::Name => "name",
                ToolField::Parameters => "parameters",
            };
            format!("tools[{index}].function.{field}")
        }
        Target::ToolChoice => "tool_choice".to_owned(),
        Target::OutputSchema => "response_format.json_schema.schema".to_owned(),
    };
    ApiError::invalid_request(format!("{param}: {}", e.message)).with_param(param)
}

/// A parsed call in the response shape, with a fresh id.
pub fn response_call(call: ParsedCall) -> ResponseToolCall {
    ResponseToolCall {
        id: call_id(CALL_ID_PREFIX),
        kind: "function",
        function: ResponseFunctionCall {
            name: call.name,
            arguments: call.arguments.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(v: Value) -> Result<ToolChoice, ApiError> {
        tool_choice(Some(v))
    }

    #[test]
    fn tool_choice_shapes() {
        assert_eq!(choice(json!("required")).unwrap(), ToolChoice::Required);
        assert_eq!(tool_choice(None).unwrap(), ToolChoice::Auto);
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "f"}})).unwrap(),
            ToolChoice::Function("f".into())
        );
        assert_eq!(
            choice(json!("always")).unwrap_err().param.as_deref(),
            Some("tool_choice")
        );
        let e = choice(json!({"type": "function", "function": {}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice.function.name"));
        assert_eq!(
            choice(json!(3)).unwrap_err().param.as_deref(),
            Some("tool_choice")
        );
    }

    #[test]
    fn neutral_targets_map_to_openai_params() {
        let e = api_error(ToolUseError::new(
            Target::Tool {
                index: 2,
                field: ToolField::Parameters,
            },
            "bad",
        ));
        assert_eq!(e.param.as_deref(), Some("tools[2].function.parameters"));
        let e = api_error(ToolUseError::new(Target::OutputSchema, "bad"));
        assert_eq!(
            e.param.as_deref(),
            Some("response_format.json_schema.schema")
        );
    }

    #[test]
    fn call_ids_look_like_openai_ones() {
        let id = response_call(ParsedCall {
            name: "f".into(),
            arguments: json!({}),
        })
        .id;
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
        assert_ne!(call_id(CALL_ID_PREFIX), id);
    }
}
