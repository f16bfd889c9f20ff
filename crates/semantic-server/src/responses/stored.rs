//! Stored responses: `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`
//! and `GET /v1/responses/{id}/input_items`, on the caller's tenant only
//! (another tenant's response is the same 404 as a missing one).
//! Deleting a response leaves its agent's KV alone: the agent is the whole
//! chain's, and `/v1/agents` manages it.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::chain::{off_runtime, response_not_found, store_failed, stored};
use super::types::{Deleted, Item, ItemList};
use crate::error::ApiError;
use crate::state::SharedState;
use crate::tenant::CallerTenant;

pub async fn retrieve(
    State(state): State<SharedState>,
    tenant: CallerTenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = stored(state.gateway.responses.clone(), tenant.0, id).await?;
    // Stored as it was returned: serve the same bytes.
    Ok(([(header::CONTENT_TYPE, "application/json")], found.response).into_response())
}

pub async fn delete(
    State(state): State<SharedState>,
    tenant: CallerTenant,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let store = state.gateway.responses.clone();
    let deleted = {
        let id = id.clone();
        off_runtime(move || {
            store
                .delete(&tenant.0, &id)
                .map_err(|e| store_failed(e, &id))
        })
        .await?
    };
    if !deleted {
        return Err(response_not_found(&id));
    }
    Ok(Json(Deleted {
        id,
        object: "response.deleted",
        deleted: true,
    }))
}

/// OpenAI's list parameters.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// 1 to 100, default 20.
    pub limit: Option<usize>,
    /// `asc` or `desc` (default: newest first).
    pub order: Option<String>,
    /// Start after this item id.
    pub after: Option<String>,
}

const MAX_LIMIT: usize = 100;

pub async fn input_items(
    State(state): State<SharedState>,
    tenant: CallerTenant,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ItemList>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::from_status(StatusCode::BAD_REQUEST, format!("bad query: {e}")))?;
    let found = stored(state.gateway.responses.clone(), tenant.0, id).await?;
    let items: Vec<Item> = serde_json::from_str(&found.input_items)
        .map_err(|e| ApiError::internal(format!("stored input items are unreadable: {e}")))?;
    page(items, &query).map(Json)
}

fn page(mut items: Vec<Item>, query: &ListQuery) -> Result<ItemList, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_request(format!(
            "limit must be between 1 and {MAX_LIMIT} (got {limit})"
        ))
        .with_param("limit"));
    }
    match query.order.as_deref() {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "order must be \"asc\" or \"desc\" (got {other:?})"
            ))
            .with_param("order"))
        }
    }
    if let Some(after) = &query.after {
        let Some(at) = items.iter().position(|i| i.id() == after) else {
            return Err(ApiError::invalid_request(format!(
                "after: no input item {after:?} in this response"
            ))
            .with_param("after"));
        };
        items.drain(..=at);
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    Ok(ItemList {
        object: "list",
        first_id: items.first().map(|i| i.id().to_owned()),
        last_id: items.last().map(|i| i.id().to_owned()),
        data: items,
        has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::items::parse_input;

    fn query(limit: Option<usize>, order: Option<&str>, after: Option<&str>) -> ListQuery {
        ListQuery {
            limit,
            order: order.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn pages_walk_the_items_in_either_order() {
        let input = serde_json::json!([
            {"role": "user", "content": "a", "id": "msg_a"},
            {"role": "user", "content": "b", "id": "msg_b"},
            {"role": "user", "content": "c", "id": "msg_c"},
        ]);
        let items = parse_input(&input).unwrap();
        let first = page(items.clone(), &query(Some(2), None, None)).unwrap();
        assert_eq!(first.first_id.as_deref(), Some("msg_c"));
        assert!(first.has_more);
        let rest = page(
            items.clone(),
            &query(Some(2), None, first.last_id.as_deref()),
        )
        .unwrap();
        assert_eq!(rest.data.len(), 1);
        assert_eq!(rest.first_id.as_deref(), Some("msg_a"));
        assert!(!rest.has_more);
        let asc = page(items.clone(), &query(None, Some("asc"), None)).unwrap();
        assert_eq!(asc.first_id.as_deref(), Some("msg_a"));
        for bad in [
            query(Some(0), None, None),
            query(None, Some("up"), None),
            query(None, None, Some("x")),
        ] {
            assert!(page(items.clone(), &bad).is_err());
        }
    }
}
