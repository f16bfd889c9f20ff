//! Server-sent events for every API family: `data: <json>\n\n` frames and a
//! final `data: [DONE]` as OpenAI clients expect them, `event: <name>` plus
//! `data: <json>` frames as Anthropic's do, and periodic comments while idle.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderName;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Serialize;

/// How often a comment is sent while no event is due (e.g. during a long
/// prefill). It keeps proxies from timing the stream out, and writing it is
/// how a vanished client is noticed, which drops the body and so cancels
/// the generation.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Wrap a stream of events as an SSE response.
///
/// The response body owns `events`: when the client disconnects, hyper drops
/// the body and with it whatever `events` owns.
pub fn response(events: impl Stream<Item = Event> + Send + 'static) -> Response {
    let sse =
        Sse::new(events.map(Ok::<_, Infallible>)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // Reverse proxies (nginx) would otherwise buffer tokens into bursts.
    ([(HeaderName::from_static("x-accel-buffering"), "no")], sse).into_response()
}

/// A `data: <json>` event.
pub fn json_event<T: Serialize>(value: &T) -> Event {
    match serde_json::to_string(value) {
        Ok(json) => Event::default().data(json),
        // Our types always serialize; if one ever does not, say so in-band.
        Err(e) => {
            tracing::error!(error = %e, "failed to serialize an SSE event");
            Event::default().data(
                r#"{"error":{"message":"internal error: failed to serialize an event","type":"server_error","param":null,"code":null}}"#,
            )
        }
    }
}

/// An `event: <name>` + `data: <json>` event (Anthropic's framing).
pub fn named_event<T: Serialize>(name: &'static str, value: &T) -> Event {
    match serde_json::to_string(value) {
        Ok(json) => Event::default().event(name).data(json),
        // As in `json_event`, but in Anthropic's error event.
        Err(e) => {
            tracing::error!(error = %e, event = name, "failed to serialize an SSE event");
            Event::default().event("error").data(
                r#"{"type":"error","error":{"type":"api_error","message":"internal error: failed to serialize an event"}}"#,
            )
        }
    }
}

/// The `data: [DONE]` terminator.
pub fn done_event() -> Event {
    Event::default().data("[DONE]")
}
