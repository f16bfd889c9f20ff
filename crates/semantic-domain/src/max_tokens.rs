//! How many tokens one request may generate: the single rule behind
//! `--default-max-tokens`, `--max-tokens-cap`, `--strict-max-tokens` and a
//! request that asks for more than the context window has left.
//!
//! Pure: the caller supplies what the request asked for and the room the
//! window has left after the prompt; the engine applies it at submit, the
//! one place where both are known for every caller (each API family, the
//! CLI, the benchmarks).

/// The default when neither the request nor `--default-max-tokens` names
/// one: long enough for any ordinary answer or tool call, short enough that
/// a runaway generation frees its sequence in minutes, not hours, on a CPU.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The server's token-limit settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxTokensPolicy {
    /// Applied when a request sets none, bounded by `cap` and the room left.
    pub default: u32,
    /// Most tokens a request may ask for; `None`: only the context window.
    pub cap: Option<u32>,
    /// Refuse a request that asks for more than the cap or the room left,
    /// instead of clamping it.
    pub strict: bool,
}

impl Default for MaxTokensPolicy {
    fn default() -> Self {
        Self {
            default: DEFAULT_MAX_TOKENS,
            cap: None,
            strict: false,
        }
    }
}

/// Where the effective limit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxTokensSource {
    /// The request's own value, within every limit.
    Requested,
    /// The request named none: the default (possibly bounded by the cap or
    /// the room left; never an error).
    Default,
    /// The request asked for more than the cap.
    ClampedToCap,
    /// The request asked for more than the context window has left.
    ClampedToRoom,
}

/// The effective `max_tokens` of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedMaxTokens {
    pub max_tokens: u32,
    pub source: MaxTokensSource,
}

/// A request refused under the policy: it names the tighter limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaxTokensRefused {
    /// Strict: more than `--max-tokens-cap` asked for.
    #[error("max_tokens {requested} exceeds this server's limit of {cap} tokens per request (--max-tokens-cap)")]
    OverCap { requested: u32, cap: u32 },
    /// Strict: more than the window has left after the prompt asked for;
    /// also (strict or not) when the prompt left no room at all.
    #[error("max_tokens {requested} exceeds the {room} tokens left in the context window")]
    OverRoom { requested: u32, room: u32 },
}

