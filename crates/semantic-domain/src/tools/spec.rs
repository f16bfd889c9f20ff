//! What a client offers and asks for: tool specs, tool choice and the
//! required output format, with validation that names the field at fault.
//!
//! Field names are API-neutral ([`Target`]); each HTTP adapter maps them to
//! its own wire paths (`tools[1].function.name` for OpenAI, `tools[1].name`
//! for Anthropic).

use std::collections::HashSet;

use serde_json::Value;

/// Most tools one request may offer (OpenAI's limit).
pub const MAX_TOOLS: usize = 128;
/// Longest tool name, in bytes.
pub const MAX_TOOL_NAME: usize = 64;

/// One function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    /// A JSON schema of type object describing the arguments.
    pub parameters: Value,
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides: text or calls, parsed afterwards (unconstrained).
    #[default]
    Auto,
    /// No call is parsed; the tools stay in the prompt so the prompt (and the
    /// agent's cached KV) is the same as under `Auto`.
    None,
    /// At least one call is forced by a grammar.
    Required,
    /// A call of this tool is forced by a grammar.
    Function(String),
}

/// The shape the reply must take when no tool call is forced.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum OutputFormat {
    /// Free text.
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// A JSON document matching this schema.
    JsonSchema(Value),
}

/// A part of a tool spec an error can point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolField {
    Name,
    Parameters,
}

/// Where, in API-neutral terms, a tool-use error lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The tool list as a whole (too many tools).
    Tools,
    Tool {
        index: usize,
        field: ToolField,
    },
    ToolChoice,
    /// The output format's schema.
    OutputSchema,
}

/// A request's tools, choice or output format cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolUseError {
    pub target: Target,
    pub message: String,
}

impl ToolUseError {
    pub fn new(target: Target, message: impl Into<String>) -> Self {
        Self {
            target,
            message: message.into(),
        }
    }

    fn tool(index: usize, field: ToolField, message: impl Into<String>) -> Self {
        Self::new(Target::Tool { index, field }, message)
    }
}

/// `^[A-Za-z0-9_-]{1,64}$`, the name rule OpenAI and Anthropic share.
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Check names (valid, unique), parameter schemas (objects of type object)
/// and that the choice names an offered tool.
pub fn validate(tools: &[ToolSpec], choice: &ToolChoice) -> Result<(), ToolUseError> {
    if tools.len() > MAX_TOOLS {
        return Err(ToolUseError::new(
            Target::Tools,
            format!("at most {MAX_TOOLS} tools are allowed, got {}", tools.len()),
        ));
    }
    let mut seen = HashSet::new();
    for (index, tool) in tools.iter().enumerate() {
        if !is_valid_tool_name(&tool.name) {
            return Err(ToolUseError::tool(
                index,
                ToolField::Name,
                format!(
                    "tool name {:?} must be 1 to {MAX_TOOL_NAME} characters of A-Z, a-z, 0-9, _ or -",
                    tool.name
                ),
            ));
        }
        if !seen.insert(tool.name.as_str()) {
            return Err(ToolUseError::tool(
                index,
                ToolField::Name,
                format!("tool name {:?} is used by more than one tool", tool.name),
            ));
        }
        check_parameters(&tool.parameters)
            .map_err(|m| ToolUseError::tool(index, ToolField::Parameters, m))?;
    }
    check_choice(tools, choice)
}

fn check_parameters(schema: &Value) -> Result<(), String> {
    let Some(object) = schema.as_object() else {
        return Err("the schema must be a JSON object".into());
    };
    match object.get("type") {
        None => Ok(()),
        Some(Value::String(t)) if t == "object" => Ok(()),
        Some(other) => Err(format!(
            "the schema must be of type \"object\", got type {other}"
        )),
    }
}

fn check_choice(tools: &[ToolSpec], choice: &ToolChoice) -> Result<(), ToolUseError> {
    let err = |message: String| Err(ToolUseError::new(Target::ToolChoice, message));
    match choice {
        ToolChoice::Auto | ToolChoice::None => Ok(()),
        ToolChoice::Required if tools.is_empty() => {
            err("a forced tool call needs at least one tool in tools".into())
        }
        ToolChoice::Required => Ok(()),
        ToolChoice::Function(name) if tools.iter().any(|t| &t.name == name) => Ok(()),
        ToolChoice::Function(name) => err(format!(
            "tool_choice names the tool {name:?}, which is not in tools"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: None,
            parameters: json!({"type": "object", "properties": {}}),
        }
    }

    #[test]
    fn names_follow_the_shared_rule() {
        assert!(is_valid_tool_name("get_weather-2"));
        assert!(is_valid_tool_name(&"a".repeat(64)));
        for bad in ["", "has space", "dot.name", "é", &"a".repeat(65)] {
            assert!(!is_valid_tool_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_point_at_the_tool_and_field() {
        let e = validate(&[tool("a"), tool("b c")], &ToolChoice::Auto).unwrap_err();
        assert_eq!(
            e.target,
            Target::Tool {
                index: 1,
                field: ToolField::Name
            }
        );
        let e = validate(&[tool("a"), tool("a")], &ToolChoice::Auto).unwrap_err();
        assert!(e.message.contains("more than one"), "{}", e.message);
        let mut bad = tool("a");
        bad.parameters = json!({"type": "string"});
        let e = validate(&[bad], &ToolChoice::Auto).unwrap_err();
        assert_eq!(
            e.target,
            Target::Tool {
                index: 0,
                field: ToolField::Parameters
            }
        );
        let mut bad = tool("a");
        bad.parameters = json!([1]);
        assert!(validate(&[bad], &ToolChoice::Auto).is_err());
    }

    #[test]
    fn choice_must_name_an_offered_tool() {
        let tools = [tool("a")];
        assert_eq!(validate(&tools, &ToolChoice::Function("a".into())), Ok(()));
        let e = validate(&tools, &ToolChoice::Function("zz".into())).unwrap_err();
        assert_eq!(e.target, Target::ToolChoice);
        assert!(e.message.contains("zz"));
        let e = validate(&[], &ToolChoice::Required).unwrap_err();
        assert_eq!(e.target, Target::ToolChoice);
        assert_eq!(validate(&[], &ToolChoice::None), Ok(()));
        let many: Vec<_> = (0..=MAX_TOOLS).map(|i| tool(&format!("t{i}"))).collect();
        assert_eq!(
            validate(&many, &ToolChoice::Auto).unwrap_err().target,
            Target::Tools
        );
    }
}
