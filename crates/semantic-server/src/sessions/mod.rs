//! `/v1/sessions`: multi-agent sessions (our extension).
//!
//! A session is a conversation among participants, each a `semantic`
//! agent of the caller's tenant, taking turns by the session's topology.
//! The domain (`semantic_domain::sessions`) decides who speaks and what
//! each participant sees; this module stores sessions through the
//! [`SessionStore`](semantic_domain::sessions::SessionStore) port, runs
//! each turn through the same path as chat completions
//! ([`crate::prompt::prepare`], [`crate::generation::submit`]) as the
//! participant's agent, and answers whole or as SSE ([`events`]).
//!
//! Layout: [`types`] (wire shapes), [`handlers`] (the routes), [`turn`]
//! (running one turn or a round), [`generate`] (one generation as a
//! participant's agent, streamed or not), [`claim`] (one request at a time
//! per session), [`events`] (the SSE events).

pub mod claim;
pub mod events;
pub mod generate;
pub mod handlers;
pub mod turn;
pub mod types;
