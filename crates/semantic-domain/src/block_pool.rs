//! KV-cache memory accounting in fixed-size blocks.
//!
//! The engine's KV cache is one big llama.cpp context shared by many agent
//! sequences. To decide admission (can this request fit?) and eviction (whose
//! cache do we drop?) without asking llama.cpp, we keep a pure bookkeeping
//! model here: the cache is `total_blocks` blocks of `block_tokens` tokens and
//! every owner (an agent sequence) holds an ordered list of blocks covering
//! its tokens. No memory is actually allocated.
//!
//! Blocks are reference counted because llama.cpp can copy a common prompt
//! prefix from one sequence to another (`seq_cp`) without duplicating cells;
//! [`BlockPool::share_prefix`] models that, and a shared block returns to the
//! free list only when its last owner lets go.

use std::collections::BTreeMap;

/// Identifies a holder of blocks (in practice an agent's KV sequence).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(pub u64);

/// Index of one block in the pool, `0..total_blocks`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

/// Why a pool operation was refused. A refused operation never changes state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("KV block pool exhausted: need {needed} more blocks of {block_tokens} tokens, {free} free of {total}")]
    Exhausted {
        needed: u32,
        free: u32,
        total: u32,
        block_tokens: u32,
    },
    #[error("unknown block pool owner {0:?}")]
    UnknownOwner(OwnerId),
    #[error("invalid block pool config: {0}")]
    InvalidConfig(String),
    #[error("cannot share a prefix into {0:?}: it already holds blocks")]
    TargetNotEmpty(OwnerId),
    #[error("cannot share a prefix of {0:?} with itself")]
    SelfShare(OwnerId),
    #[error("prefix of {requested} full blocks requested from {owner:?}, which holds only {held}")]
    PrefixTooLong {
        owner: OwnerId,
        requested: u32,
        held: u32,
    },
}

/// Reference-counted block bookkeeping. See the module docs.
#[derive(Debug, Clone)]
pub struct BlockPool {
    block_tokens: u32,
    /// Per-block count of owners referencing it; 0 means free.
    refcounts: Vec<u32>,
    /// Free blocks, used as a stack (lowest ids handed out first initially).
    free: Vec<BlockId>,
    /// Blocks held by each owner, in token order. BTreeMap so that
    /// iteration (and hence eviction scans) is deterministic.
    owners: BTreeMap<OwnerId, Vec<BlockId>>,
}

impl BlockPool {
    /// Build a pool of `total_blocks` blocks of `block_tokens` tokens.
    ///
    /// Rejects zero sizes and pools whose token capacity would not fit in a
    /// `u32`, so capacity arithmetic elsewhere can never overflow.
    pub fn new(total_blocks: u32, block_tokens: u32) -> Result<Self, PoolError> {
        if total_blocks == 0 || block_tokens == 0 {
            return Err(PoolError::InvalidConfig(format!(
                "total_blocks ({total_blocks}) and block_tokens ({block_tokens}) must be > 0"
            )));
        }
        if total_blocks.checked_mul(block_tokens).is_none() {
            return Err(PoolError::InvalidConfig(format!(
                "{total_blocks} blocks x {block_tokens} tokens overflows u32"
            )));
        }
        Ok(Self {
            block_tokens,
            refcounts: vec![0; total_blocks as usize],
            free: (0..total_blocks).rev().map(BlockId).collect(),
            owners: BTreeMap::new(),
        })
    }

    pub fn block_tokens(&self) -> u32 {
        self.block_tokens
    }

    pub fn total_blocks(&self) -> u32 {
        self.refcounts.len() as u32
    }

    pub fn free_blocks(&self) -> u32 {
        self.free.len() as u32
    }

    /// Distinct allocated blocks; a shared block counts once.
    pub fn used_blocks(&self) -> u32 {
        self.total_blocks() - self.free_blocks()
    }

    /// Blocks needed to hold `tokens` tokens (ceiling division).
    pub fn blocks_for_tokens(&self, tokens: u32) -> u32 {
        tokens.div_ceil(self.block_tokens)
    }

    /// Tokens the owner can hold without allocating; 0 for unknown owners.
    pub fn owner_tokens_capacity(&self, owner: OwnerId) -> u32 {
        // Cannot overflow: blocks held <= total_blocks, checked in `new`.
        self.owner_blocks(owner) * self.block_tokens
    }

