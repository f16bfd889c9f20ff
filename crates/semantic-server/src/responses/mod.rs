//! OpenAI's Responses API (`/v1/responses`): the protocol of Codex CLI and
//! the OpenAI Agents SDK, with durable conversation state. A chain of
//! stored responses is an agent: a turn naming `previous_response_id`
//! renders the stored conversation before its new input and runs as the
//! chain's agent, so it prefills only what is new, also after a restart.
//!
//! [`types`] are the wire shapes, [`items`] reads `input` and renders items
//! as chat messages, [`convert`] reads tools, formats and sampling,
//! [`chain`] resolves `previous_response_id` from the store, [`turn`] builds
//! (and stores) the response object, [`create`] and [`stream`] answer
//! `POST` whole or as events, [`stored`] serves the stored ones.

pub mod chain;
pub mod convert;
pub mod create;
pub mod items;
pub mod stored;
pub mod stream;
pub mod turn;
pub mod types;
