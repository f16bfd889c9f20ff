//! The tools the tool-use tests offer, written once and rendered in either
//! API family's shape, and the checks their forced calls' input must pass.

use serde_json::{json, Map, Value};

pub const UNITS: [&str; 2] = ["celsius", "fahrenheit"];
pub const ZONES: [&str; 2] = ["UTC", "CET"];

/// Which API family's wire shape a tool is written in.
#[derive(Clone, Copy, Debug)]
pub enum Family {
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`
    OpenAi,
    /// `{"name", "description", "input_schema"}`
    Anthropic,
}

/// A tool in no family's shape: its name, description and input schema.
pub struct ToolFixture {
    pub name: &'static str,
    pub description: Option<&'static str>,
    pub schema: Value,
}

/// `get_weather(city, unit, days)`: a bounded string, an enum, an integer.
pub fn weather() -> ToolFixture {
    ToolFixture {
        name: "get_weather",
        description: Some("Current weather in a city"),
        schema: json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"enum": UNITS},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": false,
        }),
    }
}

/// `get_time(zone)`, without a description.
pub fn time() -> ToolFixture {
    ToolFixture {
        name: "get_time",
        description: None,
        schema: json!({
            "type": "object",
            "properties": {"zone": {"enum": ZONES}},
            "required": ["zone"],
            "additionalProperties": false,
        }),
    }
}

impl ToolFixture {
    /// This tool as an entry of `tools` in `family`'s shape.
    pub fn in_shape(self, family: Family) -> Value {
        let mut spec = Map::new();
        spec.insert("name".into(), self.name.into());
        if let Some(description) = self.description {
            spec.insert("description".into(), description.into());
        }
        match family {
            Family::OpenAi => {
                spec.insert("parameters".into(), self.schema);
                json!({"type": "function", "function": spec})
            }
            Family::Anthropic => {
                spec.insert("input_schema".into(), self.schema);
                Value::Object(spec)
            }
        }
    }
}

/// A greedy request about Paris' weather offering both tools in `family`'s
/// shape; its body is valid on both APIs.
pub fn ask_weather(family: Family, tool_choice: Value) -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "user", "content": "What is the weather in Paris for the next 3 days?"}],
        "tools": [weather().in_shape(family), time().in_shape(family)],
        "tool_choice": tool_choice,
        "temperature": 0,
        "max_tokens": 96,
    })
}

/// Assert a call's input satisfies its tool's schema.
pub fn assert_valid_input(name: &str, input: &Value) {
    match name {
        "get_weather" => {
            let city = input["city"].as_str().expect("city is a string");
            assert!(city.chars().count() <= 24, "{input}");
            let unit = input["unit"].as_str().expect("unit");
            assert!(UNITS.contains(&unit), "{input}");
            assert!(input["days"].is_i64(), "{input}");
            assert_eq!(input.as_object().unwrap().len(), 3, "{input}");
        }
        "get_time" => {
            assert!(ZONES.contains(&input["zone"].as_str().expect("zone")));
            assert_eq!(input.as_object().unwrap().len(), 1, "{input}");
        }
        other => panic!("called unknown tool {other}"),
    }
}
