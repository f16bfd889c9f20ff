//! Which grammar a request's output must follow, and how it is assembled.
//!
//! * a forced call (`tool_choice` required or a named function): exactly one
//!   `<tool_call>` block whose JSON is `{"name": <one of the forced tools>,
//!   "arguments": <that tool's parameters schema>}`;
//! * an output format (`json_object`, `json_schema`) with nothing forced:
//!   the document, or, when tools are offered under `auto`, either one call
//!   block or the document;
//! * otherwise none: the model writes freely and calls are parsed afterwards.
//!
//! Each part's JSON schema is turned into GBNF separately (by the engine,
//! which owns llama.cpp's converter) so a schema llama.cpp rejects can be
//! blamed on the right field; [`compose`] then namespaces the parts' rules
//! and joins them under one `root`. The result depends only on the request,
//! so the same request always constrains the same way.

use serde_json::{json, Map, Value};

use super::prompt::{CALL_CLOSE, CALL_OPEN};
use super::spec::{OutputFormat, ToolChoice, ToolSpec};
use crate::grammar::{prefix_rules, Grammar};

/// What the output is constrained to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConstraintPlan {
    /// Indices (into the tools) of the calls the grammar allows.
    pub calls: Vec<usize>,
    /// The schema of the document the grammar allows instead.
    pub document: Option<Value>,
}

impl ConstraintPlan {
    pub fn is_unconstrained(&self) -> bool {
        self.calls.is_empty() && self.document.is_none()
    }

    /// The model can only answer with a call.
    pub fn forces_call(&self) -> bool {
        !self.calls.is_empty() && self.document.is_none()
    }
}

/// Decide the constraint. `choice` must already be validated against `tools`.
pub fn plan(tools: &[ToolSpec], choice: &ToolChoice, format: &OutputFormat) -> ConstraintPlan {
    let document = match format {
        OutputFormat::Text => None,
        OutputFormat::JsonObject => Some(json!({"type": "object"})),
        OutputFormat::JsonSchema(schema) => Some(schema.clone()),
    };
    let all = || (0..tools.len()).collect::<Vec<_>>();
    match choice {
        ToolChoice::Required => ConstraintPlan {
            calls: all(),
            document: None,
        },
        ToolChoice::Function(name) => ConstraintPlan {
            calls: tools
                .iter()
                .position(|t| &t.name == name)
                .into_iter()
                .collect(),
            document: None,
        },
        ToolChoice::Auto if document.is_some() => ConstraintPlan {
            calls: all(),
            document,
        },
        ToolChoice::Auto | ToolChoice::None => ConstraintPlan {
            calls: Vec::new(),
            document,
        },
    }
}

/// The JSON schema of one call of `tool`: `{"name": const, "arguments": …}`,
/// name first, nothing else. `$ref`s inside the parameters are rebased so
/// they still resolve once the parameters sit under `properties.arguments`.
pub fn call_schema(tool: &ToolSpec) -> Value {
    let mut arguments = tool.parameters.clone();
    rebase_refs(&mut arguments, "#/properties/arguments");
    json!({
        "type": "object",
        "properties": {
            "name": {"const": tool.name},
            "arguments": arguments,
        },
        "required": ["name", "arguments"],
        "additionalProperties": false,
    })
}

/// Keywords whose values are data, not schemas: never rewritten.
const LITERAL_KEYWORDS: [&str; 4] = ["const", "enum", "default", "examples"];

/// Prefix every local `$ref` (`#…`) in `schema` with `base`.
fn rebase_refs(schema: &mut Value, base: &str) {
    match schema {
        Value::Object(map) => rebase_object(map, base),
        Value::Array(items) => items.iter_mut().for_each(|v| rebase_refs(v, base)),
        _ => {}
    }
}

fn rebase_object(map: &mut Map<String, Value>, base: &str) {
    for (key, value) in map.iter_mut() {
        if LITERAL_KEYWORDS.contains(&key.as_str()) {
            continue;
        }
        match value {
            Value::String(r) if key == "$ref" && r.starts_with('#') => {
                *r = format!("{base}{}", &r[1..]);
            }
            other => rebase_refs(other, base),
        }
    }
}

