//! Reading SSE bodies as a client does: whole bodies split into events,
//! and streams read until enough events have arrived.

use futures::{Stream, StreamExt};
use serde_json::Value;

/// A response body as it arrives, piece by piece.
pub trait ByteStream: Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin {}

impl<S: Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin> ByteStream for S {}

/// The `data:` payloads of an SSE body, in order (OpenAI's framing).
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .map(|d| d.trim().to_owned())
        })
        .collect()
}

/// `(event name, data)` of every SSE event, in order (Anthropic's framing).
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
        .map(|event| {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_else(|| panic!("no {name} in {event:?}"))
            };
            let data = serde_json::from_str(&field("data:")).unwrap();
            (field("event:"), data)
        })
        .collect()
}

/// Read until `marker` has been seen `n` times; returns what was read.
pub async fn read_until(bytes: &mut impl ByteStream, marker: &str, n: usize) -> String {
    let mut seen = String::new();
    while seen.matches(marker).count() < n {
        let piece = bytes.next().await.expect("stream open").unwrap();
        seen.push_str(&String::from_utf8_lossy(&piece));
    }
    seen
}

/// Read the rest of the stream onto `seen`.
pub async fn read_to_end(bytes: &mut impl ByteStream, seen: &mut String) {
    while let Some(piece) = bytes.next().await {
        seen.push_str(&String::from_utf8_lossy(&piece.unwrap()));
    }
}
