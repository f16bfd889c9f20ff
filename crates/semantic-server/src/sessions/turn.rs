//! Running a turn or a round: who speaks (a moderator choosing first),
//! the speaker's view as its prompt, one generation ([`super::generate`]),
//! then the reply recorded and the session stored before the turn is
//! reported — so a turn a client was told of survives a crash, and the
//! next turn extends the speaker's KV.

use std::sync::Arc;

use axum::http::StatusCode;
use semantic_domain::chat::ChatMessage;
use semantic_domain::sessions::{
    choice_grammar, choice_prompt, parse_choice, view, EntryKind, NextTurn, Session, SessionError,
    SessionStore, StoredSession, TurnUsage,
};
use semantic_domain::{AgentKey, SamplingParams, TenantId, Usage};

use super::events;
use super::generate::{generate, Generated, TurnContext};
use super::types::{ChoiceObject, TurnObject};
use crate::error::ApiError;
use crate::responses::chain::off_runtime;
use crate::state::now_unix;

/// Tokens a moderator's choice may take: a participant id (64 characters
/// at most) and the end of its turn.
const CHOICE_MAX_TOKENS: u32 = 64;

/// Take the turn `next` (after the moderator's choice, if it needs one),
/// store the session, and report it; returns the speaker's index too.
pub async fn take_turn(
    ctx: &TurnContext<'_>,
    session: &mut Session,
    next: NextTurn,
) -> Result<(usize, TurnObject), ApiError> {
    let (speaker, chosen_by) = match next {
        NextTurn::Speak(index) => (index, None),
        NextTurn::Choose { moderator, options } => {
            let (index, choice) = choose(ctx, session, moderator, &options).await?;
            (index, Some(choice))
        }
    };
    let job = start_turn(ctx, session, speaker, 1).await?;
    let generated = job.run(ctx).await?;
    let turn = finish_turn(ctx, session, speaker, generated, None, chosen_by).await?;
    Ok((speaker, turn))
}

/// Every participant once (see [`Session::round_plan`]); each turn is
/// stored as it completes, so a failure keeps the turns before it.
pub async fn run_round(
    ctx: &TurnContext<'_>,
    session: &mut Session,
) -> Result<Vec<TurnObject>, ApiError> {
    let plan = session.round_plan().map_err(session_error)?;
    if plan.broadcast {
        return run_broadcast(ctx, session, &plan.order).await;
    }
    let mut spoken = Vec::new();
    let mut turns = Vec::new();
    while let Some(next) = plan.next(session, &spoken) {
        let (speaker, turn) = take_turn(ctx, session, next).await?;
        spoken.push(speaker);
        turns.push(turn);
    }
    Ok(turns)
}

