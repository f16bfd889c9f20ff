//! Reading tool calls out of model output, whole or as it streams.
//!
//! Calls are `<tool_call>{"name": …, "arguments": {…}}</tool_call>` blocks
//! (Hermes format, whitespace around the JSON allowed); `"parameters"` is
//! accepted for `"arguments"`, and arguments encoded as a JSON string are
//! decoded. A block whose JSON is malformed, whose arguments are not an
//! object, or whose name is not an offered tool stays plain text: under
//! `tool_choice: auto` a weak model's near-miss is an answer, never an error.
//! A block left open at the end (a stop string or `max_tokens` cut its
//! closing tag) still counts when its JSON is complete. When the call was
//! forced, a bare `{"name": …}` document is a call too.
//!
//! The streaming [`ReplyParser`] and the whole-text [`parse_reply`] are the
//! same code, so a streamed reply yields exactly the calls of a buffered one.

use serde_json::Value;

use super::prompt::{CALL_CLOSE, CALL_OPEN};

/// A call the model made.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCall {
    pub name: String,
    /// Always a JSON object.
    pub arguments: Value,
}

/// A whole reply: content (`None` when calls were made and no text is left
/// around them) and the calls, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedReply {
    pub content: Option<String>,
    pub calls: Vec<ParsedCall>,
}

/// What the streaming parser releases.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyEvent {
    /// Text that is certainly content.
    Text(String),
    Call(ParsedCall),
}

/// Incremental parser: feed output text as it arrives, then [`finish`](Self::finish).
///
/// Text that might be the start of `<tool_call>` is held back until it
/// cannot be; text inside a block is held until the block closes. Trailing
/// whitespace is held too and dropped if a call follows, so a streamed
/// reply's content matches a buffered one's.
#[derive(Clone, Debug)]
pub struct ReplyParser {
    names: Vec<String>,
    forced: bool,
    /// Unreleased text: a possible tag start, or a block's body.
    buf: String,
    in_call: bool,
    /// Released-but-held whitespace.
    space: String,
    /// Everything seen, kept only when forced (for the bare-JSON case).
    raw: String,
    calls: usize,
    /// Forced replies release text only at the end.
    held_text: String,
    /// Calls after the first are dropped (`parallel_tool_calls: false`,
    /// Anthropic's `disable_parallel_tool_use`).
    one_call: bool,
}

impl ReplyParser {
    /// `names`: the offered tools; `forced`: a grammar made the model call one.
    pub fn new(names: Vec<String>, forced: bool) -> Self {
        Self {
            names,
            forced,
            buf: String::new(),
            in_call: false,
            space: String::new(),
            raw: String::new(),
            calls: 0,
            held_text: String::new(),
            one_call: false,
        }
    }

    /// The same parser, releasing at most one call: the client asked for
    /// no parallel calls, so any block after the first is dropped whole.
    pub fn at_most_one_call(mut self) -> Self {
        self.one_call = true;
        self
    }

