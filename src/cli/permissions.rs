//! `firebreak permissions [PLAYBOOK...] [--routes FILE]`: the least-privilege
//! IAM policy the playbooks (and, with routes, the responder) need.
//! Never contacts AWS.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Map, Value};

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::engine::params::parse_value;
use crate::permissions::{self, check_document, Request, Whole, MAX_INLINE_ROLE_POLICY, UNSCOPED};
use crate::playbook::{self, Playbook};
use crate::respond::routes;

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// Playbooks run by hand (`plan`, `run`, `recover`): covered whole,
    /// every phase. With --routes, a playbook a route names is covered as
    /// the routes run it instead.
    #[arg(value_name = "PLAYBOOK", required_unless_present = "routes")]
    pub playbooks: Vec<PathBuf>,
    /// The responder's routes: scope to their allowlist, cover their
    /// playbooks' phases with their params, and add what the responder
    /// itself calls (re-read, queue, notices, assumed roles).
    #[arg(long, value_name = "FILE")]
    pub routes: Option<PathBuf>,
    /// A param of the PLAYBOOKs, NAME=VALUE, to narrow what it names
    /// (repeatable; lists comma-separated). Params not given may be anything.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The SQS queue `watch` or the Lambda responder consumes: its ARN, or
    /// a queue name taken to be in each allowed account and region.
    #[arg(long, value_name = "ARN|NAME")]
    pub queue: Option<String>,
}

pub fn exec(global: &GlobalArgs, args: PermissionsArgs) -> Result<u8, CliError> {
    let routes = args.routes.as_deref().map(routes::load).transpose()?;
    let books = args
        .playbooks
        .iter()
        .map(|p| playbook::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let params = given_params(&books, &args.params)?;
    if let Some(q) = &args.queue {
        check_queue(q)?;
    }
    let request = Request {
        playbooks: books
            .iter()
            .zip(params)
            .map(|(playbook, params)| Whole { playbook, params })
            .collect(),
        routes: routes.as_ref(),
        state: global.state.as_ref(),
        queue: args.queue.as_deref(),
        region: global.region.as_deref(),
    };
    let policy = permissions::policy(&request);
    let doc = policy.to_json();
    check_document(&doc).map_err(|problems| {
        CliError::new(
            ErrorClass::Input,
            format!(
                "the policy built is not a valid IAM policy: {}",
                problems.join("; ")
            ),
            "this is a bug in firebreak: please report it with the playbooks and routes used",
        )
    })?;
    let mut warnings = Vec::new();
    if let Some(s) = policy.statement(UNSCOPED) {
        warnings.push(format!(
            "allowed on every resource because firebreak does not know where they apply: {}",
            s.actions.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if policy.size() > MAX_INLINE_ROLE_POLICY {
        warnings.push(format!(
            "the policy is {} characters without whitespace, over IAM's {MAX_INLINE_ROLE_POLICY} for a role's inline policies: split its statements into managed policies",
            policy.size()
        ));
    }
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "kind": "permissions",
                "policy": doc,
                "warnings": warnings,
                "summary": {"changes": 0, "statements": policy.statements.len(), "size": policy.size()},
            }))
            .unwrap_or_default()
        ),
        OutputFormat::Text => {
            // Only the document on stdout, so that it can be piped into
            // `aws iam put-role-policy` or a template.
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            for w in &warnings {
                eprintln!("warning: {w}");
            }
        }
    }
    Ok(exit::OK)
}

/// `-p NAME=VALUE` for each playbook that has the param, typed as it
/// declares; a param no playbook has is an error.
fn given_params(books: &[Playbook], given: &[String]) -> Result<Vec<Map<String, Value>>, CliError> {
    let mut out = vec![Map::new(); books.len()];
    let mut problems = Vec::new();
    for pair in given {
        let Some((name, value)) = pair.split_once('=') else {
            problems.push(format!("`--param {pair}` is not NAME=VALUE"));
            continue;
        };
        let mut used = false;
        for (book, params) in books.iter().zip(out.iter_mut()) {
            let Some(spec) = book.param(name) else {
                continue;
            };
            used = true;
            match parse_value(spec.ty, value) {
                Some(v) => {
                    params.insert(name.to_string(), v);
                }
                None => problems.push(format!(
                    "param `{name}` of playbook `{}` must be {}, got `{value}`",
                    book.name,
                    crate::action::spec::article(spec.ty)
                )),
            }
        }
        if !used {
            problems.push(format!("no PLAYBOOK given has a param `{name}`"));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(CliError::new(
            ErrorClass::Input,
            problems.join("; "),
            "pass params of the PLAYBOOKs as `-p NAME=VALUE` (lists comma-separated); a route's params come from the routes file",
        ))
    }
}

/// A queue ARN (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`) or a queue name.
fn check_queue(q: &str) -> Result<(), CliError> {
    let name_ok = |n: &str| {
        let base = n.strip_suffix(".fifo").unwrap_or(n);
        !base.is_empty()
            && base.len() <= 80
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok = match crate::respond::names::parse_arn(q) {
        Some(a) if q.starts_with("arn:") => {
            a.service == "sqs"
                && crate::respond::names::is_region(a.region)
                && crate::respond::names::is_account(a.account)
                && name_ok(a.resource)
        }
        _ => !q.starts_with("arn:") && name_ok(q),
    };
    if ok {
        Ok(())
    } else {
        Err(CliError::new(
            ErrorClass::Input,
            format!("`{q}` is not an SQS queue name or ARN"),
            "pass --queue arn:aws:sqs:REGION:ACCOUNT:NAME, or a queue name (letters, digits, `-`, `_`, at most 80)",
        ))
    }
}
