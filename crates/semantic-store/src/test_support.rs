//! Shared helpers for the crate's unit tests.

use std::path::Path;

use semantic_domain::{AgentId, AgentKey, KvType, TenantId, TokenId};

use crate::{AgentRecord, AgentRecordMeta, Compat, DiskStore};

pub const FINGERPRINT: &str = "0123456789abcdef0123456789abcdef";
pub const BUILD: &str = "b1234-test";

/// An agent of the open tenant.
pub fn agent(id: &str) -> AgentKey {
    AgentKey::open(AgentId::parse(id).unwrap())
}

/// An agent of a named tenant.
pub fn tenant_agent(tenant: &str, id: &str) -> AgentKey {
    AgentKey::new(
        TenantId::parse(tenant).unwrap(),
        AgentId::parse(id).unwrap(),
    )
}

/// Deterministic, non-repeating bytes, so a byte from one version cannot be
/// mistaken for the same offset of another.
pub fn blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn record(id: &str, tokens: Vec<TokenId>, kv_state: Vec<u8>) -> AgentRecord {
    AgentRecord {
        meta: AgentRecordMeta {
            agent: agent(id),
            model_fingerprint: FINGERPRINT.into(),
            engine_build: BUILD.into(),
            kv_type: KvType::F16,
            tokens,
            kv_bytes: kv_state.len() as u64,
            created_unix_ms: 1_700_000_000_000,
        },
        kv_state: kv_state.into(),
    }
}

pub fn compat() -> Compat {
    Compat {
        model_fingerprint: FINGERPRINT.into(),
        engine_build: BUILD.into(),
        kv_type: KvType::F16,
    }
}

pub fn open(root: &Path) -> DiskStore {
    DiskStore::open(root, FINGERPRINT).unwrap()
}
