//! Who speaks next, for every topology: one turn ([`Session::next_turn`])
//! or a round of turns ([`RoundPlan`]).

use super::model::{Session, SessionError, Topology};

/// What the next turn needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextTurn {
    /// Participant (index) speaks.
    Speak(usize),
    /// The moderator must first choose the speaker among `options`.
    Choose {
        moderator: usize,
        options: Vec<usize>,
    },
}

impl Session {
    /// The next turn: `named` (a participant id, the request's `speaker`)
    /// if given, else whoever the topology gives the word to.
    pub fn next_turn(&self, named: Option<&str>) -> Result<NextTurn, SessionError> {
        self.check_open()?;
        if let Some(id) = named {
            let index = self.require("speaker", id)?;
            if Some(index) == self.moderator() {
                return Err(SessionError::invalid(
                    "speaker",
                    format!(
                        "{id:?} moderates this session: it chooses speakers, it does not speak"
                    ),
                ));
            }
            return Ok(NextTurn::Speak(index));
        }
        match &self.topology {
            Topology::RoundRobin | Topology::Broadcast => {
                Ok(NextTurn::Speak(self.cursor % self.participants.len()))
            }
            Topology::TurnByTurn => Err(SessionError::invalid(
                "speaker",
                "a turn_by_turn session takes the speaker of every turn (a participant id)",
            )),
            Topology::Moderated { .. } => Ok(self.choice_among(self.speakers())),
        }
    }

    /// Plan a round: every participant (every speaker, when moderated)
    /// once, as far as the session's remaining turns allow.
    pub fn round_plan(&self) -> Result<RoundPlan, SessionError> {
        self.check_open()?;
        let n = self.participants.len();
        let (order, batch) = match &self.topology {
            Topology::RoundRobin => ((0..n).map(|k| (self.cursor + k) % n).collect(), false),
            Topology::TurnByTurn => ((0..n).collect(), false),
            Topology::Broadcast => ((0..n).collect(), true),
            Topology::Moderated { .. } => (self.speakers(), false),
        };
        Ok(RoundPlan {
            order,
            broadcast: batch,
            moderated: self.moderator().is_some(),
        })
    }

    /// Everyone who may be given the word (all but a moderator).
    fn speakers(&self) -> Vec<usize> {
        let moderator = self.moderator();
        (0..self.participants.len())
            .filter(|&i| Some(i) != moderator)
            .collect()
    }

    /// A choice among `options`, or the only one without asking.
    fn choice_among(&self, options: Vec<usize>) -> NextTurn {
        match (self.moderator(), options.as_slice()) {
            (_, [only]) => NextTurn::Speak(*only),
            (Some(moderator), _) => NextTurn::Choose { moderator, options },
            (None, _) => NextTurn::Speak(options.first().copied().unwrap_or(0)),
        }
    }

    fn check_open(&self) -> Result<(), SessionError> {
        if self.is_finished() {
            return Err(SessionError::Finished {
                max_turns: self.max_turns,
            });
        }
        Ok(())
    }
}

/// The turns of one round, decided as it goes (a moderator chooses each
/// next speaker among those who have not spoken yet in the round).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundPlan {
    /// Who speaks, in order (the candidates, when moderated).
    pub order: Vec<usize>,
    /// Every speaker answers the same prompt: their prompts are rendered
    /// before any of them replies, and their replies form one batch.
    pub broadcast: bool,
    pub moderated: bool,
}

impl RoundPlan {
    /// The round's next turn, after `spoken` spoke; `None` when the round
    /// is over or the session out of turns.
    pub fn next(&self, session: &Session, spoken: &[usize]) -> Option<NextTurn> {
        if session.is_finished() {
            return None;
        }
        let left: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|i| !spoken.contains(i))
            .collect();
        if left.is_empty() {
            return None;
        }
        if self.moderated {
            return Some(session.choice_among(left));
        }
        left.first().copied().map(NextTurn::Speak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::model::tests::spec;
    use crate::sessions::model::TurnUsage;

    fn session(ids: &[&str], topology: &str, moderator: Option<&str>) -> Session {
        let mut s = spec(ids, topology);
        s.moderator = moderator.map(str::to_owned);
        Session::create("sess_t".into(), 0, s).unwrap()
    }

    fn reply(s: &mut Session, speaker: usize) {
        s.add_reply(0, speaker, "ok".into(), TurnUsage::default(), None)
            .unwrap();
    }

    #[test]
    fn round_robin_cycles_and_a_named_speaker_moves_the_cursor() {
        let mut s = session(&["a", "b", "c"], "round_robin", None);
        let mut order = Vec::new();
        for _ in 0..4 {
            let NextTurn::Speak(i) = s.next_turn(None).unwrap() else {
                panic!()
            };
            order.push(i);
            reply(&mut s, i);
        }
        assert_eq!(order, [0, 1, 2, 0]);
        assert_eq!(s.next_turn(Some("a")).unwrap(), NextTurn::Speak(0));
        reply(&mut s, 0);
        assert_eq!(s.next_turn(None).unwrap(), NextTurn::Speak(1));
        assert_eq!(
            s.next_turn(Some("zz")).unwrap_err().field(),
            Some("speaker")
        );
        // A round starts where the cursor stands.
        assert_eq!(s.round_plan().unwrap().order, [1, 2, 0]);
    }

    #[test]
    fn turn_by_turn_needs_the_speaker_named() {
        let s = session(&["a", "b"], "turn_by_turn", None);
        assert_eq!(s.next_turn(None).unwrap_err().field(), Some("speaker"));
        assert_eq!(s.next_turn(Some("b")).unwrap(), NextTurn::Speak(1));
        assert_eq!(s.round_plan().unwrap().order, [0, 1]);
    }

    #[test]
    fn broadcast_rounds_are_one_batch_of_everyone() {
        let s = session(&["a", "b", "c"], "broadcast", None);
        let plan = s.round_plan().unwrap();
        assert!(plan.broadcast);
        assert_eq!(plan.order, [0, 1, 2]);
        assert_eq!(plan.next(&s, &[0, 2]), Some(NextTurn::Speak(1)));
        assert_eq!(plan.next(&s, &[0, 1, 2]), None);
    }

    #[test]
    fn a_moderator_chooses_among_the_others_and_never_speaks() {
        let s = session(&["m", "a", "b"], "moderated", Some("m"));
        let choose = NextTurn::Choose {
            moderator: 0,
            options: vec![1, 2],
        };
        assert_eq!(s.next_turn(None).unwrap(), choose);
        assert_eq!(s.next_turn(Some("m")).unwrap_err().field(), Some("speaker"));
        let plan = s.round_plan().unwrap();
        assert_eq!(plan.next(&s, &[]), Some(choose));
        assert_eq!(
            plan.next(&s, &[2]),
            Some(NextTurn::Speak(1)),
            "the last one needs no choice"
        );
    }

    #[test]
    fn a_round_stops_at_max_turns_and_then_everything_is_409() {
        let mut sp = spec(&["a", "b", "c"], "round_robin");
        sp.max_turns = Some(2);
        let mut s = Session::create("sess_t".into(), 0, sp).unwrap();
        let plan = s.round_plan().unwrap();
        let mut spoken = Vec::new();
        while let Some(NextTurn::Speak(i)) = plan.next(&s, &spoken) {
            reply(&mut s, i);
            spoken.push(i);
        }
        assert_eq!(spoken, [0, 1]);
        assert!(matches!(
            s.next_turn(None),
            Err(SessionError::Finished { .. })
        ));
        assert!(matches!(s.round_plan(), Err(SessionError::Finished { .. })));
    }
}