/// Join the parts' GBNF (each starting at its `root` rule) into one grammar.
/// `calls` become one `<tool_call>` block choosing among them; `document`
/// is the alternative to a call (or the only choice when `calls` is empty).
pub fn compose(calls: &[String], document: Option<&str>) -> Grammar {
    let mut gbnf = String::new();
    let mut alternatives = Vec::new();
    if !calls.is_empty() {
        let mut names = Vec::new();
        for (i, part) in calls.iter().enumerate() {
            let prefix = format!("call{i}-");
            gbnf.push_str(&prefix_rules(part, &prefix));
            gbnf.push('\n');
            names.push(format!("{prefix}root"));
        }
        alternatives.push(format!(
            "{} \"\\n\"? ( {} ) \"\\n\"? {}",
            gbnf_literal(CALL_OPEN),
            names.join(" | "),
            gbnf_literal(CALL_CLOSE)
        ));
    }
    if let Some(doc) = document {
        gbnf.push_str(&prefix_rules(doc, "doc-"));
        gbnf.push('\n');
        alternatives.push("doc-root".to_owned());
    }
    gbnf.push_str(&format!("root ::= {}\n", alternatives.join(" | ")));
    Grammar::new(gbnf)
}

/// A GBNF string literal for plain ASCII text without quotes or backslashes.
fn gbnf_literal(text: &str) -> String {
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: None,
            parameters,
        }
    }

    #[test]
    fn plans_follow_choice_and_format() {
        let tools = [tool("a", json!({})), tool("b", json!({}))];
        let text = OutputFormat::Text;
        assert!(plan(&tools, &ToolChoice::Auto, &text).is_unconstrained());
        assert!(plan(&tools, &ToolChoice::None, &text).is_unconstrained());
        let required = plan(&tools, &ToolChoice::Required, &OutputFormat::JsonObject);
        assert_eq!(required.calls, vec![0, 1]);
        assert!(required.forces_call());
        let named = plan(&tools, &ToolChoice::Function("b".into()), &text);
        assert_eq!(named.calls, vec![1]);
        let either = plan(&tools, &ToolChoice::Auto, &OutputFormat::JsonObject);
        assert_eq!(either.calls, vec![0, 1]);
        assert_eq!(either.document, Some(json!({"type": "object"})));
        assert!(!either.forces_call());
        let doc = plan(
            &[],
            &ToolChoice::Auto,
            &OutputFormat::JsonSchema(json!({"type": "array"})),
        );
        assert_eq!(doc.calls, Vec::<usize>::new());
        assert_eq!(doc.document, Some(json!({"type": "array"})));
    }

    #[test]
    fn call_schema_rebases_local_refs_only() {
        let params = json!({
            "type": "object",
            "properties": {"p": {"$ref": "#/$defs/P"}, "self": {"$ref": "#"}, "lit": {"const": {"$ref": "#/x"}}},
            "$defs": {"P": {"type": "integer"}, "R": {"$ref": "https://example.com/s"}},
        });
        let schema = call_schema(&tool("f", params));
        let args = &schema["properties"]["arguments"];
        assert_eq!(
            args["properties"]["p"]["$ref"],
            "#/properties/arguments/$defs/P"
        );
        assert_eq!(args["properties"]["self"]["$ref"], "#/properties/arguments");
        assert_eq!(args["properties"]["lit"]["const"]["$ref"], "#/x");
        assert_eq!(args["$defs"]["R"]["$ref"], "https://example.com/s");
        assert_eq!(schema["properties"]["name"], json!({"const": "f"}));
        assert_eq!(schema["required"], json!(["name", "arguments"]));
    }

    #[test]
    fn compose_namespaces_parts_under_one_root() {
        let part = "root ::= \"{\" space \"}\"\nspace ::= \" \"?\n";
        let g = compose(&[part.into(), part.into()], Some(part));
        assert_eq!(g.root, "root");
        assert!(
            g.gbnf.contains("call0-root ::= \"{\" call0-space \"}\""),
            "{}",
            g.gbnf
        );
        assert!(g.gbnf.contains("call1-space ::="), "{}", g.gbnf);
        assert!(g.gbnf.contains("doc-root ::="), "{}", g.gbnf);
        assert!(g.gbnf.ends_with(
            "root ::= \"<tool_call>\" \"\\n\"? ( call0-root | call1-root ) \"\\n\"? \"</tool_call>\" | doc-root\n"
        ), "{}", g.gbnf);
        let doc_only = compose(&[], Some(part));
        assert!(doc_only.gbnf.ends_with("root ::= doc-root\n"));
    }
}
