//! The streamed form of a response: OpenAI's named events, each with a
//! `sequence_number`, rendered for [`crate::reply_stream`].
//!
//! Order: `response.created`, `response.in_progress`; for text,
//! `response.output_item.added` (a message), `response.content_part.added`,
//! `response.output_text.delta`…, `response.output_text.done`,
//! `response.content_part.done`, `response.output_item.done`; for each
//! call, `response.output_item.added` (a function call with empty
//! arguments), `response.function_call_arguments.delta` and `.done`,
//! `response.output_item.done` carrying the whole item (Codex reads calls
//! from this event only); then exactly one terminal event:
//! `response.completed`, `response.incomplete` or `response.failed`.
//! The response is stored before its terminal event is sent.

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::tools::ParsedCall;
use serde_json::{json, Value};

use super::items::item_id;
use super::turn::{call_item, message_item, Turn};
use super::types::{Item, MessageItem, ResponseObject};
use crate::error::ApiError;
use crate::generation::Submitted;
use crate::reply_stream::{self, Pending, StreamEnd, StreamFormat};
use crate::sse::named_event;

/// The message item being streamed: its id, position and text so far.
struct OpenMessage {
    id: String,
    index: usize,
    text: String,
}

struct ResponseFormat {
    turn: Turn,
    sequence: u64,
    /// Finished output items, in order.
    output: Vec<Item>,
    open: Option<OpenMessage>,
}

/// The SSE events of one streamed response.
pub fn events(submitted: Submitted, turn: Turn) -> impl Stream<Item = Event> + Send + 'static {
    let format = ResponseFormat {
        turn,
        sequence: 0,
        output: Vec::new(),
        open: None,
    };
    // No idle event in this family (the SSE keep-alive comment covers
    // proxies): the interval is never used.
    reply_stream::events(submitted, format, reply_stream::DEFAULT_IDLE_EVENT_AFTER)
}

impl ResponseFormat {
    fn push(&mut self, name: &'static str, mut body: Value, out: &mut Pending) {
        body["type"] = json!(name);
        body["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.push_back(named_event(name, &body));
    }

    fn push_response(&mut self, name: &'static str, response: &ResponseObject, out: &mut Pending) {
        self.push(name, json!({ "response": response }), out);
    }

    /// Open a message item if none is open.
    fn open_message(&mut self, out: &mut Pending) {
        if self.open.is_some() {
            return;
        }
        let message = OpenMessage {
            id: item_id("msg"),
            index: self.output.len(),
            text: String::new(),
        };
        // Added with no content part yet: the part follows in its own event.
        let item = Item::Message(MessageItem {
            id: message.id.clone(),
            status: Some("in_progress".to_owned()),
            role: "assistant".to_owned(),
            content: Vec::new(),
        });
        self.push(
            "response.output_item.added",
            json!({"output_index": message.index, "item": item}),
            out,
        );
        self.push(
            "response.content_part.added",
            json!({
                "item_id": message.id, "output_index": message.index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            }),
            out,
        );
        self.open = Some(message);
    }

    /// Close the open message item, if any, and add it to the output.
    fn close_message(&mut self, out: &mut Pending) {
        let Some(message) = self.open.take() else {
            return;
        };
        let (id, index) = (message.id.clone(), message.index);
        self.push(
            "response.output_text.done",
            json!({"item_id": id, "output_index": index, "content_index": 0, "text": message.text, "logprobs": []}),
            out,
        );
        self.push(
            "response.content_part.done",
            json!({
                "item_id": id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": message.text, "annotations": []},
            }),
            out,
        );
        let item = message_item(message.id, message.text, "completed");
        self.push(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
            out,
        );
        self.output.push(item);
    }
}

impl StreamFormat for ResponseFormat {
    fn start(&mut self, _may_call: bool, out: &mut Pending) {
        let created = self.turn.object("in_progress", Vec::new(), None);
        self.push_response("response.created", &created, out);
        self.push_response("response.in_progress", &created, out);
    }

    fn text(&mut self, text: String, out: &mut Pending) {
        self.open_message(out);
        let Some(message) = self.open.as_mut() else {
            return;
        };
        message.text.push_str(&text);
        let (id, index) = (message.id.clone(), message.index);
        self.push(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}),
            out,
        );
    }

    fn call(&mut self, call: ParsedCall, out: &mut Pending) {
        self.close_message(out);
        let index = self.output.len();
        let done = call_item(call, "completed");
        let Item::FunctionCall(call) = &done else {
            return;
        };
        let mut added = call.clone();
        added.arguments = String::new();
        added.status = Some("in_progress".to_owned());
        self.push(
            "response.output_item.added",
            json!({"output_index": index, "item": Item::FunctionCall(added)}),
            out,
        );
        let (id, arguments) = (call.id.clone(), call.arguments.clone());
        self.push(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": arguments}),
            out,
        );
        self.push(
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": index, "arguments": arguments, "name": call.name}),
            out,
        );
        self.push(
            "response.output_item.done",
            json!({"output_index": index, "item": done}),
            out,
        );
        self.output.push(done);
    }

    fn finish(&mut self, end: StreamEnd, out: &mut Pending) {
        // A reply with no text and no call is one empty message, as whole.
        if self.output.is_empty() {
            self.open_message(out);
        }
        self.close_message(out);
        let output = std::mem::take(&mut self.output);
        let response = self.turn.finished(&end.reason, end.usage, output);
        let stored = blocking(|| self.turn.persist(&response, &end.text));
        match stored {
            Ok(()) if response.status == "incomplete" => {
                self.push_response("response.incomplete", &response, out)
            }
            Ok(()) => self.push_response("response.completed", &response, out),
            Err(e) => {
                let failed = self.turn.failed(&e);
                self.push_response("response.failed", &failed, out);
            }
        }
    }

    fn error(&self, error: &ApiError) -> Event {
        let failed = self.turn.failed(error);
        let body = json!({
            "type": "response.failed",
            "sequence_number": self.sequence,
            "response": failed,
        });
        named_event("response.failed", &body)
    }
}

/// Run blocking I/O from inside a stream: on a multi-threaded runtime the
/// worker hands its other tasks off first; elsewhere (a current-thread test
/// runtime) it just runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
