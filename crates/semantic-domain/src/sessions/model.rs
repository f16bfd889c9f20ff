//! What a session is: its participants, topology, limits, sampling and
//! transcript, and the checks that make a client's description one.
//!
//! Every refusal names the request field at fault (`participants[2].id`,
//! `moderator`, `max_turns`), so the HTTP adapter can answer a 400 that
//! points at it; a session out of turns is its own error (a 409).

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, InvalidAgentId};
use crate::sampling::SamplingParams;

/// Most participants one session may have.
pub const MAX_PARTICIPANTS: usize = 30;
/// Longest participant id (its agent id adds the session id to it).
pub const MAX_PARTICIPANT_ID_LEN: usize = 64;
/// Longest display name.
pub const MAX_NAME_LEN: usize = 64;
/// Turns a session may take when the client sets no bound.
pub const DEFAULT_MAX_TURNS: u32 = 100;
/// The largest bound a client may set.
pub const MAX_MAX_TURNS: u32 = 10_000;
/// Most transcript entries a session holds: injected messages are not
/// turns, so `max_turns` alone would not bound a session's record (the
/// store rewrites it whole on every change).
pub const MAX_ENTRIES: usize = 4 * MAX_MAX_TURNS as usize;
/// Longest session id accepted in a lookup (ours are 37 characters).
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Whether a participant's cache outlives its session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Its agent is the session's own and is removed with the session.
    #[default]
    Ephemeral,
    /// Its agent is named after the participant alone, so it carries over
    /// to the next session it joins, and a deleted session keeps it.
    Permanent,
}

/// Who speaks next, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Topology {
    /// Each participant in turn, in the order they were listed.
    RoundRobin,
    /// The client names every speaker.
    TurnByTurn,
    /// A round is every participant answering the same prompt: none of
    /// them sees the others' answers of that round before giving its own.
    Broadcast,
    /// The moderator (a participant) picks each next speaker among the
    /// others, by a grammar-constrained choice of their ids.
    Moderated { moderator: String },
}

impl Topology {
    pub fn name(&self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::TurnByTurn => "turn_by_turn",
            Self::Broadcast => "broadcast",
            Self::Moderated { .. } => "moderated",
        }
    }
}

/// One participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Unique in its session; an agent id's characters, at most 64.
    pub id: String,
    /// How the others see it named in the conversation.
    pub name: String,
    /// Its whole system prompt, when the client wrote one.
    pub system_prompt: Option<String>,
    /// A role description, used to write the system prompt otherwise.
    pub role: Option<String>,
    pub lifecycle: Lifecycle,
}

/// A participant as a client describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewParticipant {
    pub id: String,
    pub name: Option<String>,
    pub system_prompt: Option<String>,
    pub role: Option<String>,
    pub lifecycle: Lifecycle,
}

/// A session as a client describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSession {
    pub participants: Vec<NewParticipant>,
    /// `round_robin`, `turn_by_turn`, `broadcast` or `moderated`.
    pub topology: String,
    /// The moderating participant's id (`moderated` only).
    pub moderator: Option<String>,
    pub max_turns: Option<u32>,
    /// Every turn's sampling (validated by the caller's adapter, which
    /// knows its field names).
    pub sampling: SamplingParams,
    /// A first public message from the user.
    pub initial_prompt: Option<String>,
}

/// Token counts of one turn, as the transcript keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens whose KV was reused.
    pub cached_tokens: u32,
    /// `cold`, `hot`, `warm`, `disk` or `shared`.
    pub cache_source: String,
}

/// One transcript entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its position in the transcript, from 0.
    pub seq: u32,
    /// Unix seconds.
    pub at: u64,
    #[serde(flatten)]
    pub kind: EntryKind,
}

/// What an entry is, and so who sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A public message the client injected (the initial prompt too),
    /// attributed to `name` when given.
    Message { name: Option<String>, text: String },
    /// A private message only participant `to` sees.
    Whisper {
        name: Option<String>,
        to: String,
        text: String,
    },
    /// A participant's turn. `text` is the reply exactly as generated (its
    /// speaker's view renders it, so the next prompt extends its KV);
    /// `cleaned` is what the others see. Replies of one broadcast round
    /// share a `batch`.
    Reply {
        speaker: String,
        text: String,
        cleaned: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<u32>,
        usage: TurnUsage,
    },
    /// The moderator's pick of the next speaker among `options`, exactly
    /// as generated (only the moderator sees it).
    Choice {
        moderator: String,
        options: Vec<String>,
        chose: String,
    },
}

