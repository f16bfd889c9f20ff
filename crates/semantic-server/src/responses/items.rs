//! Reading a request's `input` into [`Item`]s, and rendering a
//! conversation's items as the chat messages the template takes.
//!
//! `input` is read by hand from JSON so every error names its path
//! (`input[2].content[0].type`). Items that carry nothing a text model can
//! use (`reasoning`, hosted tools' calls) are skipped; parts a text model
//! cannot read (`input_image`, `input_file`, `input_audio`) are refused.

use semantic_domain::chat::{ChatMessage, Role, ToolCall};
use serde_json::{Map, Value};

use super::types::{FunctionCallItem, FunctionCallOutputItem, Item, MessageItem, Part};
use crate::error::ApiError;

/// A fresh item id: `prefix` and 32 hex digits.
pub fn item_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Item types that carry nothing for a text model: accepted, skipped.
const SKIPPED: &[&str] = &[
    "reasoning",
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "image_generation_call",
    "code_interpreter_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "compaction",
];

/// The items of `input`: a string is one user message.
pub fn parse_input(input: &Value) -> Result<Vec<Item>, ApiError> {
    match input {
        Value::String(text) => Ok(vec![message(
            "user",
            vec![Part::InputText { text: text.clone() }],
        )]),
        Value::Array(entries) => {
            let mut items = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                items.extend(parse_item(i, entry)?);
            }
            Ok(items)
        }
        _ => Err(invalid(
            "input must be a string or an array of items",
            "input",
        )),
    }
}

fn message(role: &str, content: Vec<Part>) -> Item {
    Item::Message(MessageItem {
        id: item_id("msg"),
        status: None,
        role: role.to_owned(),
        content,
    })
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

fn parse_item(i: usize, entry: &Value) -> Result<Option<Item>, ApiError> {
    let at = format!("input[{i}]");
    let Some(obj) = entry.as_object() else {
        return Err(invalid(format!("{at} must be an object"), at));
    };
    let kind = match obj.get("type") {
        None if obj.contains_key("role") => "message",
        None => {
            return Err(invalid(
                format!("{at} needs a \"type\""),
                format!("{at}.type"),
            ))
        }
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => {
            return Err(invalid(
                format!("{at}.type must be a string"),
                format!("{at}.type"),
            ))
        }
    };
    let id = |prefix: &str| {
        obj.get("id")
            .and_then(Value::as_str)
            .map_or_else(|| item_id(prefix), str::to_owned)
    };
    let item = match kind {
        "message" => Item::Message(MessageItem {
            id: id("msg"),
            status: None,
            role: role(obj, &at)?,
            content: content(obj, &at)?,
        }),
        "function_call" | "custom_tool_call" | "local_shell_call" => {
            Item::FunctionCall(FunctionCallItem {
                id: id("fc"),
                call_id: string(obj, "call_id", &at)?,
                name: match kind {
                    "local_shell_call" => "local_shell".to_owned(),
                    _ => string(obj, "name", &at)?,
                },
                arguments: arguments(obj, kind),
                status: None,
            })
        }
        "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
            Item::FunctionCallOutput(FunctionCallOutputItem {
                id: id("fco"),
                call_id: string(obj, "call_id", &at)?,
                output: output(obj.get("output"), &at)?,
                status: None,
            })
        }
        "item_reference" => {
            return Err(invalid(
                format!("{at}: item_reference is not supported; send the item itself, or continue with previous_response_id"),
                format!("{at}.type"),
            ))
        }
        skipped if SKIPPED.contains(&skipped) => return Ok(None),
        other => {
            tracing::info!(item_type = other, "skipping an input item of an unknown type");
            return Ok(None);
        }
    };
    Ok(Some(item))
}

fn string(obj: &Map<String, Value>, field: &str, at: &str) -> Result<String, ApiError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(invalid(
            format!("{at}.{field} must be a string"),
            format!("{at}.{field}"),
        )),
    }
}

fn role(obj: &Map<String, Value>, at: &str) -> Result<String, ApiError> {
    let role = string(obj, "role", at)?;
    match role.as_str() {
        "user" | "assistant" | "system" | "developer" => Ok(role),
        other => Err(invalid(
            format!("{at}.role {other:?} is not one of user, assistant, system, developer"),
            format!("{at}.role"),
        )),
    }
}

fn content(obj: &Map<String, Value>, at: &str) -> Result<Vec<Part>, ApiError> {
    let assistant = obj.get("role").and_then(Value::as_str) == Some("assistant");
    match obj.get("content") {
        Some(Value::String(text)) if assistant => Ok(vec![Part::OutputText {
            text: text.clone(),
            annotations: Vec::new(),
        }]),
        Some(Value::String(text)) => Ok(vec![Part::InputText { text: text.clone() }]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| part(p, &format!("{at}.content[{j}]")))
            .collect(),
        _ => Err(invalid(
            format!("{at}.content must be a string or an array of parts"),
            format!("{at}.content"),
        )),
    }
}

fn part(value: &Value, at: &str) -> Result<Part, ApiError> {
    let Some(obj) = value.as_object() else {
        return Err(invalid(format!("{at} must be an object"), at));
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "input_text" | "text" => Ok(Part::InputText {
            text: string(obj, "text", at)?,
        }),
        "output_text" => Ok(Part::OutputText {
            text: string(obj, "text", at)?,
            annotations: Vec::new(),
        }),
        "refusal" => Ok(Part::Refusal {
            refusal: string(obj, "refusal", at)?,
        }),
        "input_image" | "input_file" | "input_audio" => Err(invalid(
            format!(
                "content part type {kind:?} is not supported: the served model reads text only"
            ),
            format!("{at}.type"),
        )),
        other => Err(invalid(
            format!("content part type {other:?} is not supported; use input_text or output_text"),
            format!("{at}.type"),
        )),
    }
}

