//! Lambda actions and the Lambda calls they share.

pub mod concurrency;
pub mod contain_rogue;
pub mod describe;
pub mod event_sources;
pub mod function;
pub mod indicators;
pub mod public_access;
pub mod qualifiers;
pub mod restore_concurrency;
pub mod set_concurrency;
pub mod tag;
