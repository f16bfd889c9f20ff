//! `POST /v1/messages/count_tokens`: the size of the templated prompt, the
//! same tokens `/v1/messages` would submit, tools included (see
//! [`crate::prompt`]).

use axum::extract::State;
use axum::Json;

use super::convert;
use super::types::{MessagesRequest, TokenCount};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::SharedState;

/// Validate and tokenize the prompt part of a Messages request; sampling
/// fields, `max_tokens` included, are not needed here.
pub async fn count(
    State(state): State<SharedState>,
    ApiJson(request): ApiJson<MessagesRequest>,
) -> Result<Json<TokenCount>, ApiError> {
    let conversation = convert::conversation(&state, request)?;
    let prepared = convert::prepare(&state.engine, conversation).await?;
    let input_tokens = u32::try_from(prepared.tokens.len()).unwrap_or(u32::MAX);
    Ok(Json(TokenCount { input_tokens }))
}