/// A session: its fixed description, its transcript and where its turn
/// order stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `sess_…`, chosen by the server.
    pub id: String,
    pub created_at: u64,
    pub participants: Vec<Participant>,
    pub topology: Topology,
    pub max_turns: u32,
    pub sampling: SamplingParams,
    pub transcript: Vec<Entry>,
    /// Index of the participant a round-robin turn gives the word to next.
    pub cursor: usize,
    /// Replies so far.
    pub turns: u32,
    /// Broadcast rounds so far (each round's replies carry its number).
    pub batches: u32,
}

/// Why a session cannot be created or advanced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The client's field `field` is wrong (a 400 naming it).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Every turn the session allows was taken (a 409).
    #[error("the session has taken its {max_turns} turns (max_turns) and is finished")]
    Finished { max_turns: u32 },
    /// The transcript holds [`MAX_ENTRIES`] entries (a 409).
    #[error("the session's transcript holds its maximum of {MAX_ENTRIES} entries")]
    Full,
}

impl SessionError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The request field at fault, if the client's.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Finished { .. } | Self::Full => None,
        }
    }
}

impl Session {
    /// Check `spec` and make it session `id`, created at `now`.
    pub fn create(id: String, now: u64, spec: NewSession) -> Result<Self, SessionError> {
        let participants = participants(spec.participants)?;
        let topology = topology(&spec.topology, spec.moderator, &participants)?;
        let max_turns = spec.max_turns.unwrap_or(DEFAULT_MAX_TURNS);
        if !(1..=MAX_MAX_TURNS).contains(&max_turns) {
            return Err(SessionError::invalid(
                "max_turns",
                format!("must be between 1 and {MAX_MAX_TURNS}, got {max_turns}"),
            ));
        }
        let mut session = Self {
            id,
            created_at: now,
            participants,
            topology,
            max_turns,
            sampling: spec.sampling,
            transcript: Vec::new(),
            cursor: 0,
            turns: 0,
            batches: 0,
        };
        if let Some(text) = spec.initial_prompt {
            session.push(now, EntryKind::Message { name: None, text });
        }
        Ok(session)
    }

    /// The participant `id` and its index.
    pub fn participant(&self, id: &str) -> Option<(usize, &Participant)> {
        self.participants
            .iter()
            .enumerate()
            .find(|(_, p)| p.id == id)
    }

    /// The participant `id` named in request field `field`, or a 400.
    pub fn require(&self, field: &str, id: &str) -> Result<usize, SessionError> {
        self.participant(id).map(|(i, _)| i).ok_or_else(|| {
            SessionError::invalid(field, format!("no participant {id:?} in this session"))
        })
    }

