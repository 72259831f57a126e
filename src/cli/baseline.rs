//! `firebreak baseline`: record, read-only, each selected function's
//! known-good state in a baseline store, dated.

use clap::Args;
use serde_json::json;

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::action::run_context::RunContext;
use crate::aws::Aws;
use crate::baseline::capture::{capture, Scope};
use crate::baseline::{BaselineError, BaselineStore};
use crate::engine::targets;

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Functions to record: a name or ARN, a glob (`orders-*`) or
    /// `tag:KEY=VALUE` (repeatable).
    #[arg(long = "target", value_name = "SELECTOR", required = true)]
    pub targets: Vec<String>,
    /// Where baselines are kept: a directory or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub store: String,
    /// An IAM user whose access key ids to record, e.g. a deploy user
    /// (repeatable).
    #[arg(long = "deploy-user", value_name = "USER")]
    pub deploy_users: Vec<String>,
    /// Refuse a selection of more functions than this.
    #[arg(long, default_value_t = 100)]
    pub max_targets: u32,
}

impl From<BaselineError> for CliError {
    fn from(e: BaselineError) -> Self {
        let hint = e.hint().to_string();
        match e {
            BaselineError::Aws(a) => CliError::from(*a),
            BaselineError::Store { .. } => CliError::new(ErrorClass::State, e.to_string(), hint),
            BaselineError::Input { .. } => CliError::new(ErrorClass::Input, e.to_string(), hint),
        }
    }
}

/// `--store` as given, or an input error naming the flag.
pub fn parse_store(given: &str) -> Result<BaselineStore, CliError> {
    Ok(BaselineStore::parse(given)?)
}

pub async fn exec(global: &GlobalArgs, args: BaselineArgs) -> Result<u8, CliError> {
    let store = parse_store(&args.store)?;
    // The key first: a store that cannot hash is refused before any call.
    let key = store.env_key()?;
    let aws = Aws::connect(&global.aws_settings(false)).await?;
    let caller = aws.caller().await?;
    let run = RunContext::new();
    let names = targets::expand_in(&run, &aws, &args.targets).await?;
    targets::check_count(&args.targets, &names, args.max_targets)?;
    let scope = Scope {
        deploy_users: args.deploy_users.clone(),
    };
    let mut out = Vec::new();
    for name in &names {
        let mut b = capture(&aws, &caller.account, name, &key, &scope).await?;
        store.keep_packages(&aws, &mut b).await?;
        let location = store.put(&aws, &b).await?;
        out.push(json!({
            "function": b.function,
            "taken_at": b.taken_at,
            "location": location,
            "versions": b.versions.len(),
            "aliases": b.aliases.len(),
            "statements": b.policies.values().map(|p| p.len()).sum::<usize>(),
            "mappings": b.mappings.len(),
            "rules": b.rules.len(),
            "packages": b.packages.len(),
        }));
    }
    match global.output {
        OutputFormat::Text => {
            println!(
                "firebreak baseline · {} function(s) recorded in {store}",
                out.len()
            );
            for b in &out {
                println!(
                    "  {}  {}  ({} version(s), {} alias(es), {} statement(s), {} mapping(s), {} rule(s), {} package(s) kept)\n      {}",
                    b["function"].as_str().unwrap_or_default(),
                    b["taken_at"].as_str().unwrap_or_default(),
                    b["versions"],
                    b["aliases"],
                    b["statements"],
                    b["mappings"],
                    b["rules"],
                    b["packages"],
                    b["location"].as_str().unwrap_or_default()
                );
            }
        }
        OutputFormat::Json => {
            let v = json!({
                "kind": "baseline",
                "store": store.to_string(),
                "baselines": out,
                "api_calls": aws.api_calls(),
                "summary": {"changes": 0, "functions": out.len()},
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    Ok(exit::OK)
}
