//! Anthropic's wire shapes for `tools` and `tool_choice`, mapped onto the
//! API-neutral [`ToolRequest`], and parsed calls mapped back to `tool_use`
//! content blocks. Errors name Anthropic's paths (`tools[1].input_schema`,
//! `tool_choice.name`).

use semantic_domain::tools::spec::validate;
use semantic_domain::tools::{
    OutputFormat, ParsedCall, ParsedReply, Target, ToolChoice, ToolField, ToolSpec, ToolUseError,
};

use super::types::{self as wire, OutputBlock, ToolChoiceKind};
use crate::error::ApiError;
use crate::tool_use::{call_id, read_tools, ToolRequest};

/// Anthropic's tool-use ids: `toolu_` and 24 hex digits.
const TOOL_USE_ID_PREFIX: &str = "toolu_";

/// Read and validate `tools` and `tool_choice` (names, schemas, the chosen
/// tool); what needs llama.cpp (schema → grammar) is checked when the
/// prompt is prepared, with errors from [`api_error`] too.
pub fn tool_request(
    tools: Option<Vec<wire::ToolSpec>>,
    choice: Option<wire::ToolChoice>,
) -> Result<ToolRequest, ApiError> {
    let tools = read_tools(tools, tool)?;
    let single_call = choice
        .as_ref()
        .and_then(|c| c.disable_parallel_tool_use)
        .unwrap_or(false);
    let choice = tool_choice(choice)?;
    validate(&tools, &choice).map_err(|e| api_error(e, &choice))?;
    Ok(ToolRequest {
        tools,
        choice,
        format: OutputFormat::Text,
        single_call,
    })
}

/// A client tool (`type` absent or `"custom"`) with its `input_schema`.
fn tool(index: usize, tool: wire::ToolSpec) -> Result<ToolSpec, ApiError> {
    if let Some(kind) = tool.kind.as_deref().filter(|k| *k != "custom") {
        let param = format!("tools[{index}].type");
        return Err(ApiError::invalid_request(format!(
            "{param}: tool type {kind:?} is not supported; only client tools (type \"custom\" or absent) are"
        ))
        .with_param(param));
    }
    let Some(parameters) = tool.input_schema else {
        let param = format!("tools[{index}].input_schema");
        return Err(
            ApiError::invalid_request(format!("{param}: field required")).with_param(param),
        );
    };
    Ok(ToolSpec {
        name: tool.name,
        description: tool.description,
        parameters,
    })
}

/// `auto` → auto, `any` → required, `{"type": "tool", "name"}` → that
/// tool, `none` → none; absent is auto.
fn tool_choice(choice: Option<wire::ToolChoice>) -> Result<ToolChoice, ApiError> {
    let Some(choice) = choice else {
        return Ok(ToolChoice::Auto);
    };
    match choice.kind {
        ToolChoiceKind::Auto => Ok(ToolChoice::Auto),
        ToolChoiceKind::Any => Ok(ToolChoice::Required),
        ToolChoiceKind::None => Ok(ToolChoice::None),
        ToolChoiceKind::Tool => choice.name.map(ToolChoice::Function).ok_or_else(|| {
            ApiError::invalid_request(
                "tool_choice.name: field required when tool_choice.type is \"tool\"",
            )
            .with_param("tool_choice.name")
        }),
    }
}

/// A tool-use error as a 400 whose message starts with the Anthropic path.
pub fn api_error(e: ToolUseError, choice: &ToolChoice) -> ApiError {
    let param = match e.target {
        // Anthropic requests carry no output format, so only tools remain.
        Target::Tools | Target::OutputSchema => "tools".to_owned(),
        Target::Tool { index, field } => {
            let field = match field {
                ToolField::Name => "name",
                ToolField::Parameters => "input_schema",
            };
            format!("tools[{index}].{field}")
        }
        Target::ToolChoice => match choice {
            ToolChoice::Function(_) => "tool_choice.name".to_owned(),
            _ => "tool_choice.type".to_owned(),
        },
    };
    ApiError::invalid_request(format!("{param}: {}", e.message)).with_param(param)
}

/// A fresh `tool_use` block id.
pub fn tool_use_id() -> String {
    call_id(TOOL_USE_ID_PREFIX)
}

/// A parsed call as a `tool_use` block, with a fresh id.
pub fn tool_use_block(call: ParsedCall) -> OutputBlock {
    OutputBlock::ToolUse {
        id: tool_use_id(),
        name: call.name,
        input: call.arguments,
    }
}