    /// Calls released so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    pub fn push(&mut self, text: &str) -> Vec<ReplyEvent> {
        if self.forced {
            self.raw.push_str(text);
        }
        self.buf.push_str(text);
        let mut events = Vec::new();
        loop {
            if self.in_call {
                let Some(end) = self.buf.find(CALL_CLOSE) else {
                    break;
                };
                let body: String = self.buf.drain(..end + CALL_CLOSE.len()).collect();
                self.in_call = false;
                self.close_block(&body[..end], Some(CALL_CLOSE), &mut events);
            } else if let Some(start) = self.buf.find(CALL_OPEN) {
                let before: String = self.buf.drain(..start + CALL_OPEN.len()).collect();
                self.text(&before[..start], &mut events);
                self.in_call = true;
            } else {
                let keep = partial_suffix(&self.buf, CALL_OPEN);
                let ready: String = self.buf.drain(..self.buf.len() - keep).collect();
                self.text(&ready, &mut events);
                break;
            }
        }
        events
    }

    /// The reply ended: release what was held.
    pub fn finish(&mut self) -> Vec<ReplyEvent> {
        let mut events = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        if self.in_call {
            self.in_call = false;
            self.close_block(&rest, None, &mut events);
        } else {
            self.text(&rest, &mut events);
        }
        if self.forced && self.calls == 0 {
            if let Some(call) = decode_call(&self.raw, &self.names) {
                self.calls += 1;
                return vec![ReplyEvent::Call(call)];
            }
        }
        let mut tail = std::mem::take(&mut self.held_text);
        if self.calls == 0 {
            tail.push_str(&std::mem::take(&mut self.space));
        }
        if !tail.is_empty() {
            events.push(ReplyEvent::Text(tail));
        }
        events
    }

    /// A block ended (closed, or cut off when `close` is `None`).
    fn close_block(&mut self, body: &str, close: Option<&str>, events: &mut Vec<ReplyEvent>) {
        match decode_call(body, &self.names) {
            Some(_) if self.one_call && self.calls > 0 => self.space.clear(),
            Some(call) => {
                self.space.clear();
                self.calls += 1;
                events.push(ReplyEvent::Call(call));
            }
            None => {
                let text = format!("{CALL_OPEN}{body}{}", close.unwrap_or(""));
                self.text(&text, events);
            }
        }
    }

    /// Release content, holding trailing whitespace back.
    fn text(&mut self, text: &str, events: &mut Vec<ReplyEvent>) {
        self.space.push_str(text);
        let solid = self.space.trim_end().len();
        if solid == 0 {
            return;
        }
        let ready: String = self.space.drain(..solid).collect();
        if self.forced {
            self.held_text.push_str(&ready);
        } else {
            events.push(ReplyEvent::Text(ready));
        }
    }
}

/// The whole-text form of [`ReplyParser`].
pub fn parse_reply(text: &str, names: &[String], forced: bool) -> ParsedReply {
    ReplyParser::new(names.to_vec(), forced).parse_whole(text)
}

impl ReplyParser {
    /// Parse a whole reply with a fresh parser.
    pub fn parse_whole(mut self, text: &str) -> ParsedReply {
        let mut events = self.push(text);
        events.extend(self.finish());
        let mut content = String::new();
        let mut calls = Vec::new();
        for event in events {
            match event {
                ReplyEvent::Text(t) => content.push_str(&t),
                ReplyEvent::Call(c) => calls.push(c),
            }
        }
        if calls.is_empty() {
            // No call: the reply is returned exactly as generated.
            return ParsedReply {
                content: Some(text.to_owned()),
                calls,
            };
        }
        let content = content.trim();
        ParsedReply {
            content: (!content.is_empty()).then(|| content.to_owned()),
            calls,
        }
    }
}

/// A block's JSON as a call of an offered tool, or `None`.
pub fn decode_call(body: &str, names: &[String]) -> Option<ParsedCall> {
    let Value::Object(mut call) = serde_json::from_str(body.trim()).ok()? else {
        return None;
    };
    let name = call.get("name")?.as_str()?.to_owned();
    if !names.contains(&name) {
        return None;
    }
    let arguments = match call
        .remove("arguments")
        .or_else(|| call.remove("parameters"))
    {
        None => Value::Object(Default::default()),
        Some(Value::String(s)) => serde_json::from_str(&s).ok()?,
        Some(v) => v,
    };
    arguments
        .is_object()
        .then_some(ParsedCall { name, arguments })
}

