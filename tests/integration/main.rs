//! Integration tests against a real LocalStack (one binary, split by subject).

mod common;

mod containment;

mod baseline;
mod call_path;
mod cloudtrail;
mod crash;
mod deploy;
mod drill;
mod dry_run_guard;
mod errors;
mod evidence;
mod iam_declared;
mod indicators;
mod lambda_handler;
mod localstack_executor;
mod lock;
mod logs;
mod mocked;
mod plan_run;
mod qualifiers;
mod quota;
mod recover_baseline;
mod report;
mod respond;
mod respond_findings;
mod runner;
mod s3_state;
mod saved_plan;
mod secrets;
mod secrets_bad_input;
mod secrets_discovery;
mod secrets_rotation;
mod targets;
mod watch;