/// A whole reply's content: its text block (absent when calls were made
/// and no text is left around them), then one `tool_use` block per call.
pub fn content_blocks(reply: ParsedReply) -> Vec<OutputBlock> {
    let text = match reply.content {
        Some(text) => Some(text),
        // A reply without calls always has its (possibly empty) text block.
        None if reply.calls.is_empty() => Some(String::new()),
        None => None,
    };
    text.map(|text| OutputBlock::Text { text })
        .into_iter()
        .chain(reply.calls.into_iter().map(tool_use_block))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse;
    use serde_json::{json, Value};

    fn request_of(body: Value) -> Result<ToolRequest, ApiError> {
        let req: wire::MessagesRequest = parse(body.to_string().as_bytes())?;
        tool_request(req.tools, req.tool_choice)
    }

    fn param_of(body: Value) -> String {
        request_of(body).unwrap_err().param.unwrap_or_default()
    }

    fn weather() -> Value {
        json!({"name": "get_weather", "description": "d", "input_schema": {"type": "object"}})
    }

    fn with(tools: Value, choice: Value) -> Value {
        json!({"model": "default", "messages": [], "tools": tools, "tool_choice": choice})
    }

    #[test]
    fn tools_and_choices_map_to_the_neutral_request() {
        let r = request_of(with(json!([weather()]), json!({"type": "any"}))).unwrap();
        assert_eq!(r.choice, ToolChoice::Required);
        assert_eq!(
            r.tools,
            vec![ToolSpec {
                name: "get_weather".into(),
                description: Some("d".into()),
                parameters: json!({"type": "object"}),
            }]
        );
        let named = json!({"type": "tool", "name": "get_weather"});
        let r = request_of(with(json!([weather()]), named)).unwrap();
        assert_eq!(r.choice, ToolChoice::Function("get_weather".into()));
        for (kind, expected) in [("auto", ToolChoice::Auto), ("none", ToolChoice::None)] {
            let r = request_of(with(json!([weather()]), json!({"type": kind}))).unwrap();
            assert_eq!(r.choice, expected);
        }
        let bare = json!({"model": "default", "messages": []});
        assert_eq!(request_of(bare).unwrap().choice, ToolChoice::Auto);
    }

    #[test]
    fn errors_name_anthropic_paths() {
        let unknown = json!({"type": "tool", "name": "nope"});
        assert_eq!(
            param_of(with(json!([weather()]), unknown)),
            "tool_choice.name"
        );
        let nameless = json!({"type": "tool"});
        assert_eq!(
            param_of(with(json!([weather()]), nameless)),
            "tool_choice.name"
        );
        assert_eq!(
            param_of(with(json!([]), json!({"type": "any"}))),
            "tool_choice.type"
        );
        let no_schema = json!([weather(), {"name": "f"}]);
        assert_eq!(
            param_of(with(no_schema, json!({"type": "auto"}))),
            "tools[1].input_schema"
        );
        let array_schema = json!([weather(), {"name": "f", "input_schema": {"type": "array"}}]);
        let e = request_of(with(array_schema, json!({"type": "auto"}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[1].input_schema"));
        assert!(
            e.message.starts_with("tools[1].input_schema: "),
            "{}",
            e.message
        );
        let bad_name = json!([{"name": "a b", "input_schema": {}}]);
        assert_eq!(
            param_of(with(bad_name, json!({"type": "auto"}))),
            "tools[0].name"
        );
        let twice = json!([weather(), weather()]);
        assert_eq!(
            param_of(with(twice, json!({"type": "auto"}))),
            "tools[1].name"
        );
        let server_tool = json!([{"type": "web_search_20250305", "name": "web_search"}]);
        assert_eq!(
            param_of(with(server_tool, json!({"type": "auto"}))),
            "tools[0].type"
        );
    }

    #[test]
    fn replies_become_text_then_tool_use_blocks() {
        let call = ParsedCall {
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        };
        let blocks = content_blocks(ParsedReply {
            content: None,
            calls: vec![call.clone()],
        });
        let value = serde_json::to_value(&blocks).unwrap();
        let id = value[0]["id"].as_str().unwrap();
        assert!(id.starts_with("toolu_") && id.len() == 30, "{id}");
        assert_eq!(
            value,
            json!([{"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Paris"}}])
        );
        let blocks = content_blocks(ParsedReply {
            content: Some("Checking.".into()),
            calls: vec![call],
        });
        let value = serde_json::to_value(&blocks).unwrap();
        assert_eq!(value[0], json!({"type": "text", "text": "Checking."}));
        assert_eq!(value[1]["type"], "tool_use");
        let empty = content_blocks(ParsedReply {
            content: None,
            calls: vec![],
        });
        let value = serde_json::to_value(&empty).unwrap();
        assert_eq!(value, json!([{"type": "text", "text": ""}]));
    }
}