    /// Blocks referenced by the owner (shared ones included); 0 if unknown.
    pub fn owner_blocks(&self, owner: OwnerId) -> u32 {
        self.owners.get(&owner).map_or(0, |b| b.len() as u32)
    }

    /// Known owners in ascending id order.
    pub fn owners(&self) -> impl Iterator<Item = OwnerId> + '_ {
        self.owners.keys().copied()
    }

    /// Blocks `owner` would still have to allocate to hold `tokens`.
    fn missing_blocks(&self, owner: OwnerId, tokens: u32) -> u32 {
        self.blocks_for_tokens(tokens)
            .saturating_sub(self.owner_blocks(owner))
    }

    fn exhausted(&self, needed: u32) -> PoolError {
        PoolError::Exhausted {
            needed,
            free: self.free_blocks(),
            total: self.total_blocks(),
            block_tokens: self.block_tokens,
        }
    }

    /// Grow `owner` (creating it if new) so it holds at least
    /// `blocks_for_tokens(tokens)` blocks. All-or-nothing: on `Exhausted`
    /// nothing changes (a new owner is not created). Returns the number of
    /// newly allocated blocks.
    pub fn ensure_capacity(&mut self, owner: OwnerId, tokens: u32) -> Result<u32, PoolError> {
        let needed = self.missing_blocks(owner, tokens);
        if needed > self.free_blocks() {
            return Err(self.exhausted(needed));
        }
        let split = self.free.len() - needed as usize;
        let fresh = self.free.split_off(split);
        for &BlockId(b) in &fresh {
            self.refcounts[b as usize] = 1;
        }
        self.owners.entry(owner).or_default().extend(fresh);
        Ok(needed)
    }

    /// Whether `ensure_capacity(owner, tokens)` would succeed right now.
    pub fn can_fit(&self, owner: OwnerId, tokens: u32) -> bool {
        self.missing_blocks(owner, tokens) <= self.free_blocks()
    }

    /// Drop one reference to `block`; returns true if it became free.
    fn unref(&mut self, block: BlockId) -> bool {
        let rc = &mut self.refcounts[block.0 as usize];
        // A release of a block nobody holds is a double free somewhere: a
        // bug, caught in debug builds (release builds stay saturated at 0).
        debug_assert!(*rc > 0, "block {} released but not held", block.0);
        *rc = rc.saturating_sub(1);
        if *rc == 0 {
            self.free.push(block);
            true
        } else {
            false
        }
    }

    fn unref_all(&mut self, blocks: Vec<BlockId>) -> u32 {
        blocks.into_iter().filter(|&b| self.unref(b)).count() as u32
    }

    /// Drop the owner's tail blocks beyond `blocks_for_tokens(tokens)`; a
    /// shared block is only freed when its refcount reaches 0. Returns the
    /// number of blocks returned to the free list.
    pub fn shrink_to(&mut self, owner: OwnerId, tokens: u32) -> Result<u32, PoolError> {
        let keep = self.blocks_for_tokens(tokens) as usize;
        let held = self
            .owners
            .get_mut(&owner)
            .ok_or(PoolError::UnknownOwner(owner))?;
        if held.len() <= keep {
            return Ok(0);
        }
        let dropped = held.split_off(keep);
        Ok(self.unref_all(dropped))
    }

    /// Make `to` (which must be new or empty) reference the first
    /// `floor(tokens / block_tokens)` FULL blocks of `from`, bumping their
    /// refcounts instead of allocating. Returns the number of blocks shared.
    ///
    /// Models llama.cpp copying a common prompt prefix between sequences;
    /// only full blocks are shared because a partially filled block will
    /// diverge as soon as either sequence appends.
    pub fn share_prefix(
        &mut self,
        from: OwnerId,
        to: OwnerId,
        tokens: u32,
    ) -> Result<u32, PoolError> {
        if from == to {
            return Err(PoolError::SelfShare(from));
        }
        let source = self
            .owners
            .get(&from)
            .ok_or(PoolError::UnknownOwner(from))?;
        let requested = tokens / self.block_tokens;
        if requested as usize > source.len() {
            return Err(PoolError::PrefixTooLong {
                owner: from,
                requested,
                held: source.len() as u32,
            });
        }
        if self.owner_blocks(to) > 0 {
            return Err(PoolError::TargetNotEmpty(to));
        }
        let prefix = source[..requested as usize].to_vec();
        for &BlockId(b) in &prefix {
            self.refcounts[b as usize] += 1;
        }
        self.owners.insert(to, prefix);
        Ok(requested)
    }

    /// Release everything `owner` holds (refcount -1 each, freed at 0) and
    /// forget it. Unknown owners return 0, so release is idempotent and safe
    /// on every cleanup path. Returns the number of blocks freed.
    pub fn release(&mut self, owner: OwnerId) -> u32 {
        match self.owners.remove(&owner) {
            Some(blocks) => self.unref_all(blocks),
            None => 0,
        }
    }

    /// Fraction of blocks in use, in `[0, 1]`.
    pub fn utilization(&self) -> f64 {
        f64::from(self.used_blocks()) / f64::from(self.total_blocks())
    }

    /// Verify internal consistency; returns a description of the first
    /// violation found. Meant for tests and debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        let expected = self.expected_refcounts()?;
        self.check_free_list()?;
        for (i, (&have, &want)) in self.refcounts.iter().zip(&expected).enumerate() {
            if have != want {
                return Err(format!(
                    "block {i}: refcount {have} but referenced by {want} owners"
                ));
            }
        }
        let used = self.refcounts.iter().filter(|&&rc| rc > 0).count();
        if used + self.free.len() != self.refcounts.len() {
            return Err(format!(
                "used ({used}) + free ({}) != total ({})",
                self.free.len(),
                self.refcounts.len()
            ));
        }
        Ok(())
    }

    /// Refcounts implied by the owner lists; rejects out-of-range ids and an
    /// owner referencing the same block twice.
    fn expected_refcounts(&self) -> Result<Vec<u32>, String> {
        let mut expected = vec![0u32; self.refcounts.len()];
        for (owner, blocks) in &self.owners {
            let mut seen = std::collections::HashSet::new();
            for &BlockId(b) in blocks {
                let slot = expected
                    .get_mut(b as usize)
                    .ok_or_else(|| format!("{owner:?} holds out-of-range block {b}"))?;
                if !seen.insert(b) {
                    return Err(format!("{owner:?} holds block {b} twice"));
                }
                *slot += 1;
            }
        }
        Ok(expected)
    }

    /// Every free-list entry is in range, listed once, and unreferenced.
    fn check_free_list(&self) -> Result<(), String> {
        let mut listed = vec![false; self.refcounts.len()];
        for &BlockId(b) in &self.free {
            let slot = listed
                .get_mut(b as usize)
                .ok_or_else(|| format!("free list holds out-of-range block {b}"))?;
            if std::mem::replace(slot, true) {
                return Err(format!("block {b} is in the free list twice"));
            }
            let rc = self.refcounts[b as usize];
            if rc != 0 {
                return Err(format!("free block {b} has refcount {rc}"));
            }
        }
        Ok(())
    }

    /// The owner's block ids, for white-box tests.
    #[cfg(test)]
    fn owner_block_ids(&self, owner: OwnerId) -> &[BlockId] {
        self.owners.get(&owner).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: OwnerId = OwnerId(1);
    const B: OwnerId = OwnerId(2);
    const C: OwnerId = OwnerId(3);

    fn pool(total: u32, bt: u32) -> BlockPool {
        BlockPool::new(total, bt).unwrap()
    }

    #[test]
    fn rejects_invalid_config() {
        assert!(matches!(
            BlockPool::new(0, 256),
            Err(PoolError::InvalidConfig(_))
        ));
        assert!(matches!(
            BlockPool::new(4, 0),
            Err(PoolError::InvalidConfig(_))
        ));
        assert!(matches!(
            BlockPool::new(u32::MAX, 256),
            Err(PoolError::InvalidConfig(_))
        ));
    }

    #[test]
    fn basic_alloc_and_free() {
        let mut p = pool(10, 256);
        assert_eq!(p.blocks_for_tokens(0), 0);
        assert_eq!(p.blocks_for_tokens(1), 1);
        assert_eq!(p.blocks_for_tokens(256), 1);
        assert_eq!(p.blocks_for_tokens(257), 2);
        assert_eq!(p.ensure_capacity(A, 600), Ok(3));
        assert_eq!(p.ensure_capacity(A, 700), Ok(0));
        assert_eq!(p.ensure_capacity(A, 769), Ok(1));
        assert_eq!(p.owner_blocks(A), 4);
        assert_eq!(p.owner_tokens_capacity(A), 1024);
        assert_eq!((p.used_blocks(), p.free_blocks()), (4, 6));
        assert!((p.utilization() - 0.4).abs() < 1e-12);
        assert_eq!(p.owners().collect::<Vec<_>>(), vec![A]);
        p.check_invariants().unwrap();
        assert_eq!(p.release(A), 4);
        assert_eq!(p.free_blocks(), 10);
        assert_eq!(p.owners().count(), 0);
        p.check_invariants().unwrap();
    }

    #[test]
    fn zero_token_ensure_creates_owner() {
        let mut p = pool(2, 16);
        assert_eq!(p.ensure_capacity(A, 0), Ok(0));
        assert_eq!(p.owners().collect::<Vec<_>>(), vec![A]);
        assert_eq!(p.owner_tokens_capacity(B), 0);
    }

    #[test]
    fn exhaustion_is_all_or_nothing() {
        let mut p = pool(4, 16);
        p.ensure_capacity(A, 32).unwrap();
        let before = format!("{p:?}");
        assert!(!p.can_fit(B, 48));
        let err = p.ensure_capacity(B, 48).unwrap_err();
        assert_eq!(
            err,
            PoolError::Exhausted {
                needed: 3,
                free: 2,
                total: 4,
                block_tokens: 16
            }
        );
        assert!(err.to_string().contains("need 3 more blocks"));
        assert_eq!(p.ensure_capacity(A, 16 * 5), Err(p.exhausted(3)));
        assert_eq!(
            format!("{p:?}"),
            before,
            "failed ensure must not change state"
        );
        assert_eq!(p.owners().collect::<Vec<_>>(), vec![A]);
        assert!(p.can_fit(B, 32));
        assert!(p.can_fit(A, 64));
    }

    #[test]
    fn shrink_frees_tail() {
        let mut p = pool(8, 16);
        p.ensure_capacity(A, 16 * 5).unwrap();
        assert_eq!(p.shrink_to(A, 33), Ok(2));
        assert_eq!(p.owner_blocks(A), 3);
        assert_eq!(p.shrink_to(A, 48), Ok(0));
        assert_eq!(p.shrink_to(A, 0), Ok(3));
        assert_eq!(
            p.owners().collect::<Vec<_>>(),
            vec![A],
            "shrink keeps owner"
        );
        assert_eq!(p.shrink_to(B, 0), Err(PoolError::UnknownOwner(B)));
        assert_eq!(p.free_blocks(), 8);
        p.check_invariants().unwrap();
    }

    #[test]
    fn shared_block_freed_by_last_owner() {
        let mut p = pool(8, 16);
        p.ensure_capacity(A, 40).unwrap(); // 3 blocks, last partial
        assert_eq!(p.share_prefix(A, B, 40), Ok(2)); // only full blocks
        assert_eq!(p.owner_block_ids(B), &p.owner_block_ids(A)[..2]);
        assert_eq!(p.used_blocks(), 3);
        assert_eq!(p.ensure_capacity(B, 40), Ok(1)); // private tail
        assert_eq!(p.used_blocks(), 4);
        p.check_invariants().unwrap();
        assert_eq!(p.shrink_to(A, 0), Ok(1), "only A's private tail frees");
        assert_eq!(p.release(A), 0);
        assert_eq!(p.release(B), 3);
        assert_eq!(p.free_blocks(), 8);
        p.check_invariants().unwrap();
    }

    #[test]
    fn share_prefix_errors() {
        let mut p = pool(8, 16);
        p.ensure_capacity(A, 32).unwrap();
        p.ensure_capacity(C, 16).unwrap();
        assert_eq!(p.share_prefix(B, C, 16), Err(PoolError::UnknownOwner(B)));
        assert_eq!(p.share_prefix(A, A, 16), Err(PoolError::SelfShare(A)));
        assert_eq!(p.share_prefix(A, C, 16), Err(PoolError::TargetNotEmpty(C)));
        assert_eq!(
            p.share_prefix(A, B, 48),
            Err(PoolError::PrefixTooLong {
                owner: A,
                requested: 3,
                held: 2
            })
        );
        p.shrink_to(C, 0).unwrap();
        assert_eq!(p.share_prefix(A, C, 32), Ok(2), "empty target is fine");
        p.check_invariants().unwrap();
    }

    #[test]
    fn release_is_idempotent() {
        let mut p = pool(4, 16);
        p.ensure_capacity(A, 64).unwrap();
        assert_eq!(p.release(A), 4);
        assert_eq!(p.release(A), 0);
        assert_eq!(p.release(B), 0);
        assert_eq!(p.free_blocks(), 4);
        p.check_invariants().unwrap();
    }

    #[test]
    fn check_invariants_detects_corruption() {
        let mut p = pool(4, 16);
        p.ensure_capacity(A, 32).unwrap();
        let mut bad = p.clone();
        let held = bad.owner_block_ids(A)[0];
        bad.refcounts[held.0 as usize] = 2;
        assert!(bad.check_invariants().is_err());
        let mut bad = p.clone();
        let dup = bad.free[0];
        bad.free.push(dup);
        assert!(bad.check_invariants().is_err());
        let mut bad = p.clone();
        let held = bad.owner_block_ids(A)[0];
        bad.free.push(held);
        assert!(bad.check_invariants().is_err());
    }

    mod property {
        use super::*;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        use std::collections::{BTreeMap, HashMap, HashSet};

        const TOTAL: u32 = 48;
        const BT: u32 = 16;
        const OWNERS: u64 = 10;

        /// Reference model: each owner holds a list of logical block labels;
        /// sharing copies labels, so distinct labels = used blocks.
        #[derive(Default)]
        struct Model {
            owners: BTreeMap<OwnerId, Vec<u64>>,
            next_label: u64,
        }

        impl Model {
            fn used(&self) -> u32 {
                let all: HashSet<u64> = self.owners.values().flatten().copied().collect();
                all.len() as u32
            }
            fn free(&self) -> u32 {
                TOTAL - self.used()
            }
            fn held(&self, o: OwnerId) -> u32 {
                self.owners.get(&o).map_or(0, |v| v.len() as u32)
            }
            /// How many of `dropped` labels are no longer referenced.
            fn freed(&self, dropped: &[u64]) -> u32 {
                let live: HashSet<u64> = self.owners.values().flatten().copied().collect();
                let gone: HashSet<u64> = dropped
                    .iter()
                    .filter(|l| !live.contains(l))
                    .copied()
                    .collect();
                gone.len() as u32
            }
            fn ensure(&mut self, o: OwnerId, tokens: u32) -> Result<u32, u32> {
                let need = tokens.div_ceil(BT).saturating_sub(self.held(o));
                if need > self.free() {
                    return Err(need);
                }
                let start = self.next_label;
                self.next_label += u64::from(need);
                self.owners
                    .entry(o)
                    .or_default()
                    .extend(start..self.next_label);
                Ok(need)
            }
            fn shrink(&mut self, o: OwnerId, tokens: u32) -> u32 {
                let keep = tokens.div_ceil(BT) as usize;
                let v = self.owners.get_mut(&o).unwrap();
                let dropped = if v.len() > keep {
                    v.split_off(keep)
                } else {
                    vec![]
                };
                self.freed(&dropped)
            }
            fn release(&mut self, o: OwnerId) -> u32 {
                let dropped = self.owners.remove(&o).unwrap_or_default();
                self.freed(&dropped)
            }
        }

        /// Pool and model agree on owners, block counts, free count, and the
        /// label -> BlockId mapping is a bijection (shared labels share ids).
        fn compare(p: &BlockPool, m: &Model) {
            p.check_invariants().unwrap();
            assert_eq!(
                p.owners().collect::<Vec<_>>(),
                m.owners.keys().copied().collect::<Vec<_>>()
            );
            assert_eq!(p.free_blocks(), m.free());
            let mut label_to_block = HashMap::new();
            let mut block_to_label = HashMap::new();
            for (&o, labels) in &m.owners {
                let ids = p.owner_block_ids(o);
                assert_eq!(ids.len(), labels.len(), "{o:?} block count");
                for (&l, &b) in labels.iter().zip(ids) {
                    assert_eq!(*label_to_block.entry(l).or_insert(b), b);
                    assert_eq!(*block_to_label.entry(b).or_insert(l), l);
                }
            }
        }

        fn random_owner(rng: &mut StdRng) -> OwnerId {
            OwnerId(rng.gen_range(0..OWNERS))
        }

        fn step(rng: &mut StdRng, p: &mut BlockPool, m: &mut Model) {
            match rng.gen_range(0..100) {
                0..=39 => op_ensure(rng, p, m),
                40..=59 => op_shrink(rng, p, m),
                60..=74 => op_share(rng, p, m),
                75..=89 => {
                    let o = random_owner(rng);
                    assert_eq!(p.release(o), m.release(o));
                }
                _ => op_failed_request(rng, p, m),
            }
        }

        fn op_ensure(rng: &mut StdRng, p: &mut BlockPool, m: &mut Model) {
            let o = random_owner(rng);
            let tokens = rng.gen_range(0..=BT * 12);
            let fits = p.can_fit(o, tokens);
            match (p.ensure_capacity(o, tokens), m.ensure(o, tokens)) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(PoolError::Exhausted { needed, .. }), Err(want)) => assert_eq!(needed, want),
                (got, want) => panic!("ensure {o:?} {tokens}: pool {got:?}, model {want:?}"),
            }
            assert_eq!(fits, m.held(o) >= tokens.div_ceil(BT));
        }

        fn op_shrink(rng: &mut StdRng, p: &mut BlockPool, m: &mut Model) {
            let o = random_owner(rng);
            let tokens = rng.gen_range(0..=BT * 12);
            if m.owners.contains_key(&o) {
                assert_eq!(p.shrink_to(o, tokens), Ok(m.shrink(o, tokens)));
            } else {
                assert_eq!(p.shrink_to(o, tokens), Err(PoolError::UnknownOwner(o)));
            }
        }

        fn op_share(rng: &mut StdRng, p: &mut BlockPool, m: &mut Model) {
            let (from, to) = (random_owner(rng), random_owner(rng));
            let tokens = rng.gen_range(0..=BT * 12);
            let got = p.share_prefix(from, to, tokens);
            let n = tokens / BT;
            let expected = if from == to {
                Err(PoolError::SelfShare(from))
            } else if !m.owners.contains_key(&from) {
                Err(PoolError::UnknownOwner(from))
            } else if n > m.held(from) {
                Err(PoolError::PrefixTooLong {
                    owner: from,
                    requested: n,
                    held: m.held(from),
                })
            } else if m.held(to) > 0 {
                Err(PoolError::TargetNotEmpty(to))
            } else {
                let prefix = m.owners[&from][..n as usize].to_vec();
                m.owners.insert(to, prefix);
                Ok(n)
            };
            assert_eq!(got, expected);
        }

        /// A request too large for the whole pool: admission fails, then the
        /// error path releases the (never created) owner.
        fn op_failed_request(rng: &mut StdRng, p: &mut BlockPool, m: &mut Model) {
            let o = OwnerId(OWNERS + rng.gen_range(0..3));
            let tokens = TOTAL * BT + rng.gen_range(1..=BT * 4);
            assert!(matches!(
                p.ensure_capacity(o, tokens),
                Err(PoolError::Exhausted { .. })
            ));
            assert_eq!(p.release(o), 0);
            assert!(!m.owners.contains_key(&o));
        }

        #[test]
        fn random_operations_match_model() {
            for seed in [0u64, 1, 0xC0FFEE] {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut p = pool(TOTAL, BT);
                let mut m = Model::default();
                for _ in 0..1_000 {
                    step(&mut rng, &mut p, &mut m);
                    compare(&p, &m);
                }
                let owners: Vec<_> = p.owners().collect();
                for o in owners {
                    assert_eq!(p.release(o), m.release(o));
                    compare(&p, &m);
                }
                assert_eq!(p.free_blocks(), p.total_blocks());
                assert_eq!(p.used_blocks(), 0);
            }
        }
    }
}
