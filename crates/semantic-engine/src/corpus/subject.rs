//! What a generated article is about: a place and a kind of institution,
//! "Ashford Canal".
//!
//! A variant's text opens with its own article, whose title is chosen from
//! the variant number rather than at random, so the first
//! [`DISTINCT_OPENINGS`] variants all open differently: a prefix cache
//! cannot make one variant cheaper by having seen another.

use super::rng::SplitMix64;
use super::vocabulary::{Kind, KINDS, PLACE_ENDS, PLACE_STARTS};

/// Generated variants below this number open with titles no other variant
/// has, so no two of them share more than their first word.
pub const DISTINCT_OPENINGS: usize = PLACE_STARTS.len() * PLACE_ENDS.len() * KINDS.len();

#[derive(Clone, Debug)]
pub struct Subject {
    pub place: String,
    pub kind: Kind,
}

impl Subject {
    /// The subject a variant opens with: consecutive variants differ in
    /// the place's first syllable, so they differ from the first token.
    pub fn for_variant(variant: usize) -> Self {
        let places = PLACE_STARTS.len() * PLACE_ENDS.len();
        Self {
            place: place_name(variant % places),
            kind: KINDS[(variant / places) % KINDS.len()],
        }
    }

    /// Any subject, for the articles that follow a variant's first.
    pub fn random(rng: &mut SplitMix64) -> Self {
        Self {
            place: random_place(rng),
            kind: rng.pick(KINDS),
        }
    }

    pub fn title(&self) -> String {
        format!("{} {}", self.place, self.kind.title)
    }

    /// How running text names it again: "the canal".
    pub fn the_kind(&self) -> String {
        format!("the {}", self.kind.noun)
    }
}

/// Place name number `index` (wrapping around): "Ashford", "Bramford", ...
pub fn place_name(index: usize) -> String {
    let start = PLACE_STARTS[index % PLACE_STARTS.len()];
    let end = PLACE_ENDS[(index / PLACE_STARTS.len()) % PLACE_ENDS.len()];
    format!("{start}{end}")
}

pub fn random_place(rng: &mut SplitMix64) -> String {
    place_name(rng.below(PLACE_STARTS.len() * PLACE_ENDS.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_first_variants_have_distinct_titles() {
        let titles: HashSet<String> = (0..DISTINCT_OPENINGS)
            .map(|v| Subject::for_variant(v).title())
            .collect();
        assert_eq!(titles.len(), DISTINCT_OPENINGS);
        assert_eq!(
            Subject::for_variant(0).title(),
            Subject::for_variant(DISTINCT_OPENINGS).title()
        );
    }

    #[test]
    fn neighbouring_variants_differ_in_the_first_word() {
        for v in 0..100 {
            let a = Subject::for_variant(v).place;
            let b = Subject::for_variant(v + 1).place;
            assert_ne!(a[..2], b[..2], "{a} / {b}");
        }
    }
}