    pub fn moderator(&self) -> Option<usize> {
        match &self.topology {
            Topology::Moderated { moderator } => self.participant(moderator).map(|(i, _)| i),
            _ => None,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.turns >= self.max_turns
    }

    pub fn remaining_turns(&self) -> u32 {
        self.max_turns.saturating_sub(self.turns)
    }

    /// The agent whose KV holds participant `index`'s view: the session's
    /// own for an ephemeral one, the participant's alone for a permanent
    /// one (so it carries across sessions).
    pub fn agent_of(&self, index: usize) -> Result<AgentId, InvalidAgentId> {
        let p = self.participants.get(index).ok_or(InvalidAgentId::Empty)?;
        match p.lifecycle {
            Lifecycle::Permanent => AgentId::parse(&p.id),
            Lifecycle::Ephemeral => AgentId::parse(&format!("{}.{}", self.id, p.id)),
        }
    }

    /// Inject a public message, or a whisper to participant `to`.
    pub fn add_message(
        &mut self,
        now: u64,
        name: Option<String>,
        text: String,
        to: Option<&str>,
    ) -> Result<&Entry, SessionError> {
        if self.is_finished() {
            return Err(SessionError::Finished {
                max_turns: self.max_turns,
            });
        }
        if self.transcript.len() >= MAX_ENTRIES {
            return Err(SessionError::Full);
        }
        if let Some(name) = &name {
            check_name("name", name)?;
        }
        let kind = match to {
            None => EntryKind::Message { name, text },
            Some(to) => {
                let index = self.require("to", to)?;
                EntryKind::Whisper {
                    name,
                    to: self.participants[index].id.clone(),
                    text,
                }
            }
        };
        Ok(self.push(now, kind))
    }

    /// Record participant `speaker`'s reply (as generated) and move the
    /// round-robin cursor past it. `speaker` comes from this session's own
    /// speaker selection; any other index is refused.
    pub fn add_reply(
        &mut self,
        now: u64,
        speaker: usize,
        text: String,
        usage: TurnUsage,
        batch: Option<u32>,
    ) -> Result<&Entry, SessionError> {
        let Some(p) = self.participants.get(speaker) else {
            return Err(SessionError::invalid(
                "speaker",
                format!("no participant at index {speaker}"),
            ));
        };
        let cleaned = super::view::clean_reply(&text, p);
        let speaker_id = p.id.clone();
        self.turns += 1;
        self.cursor = (speaker + 1) % self.participants.len();
        Ok(self.push(
            now,
            EntryKind::Reply {
                speaker: speaker_id,
                text,
                cleaned,
                batch,
                usage,
            },
        ))
    }

    /// Record the moderator's choice, as generated.
    pub fn add_choice(
        &mut self,
        now: u64,
        moderator: usize,
        options: &[usize],
        chose: String,
    ) -> &Entry {
        let kind = EntryKind::Choice {
            moderator: self.participants[moderator].id.clone(),
            options: options
                .iter()
                .map(|&i| self.participants[i].id.clone())
                .collect(),
            chose,
        };
        self.push(now, kind)
    }

    /// Open the next broadcast round; its replies carry the number returned.
    pub fn open_batch(&mut self) -> u32 {
        self.batches += 1;
        self.batches
    }

    fn push(&mut self, now: u64, kind: EntryKind) -> &Entry {
        let seq = u32::try_from(self.transcript.len()).unwrap_or(u32::MAX);
        self.transcript.push(Entry { seq, at: now, kind });
        &self.transcript[self.transcript.len() - 1]
    }
}

fn participants(given: Vec<NewParticipant>) -> Result<Vec<Participant>, SessionError> {
    if given.is_empty() || given.len() > MAX_PARTICIPANTS {
        return Err(SessionError::invalid(
            "participants",
            format!(
                "a session needs 1 to {MAX_PARTICIPANTS} participants, got {}",
                given.len()
            ),
        ));
    }
    let mut out: Vec<Participant> = Vec::with_capacity(given.len());
    for (i, p) in given.into_iter().enumerate() {
        let field = |f: &str| format!("participants[{i}].{f}");
        if p.id.len() > MAX_PARTICIPANT_ID_LEN {
            return Err(SessionError::invalid(
                field("id"),
                format!("at most {MAX_PARTICIPANT_ID_LEN} characters"),
            ));
        }
        AgentId::parse(&p.id).map_err(|e| SessionError::invalid(field("id"), e.to_string()))?;
        if out.iter().any(|o| o.id == p.id) {
            return Err(SessionError::invalid(
                field("id"),
                format!("{:?} is listed twice", p.id),
            ));
        }
        let name = p.name.unwrap_or_else(|| p.id.clone());
        check_name(&field("name"), &name)?;
        out.push(Participant {
            id: p.id,
            name,
            system_prompt: p.system_prompt,
            role: p.role,
            lifecycle: p.lifecycle,
        });
    }
    Ok(out)
}

fn check_name(field: &str, name: &str) -> Result<(), SessionError> {
    let len = name.chars().count();
    if name.trim().is_empty() || len > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(SessionError::invalid(
            field,
            format!(
                "a name is 1 to {MAX_NAME_LEN} characters, not blank, without control characters"
            ),
        ));
    }
    Ok(())
}

