//! Streaming stop-string matching.
//!
//! Text arrives token by token, and a stop string may span several tokens,
//! so text that could still turn out to be the start of a stop string is held
//! back until it is known either way. Nothing after a match is ever emitted.

/// Outcome of feeding one piece of text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StopOutcome {
    /// Text that is now safe to show.
    pub emit: String,
    /// The stop string that matched, if any; generation must end.
    pub matched: Option<String>,
}

/// Matches a set of stop strings against a stream of text.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    /// Feed the next piece of output text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome {
                emit: text.to_owned(),
                matched: None,
            };
        }
        self.held.push_str(text);
        if let Some((at, stop)) = self.earliest_match() {
            let emit = self.held[..at].to_owned();
            self.held.clear();
            return StopOutcome {
                emit,
                matched: Some(stop),
            };
        }
        let keep = self.longest_partial_suffix();
        let emit = self.held[..self.held.len() - keep].to_owned();
        self.held.drain(..self.held.len() - keep);
        StopOutcome {
            emit,
            matched: None,
        }
    }

    /// The text still held back; call when generation ends for another reason.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    fn earliest_match(&self) -> Option<(usize, String)> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s.clone())))
            .min_by_key(|(at, _)| *at)
    }

    /// Bytes at the end of `held` that are a proper prefix of some stop string.
    fn longest_partial_suffix(&self) -> usize {
        let held = self.held.as_str();
        self.stops
            .iter()
            .flat_map(|stop| {
                (1..stop.len().min(held.len() + 1))
                    .rev()
                    .filter(|&k| stop.is_char_boundary(k))
                    .find(|&k| held.ends_with(&stop[..k]))
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let o = m.push(p);
            out.push_str(&o.emit);
            if o.matched.is_some() {
                return (out, o.matched);
            }
        }
        out.push_str(&m.flush());
        (out, None)
    }

    #[test]
    fn no_stops_passes_text_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), None));
    }

    #[test]
    fn stop_spanning_tokens_is_cut_and_not_emitted() {
        assert_eq!(
            run(&["END"], &["hello E", "N", "D world"]),
            ("hello ".into(), Some("END".into()))
        );
    }

    #[test]
    fn partial_match_that_fails_is_released() {
        assert_eq!(run(&["END"], &["E", "N", "x"]), ("ENx".into(), None));
        assert_eq!(run(&["END"], &["abc E"]), ("abc E".into(), None));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(
            run(&["world", "lo"], &["hello world"]),
            ("hel".into(), Some("lo".into()))
        );
    }

    #[test]
    fn multibyte_stop_strings_are_safe() {
        assert_eq!(
            run(&["é!"], &["caf", "é", "!"]),
            ("caf".into(), Some("é!".into()))
        );
        assert_eq!(run(&["éa"], &["xé", "b"]), ("xéb".into(), None));
    }
}
