//! The wire shapes of `/v1/sessions`, and their conversion to the domain.

use semantic_domain::chat::ChatMessage;
use semantic_domain::sessions::{Entry, Lifecycle, NewParticipant, NewSession, Session};
use semantic_domain::{InvalidSampling, SamplingParams};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::openai::types::UsageBody;

/// `POST /v1/sessions`.
#[derive(Debug, Deserialize)]
pub struct CreateSessionRequest {
    pub participants: Vec<ParticipantBody>,
    /// `round_robin`, `turn_by_turn`, `broadcast` or `moderated`.
    pub topology: String,
    /// The moderating participant's id (`moderated` only).
    pub moderator: Option<String>,
    pub max_turns: Option<u32>,
    #[serde(default)]
    pub sampling: SamplingBody,
    /// A first public message from the user.
    pub initial_prompt: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ParticipantBody {
    pub id: String,
    pub name: Option<String>,
    pub system_prompt: Option<String>,
    pub role: Option<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

/// Every turn's sampling settings.
#[derive(Debug, Default, Deserialize)]
pub struct SamplingBody {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    /// Most tokens per turn.
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stop: Vec<String>,
}

/// `POST /v1/sessions/{id}/turn`.
#[derive(Debug, Default, Deserialize)]
pub struct TurnRequest {
    /// A participant id; else the topology picks.
    pub speaker: Option<String>,
    #[serde(default)]
    pub stream: bool,
}

/// `POST /v1/sessions/{id}/round`.
#[derive(Debug, Default, Deserialize)]
pub struct RoundRequest {
    #[serde(default)]
    pub stream: bool,
}

/// `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct MessageRequest {
    pub content: String,
    /// Who the message is attributed to (the participants read `name: …`).
    pub name: Option<String>,
    /// A participant id: a whisper only that participant sees.
    pub to: Option<String>,
}

/// `GET /v1/sessions/{id}?participant=…`.
#[derive(Debug, Deserialize)]
pub struct ViewQuery {
    pub participant: Option<String>,
}

impl CreateSessionRequest {
    /// The domain's description, sampling checked (errors name
    /// `sampling.<field>`).
    pub fn into_spec(self, default_temperature: Option<f32>) -> Result<NewSession, ApiError> {
        let sampling = self.sampling.params(default_temperature)?;
        Ok(NewSession {
            participants: self
                .participants
                .into_iter()
                .map(|p| NewParticipant {
                    id: p.id,
                    name: p.name,
                    system_prompt: p.system_prompt,
                    role: p.role,
                    lifecycle: p.lifecycle,
                })
                .collect(),
            topology: self.topology,
            moderator: self.moderator,
            max_turns: self.max_turns,
            sampling,
            initial_prompt: self.initial_prompt,
        })
    }
}

impl SamplingBody {
    fn params(self, default_temperature: Option<f32>) -> Result<SamplingParams, ApiError> {
        let params = SamplingParams {
            seed: self.seed,
            max_tokens: self.max_tokens,
            stop: self.stop,
            ..SamplingParams::requested(self.temperature, self.top_p, default_temperature)
        };
        params.validate().map_err(|e| {
            let field = match e {
                InvalidSampling::Temperature(_) => "temperature",
                InvalidSampling::TopP(_) => "top_p",
                InvalidSampling::ZeroMaxTokens => "max_tokens",
                InvalidSampling::TooManyStops(_)
                | InvalidSampling::EmptyStop
                | InvalidSampling::StopTooLong(_) => "stop",
            };
            ApiError::invalid_request(e.to_string()).with_param(format!("sampling.{field}"))
        })?;
        Ok(params)
    }
}

/// A session as the API shows it.
#[derive(Debug, Serialize)]
pub struct SessionObject {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    pub topology: &'static str,
    pub moderator: Option<String>,
    pub participants: Vec<ParticipantObject>,
    pub max_turns: u32,
    pub turns: u32,
    pub finished: bool,
    pub sampling: SamplingObject,
    pub transcript: Vec<Entry>,
}

#[derive(Debug, Serialize)]
pub struct ParticipantObject {
    pub id: String,
    pub name: String,
    pub system_prompt: Option<String>,
    pub role: Option<String>,
    pub lifecycle: Lifecycle,
    /// The agent holding its KV (see `/v1/agents`).
    pub agent_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SamplingObject {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u64>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
}

impl From<&Session> for SessionObject {
    fn from(s: &Session) -> Self {
        let moderator = match &s.topology {
            semantic_domain::sessions::Topology::Moderated { moderator } => Some(moderator.clone()),
            _ => None,
        };
        Self {
            id: s.id.clone(),
            object: "session",
            created_at: s.created_at,
            topology: s.topology.name(),
            moderator,
            participants: s
                .participants
                .iter()
                .enumerate()
                .map(|(i, p)| ParticipantObject {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    system_prompt: p.system_prompt.clone(),
                    role: p.role.clone(),
                    lifecycle: p.lifecycle,
                    agent_id: s.agent_of(i).ok().map(|a| a.to_string()),
                })
                .collect(),
            max_turns: s.max_turns,
            turns: s.turns,
            finished: s.is_finished(),
            sampling: SamplingObject {
                temperature: s.sampling.temperature,
                top_p: s.sampling.top_p,
                seed: s.sampling.seed,
                max_tokens: s.sampling.max_tokens,
                stop: s.sampling.stop.clone(),
            },
            transcript: s.transcript.clone(),
        }
    }
}

/// One participant's view: the messages its next prompt is rendered from.
#[derive(Debug, Serialize)]
pub struct ViewObject {
    pub object: &'static str,
    pub session_id: String,
    pub participant: String,
    pub agent_id: Option<String>,
    pub messages: Vec<ChatMessage>,
}

/// One turn taken.
#[derive(Clone, Debug, Serialize)]
pub struct TurnObject {
    pub object: &'static str,
    pub session_id: String,
    /// The session's turn count after this one (1 for the first).
    pub turn: u32,
    pub speaker: String,
    pub name: String,
    /// The reply as the others see it (trimmed, without a leading `Name:`).
    pub text: String,
    /// The reply exactly as generated (what the speaker's own view holds).
    pub raw_text: String,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    pub usage: UsageBody,
    /// Seconds from submission to the first token.
    pub first_token_s: f64,
    /// How the moderator chose this speaker, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen_by: Option<ChoiceObject>,
    /// The session took its last turn.
    pub finished: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChoiceObject {
    pub moderator: String,
    pub options: Vec<String>,
    pub usage: UsageBody,
}

/// A round's turns.
#[derive(Debug, Serialize)]
pub struct RoundObject {
    pub object: &'static str,
    pub session_id: String,
    pub turns: Vec<TurnObject>,
    pub finished: bool,
}

#[derive(Debug, Serialize)]
pub struct EntryObject {
    pub object: &'static str,
    pub session_id: String,
    #[serde(flatten)]
    pub entry: Entry,
}

#[derive(Debug, Serialize)]
pub struct DeletedObject {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
    /// Ephemeral participants' agents whose caches were removed (one that
    /// never spoke held none).
    pub removed_agents: Vec<String>,
    /// Permanent participants' agents, kept.
    pub kept_agents: Vec<String>,
}