impl MaxTokensPolicy {
    /// A setting that can never be met: a zero default or cap.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.default == 0 {
            return Err("the default max_tokens must be at least 1");
        }
        if self.cap == Some(0) {
            return Err("the max_tokens cap must be at least 1");
        }
        Ok(())
    }

    /// The effective `max_tokens` for a request that asked for `requested`
    /// (`None`: it named no limit) when the context window has `room`
    /// tokens left after its prompt.
    ///
    /// - no request value: `min(default, cap, room)`, never an error;
    /// - within the cap and the room: the request's value;
    /// - beyond either: clamped to the tighter one, or, when `strict`,
    ///   refused naming it.
    ///
    /// `room == 0` cannot generate anything and is refused either way. A
    /// requested 0 is refused earlier, by [`crate::SamplingParams::validate`].
    pub fn resolve(
        &self,
        requested: Option<u32>,
        room: u32,
    ) -> Result<ResolvedMaxTokens, MaxTokensRefused> {
        let cap = self.cap.unwrap_or(u32::MAX);
        if room == 0 {
            return Err(MaxTokensRefused::OverRoom {
                requested: requested.unwrap_or(self.default.min(cap)),
                room,
            });
        }
        let Some(requested) = requested else {
            return Ok(ResolvedMaxTokens {
                max_tokens: self.default.min(cap).min(room),
                source: MaxTokensSource::Default,
            });
        };
        // The tighter of the two limits decides, and is the one named.
        let (limit, source, refused) = if cap <= room {
            let refused = MaxTokensRefused::OverCap { requested, cap };
            (cap, MaxTokensSource::ClampedToCap, refused)
        } else {
            let refused = MaxTokensRefused::OverRoom { requested, room };
            (room, MaxTokensSource::ClampedToRoom, refused)
        };
        if requested <= limit {
            return Ok(ResolvedMaxTokens {
                max_tokens: requested,
                source: MaxTokensSource::Requested,
            });
        }
        if self.strict {
            return Err(refused);
        }
        Ok(ResolvedMaxTokens {
            max_tokens: limit,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MaxTokensSource::*;

    fn policy(default: u32, cap: Option<u32>, strict: bool) -> MaxTokensPolicy {
        MaxTokensPolicy {
            default,
            cap,
            strict,
        }
    }

    fn ok(p: MaxTokensPolicy, requested: Option<u32>, room: u32) -> (u32, MaxTokensSource) {
        let r = p.resolve(requested, room).expect("resolves");
        (r.max_tokens, r.source)
    }

    #[test]
    fn no_request_value_takes_the_default_bounded_by_cap_and_room() {
        let p = MaxTokensPolicy::default();
        assert_eq!(ok(p, None, 100_000), (DEFAULT_MAX_TOKENS, Default));
        assert_eq!(ok(p, None, 500), (500, Default));
        assert_eq!(ok(policy(8, None, false), None, 500), (8, Default));
        assert_eq!(
            ok(policy(4096, Some(100), false), None, 500),
            (100, Default)
        );
        // Strict refuses what a client asked for, never the server's default.
        assert_eq!(ok(policy(4096, Some(100), true), None, 50), (50, Default));
    }

    #[test]
    fn a_request_within_every_limit_is_kept() {
        let p = policy(8, Some(100), true);
        assert_eq!(ok(p, Some(100), 100), (100, Requested));
        assert_eq!(ok(p, Some(1), 1), (1, Requested));
        // Above the default is fine: the default only fills a gap.
        assert_eq!(ok(p, Some(50), 1000), (50, Requested));
    }

    #[test]
    fn beyond_the_cap_is_clamped_or_refused_when_strict() {
        assert_eq!(
            ok(policy(8, Some(100), false), Some(101), 1000),
            (100, ClampedToCap)
        );
        assert_eq!(
            policy(8, Some(100), true).resolve(Some(101), 1000),
            Err(MaxTokensRefused::OverCap {
                requested: 101,
                cap: 100
            })
        );
    }

    #[test]
    fn beyond_the_room_left_is_clamped_or_refused_when_strict() {
        // Claude Code asks for 32,000 whatever the window holds.
        let p = MaxTokensPolicy::default();
        assert_eq!(ok(p, Some(32_000), 6_000), (6_000, ClampedToRoom));
        let strict = policy(4096, None, true);
        assert_eq!(
            strict.resolve(Some(32_000), 6_000),
            Err(MaxTokensRefused::OverRoom {
                requested: 32_000,
                room: 6_000
            })
        );
    }

    #[test]
    fn the_tighter_limit_decides_and_is_named() {
        // Cap tighter than the room.
        assert_eq!(
            ok(policy(8, Some(100), false), Some(5000), 1000),
            (100, ClampedToCap)
        );
        assert!(matches!(
            policy(8, Some(100), true).resolve(Some(5000), 1000),
            Err(MaxTokensRefused::OverCap { cap: 100, .. })
        ));
        // Room tighter than the cap.
        assert_eq!(
            ok(policy(8, Some(1000), false), Some(5000), 100),
            (100, ClampedToRoom)
        );
        assert!(matches!(
            policy(8, Some(1000), true).resolve(Some(5000), 100),
            Err(MaxTokensRefused::OverRoom { room: 100, .. })
        ));
        // Equal: the cap is named (the operator's setting explains more).
        assert!(matches!(
            policy(8, Some(100), true).resolve(Some(5000), 100),
            Err(MaxTokensRefused::OverCap { cap: 100, .. })
        ));
    }

    #[test]
    fn no_room_is_refused_strict_or_not() {
        for strict in [false, true] {
            let p = policy(8, None, strict);
            assert!(p.resolve(None, 0).is_err());
            assert!(p.resolve(Some(1), 0).is_err());
        }
    }

    #[test]
    fn the_result_never_exceeds_any_limit() {
        for strict in [false, true] {
            for cap in [None, Some(1), Some(7), Some(64)] {
                for default in [1, 8, 100] {
                    let p = policy(default, cap, strict);
                    for room in 1..70 {
                        for requested in
                            [None, Some(1), Some(8), Some(63), Some(64), Some(u32::MAX)]
                        {
                            if let Ok(r) = p.resolve(requested, room) {
                                assert!(r.max_tokens >= 1);
                                assert!(r.max_tokens <= room);
                                assert!(r.max_tokens <= cap.unwrap_or(u32::MAX));
                                if let Some(asked) = requested {
                                    assert!(r.max_tokens <= asked);
                                } else {
                                    assert!(r.max_tokens <= default);
                                }
                            } else {
                                assert!(
                                    strict && requested.is_some(),
                                    "{p:?} {requested:?} {room}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn zero_settings_are_invalid() {
        assert!(policy(0, None, false).validate().is_err());
        assert!(policy(1, Some(0), false).validate().is_err());
        assert!(MaxTokensPolicy::default().validate().is_ok());
    }
}