/// A call's arguments as JSON text: `arguments` of a function call, the
/// free-form `input` of a custom tool call, a shell call's `action`.
fn arguments(obj: &Map<String, Value>, kind: &str) -> String {
    let field = match kind {
        "custom_tool_call" => "input",
        "local_shell_call" => "action",
        _ => "arguments",
    };
    match obj.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "{}".to_owned(),
    }
}

/// A call's output: a string, or text parts joined.
fn output(value: Option<&Value>, at: &str) -> Result<String, ApiError> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                text.push_str(part(p, &format!("{at}.output[{j}]"))?.text());
            }
            Ok(text)
        }
        Some(other @ Value::Object(_)) => Ok(other.to_string()),
        _ => Err(invalid(
            format!("{at}.output must be a string or an array of parts"),
            format!("{at}.output"),
        )),
    }
}

/// One piece of a conversation to render.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// An item the client sent (now or in a stored turn).
    Item(Item),
    /// A stored turn's reply exactly as the model generated it: rendered
    /// as one assistant message, so the prompt extends the agent's KV
    /// token for token (its output items would re-render tool calls in
    /// the template's own JSON spacing).
    Reply(String),
}

/// The chat messages of a conversation: `instructions` first, then each
/// entry. A function call joins the assistant message before it (a reply
/// with text and calls is one assistant turn, as the model produced it).
pub fn to_messages(instructions: Option<&str>, entries: &[Entry]) -> Vec<ChatMessage> {
    let mut messages: Vec<ChatMessage> = Vec::with_capacity(entries.len() + 1);
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        messages.push(ChatMessage::system(text));
    }
    for entry in entries {
        let item = match entry {
            Entry::Reply(text) => {
                messages.push(ChatMessage::assistant(text.clone()));
                continue;
            }
            Entry::Item(item) => item,
        };
        match item {
            Item::Message(m) => messages.push(ChatMessage {
                role: match m.role.as_str() {
                    "assistant" => Role::Assistant,
                    "system" | "developer" => Role::System,
                    _ => Role::User,
                },
                content: m.content.iter().map(Part::text).collect(),
                tool_calls: Vec::new(),
                tool_call_id: None,
                name: None,
            }),
            Item::FunctionCall(call) => {
                let call = ToolCall {
                    id: call.call_id.clone(),
                    name: call.name.clone(),
                    // Templates iterate arguments as an object.
                    arguments: serde_json::from_str(&call.arguments)
                        .unwrap_or_else(|_| Value::String(call.arguments.clone())),
                };
                match messages.last_mut() {
                    Some(last) if last.role == Role::Assistant => last.tool_calls.push(call),
                    _ => messages.push(ChatMessage {
                        role: Role::Assistant,
                        content: String::new(),
                        tool_calls: vec![call],
                        tool_call_id: None,
                        name: None,
                    }),
                }
            }
            Item::FunctionCallOutput(out) => {
                messages.push(ChatMessage::tool(out.call_id.clone(), out.output.clone()));
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entries(items: Vec<Item>) -> Vec<Entry> {
        items.into_iter().map(Entry::Item).collect()
    }

    #[test]
    fn a_string_is_one_user_message() {
        let items = entries(parse_input(&json!("hi")).unwrap());
        assert_eq!(
            to_messages(Some("be brief"), &items),
            vec![ChatMessage::system("be brief"), ChatMessage::user("hi")]
        );
    }

    #[test]
    fn items_render_as_one_assistant_turn_per_reply() {
        let input = json!([
            {"role": "developer", "content": "rules"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"x\":1}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "not json"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {"type": "web_search_call", "id": "ws_1"},
        ]);
        let items = parse_input(&input).unwrap();
        assert_eq!(items.len(), 6, "reasoning and hosted calls are skipped");
        let m = to_messages(None, &entries(items));
        assert_eq!(m.len(), 4);
        assert_eq!(m[0], ChatMessage::system("rules"));
        assert_eq!(m[1], ChatMessage::user("ab"));
        assert_eq!(m[2].content, "calling");
        assert_eq!(m[2].tool_calls.len(), 2);
        assert_eq!(m[2].tool_calls[0].arguments, json!({"x": 1}));
        assert_eq!(m[2].tool_calls[1].arguments, json!("not json"));
        assert_eq!(m[3], ChatMessage::tool("c1", "42"));
    }

    #[test]
    fn unsupported_shapes_name_their_path() {
        let cases = [
            (json!(5), "input"),
            (
                json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
                "input[0].content[0].type",
            ),
            (json!([{"role": "robot", "content": "x"}]), "input[0].role"),
            (
                json!([{"type": "function_call", "name": "f"}]),
                "input[0].call_id",
            ),
            (json!([{"role": "user", "content": 3}]), "input[0].content"),
            (json!(["x"]), "input[0]"),
            (
                json!([{"type": "item_reference", "id": "msg_1"}]),
                "input[0].type",
            ),
        ];
        for (input, param) in cases {
            let e = parse_input(&input).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{input}: {}", e.message);
        }
    }

    #[test]
    fn output_items_round_trip_as_input() {
        let out = Item::FunctionCall(FunctionCallItem {
            id: "fc_1".into(),
            call_id: "call_1".into(),
            name: "f".into(),
            arguments: "{}".into(),
            status: Some("completed".into()),
        });
        let again = parse_input(&json!([serde_json::to_value(&out).unwrap()])).unwrap();
        let Item::FunctionCall(call) = &again[0] else {
            panic!("{again:?}")
        };
        assert_eq!(
            (call.id.as_str(), call.call_id.as_str()),
            ("fc_1", "call_1")
        );
    }
}
