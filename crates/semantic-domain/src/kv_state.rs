//! An agent's serialized KV state as it travels between the engine, the
//! warm tier and the disk tier: immutable bytes that are cheap to share.
//!
//! The bytes may be owned (a snapshot the engine just took) or borrowed
//! from elsewhere (the store maps an agent's file read-only instead of
//! copying tens of MB into a fresh buffer); holders only ever read them.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Immutable, shareable KV state bytes. Cloning shares them.
#[derive(Clone)]
pub struct KvState(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl KvState {
    /// Wrap any owner of bytes (a `Vec<u8>`, a read-only file mapping).
    pub fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Self(Arc::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl Deref for KvState {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<Vec<u8>> for KvState {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KvState {}

impl fmt::Debug for KvState {
    // Tens or hundreds of MB: never print the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KvState(<{} bytes>)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_bytes_and_compare_by_content() {
        let a = KvState::from(vec![1u8, 2, 3]);
        let b = a.clone();
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(a, KvState::new([1u8, 2, 3]));
        assert_ne!(a, KvState::from(vec![1u8, 2]));
        assert_eq!(format!("{a:?}"), "KvState(<3 bytes>)");
    }
}