/// Length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && text.ends_with(&tag[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Vec<String> {
        vec!["get_weather".into(), "add".into()]
    }

    fn call(name: &str, arguments: Value) -> ParsedCall {
        ParsedCall {
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn single_call_has_no_content() {
        let out = parse_reply(
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
            &names(),
            false,
        );
        assert_eq!(out.content, None);
        assert_eq!(
            out.calls,
            vec![call("get_weather", json!({"city": "Paris"}))]
        );
    }

    #[test]
    fn multiple_calls_and_text_around_them() {
        let text = "Let me check.\n<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}</tool_call>\n\
                    <tool_call>{\"name\":\"add\",\"parameters\":\"{\\\"a\\\": 1}\"}</tool_call>\nDone.";
        let out = parse_reply(text, &names(), false);
        assert_eq!(out.content.as_deref(), Some("Let me check.\nDone."));
        assert_eq!(
            out.calls,
            vec![
                call("get_weather", json!({"city": "Oslo"})),
                call("add", json!({"a": 1}))
            ]
        );
    }

    #[test]
    fn one_call_at_most_drops_the_later_blocks() {
        let text = "Let me check.\n<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}</tool_call>\n\
                    <tool_call>{\"name\":\"add\",\"arguments\":{\"a\": 1}}</tool_call>\nDone.";
        let parser = ReplyParser::new(names(), false).at_most_one_call();
        let out = parser.clone().parse_whole(text);
        assert_eq!(out.content.as_deref(), Some("Let me check.\nDone."));
        assert_eq!(
            out.calls,
            vec![call("get_weather", json!({"city": "Oslo"}))]
        );
        let mut streamed = parser;
        let mut events = Vec::new();
        for piece in text.as_bytes().chunks(5) {
            events.extend(streamed.push(std::str::from_utf8(piece).unwrap()));
        }
        events.extend(streamed.finish());
        let calls = events.iter().filter(|e| matches!(e, ReplyEvent::Call(_)));
        assert_eq!(calls.count(), 1, "{events:?}");
    }

    #[test]
    fn malformed_or_unknown_calls_stay_text() {
        for text in [
            "<tool_call>{\"name\": \"get_weather\", \"arguments\": {</tool_call>",
            "<tool_call>{\"name\": \"launch\", \"arguments\": {}}</tool_call>",
            "<tool_call>{\"name\": \"add\", \"arguments\": [1]}</tool_call>",
            "<tool_call>not json",
            "plain <tool_ca",
            "",
        ] {
            let out = parse_reply(text, &names(), false);
            assert_eq!(out.calls, vec![], "{text}");
            assert_eq!(out.content.as_deref(), Some(text));
        }
    }

    #[test]
    fn unclosed_complete_block_counts() {
        let out = parse_reply(
            "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2}}\n",
            &names(),
            false,
        );
        assert_eq!(out.calls, vec![call("add", json!({"a": 2}))]);
    }

    #[test]
    fn bare_json_counts_only_when_forced() {
        let text = "{\"name\": \"add\", \"arguments\": {\"a\": 3}}";
        assert_eq!(parse_reply(text, &names(), false).calls, vec![]);
        let out = parse_reply(text, &names(), true);
        assert_eq!(out.calls, vec![call("add", json!({"a": 3}))]);
        assert_eq!(out.content, None);
    }

    #[test]
    fn streaming_in_tiny_pieces_matches_whole_text() {
        let text = "Sure! <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": \"é<\"}}\n</tool_call>\n  <tool_x> tail";
        let whole = parse_reply(text, &names(), false);
        let mut parser = ReplyParser::new(names(), false);
        let mut events = Vec::new();
        for c in text.chars() {
            events.extend(parser.push(&c.to_string()));
        }
        events.extend(parser.finish());
        let mut content = String::new();
        let mut calls = Vec::new();
        for e in events {
            match e {
                ReplyEvent::Text(t) => content.push_str(&t),
                ReplyEvent::Call(c) => calls.push(c),
            }
        }
        assert_eq!(calls, whole.calls);
        assert_eq!(Some(content.trim().to_owned()), whole.content);
    }

    #[test]
    fn text_is_released_once_it_cannot_start_a_call() {
        let mut parser = ReplyParser::new(names(), false);
        assert_eq!(
            parser.push("Hello <tool"),
            vec![ReplyEvent::Text("Hello".into())]
        );
        assert_eq!(
            parser.push("box> "),
            vec![ReplyEvent::Text(" <toolbox>".into())]
        );
        assert_eq!(parser.finish(), vec![ReplyEvent::Text(" ".into())]);
    }
}
