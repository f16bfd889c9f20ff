//! Fuzz entry points (`fuzz/` drives them with libFuzzer; each crate's
//! replay test runs them on the committed corpus in `cargo test`).
//!
//! Each takes a request body as raw bytes and runs what the handler runs
//! before the engine: the JSON extractor's parse, then the family's
//! validation and conversion into domain types (and, for the Responses API,
//! the items rendered as chat messages). Whatever the bytes, the result is
//! a value or an [`crate::ApiError`], never a panic or a hang.

use axum::http::{HeaderMap, StatusCode};
use semantic_domain::TenantId;

use crate::anthropic::types::MessagesRequest;
use crate::error::ApiError;
use crate::extract::parse;
use crate::openai::types::ChatCompletionRequest;
use crate::responses::items::{self, Entry};
use crate::responses::types::ResponsesRequest;
use crate::tenant::CallerTenant;

/// A refusal must be a client error with a message, never a 500.
fn check(result: Result<(), ApiError>) {
    if let Err(e) = result {
        assert!(
            e.status.is_client_error() && !e.message.is_empty(),
            "a request body got {} {:?}",
            e.status,
            e.message
        );
        assert_ne!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

/// `POST /v1/chat/completions`.
pub fn openai_chat(body: &[u8]) {
    check((|| {
        let req: ChatCompletionRequest = parse(body)?;
        let headers = HeaderMap::new();
        let tenant = CallerTenant(TenantId::open());
        let agent = crate::openai::convert::request_agent(&headers, &req).map(|a| tenant.agent(a));
        crate::openai::convert::convert(req, (tenant.0, agent), None).map(drop)
    })());
}

/// `POST /v1/messages`, and the same body as `POST /v1/messages/count_tokens`.
pub fn anthropic_messages(body: &[u8]) {
    check((|| {
        let req: MessagesRequest = parse(body)?;
        let tenant = CallerTenant(TenantId::open());
        crate::anthropic::convert::convert(req, &HeaderMap::new(), tenant, Some(0.7)).map(drop)
    })());
    check((|| {
        let req: MessagesRequest = parse(body)?;
        crate::anthropic::convert::prompt_of(req).map(drop)
    })());
}

/// `POST /v1/responses` (without `previous_response_id`'s store lookup).
pub fn responses(body: &[u8]) {
    check((|| {
        let req: ResponsesRequest = parse(body)?;
        let Some(input) = req.input.as_ref() else {
            return Ok(());
        };
        let (input, _tools, _sampling) = crate::responses::create::read_request(&req, input, None)?;
        let entries: Vec<Entry> = input.into_iter().map(Entry::Item).collect();
        items::to_messages(req.instructions.as_deref(), &entries);
        Ok(())
    })());
}
