//! How tools and tool history reach the model.
//!
//! A chat template that reads `tools` gets the specs (OpenAI shape) and the
//! history unchanged: it knows its model's format. Otherwise (SmolLM2, plain
//! ChatML, ...) we use a fallback in the Hermes/Qwen 2.5 format, which many
//! open models were trained on:
//!
//! * a `# Tools` section appended to the system prompt (a system message is
//!   added when there is none) listing each tool as one JSON line inside
//!   `<tools></tools>` and asking for calls as
//!   `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`;
//! * assistant tool calls rendered as that same text after the content;
//! * tool results as a user turn `<tool_response>\n…\n</tool_response>`.
//!
//! JSON is written as Python's `json.dumps` does (the bytes HF templates
//! produce) and depends only on the request, so the same tools and history
//! always give the same prompt tokens and an agent's cached prefix stays valid.

use serde_json::{json, Map, Value};

use super::spec::ToolSpec;
use crate::chat::{ChatMessage, Role};
use crate::chat_template::python_json;

/// Opens a tool call in model output (Hermes format).
pub const CALL_OPEN: &str = "<tool_call>";
/// Closes a tool call in model output.
pub const CALL_CLOSE: &str = "</tool_call>";

/// The fallback's instructions; the tool list goes between the two halves.
const SECTION_HEAD: &str = "# Tools\n\n\
You may call one or more functions to assist with the user query.\n\n\
You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
const SECTION_TAIL: &str = "\n</tools>\n\n\
For each function call, return a json object with function name and arguments \
within <tool_call></tool_call> XML tags:\n\
<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

/// What the chat template is rendered with.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptInput {
    pub messages: Vec<ChatMessage>,
    /// Passed as the template's `tools` variable (only when it reads it).
    pub tools: Option<Vec<Value>>,
}

/// Prepare `messages` and `tools` for a template that does (or does not)
/// read `tools`. History is rewritten for the fallback even without tools,
/// so a conversation with past calls stays visible to the model.
pub fn prompt_input(
    messages: &[ChatMessage],
    tools: &[ToolSpec],
    template_reads_tools: bool,
) -> PromptInput {
    if template_reads_tools {
        return PromptInput {
            messages: messages.to_vec(),
            tools: (!tools.is_empty()).then(|| tools.iter().map(tool_value).collect()),
        };
    }
    let mut out: Vec<ChatMessage> = messages.iter().map(fallback_message).collect();
    if !tools.is_empty() {
        let section = tool_section(tools);
        match out.first_mut() {
            Some(first) if first.role == Role::System => {
                first.content = format!("{}\n\n{section}", first.content);
            }
            _ => out.insert(0, ChatMessage::system(section)),
        }
    }
    PromptInput {
        messages: out,
        tools: None,
    }
}

/// A tool in OpenAI's shape, the one HF templates expect.
pub fn tool_value(tool: &ToolSpec) -> Value {
    let mut function = Map::new();
    function.insert("name".into(), tool.name.clone().into());
    if let Some(d) = &tool.description {
        function.insert("description".into(), d.clone().into());
    }
    function.insert("parameters".into(), tool.parameters.clone());
    json!({"type": "function", "function": function})
}

/// The fallback system-prompt section listing `tools`.
pub fn tool_section(tools: &[ToolSpec]) -> String {
    let mut text = SECTION_HEAD.to_owned();
    for tool in tools {
        text.push('\n');
        text.push_str(&python_json(&tool_value(tool)));
    }
    text.push_str(SECTION_TAIL);
    text
}

/// One call as the fallback format writes it.
pub fn render_call(name: &str, arguments: &Value) -> String {
    let call = json!({"name": name, "arguments": arguments});
    format!("{CALL_OPEN}\n{}\n{CALL_CLOSE}", python_json(&call))
}

fn fallback_message(m: &ChatMessage) -> ChatMessage {
    match m.role {
        Role::Assistant if !m.tool_calls.is_empty() => {
            let calls: Vec<String> = m
                .tool_calls
                .iter()
                .map(|c| render_call(&c.name, &c.arguments))
                .collect();
            let mut content = m.content.clone();
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&calls.join("\n"));
            ChatMessage::assistant(content)
        }
        Role::Tool => {
            ChatMessage::user(format!("<tool_response>\n{}\n</tool_response>", m.content))
        }
        _ => m.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ToolCall;

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "get_weather".into(),
            description: Some("Weather in a city".into()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }
    }

    #[test]
    fn section_lists_each_tool_as_python_json() {
        let text = tool_section(&[weather()]);
        let expected_line = r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#;
        assert!(text.starts_with("# Tools\n"), "{text}");
        assert!(
            text.contains(&format!("<tools>\n{expected_line}\n</tools>")),
            "{text}"
        );
        assert!(text.ends_with("</tool_call>"));
    }

    #[test]
    fn fallback_appends_to_system_or_adds_one() {
        let with_system = prompt_input(
            &[ChatMessage::system("Be brief."), ChatMessage::user("Hi")],
            &[weather()],
            false,
        );
        assert_eq!(with_system.messages.len(), 2);
        assert!(with_system.messages[0]
            .content
            .starts_with("Be brief.\n\n# Tools"));
        assert_eq!(with_system.tools, None);
        let without = prompt_input(&[ChatMessage::user("Hi")], &[weather()], false);
        assert_eq!(without.messages[0].role, Role::System);
        assert_eq!(without.messages[0].content, tool_section(&[weather()]));
        assert_eq!(without.messages[1], ChatMessage::user("Hi"));
    }

    #[test]
    fn fallback_renders_history_as_text() {
        let mut asked = ChatMessage::assistant("Checking.");
        asked.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        });
        let out = prompt_input(&[asked, ChatMessage::tool("call_1", "sunny")], &[], false);
        assert_eq!(
            out.messages,
            vec![
                ChatMessage::assistant(
                    "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
                ),
                ChatMessage::user("<tool_response>\nsunny\n</tool_response>"),
            ]
        );
    }

    #[test]
    fn template_with_tools_gets_specs_and_untouched_history() {
        let msgs = [ChatMessage::user("Hi"), ChatMessage::tool("c", "r")];
        let out = prompt_input(&msgs, &[weather()], true);
        assert_eq!(out.messages, msgs.to_vec());
        assert_eq!(out.tools, Some(vec![tool_value(&weather())]));
        assert_eq!(prompt_input(&msgs, &[], true).tools, None);
    }

    #[test]
    fn same_request_same_prompt() {
        let a = prompt_input(&[ChatMessage::user("Hi")], &[weather()], false);
        let b = prompt_input(&[ChatMessage::user("Hi")], &[weather()], false);
        assert_eq!(a, b);
    }
}
