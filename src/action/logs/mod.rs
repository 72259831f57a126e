//! CloudWatch Logs actions: read-only against the log group, writing only
//! to the forensic bucket (like every evidence action, never undone).

pub mod parts;
pub mod snapshot;
pub mod stream;
pub mod summary;
pub mod window;
