//! Which agent a request names, shared by every API family.
//!
//! Headers win over body fields because proxies and SDK wrappers can set
//! them without touching bodies; among body fields, the family lists them in
//! its order of precedence. Every candidate is validated by [`AgentId`], so
//! an id is only ever used as a file name after that check.

use axum::http::HeaderMap;
use semantic_domain::AgentId;

use crate::error::ApiError;

/// Headers that name the agent, in order of precedence.
pub const AGENT_HEADERS: [&str; 2] = ["x-agent-id", "x-session-id"];

/// A body field that may name the agent: its path (for errors) and value.
#[derive(Clone, Copy, Debug)]
pub struct BodyField<'a> {
    pub param: &'static str,
    pub value: Option<&'a str>,
}

/// The agent of a request: the first header present, else the first body
/// field present; `None` for an anonymous request. The first candidate
/// present decides: an invalid one is a 400, never skipped.
pub fn resolve(headers: &HeaderMap, body: &[BodyField<'_>]) -> Result<Option<AgentId>, ApiError> {
    for name in AGENT_HEADERS {
        if let Some(value) = headers.get(name) {
            let raw = value.to_str().map_err(|_| {
                ApiError::invalid_request(format!("header {name} must be visible ASCII"))
            })?;
            return AgentId::parse(raw)
                .map(Some)
                .map_err(|e| ApiError::invalid_request(format!("invalid {name} header: {e}")));
        }
    }
    let Some((param, raw)) = body.iter().find_map(|f| f.value.map(|v| (f.param, v))) else {
        return Ok(None);
    };
    AgentId::parse(raw)
        .map(Some)
        .map_err(|e| ApiError::invalid_request(format!("invalid {param}: {e}")).with_param(param))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(session: Option<&'a str>, user: Option<&'a str>) -> [BodyField<'a>; 2] {
        [
            BodyField {
                param: "metadata.session_id",
                value: session,
            },
            BodyField {
                param: "metadata.user_id",
                value: user,
            },
        ]
    }

    fn id(agent: Option<AgentId>) -> Option<String> {
        agent.map(|a| a.as_str().to_owned())
    }

    #[test]
    fn headers_then_body_fields_in_order() {
        let mut headers = HeaderMap::new();
        let body = fields(Some("s"), Some("u"));
        assert_eq!(id(resolve(&headers, &body).unwrap()).as_deref(), Some("s"));
        let body = fields(None, Some("u"));
        assert_eq!(id(resolve(&headers, &body).unwrap()).as_deref(), Some("u"));
        assert_eq!(resolve(&headers, &fields(None, None)).unwrap(), None);
        headers.insert("x-session-id", "sess".parse().unwrap());
        let body = fields(Some("s"), Some("u"));
        assert_eq!(
            id(resolve(&headers, &body).unwrap()).as_deref(),
            Some("sess")
        );
        headers.insert("x-agent-id", "agent".parse().unwrap());
        assert_eq!(
            id(resolve(&headers, &body).unwrap()).as_deref(),
            Some("agent")
        );
    }

    #[test]
    fn an_invalid_candidate_is_rejected_naming_it() {
        let e = resolve(&HeaderMap::new(), &fields(Some("../x"), Some("u"))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata.session_id"));
        assert!(
            e.message.contains("invalid metadata.session_id"),
            "{}",
            e.message
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-agent-id", "a/b".parse().unwrap());
        let e = resolve(&headers, &fields(Some("fine"), None)).unwrap_err();
        assert!(
            e.message.contains("invalid x-agent-id header"),
            "{}",
            e.message
        );
    }
}
