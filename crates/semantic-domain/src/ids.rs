//! Identifiers: agents (client-chosen, persisted) and requests (server-chosen).

use std::fmt;

/// Longest agent id accepted.
pub const AGENT_ID_MAX_LEN: usize = 128;

/// An agent's identity, as named by the client (`X-Agent-ID`, `session_id`, …).
///
/// Validated on construction to `^[A-Za-z0-9._-]{1,128}$` and never `.` or
/// `..`, so it is safe to use as a file name: it cannot contain a path
/// separator or climb out of the cache directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(String);

/// Why a string is not a valid agent id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAgentId {
    #[error("agent id is empty")]
    Empty,
    #[error("agent id is {0} characters long; at most {AGENT_ID_MAX_LEN} are allowed")]
    TooLong(usize),
    #[error("agent id contains {0:?}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")]
    BadCharacter(char),
    #[error("agent id may not be '.' or '..'")]
    DotPath,
}

impl AgentId {
    /// Validate and wrap a client-supplied agent id.
    pub fn parse(raw: &str) -> Result<Self, InvalidAgentId> {
        match check_file_name(raw, AGENT_ID_MAX_LEN) {
            Ok(()) => Ok(Self(raw.to_owned())),
            Err(NameProblem::Empty) => Err(InvalidAgentId::Empty),
            Err(NameProblem::TooLong(n)) => Err(InvalidAgentId::TooLong(n)),
            Err(NameProblem::BadCharacter(c)) => Err(InvalidAgentId::BadCharacter(c)),
            Err(NameProblem::DotPath) => Err(InvalidAgentId::DotPath),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string cannot name a file of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    Empty,
    TooLong(usize),
    BadCharacter(char),
    DotPath,
}

/// The first 16 hex digits (8 bytes) of a digest: the part of a name
/// derived from a hash (a key's tenant, a mapped agent id). The caller
/// hashes: this crate does no cryptography.
pub fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The rule for client-chosen names that become file or directory names
/// (agent ids, tenants): `^[A-Za-z0-9._-]{1,max}$`, never `.` or `..`, so
/// no path built from one holds a separator or climbs out of its folder.
pub(crate) fn check_file_name(raw: &str, max: usize) -> Result<(), NameProblem> {
    if raw.is_empty() {
        return Err(NameProblem::Empty);
    }
    let len = raw.chars().count();
    if len > max {
        return Err(NameProblem::TooLong(len));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameProblem::BadCharacter(bad));
    }
    if raw == "." || raw == ".." {
        return Err(NameProblem::DotPath);
    }
    Ok(())
}

/// A server-assigned id for one generation request (unique per process).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_ids() {
        for ok in ["a", "agent-1", "A.b_c-9", &"x".repeat(128), "..."] {
            assert_eq!(
                AgentId::parse(ok).map(|a| a.to_string()),
                Ok(ok.to_string())
            );
        }
    }

    #[test]
    fn rejects_path_traversal_and_bad_characters() {
        assert_eq!(AgentId::parse(""), Err(InvalidAgentId::Empty));
        assert_eq!(AgentId::parse(".."), Err(InvalidAgentId::DotPath));
        assert_eq!(AgentId::parse("."), Err(InvalidAgentId::DotPath));
        assert_eq!(
            AgentId::parse("../etc/passwd"),
            Err(InvalidAgentId::BadCharacter('/'))
        );
        assert_eq!(
            AgentId::parse("a b"),
            Err(InvalidAgentId::BadCharacter(' '))
        );
        assert_eq!(AgentId::parse("é"), Err(InvalidAgentId::BadCharacter('é')));
        assert_eq!(
            AgentId::parse(&"x".repeat(129)),
            Err(InvalidAgentId::TooLong(129))
        );
    }
}
