//! IAM actions and the IAM reads they share.

pub mod access_keys;
pub mod policy;
pub mod quarantine_role;
pub mod role;
pub mod role_index;
