//! Tenants: who owns an agent. Every API key belongs to one; agents, their
//! KV, their files and the prefixes they may share are scoped by it.
//!
//! An agent's full identity is its [`AgentKey`] — tenant and agent id — so
//! `planner` of tenant `a` and `planner` of tenant `b` are different agents
//! everywhere: the engine's registry, the warm tier, file paths and file
//! metadata.

use std::fmt;

use crate::ids::{check_file_name, NameProblem};
use crate::AgentId;

/// Longest tenant name accepted.
pub const TENANT_MAX_LEN: usize = 64;

/// The tenant of a server with no API keys, and of agent files written
/// before tenants existed.
pub const OPEN_TENANT: &str = "default";

/// Prefix of the tenant a key gets when its key file line names none; not
/// allowed in configured tenant names, so the two can never collide.
pub const KEY_TENANT_PREFIX: &str = "key-";

/// A tenant's name, validated to `^[A-Za-z0-9._-]{1,64}$` and never `.` or
/// `..`: it names a directory of the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a string is not a valid tenant name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTenant {
    #[error("tenant name is empty")]
    Empty,
    #[error("tenant name is {0} characters long; at most {TENANT_MAX_LEN} are allowed")]
    TooLong(usize),
    #[error("tenant name contains {0:?}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")]
    BadCharacter(char),
    #[error("tenant name may not be '.' or '..'")]
    DotPath,
    #[error(
        "tenant names starting with {KEY_TENANT_PREFIX:?} are reserved for keys without a tenant"
    )]
    Reserved,
}

impl TenantId {
    /// Validate a tenant name from configuration (a key file, a flag).
    pub fn parse(raw: &str) -> Result<Self, InvalidTenant> {
        let tenant = Self::parse_any(raw)?;
        if raw.starts_with(KEY_TENANT_PREFIX) {
            return Err(InvalidTenant::Reserved);
        }
        Ok(tenant)
    }

    /// Validate a tenant name read back from the cache (a directory, a
    /// file's metadata), where the reserved per-key names are legitimate.
    pub fn parse_any(raw: &str) -> Result<Self, InvalidTenant> {
        match check_file_name(raw, TENANT_MAX_LEN) {
            Ok(()) => Ok(Self(raw.to_owned())),
            Err(NameProblem::Empty) => Err(InvalidTenant::Empty),
            Err(NameProblem::TooLong(n)) => Err(InvalidTenant::TooLong(n)),
            Err(NameProblem::BadCharacter(c)) => Err(InvalidTenant::BadCharacter(c)),
            Err(NameProblem::DotPath) => Err(InvalidTenant::DotPath),
        }
    }

    /// The one tenant of a server without API keys (see [`OPEN_TENANT`]).
    pub fn open() -> Self {
        Self(OPEN_TENANT.to_owned())
    }

    /// The tenant of a key configured without one, named from a digest of
    /// the key (`key-` and 16 hex digits) so the name reveals nothing of the
    /// key and stays the same across restarts. The caller hashes: this crate
    /// does no cryptography.
    pub fn of_key_digest(digest: &[u8]) -> Self {
        Self(format!(
            "{KEY_TENANT_PREFIX}{}",
            crate::ids::short_hex(digest)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent's full identity: the tenant that owns it and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentKey {
    pub tenant: TenantId,
    pub agent: AgentId,
}

impl AgentKey {
    pub fn new(tenant: TenantId, agent: AgentId) -> Self {
        Self { tenant, agent }
    }

    /// An agent of the open tenant (servers without keys, tests).
    pub fn open(agent: AgentId) -> Self {
        Self::new(TenantId::open(), agent)
    }
}

/// `tenant/agent`, as logs show it.
impl fmt::Display for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_safe_directory_names() {
        assert!(TenantId::parse("team-a.prod_1").is_ok());
        assert_eq!(TenantId::parse(""), Err(InvalidTenant::Empty));
        assert_eq!(TenantId::parse(".."), Err(InvalidTenant::DotPath));
        assert_eq!(
            TenantId::parse("a/b"),
            Err(InvalidTenant::BadCharacter('/'))
        );
        assert_eq!(
            TenantId::parse(&"t".repeat(65)),
            Err(InvalidTenant::TooLong(65))
        );
    }

    #[test]
    fn per_key_names_are_reserved_in_configuration_only() {
        let digest = [0xab_u8; 32];
        let tenant = TenantId::of_key_digest(&digest);
        assert_eq!(tenant.as_str(), "key-abababababababab");
        assert_eq!(
            TenantId::parse(tenant.as_str()),
            Err(InvalidTenant::Reserved)
        );
        assert_eq!(TenantId::parse_any(tenant.as_str()), Ok(tenant));
    }

    #[test]
    fn the_same_agent_id_of_two_tenants_is_two_agents() {
        let id = AgentId::parse("planner").unwrap();
        let a = AgentKey::new(TenantId::parse("a").unwrap(), id.clone());
        let b = AgentKey::new(TenantId::parse("b").unwrap(), id);
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "a/planner");
        assert_eq!(AgentKey::open(a.agent.clone()).tenant, TenantId::open());
    }
}