fn topology(
    name: &str,
    moderator: Option<String>,
    participants: &[Participant],
) -> Result<Topology, SessionError> {
    let topology = match name {
        "round_robin" => Topology::RoundRobin,
        "turn_by_turn" => Topology::TurnByTurn,
        "broadcast" => Topology::Broadcast,
        "moderated" => {
            let Some(moderator) = moderator else {
                return Err(SessionError::invalid(
                    "moderator",
                    "a moderated session names its moderator (a participant id)",
                ));
            };
            if !participants.iter().any(|p| p.id == moderator) {
                return Err(SessionError::invalid(
                    "moderator",
                    format!("no participant {moderator:?} in this session"),
                ));
            }
            if participants.len() < 2 {
                return Err(SessionError::invalid(
                    "participants",
                    "a moderated session needs the moderator and at least one speaker",
                ));
            }
            return Ok(Topology::Moderated { moderator });
        }
        other => {
            return Err(SessionError::invalid(
                "topology",
                format!(
                    "unknown topology {other:?}; one of round_robin, turn_by_turn, broadcast, moderated"
                ),
            ))
        }
    };
    if moderator.is_some() {
        return Err(SessionError::invalid(
            "moderator",
            format!("only a moderated session has a moderator, not {name}"),
        ));
    }
    Ok(topology)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn spec(ids: &[&str], topology: &str) -> NewSession {
        NewSession {
            participants: ids
                .iter()
                .map(|id| NewParticipant {
                    id: (*id).to_owned(),
                    ..NewParticipant::default()
                })
                .collect(),
            topology: topology.to_owned(),
            moderator: None,
            max_turns: None,
            sampling: SamplingParams::greedy(8),
            initial_prompt: Some("Discuss.".to_owned()),
        }
    }

    fn field_of(spec: NewSession) -> String {
        let err = Session::create("sess_x".into(), 0, spec).unwrap_err();
        err.field().unwrap().to_owned()
    }

    #[test]
    fn bad_descriptions_name_their_field() {
        assert_eq!(field_of(spec(&[], "round_robin")), "participants");
        assert_eq!(
            field_of(spec(&["a", "a"], "round_robin")),
            "participants[1].id"
        );
        assert_eq!(
            field_of(spec(&["a", "b/c"], "round_robin")),
            "participants[1].id"
        );
        assert_eq!(field_of(spec(&["a"], "ring")), "topology");
        assert_eq!(field_of(spec(&["a", "b"], "moderated")), "moderator");
        let mut s = spec(&["a", "b"], "moderated");
        s.moderator = Some("z".into());
        assert_eq!(field_of(s), "moderator");
        let mut s = spec(&["a"], "broadcast");
        s.moderator = Some("a".into());
        assert_eq!(field_of(s), "moderator");
        let mut s = spec(&["a"], "broadcast");
        s.max_turns = Some(0);
        assert_eq!(field_of(s), "max_turns");
        let mut s = spec(&["a"], "broadcast");
        s.participants[0].name = Some(" ".into());
        assert_eq!(field_of(s), "participants[0].name");
        let ids: Vec<String> = (0..31).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(field_of(spec(&refs, "broadcast")), "participants");
    }

    #[test]
    fn agents_are_per_session_unless_permanent() {
        let mut s = spec(&["a", "b"], "round_robin");
        s.participants[1].lifecycle = Lifecycle::Permanent;
        let session = Session::create("sess_1".into(), 0, s).unwrap();
        assert_eq!(session.agent_of(0).unwrap().as_str(), "sess_1.a");
        assert_eq!(session.agent_of(1).unwrap().as_str(), "b");
        assert_eq!(
            session.participants[0].name, "a",
            "the name defaults to the id"
        );
        assert_eq!(session.transcript.len(), 1, "the initial prompt");
    }

    #[test]
    fn whispers_name_a_participant_and_a_finished_session_takes_nothing() {
        let mut s = spec(&["a", "b"], "round_robin");
        s.max_turns = Some(1);
        let mut session = Session::create("sess_1".into(), 0, s).unwrap();
        let err = session
            .add_message(0, None, "x".into(), Some("z"))
            .unwrap_err();
        assert_eq!(err.field(), Some("to"));
        session.add_message(0, None, "x".into(), Some("b")).unwrap();
        session
            .add_reply(0, 0, "hi".into(), TurnUsage::default(), None)
            .unwrap();
        assert!(session.is_finished());
        assert_eq!(session.cursor, 1);
        assert!(matches!(
            session.add_message(0, None, "x".into(), None),
            Err(SessionError::Finished { max_turns: 1 })
        ));
    }

    #[test]
    fn injected_messages_stop_at_the_transcript_bound() {
        let mut session = Session::create("sess_1".into(), 0, spec(&["a"], "broadcast")).unwrap();
        while session.transcript.len() < MAX_ENTRIES {
            session.add_message(0, None, "x".into(), None).unwrap();
        }
        assert_eq!(
            session.add_message(0, None, "x".into(), None).unwrap_err(),
            SessionError::Full
        );
    }

    #[test]
    fn a_session_round_trips_through_json() {
        let mut s = spec(&["a", "b"], "moderated");
        s.moderator = Some("a".into());
        let mut session = Session::create("sess_1".into(), 5, s).unwrap();
        session.add_choice(6, 0, &[1], "b".into());
        session
            .add_reply(7, 1, "b: hello".into(), TurnUsage::default(), Some(1))
            .unwrap();
        let json = serde_json::to_string(&session).unwrap();
        let back: Session = serde_json::from_str(&json).unwrap();
        assert_eq!(back, session);
    }
}
