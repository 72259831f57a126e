//! Playbooks: raw (spanned YAML) → validated model → templates at run time.

pub mod diagnostics;
pub mod load;
pub mod model;
pub mod raw;
pub mod source;
pub mod template;
pub mod validate;

pub use diagnostics::{PlaybookErrors, Problem};
pub use load::{load, LoadError};
pub use model::{Phase, Playbook, Step};
