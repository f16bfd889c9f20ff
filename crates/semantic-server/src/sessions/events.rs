//! The SSE events of a streamed turn or round (`event: <type>` and a JSON
//! `data` whose `type` repeats it): `turn.started`, `speaker.chosen` (a
//! moderator's pick), `turn.delta` (text as generated), `turn.completed`
//! (the whole turn, as the JSON answer has it), then `done`, or `error`
//! instead when something failed (no event follows it).

use axum::response::sse::Event;
use serde_json::json;

use super::types::TurnObject;
use crate::error::ApiError;
use crate::sse::named_event;

pub fn started(session_id: &str, turn: u32, speaker: &str, name: &str) -> Event {
    named_event(
        "turn.started",
        &json!({"type": "turn.started", "session_id": session_id, "turn": turn,
                "speaker": speaker, "name": name}),
    )
}

pub fn chosen(moderator: &str, speaker: &str, options: &[String]) -> Event {
    named_event(
        "speaker.chosen",
        &json!({"type": "speaker.chosen", "moderator": moderator, "speaker": speaker,
                "options": options}),
    )
}

pub fn delta(speaker: &str, text: &str) -> Event {
    named_event(
        "turn.delta",
        &json!({"type": "turn.delta", "speaker": speaker, "delta": text}),
    )
}

pub fn completed(turn: &TurnObject) -> Event {
    named_event(
        "turn.completed",
        &json!({"type": "turn.completed", "turn": turn}),
    )
}

pub fn done(session_id: &str, turns: u32, finished: bool) -> Event {
    named_event(
        "done",
        &json!({"type": "done", "session_id": session_id, "turns": turns, "finished": finished}),
    )
}

pub fn error(error: &ApiError) -> Event {
    let envelope = error.envelope();
    named_event(
        "error",
        &json!({"type": "error", "status": error.status.as_u16(), "error": envelope.error}),
    )
}
