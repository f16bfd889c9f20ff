//! Which agent a request names, shared by every API family.
//!
//! Headers win over body fields because proxies and SDK wrappers can set
//! them without touching bodies; among body fields, the family lists them in
//! its order of precedence. The first non-empty candidate decides.
//!
//! A candidate that is a valid [`AgentId`] is used as it is. Any other value
//! is the client's own key for its conversation (Claude Code's
//! `metadata.user_id` is a 150-character JSON object naming its session),
//! so it is never rejected but mapped to a valid id deterministically: the
//! same value always names the same agent, and the id is only ever used as
//! a file name after [`AgentId::parse`] accepted it.

use axum::http::HeaderMap;
use semantic_domain::ids::short_hex;
use semantic_domain::AgentId;
use sha2::{Digest, Sha256};

/// Headers that name the agent, in order of precedence.
pub const AGENT_HEADERS: [&str; 2] = ["x-agent-id", "x-session-id"];

/// Longest readable part of a derived id; with `-` and the 16-digit digest
/// it stays far below the 128-character limit.
const READABLE_MAX: usize = 48;

/// The agent of a request: the first non-empty header, else the first
/// non-empty body field, as [`agent_for`] maps it; `None` when no candidate
/// names one (an anonymous request).
/// `body` holds the family's fields in its order of precedence.
pub fn resolve(headers: &HeaderMap, body: &[Option<&str>]) -> Option<AgentId> {
    let from_header = AGENT_HEADERS.iter().find_map(|name| {
        let value = headers.get(*name)?;
        // Header bytes outside visible ASCII are still the client's key.
        let raw = String::from_utf8_lossy(value.as_bytes()).into_owned();
        (!raw.is_empty()).then_some(raw)
    });
    if let Some(raw) = from_header {
        return Some(agent_for(&raw));
    }
    let raw = body.iter().find_map(|v| v.filter(|v| !v.is_empty()))?;
    Some(agent_for(raw))
}

/// `raw` itself when it is a valid agent id, else `<readable>-<digest>`:
/// the readable part is the value's `session_id` when it is a JSON object
/// holding one (Claude Code's `metadata.user_id`), else the value, with
/// every character outside `[A-Za-z0-9._-]` replaced by `_`, cut to 48
/// characters; the digest is the first 16 hex digits of SHA-256 of the
/// whole value.
pub fn agent_for(raw: &str) -> AgentId {
    if let Ok(id) = AgentId::parse(raw) {
        return id;
    }
    let readable = readable_part(raw);
    let digest = hex_digest(raw);
    let derived = format!("{readable}-{digest}");
    // Only valid characters, never `.`/`..`, within the length limit.
    AgentId::parse(&derived).unwrap_or_else(|_| {
        AgentId::parse(&format!("agent-{digest}")).expect("a hex digest is a valid agent id")
    })
}

fn readable_part(raw: &str) -> String {
    let session = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| {
            v.get("session_id")?
                .as_str()
                .map(|s| format!("session-{s}"))
        });
    let source = session.as_deref().unwrap_or(raw);
    let mut out = String::with_capacity(READABLE_MAX);
    for c in source.chars().take(READABLE_MAX) {
        let valid = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        out.push(if valid { c } else { '_' });
    }
    let trimmed = out.trim_matches(|c| c == '_' || c == '.' || c == '-');
    if trimmed.is_empty() {
        "agent".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// 16 hex digits (64 bits): two distinct client values of one tenant
/// practically never share an agent.
fn hex_digest(raw: &str) -> String {
    short_hex(&Sha256::digest(raw.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(session: Option<&'a str>, user: Option<&'a str>) -> [Option<&'a str>; 2] {
        [session, user]
    }

    fn id(agent: Option<AgentId>) -> Option<String> {
        agent.map(|a| a.as_str().to_owned())
    }

    #[test]
    fn headers_then_body_fields_in_order() {
        let mut headers = HeaderMap::new();
        let body = fields(Some("s"), Some("u"));
        assert_eq!(id(resolve(&headers, &body)).as_deref(), Some("s"));
        let body = fields(None, Some("u"));
        assert_eq!(id(resolve(&headers, &body)).as_deref(), Some("u"));
        assert_eq!(resolve(&headers, &fields(None, None)), None);
        headers.insert("x-session-id", "sess".parse().unwrap());
        let body = fields(Some("s"), Some("u"));
        assert_eq!(id(resolve(&headers, &body)).as_deref(), Some("sess"));
        headers.insert("x-agent-id", "agent".parse().unwrap());
        assert_eq!(id(resolve(&headers, &body)).as_deref(), Some("agent"));
    }

    #[test]
    fn empty_candidates_name_nothing() {
        let mut headers = HeaderMap::new();
        headers.insert("x-agent-id", "".parse().unwrap());
        let body = fields(Some(""), Some("u"));
        assert_eq!(id(resolve(&headers, &body)).as_deref(), Some("u"));
        assert_eq!(resolve(&headers, &fields(Some(""), None)), None);
    }

    #[test]
    fn an_invalid_value_maps_to_a_stable_valid_id() {
        let long = "x".repeat(150);
        for raw in ["../etc/passwd", "a/b", long.as_str(), "..", "日本語", "  "] {
            let a = agent_for(raw);
            assert!(AgentId::parse(a.as_str()).is_ok(), "{raw:?} -> {a:?}");
            assert_eq!(a, agent_for(raw), "deterministic");
            assert_ne!(a.as_str(), raw);
        }
        assert_eq!(agent_for("../etc/passwd").as_str(), {
            let d = hex_digest("../etc/passwd");
            format!("etc_passwd-{d}")
        });
        assert_eq!(agent_for("日本語").as_str().len(), "agent-".len() + 16);
        assert_ne!(
            agent_for("a/b"),
            agent_for("a_b"),
            "the digest keeps them apart"
        );
        assert_eq!(
            agent_for("planner-1").as_str(),
            "planner-1",
            "valid ids pass"
        );
    }

    #[test]
    fn a_claude_code_user_id_is_named_after_its_session() {
        let device = "d".repeat(64);
        let session = "6f1c2f4e-0b7a-4c36-9a51-2e7d8c1b3a90";
        let user_id =
            format!(r#"{{"device_id":"{device}","account_uuid":"","session_id":"{session}"}}"#);
        assert_eq!(user_id.len(), 150);
        let a = agent_for(&user_id);
        let expected = format!("session-{session}-{}", hex_digest(&user_id));
        assert_eq!(a.as_str(), expected);
        let other = user_id.replace("6f1c", "7f1c");
        assert_ne!(agent_for(&other), a, "another session, another agent");
    }

    #[test]
    fn a_header_outside_visible_ascii_still_names_an_agent() {
        let mut headers = HeaderMap::new();
        let value = axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9 1").unwrap();
        headers.insert("x-agent-id", value);
        let a = resolve(&headers, &[]).unwrap();
        assert!(a.as_str().starts_with("caf_"), "{a:?}");
    }
}