/// A broadcast round: every prompt is rendered before anyone answers, and
/// the answers are generated together (the engine batches them); they are
/// recorded in the participants' order as one batch. A failed answer
/// leaves the others recorded and the round reports the failure.
async fn run_broadcast(
    ctx: &TurnContext<'_>,
    session: &mut Session,
    order: &[usize],
) -> Result<Vec<TurnObject>, ApiError> {
    let remaining = usize::try_from(session.remaining_turns()).unwrap_or(usize::MAX);
    let speakers: Vec<usize> = order.iter().copied().take(remaining).collect();
    let mut jobs = Vec::with_capacity(speakers.len());
    for (k, &speaker) in (1u32..).zip(&speakers) {
        jobs.push(start_turn(ctx, session, speaker, k).await?);
    }
    let batch = session.open_batch();
    let results = futures::future::join_all(jobs.into_iter().map(|job| job.run(ctx))).await;
    let mut turns = Vec::with_capacity(speakers.len());
    let mut failure = None;
    for (&speaker, result) in speakers.iter().zip(results) {
        match result {
            Ok(generated) => {
                turns.push(finish_turn(ctx, session, speaker, generated, Some(batch), None).await?)
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(turns),
    }
}

/// A turn announced and ready to generate: its speaker's prompt rendered
/// from the session as it stands.
struct TurnJob {
    speaker_id: String,
    prompt: Vec<ChatMessage>,
    agent: AgentKey,
    sampling: SamplingParams,
}

impl TurnJob {
    async fn run(self, ctx: &TurnContext<'_>) -> Result<Generated, ApiError> {
        let speaker = Some(self.speaker_id.as_str());
        generate(ctx, self.prompt, self.agent, self.sampling, None, speaker).await
    }
}

/// Announce `speaker`'s turn (the `ahead`-th from now) and render its
/// prompt: its view of the session now.
async fn start_turn(
    ctx: &TurnContext<'_>,
    session: &Session,
    speaker: usize,
    ahead: u32,
) -> Result<TurnJob, ApiError> {
    let participant = &session.participants[speaker];
    ctx.sink
        .send(events::started(
            &session.id,
            session.turns + ahead,
            &participant.id,
            &participant.name,
        ))
        .await?;
    Ok(TurnJob {
        speaker_id: participant.id.clone(),
        prompt: view(session, speaker),
        agent: agent_key(ctx.tenant, session, speaker)?,
        sampling: session.sampling.clone(),
    })
}

/// Record `speaker`'s reply, store the session, then report the turn.
async fn finish_turn(
    ctx: &TurnContext<'_>,
    session: &mut Session,
    speaker: usize,
    generated: Generated,
    batch: Option<u32>,
    chosen_by: Option<ChoiceObject>,
) -> Result<TurnObject, ApiError> {
    let usage = turn_usage(generated.usage);
    let cleaned = match session
        .add_reply(now_unix(), speaker, generated.text.clone(), usage, batch)
        .map_err(session_error)?
        .kind
    {
        EntryKind::Reply { ref cleaned, .. } => cleaned.clone(),
        _ => String::new(),
    };
    store(ctx, session).await?;
    let participant = &session.participants[speaker];
    let turn = TurnObject {
        object: "session.turn",
        session_id: session.id.clone(),
        turn: session.turns,
        speaker: participant.id.clone(),
        name: participant.name.clone(),
        text: cleaned,
        raw_text: generated.text,
        finish_reason: generated.reason.openai(),
        usage: generated.usage.into(),
        first_token_s: generated.first_token_s,
        chosen_by,
        finished: session.is_finished(),
    };
    ctx.sink.send(events::completed(&turn)).await?;
    Ok(turn)
}

/// The moderator picks the next speaker among `options`, its answer held
/// to their ids by a grammar; the choice is recorded in its view.
async fn choose(
    ctx: &TurnContext<'_>,
    session: &mut Session,
    moderator: usize,
    options: &[usize],
) -> Result<(usize, ChoiceObject), ApiError> {
    let prompt = choice_prompt(session, moderator, options);
    let grammar = choice_grammar(session, options);
    // No stop strings: one could cut an id short.
    let sampling = SamplingParams {
        max_tokens: Some(CHOICE_MAX_TOKENS),
        stop: Vec::new(),
        ..session.sampling.clone()
    };
    let agent = agent_key(ctx.tenant, session, moderator)?;
    let generated = generate(ctx, prompt, agent, sampling, Some(grammar), None).await?;
    let Some(chosen) = parse_choice(session, options, &generated.text) else {
        return Err(ApiError::internal(format!(
            "the moderator's answer {:?} names none of the speakers (finish reason {:?})",
            generated.text, generated.reason
        ))
        .with_code("moderator_choice_failed"));
    };
    session.add_choice(now_unix(), moderator, options, generated.text);
    let option_ids: Vec<String> = options
        .iter()
        .map(|&i| session.participants[i].id.clone())
        .collect();
    let moderator_id = session.participants[moderator].id.clone();
    ctx.sink
        .send(events::chosen(
            &moderator_id,
            &session.participants[chosen].id,
            &option_ids,
        ))
        .await?;
    Ok((
        chosen,
        ChoiceObject {
            moderator: moderator_id,
            options: option_ids,
            usage: generated.usage.into(),
        },
    ))
}

fn agent_key(tenant: &TenantId, session: &Session, index: usize) -> Result<AgentKey, ApiError> {
    let agent = session
        .agent_of(index)
        .map_err(|e| ApiError::internal(format!("participant {index}'s agent id: {e}")))?;
    Ok(AgentKey::new(tenant.clone(), agent))
}

fn turn_usage(usage: Usage) -> TurnUsage {
    TurnUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cached_tokens: usage.cached_tokens,
        cache_source: usage.cache_source.as_str().to_owned(),
    }
}

/// Store the session durably (an fsynced commit, off the runtime).
pub async fn store(ctx: &TurnContext<'_>, session: &Session) -> Result<(), ApiError> {
    persist(
        ctx.state.gateway.sessions.clone(),
        ctx.tenant.clone(),
        session.clone(),
    )
    .await
}

pub async fn persist(
    store: Arc<dyn SessionStore>,
    tenant: TenantId,
    session: Session,
) -> Result<(), ApiError> {
    off_runtime(move || {
        let id = session.id.clone();
        store
            .put_session(&StoredSession { tenant, session })
            .map_err(|e| {
                tracing::error!(error = %e, session = %id, "the session store failed");
                ApiError::internal(format!("the session store failed: {e}"))
            })
    })
    .await
}

/// A domain refusal as the API's error: the field at fault is a 400, a
/// finished or full session a 409.
pub fn session_error(e: SessionError) -> ApiError {
    let message = e.to_string();
    match e {
        SessionError::Invalid { field, .. } => ApiError::invalid_request(message)
            .with_param(field)
            .with_code("invalid_session_request"),
        SessionError::Finished { .. } => {
            ApiError::from_status(StatusCode::CONFLICT, message).with_code("session_finished")
        }
        SessionError::Full => {
            ApiError::from_status(StatusCode::CONFLICT, message).with_code("session_full")
        }
    }
}
