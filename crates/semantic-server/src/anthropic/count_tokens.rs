//! `POST /v1/messages/count_tokens`: the size of the templated prompt, the
//! same tokens `/v1/messages` would submit (see [`crate::prompt`]).

use axum::extract::State;
use axum::Json;

use super::convert;
use super::types::{MessagesRequest, TokenCount};
use crate::error::{ApiError, ParamNames};
use crate::extract::ApiJson;
use crate::prompt;
use crate::state::SharedState;

/// Validate and tokenize the prompt part of a Messages request; sampling
/// fields, `max_tokens` included, are not needed here.
pub async fn count(
    State(state): State<SharedState>,
    ApiJson(request): ApiJson<MessagesRequest>,
) -> Result<Json<TokenCount>, ApiError> {
    let conversation = convert::conversation(&state, request)?;
    let tokens = prompt::tokenize(&state.engine, conversation, ParamNames::ANTHROPIC).await?;
    let input_tokens = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
    Ok(Json(TokenCount { input_tokens }))
}
