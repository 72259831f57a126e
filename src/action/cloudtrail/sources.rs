//! The collection behind `cloudtrail.collect`: the role to search for,
//! both sources read in full, and the artifacts' bytes, kept in memory
//! for the step's own re-observation and apply (never serialized).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudtrail::types::LookupAttributeKey;
use serde_json::{json, Value};

use super::collect::CollectArgs;
use super::lookup::{self, Query};
use super::records::{gzip_lines, Matcher};
use super::trail::{self, Source};
use super::window::Window;
use crate::action::iam::role::{self, RoleRef};
use crate::action::lambda::function::FunctionRef;
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;

pub const LOOKUP: &str = "lookup-events.jsonl.gz";
pub const TRAIL: &str = "trail-records.jsonl.gz";
pub const COLLECTION: &str = "collection.json";

/// What one collection produced: the artifacts' bytes and a summary.
#[derive(Debug, Clone)]
pub struct Collected {
    pub artifacts: Vec<(&'static str, String, Arc<Vec<u8>>)>,
    pub sources: Value,
}

/// Collections made by this process, by window folder and sources. The
/// re-observation right before apply (and `apply` itself) reuse them:
/// what is written is exactly what the plan described, and LookupEvents'
/// 2 calls/s are not spent twice.
#[derive(Default)]
struct Collections(Mutex<HashMap<String, Collected>>);

fn collections(cx: &StepContext<'_>) -> Arc<Collections> {
    cx.run.slot::<Collections>()
}

fn remembered(cx: &StepContext<'_>, key: &str) -> Option<Collected> {
    let c = collections(cx);
    let m = c.0.lock().unwrap_or_else(|e| e.into_inner());
    m.get(key).cloned()
}

fn remember(cx: &StepContext<'_>, key: String, c: Collected) {
    let all = collections(cx);
    let mut m = all.0.lock().unwrap_or_else(|e| e.into_inner());
    m.insert(key, c);
}

pub fn bytes_for(cx: &StepContext<'_>, key: &str) -> Option<Arc<Vec<u8>>> {
    let c = collections(cx);
    let m = c.0.lock().unwrap_or_else(|e| e.into_inner());
    m.values()
        .flat_map(|c| c.artifacts.iter())
        .find(|(_, k, _)| k == key)
        .map(|(_, _, b)| b.clone())
}

/// Drops collections whose artifacts a manifest now lists: a long-lived
/// responder process would otherwise keep every collection's bytes.
pub fn forget(cx: &StepContext<'_>, keys: &[&str]) {
    let c = collections(cx);
    {
        let mut m = c.0.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, c| {
            !c.artifacts
                .iter()
                .any(|(_, k, _)| keys.contains(&k.as_str()))
        });
    }
}

/// The role to search for: `role` when given, else the execution role.
pub async fn role_of(
    cx: &StepContext<'_>,
    args: &CollectArgs,
    f: &FunctionRef,
) -> Result<RoleRef, ActionError> {
    if let Some(r) = &args.role {
        return r.resolve(cx.caller);
    }
    let c = cx
        .aws
        .lambda
        .get_function_configuration()
        .function_name(&f.name)
        .send()
        .await
        .map_err(|e| {
            let mut err = classify(
                "GetFunctionConfiguration",
                "lambda:GetFunctionConfiguration",
                &f.arn,
                e,
            );
            if err.kind == AwsErrorKind::NotFound {
                err.hint = "the execution role is read from the function; if the function was deleted, give `role` (its name or ARN) and the events are still collected".into();
            }
            err
        })?;
    match c.role() {
        Some(arn) => Ok(role::from_arn(arn)),
        None => Err(ActionError::input(
            format!("{} has no execution role in its configuration", f.arn),
            "give `role` explicitly",
        )),
    }
}

pub async fn collect(
    cx: &StepContext<'_>,
    args: &CollectArgs,
    f: &FunctionRef,
    role: &RoleRef,
    window: &Window,
    dir: &str,
) -> Result<Collected, ActionError> {
    let lookup_api = args.lookup_api;
    let trail_bucket = args.trail_bucket.as_deref();
    let trail_prefix = args.trail_prefix.as_str();
    if !lookup_api && trail_bucket.is_none() {
        return Err(ActionError::input(
            "cloudtrail.collect has nothing to read: `lookup_api` is false and no `trail_bucket` is given",
            "give `trail_bucket` (the bucket the trail delivers to), or leave `lookup_api` at true",
        ));
    }
    let memo = format!(
        "{dir}\n{lookup_api}\n{trail_bucket:?}\n{trail_prefix}\n{}",
        role.arn
    );
    if let Some(c) = remembered(cx, &memo) {
        return Ok(c);
    }
    let mut artifacts = Vec::new();
    let mut lookup_summary = Value::Null;
    if lookup_api {
        // Lambda names the role's session after the function, so
        // `Username` finds what the function's own code did.
        let queries = [
            Query::new(LookupAttributeKey::ResourceName, &f.name),
            Query::new(LookupAttributeKey::Username, &f.name),
            Query::new(LookupAttributeKey::ResourceName, &role.name),
        ];
        // Paced per account and region by the run's call path.
        let found = lookup::lookup(
            &cx.aws.cloudtrail,
            &queries,
            window,
            &lookup::Settings::default(),
        )
        .await?;
        if found.throttled > 0 {
            tracing::warn!(
                throttled = found.throttled,
                "LookupEvents was throttled and backed off"
            );
        }
        lookup_summary = json!({
            "queries": queries.iter().map(Query::describe).collect::<Vec<_>>(),
            "pages": found.pages,
            "events": found.events.len(),
        });
        artifacts.push((
            LOOKUP,
            format!("{dir}/{LOOKUP}"),
            Arc::new(gzip_lines(&found.events)),
        ));
    }
    let mut trail_summary = Value::Null;
    let mut files = Value::Null;
    if let Some(bucket) = trail_bucket {
        let source = Source {
            bucket,
            prefix: trail_prefix,
            account: &cx.caller.account,
            region: &cx.aws.region,
        };
        let matcher = Matcher {
            function_name: f.name.clone(),
            function_arn: f.arn.clone(),
            role_name: Some(role.name.clone()),
            role_arn: Some(role.arn.clone()),
        };
        let found = trail::collect(&cx.aws.s3, &source, window, &matcher).await?;
        trail_summary = json!({
            "location": source.describe(),
            "files": found.files.len(),
            "records_read": found.records_read,
            "matched": found.records.len(),
        });
        files = json!(found.files);
        artifacts.push((
            TRAIL,
            format!("{dir}/{TRAIL}"),
            Arc::new(gzip_lines(&found.records)),
        ));
    }
    let sources = json!({"lookup_api": lookup_summary, "trail": trail_summary});
    let record = json!({
        "function": f.arn,
        "role": role.arn,
        "window": window.to_json(),
        "sources": sources,
        "trail_files_read": files,
    });
    let mut bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
    bytes.push(b'\n');
    artifacts.push((COLLECTION, format!("{dir}/{COLLECTION}"), Arc::new(bytes)));
    let c = Collected { artifacts, sources };
    remember(cx, memo, c.clone());
    Ok(c)
}
