//! Multi-agent sessions: participants taking turns in one conversation,
//! each a `semantic` agent whose KV cache persists across its turns.
//!
//! The domain owns what a session *is* ([`model`]: participants, topology,
//! transcript, limits), who speaks next ([`speakers`]), what each
//! participant sees ([`view`]) and the storage port ([`store`]). The one
//! rule everything here serves: a participant's view only ever *grows at
//! its end*, so its next prompt extends its previous prompt and reply and
//! the engine prefills only the new messages.

pub mod model;
pub mod speakers;
pub mod store;
pub mod view;

pub use model::{
    Entry, EntryKind, Lifecycle, NewParticipant, NewSession, Participant, Session, SessionError,
    Topology, TurnUsage, MAX_PARTICIPANTS,
};

pub use speakers::{NextTurn, RoundPlan};
pub use store::{SessionStore, SessionStoreError, StoredSession};
pub use view::{choice_grammar, choice_prompt, clean_reply, parse_choice, view};
