//! Responding to alarms and findings without a human in the loop:
//! routes (which events, which playbook, what is allowed), strict event
//! parsing, the re-read of the source of truth, dedup by incident id, the
//! refusals log, and the responder that `respond`, `watch` and the Lambda
//! handler share.

pub mod decide;
pub mod event;
pub mod names;
mod notify;
pub mod refusals;
pub mod reread;
pub mod responder;
pub mod routes;
pub mod watch;

pub use event::{Event, Refusal};
pub use responder::{Outcome, Responded, Responder};
pub use routes::Routes;
