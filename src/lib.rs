//! firebreak: incident-response automation for AWS Lambda.
//!
//! A YAML playbook (`playbook`) is validated statically, turned into a plan
//! of changes by observing AWS (`engine`, `action`, `plan`), applied under a
//! crash-safe journal and a hash-chained audit trail (`state`), and verified.
//! Every AWS client comes from `aws`, where the dry-run guard lives.

pub mod action;
pub mod aws;
pub mod baseline;
pub mod cli;
pub mod drill;
pub mod engine;
pub mod evidence;
pub mod hooks;
pub mod lambda;
pub mod permissions;
pub mod plan;
pub mod playbook;
pub mod render;
pub mod report;
pub mod respond;
pub mod state;
pub mod time;
