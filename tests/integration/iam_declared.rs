//! Every action's declared IAM actions (`ActionSpec::iam_actions`), proven
//! against LocalStack (issue 10, point 7).
//!
//! For each action in the registry a scenario does what `run` and
//! `firebreak recover` do with it: observe and plan; observe and plan again
//! (the engine re-observes right before applying); apply every change;
//! verify; then, for actions `recover` undoes, newest change first: `read`,
//! `restore_risk`, `apply` of the inverse change, and `read` again. Each
//! action gets its own `Aws`, so the call path's per-operation counts are
//! that action's alone. Every operation sent is mapped to the IAM actions
//! AWS authorizes it with; the test fails naming any the action does not
//! declare, and any declared one its scenario should have sent but did not.
//! Declarations a scenario cannot reach here are excused by name with the
//! reason, and printed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use firebreak::action::{registry, Action, RunContext, StepContext};
use firebreak::aws::{Aws, AwsSettings, Caller};
use firebreak::plan::Change;
use std::sync::Arc;

use firebreak::state::{History, JournalEvent, JournalRecord};
use serde_json::{json, Map, Value};

use crate::common::{zip_one_file, TestContext, REGION};

/// The IAM actions AWS checks for one API operation (`service:Operation`,
/// as the call path counts it). Most are named like the operation; these
/// are the exceptions, from AWS's Service Authorization Reference.
fn iam_actions_for(operation: &str, object_lock: bool) -> Vec<String> {
    // The SDK names the service EventBridge; IAM's prefix is `events`.
    if let Some(op) = operation.strip_prefix("eventbridge:") {
        return vec![format!("events:{op}")];
    }
    let named: &[&str] = match operation {
        // Needs no permission: AWS answers it even under an explicit deny.
        "sts:GetCallerIdentity" => &[],
        "lambda:Invoke" => &["lambda:InvokeFunction"],
        "lambda:GetLayerVersionByArn" => &["lambda:GetLayerVersion"],
        "s3:HeadBucket" | "s3:ListObjectsV2" | "s3:ListObjects" => &["s3:ListBucket"],
        "s3:ListObjectVersions" => &["s3:ListBucketVersions"],
        "s3:HeadObject" | "s3:GetObject" => &["s3:GetObject"],
        "s3:GetObjectLockConfiguration" => &["s3:GetBucketObjectLockConfiguration"],
        // On an Object Lock bucket every write carries a retention date,
        // which S3 authorizes as a separate action.
        "s3:PutObject" if object_lock => &["s3:PutObject", "s3:PutObjectRetention"],
        other => return vec![other.to_string()],
    };
    named.iter().map(|s| s.to_string()).collect()
}

async fn aws_for(cx: &TestContext) -> Aws {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&cx.account, "test", None, None, "tests"))
        .load()
        .await;
    Aws::from_sdk_config(&sdk, REGION.into(), &AwsSettings::default())
}

fn sent_ops(aws: &Aws) -> BTreeMap<String, u64> {
    aws.api_calls()
        .by_operation
        .into_iter()
        .filter(|(_, c)| c.calls > 0)
        .map(|(op, c)| (op, c.calls))
        .collect()
}

/// One action's run and recovery, on a client of its own.
struct Driver {
    aws: Aws,
    caller: Caller,
    run: RunContext,
    incident: String,
    started_at: String,
    /// The runner's own GetCallerIdentity, sent before the action runs.
    baseline: BTreeMap<String, u64>,
}

impl Driver {
    async fn new(cx: &TestContext, incident: &str) -> Self {
        let aws = aws_for(cx).await;
        let caller = aws.caller().await.expect("caller identity");
        let baseline = sent_ops(&aws);
        Self {
            aws,
            caller,
            run: RunContext::new(),
            incident: incident.to_string(),
            started_at: firebreak::time::now_rfc3339(),
            baseline,
        }
    }

    fn step<'a>(
        &'a self,
        args: &'a Map<String, Value>,
        history: &'a History,
        step_id: &'a str,
    ) -> StepContext<'a> {
        StepContext {
            aws: &self.aws,
            run: &self.run,
            fresh: true,
            verifying: false,
            caller: &self.caller,
            args,
            history,
            step_id,
            incident_started_at: &self.started_at,
            incident_id: &self.incident,
        }
    }

    /// What `plan` and then `run` do with one step; returns the changes
    /// applied, after checking that every verification passed.
    async fn run_step(&self, action: &dyn Action, args: Value, history: &History) -> Vec<Change> {
        let name = action.spec().name;
        let args = args.as_object().cloned().expect("args are a mapping");
        for (k, v) in &args {
            let def = action
                .spec()
                .param(k)
                .unwrap_or_else(|| panic!("{name} has no param `{k}`"));
            def.validate(v)
                .unwrap_or_else(|e| panic!("{name}: bad test argument: {e}"));
        }
        let cx = self.step(&args, history, "step");
        let observed = action
            .observe(&cx)
            .await
            .unwrap_or_else(|e| panic!("{name}: observe: {e} ({})", e.hint()));
        action
            .plan(&cx, &observed)
            .unwrap_or_else(|e| panic!("{name}: plan: {e}"));
        // `run` re-observes and re-plans right before applying.
        let again = action
            .observe(&cx)
            .await
            .unwrap_or_else(|e| panic!("{name}: re-observe: {e}"));
        let planned = action
            .plan(&cx, &again)
            .unwrap_or_else(|e| panic!("{name}: re-plan: {e}"));
        assert!(
            !planned.changes.is_empty() || !action.spec().mutating,
            "{name}: the scenario planned no change, so apply is not exercised"
        );
        for change in &planned.changes {
            action
                .apply_with_receipt(&cx, change)
                .await
                .unwrap_or_else(|e| panic!("{name}: apply {}: {e}", change.attribute));
        }
        let checks = action
            .verify(&cx, &observed)
            .await
            .unwrap_or_else(|e| panic!("{name}: verify: {e}"));
        let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(failed.is_empty(), "{name}: verification failed: {failed:?}");
        planned.changes
    }

    /// What `firebreak recover --include-risky` does with these changes:
    /// newest first, read, judge the risk, apply the inverse, read back.
    async fn undo(&self, action: &dyn Action, changes: &[Change], history: &History) {
        let name = action.spec().name;
        assert!(action.undoable(), "{name} is not undone by recover");
        let args = Map::new();
        let cx = self.step(&args, history, "recover");
        for change in changes.iter().rev() {
            let now = action
                .read(&cx, &change.target, &change.attribute)
                .await
                .unwrap_or_else(|e| panic!("{name}: read {}: {e}", change.attribute));
            assert_eq!(
                now, change.after,
                "{name}: {} does not read as apply left it",
                change.attribute
            );
            let inverse = Change::new(
                &change.target,
                &change.attribute,
                now,
                change.before.clone(),
                "recover: the value before the step changed it",
            );
            action
                .restore_risk(&cx, &inverse)
                .await
                .unwrap_or_else(|e| panic!("{name}: restore_risk {}: {e}", change.attribute));
            action
                .apply(&cx, &inverse)
                .await
                .unwrap_or_else(|e| panic!("{name}: undo {}: {e}", change.attribute));
            let back = action
                .read(&cx, &change.target, &change.attribute)
                .await
                .unwrap_or_else(|e| panic!("{name}: read back {}: {e}", change.attribute));
            assert_eq!(
                back, change.before,
                "{name}: {} was not restored",
                change.attribute
            );
        }
    }

    /// Operations this action sent: everything after the caller lookup.
    fn sent(&self) -> BTreeMap<String, u64> {
        sent_ops(&self.aws)
            .into_iter()
            .filter_map(|(op, n)| {
                let n = n - self.baseline.get(&op).copied().unwrap_or(0);
                (n > 0).then_some((op, n))
            })
            .collect()
    }
}

/// What one scenario sent, and what it leaves unexercised on purpose.
struct Exercised {
    sent: BTreeMap<String, u64>,
    /// Writes went to an Object Lock bucket (retention on every PutObject).
    object_lock: bool,
    /// Declared IAM actions this scenario cannot reach, with the reason.
    excused: Vec<(&'static str, &'static str)>,
}

impl Exercised {
    fn plain(d: &Driver) -> Self {
        Self {
            sent: d.sent(),
            object_lock: false,
            excused: Vec::new(),
        }
    }
}

/// What the evidence scenarios share: a forensic bucket with Object Lock
/// and a forensic-account role to write it through (`bucket_role`, the
/// `sts:AssumeRole` path), and a trail bucket with one log file.
struct Shared {
    bucket: String,
    bucket_role: String,
    trail_bucket: String,
}

async fn shared(cx: &TestContext, setup: &Aws) -> Shared {
    let bucket = format!("fb-iam-ev-{}", cx.account);
    setup
        .s3
        .create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create the forensic bucket");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let bucket_role = cx
        .iam
        .create_role()
        .role_name("forensic-writer")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("create the forensic role")
        .role()
        .expect("role")
        .arn()
        .to_string();
    let trail_bucket = format!("fb-iam-trail-{}", cx.account);
    setup
        .s3
        .create_bucket()
        .bucket(&trail_bucket)
        .send()
        .await
        .expect("create the trail bucket");
    Shared {
        bucket,
        bucket_role,
        trail_bucket,
    }
}

fn evidence_args(s: &Shared, function: &str) -> Value {
    json!({
        "function": function,
        "bucket": s.bucket,
        "bucket_role": s.bucket_role,
        "retention_days": 1,
        "retention_mode": "governance",
    })
}

fn evidence_exercised(d: &Driver) -> Exercised {
    Exercised {
        sent: d.sent(),
        object_lock: true,
        excused: Vec::new(),
    }
}

fn intent(action: &str, target: &str, before: Value, after: Value, seq: u64) -> Arc<JournalRecord> {
    Arc::new(JournalRecord {
        seq,
        time: firebreak::time::now_rfc3339(),
        run: "earlier-run".into(),
        event: JournalEvent::Intent,
        step: "throttle".into(),
        action: action.into(),
        change: Change::new(target, "reserved_concurrency", before, after, "contain"),
        confirmed_by_observation: false,
        error: None,
    })
}

/// A victim after an attack (backdoor statements and a public URL, a new
/// key for its deploy user, a second function on its role fired by an
/// EventBridge rule), and the indicator arguments that find it all.
async fn attacked(cx: &TestContext, prefix: &str) -> Value {
    let role = cx.unique(&format!("{prefix}-role"));
    let role_arn = cx.seed_role(&role).await;
    let f = cx.unique(prefix);
    cx.create_function_with_role(&f, &role_arn).await;
    cx.publish_version(&f, "v1").await;
    let user = cx.unique(&format!("{prefix}-user"));
    cx.iam
        .create_user()
        .user_name(&user)
        .send()
        .await
        .expect("user");
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    cx.seed_public_access(&f).await;
    cx.iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .expect("key");
    let helper = format!("{f}-helper");
    let helper_arn = cx.create_function_with_role(&helper, &role_arn).await;
    cx.schedule_rule(&format!("{f}-tick"), "rate(1 minute)", &helper_arn)
        .await;
    json!({"function": f, "since": since, "users": [user], "deployers": ["ci"]})
}

/// The scenarios of the three indicator actions (issue 13).
async fn indicator_scenario(
    action: &'static dyn Action,
    cx: &TestContext,
    s: &Shared,
    incident: &str,
) -> Exercised {
    let name = action.spec().name;
    let prefix = format!(
        "iam-{}",
        name.rsplit('.').next().unwrap_or(name).replace('_', "-")
    );
    let mut args = Box::pin(attacked(cx, &prefix)).await;
    let d = Driver::new(cx, incident).await;
    match name {
        "lambda.contain_rogue_functions" => {
            let changes = d.run_step(action, args, &[]).await;
            assert_eq!(
                changes.len(),
                2,
                "the helper's throttle and its rule: {changes:?}"
            );
            d.undo(action, &changes, &[]).await;
            Exercised {
                excused: ioc_excused(),
                ..Exercised::plain(&d)
            }
        }
        "evidence.snapshot_indicators" => {
            let f = args["function"].as_str().unwrap_or_default().to_string();
            if let (Some(a), Some(e)) = (args.as_object_mut(), evidence_args(s, &f).as_object()) {
                a.extend(e.clone());
            }
            d.run_step(action, args, &[]).await;
            Exercised {
                excused: ioc_excused(),
                ..evidence_exercised(&d)
            }
        }
        _ => {
            d.run_step(action, args, &[]).await;
            Exercised {
                excused: ioc_excused(),
                ..Exercised::plain(&d)
            }
        }
    }
}

/// What the indicator scenarios cannot reach on LocalStack: nothing.
fn ioc_excused() -> Vec<(&'static str, &'static str)> {
    Vec::new()
}

/// Runs one action's scenario. `None`: the registry holds an action this
/// test does not know, which fails the test.
async fn exercise(
    action: &'static dyn Action,
    cx: &TestContext,
    setup: &Aws,
    s: &Shared,
) -> Option<Exercised> {
    let name = action.spec().name;
    let incident = format!("INC-IAM-{}", name.replace(['.', '_'], "-"));
    let out = match name {
        "lambda.describe" => {
            // One untouched function (GetFunction says it all) and one this
            // incident throttled: GetFunction's silence about a 0 (LocalStack
            // omits it) is confirmed with GetFunctionConcurrency.
            let (f, throttled) = (cx.unique("iam-describe"), cx.unique("iam-describe"));
            cx.create_function(&f).await;
            let arn = cx.create_function(&throttled).await;
            cx.set_concurrency(&throttled, 0).await;
            let history = vec![intent(
                "lambda.set_concurrency",
                &arn,
                Value::Null,
                json!(0),
                1,
            )];
            let d = Driver::new(cx, &incident).await;
            d.run_step(action, json!({"function": f}), &[]).await;
            d.run_step(action, json!({"function": throttled}), &history)
                .await;
            Exercised::plain(&d)
        }
        "lambda.set_concurrency" => {
            // One function without reserved concurrency (recover deletes
            // the setting) and one with 5 (recover puts 5 back).
            let (none, five) = (cx.unique("iam-setc"), cx.unique("iam-setc"));
            cx.create_function(&none).await;
            cx.create_function(&five).await;
            cx.set_concurrency(&five, 5).await;
            let d = Driver::new(cx, &incident).await;
            for f in [&none, &five] {
                let changes = d
                    .run_step(action, json!({"function": f, "value": 0}), &[])
                    .await;
                assert_eq!(cx.concurrency(f).await, Some(0));
                d.undo(action, &changes, &[]).await;
            }
            assert_eq!(cx.concurrency(&none).await, None);
            assert_eq!(cx.concurrency(&five).await, Some(5));
            Exercised::plain(&d)
        }
        "lambda.restore_concurrency" => {
            // Priors recorded by an earlier set_concurrency: none (the
            // setting is deleted), 5 (put back), and 0 (put back, then the
            // Invoke probe proves the throttle).
            let names: Vec<String> = (0..3).map(|_| cx.unique("iam-restc")).collect();
            let mut arns = Vec::new();
            for n in &names {
                arns.push(cx.create_function(n).await);
            }
            cx.set_concurrency(&names[0], 0).await;
            cx.set_concurrency(&names[1], 0).await;
            cx.set_concurrency(&names[2], 5).await;
            let set = "lambda.set_concurrency";
            let history = vec![
                intent(set, &arns[0], Value::Null, json!(0), 1),
                intent(set, &arns[1], json!(5), json!(0), 2),
                intent(set, &arns[2], json!(0), json!(5), 3),
            ];
            let d = Driver::new(cx, &incident).await;
            for (n, want) in names.iter().zip([None, Some(5), Some(0)]) {
                let changes = d.run_step(action, json!({"function": n}), &history).await;
                assert!(!changes.is_empty(), "{n}: nothing restored");
                assert_eq!(cx.concurrency(n).await, want, "{n} restored");
            }
            // Not undone here: `recover` reads and restores an attribute
            // with the action that made its earliest intent, which is always
            // `lambda.set_concurrency` (restore only acts on its records).
            Exercised::plain(&d)
        }
        "iam.quarantine_role" => {
            let role = cx.unique("iam-quar-role");
            let role_arn = cx.seed_role(&role).await;
            let f = cx.unique("iam-quar");
            cx.create_function_with_role(&f, &role_arn).await;
            let original = cx.role_snapshot(&role).await;
            let d = Driver::new(cx, &incident).await;
            let changes = d
                .run_step(action, json!({"role": role_arn, "function": f}), &[])
                .await;
            let (attached, inline) = cx.role_snapshot(&role).await;
            assert!(attached.is_empty(), "still attached: {attached:?}");
            assert_eq!(
                inline.keys().collect::<Vec<_>>(),
                ["firebreak-quarantine", "firebreak-revoke-sessions"]
            );
            // A run of many targets verifies every role from the
            // account's authorization details.
            d.run.set_targets(2);
            let args = json!({"role": role_arn, "function": f});
            let args = args.as_object().cloned().expect("mapping");
            let mut vcx = d.step(&args, &[], "step");
            vcx.verifying = true;
            let observed = action.observe(&vcx).await.expect("observe");
            let checks = action.verify(&vcx, &observed).await.expect("verify");
            assert!(checks.iter().all(|c| c.passed), "{checks:?}");
            d.undo(action, &changes, &[]).await;
            assert_eq!(cx.role_snapshot(&role).await, original);
            Exercised::plain(&d)
        }
        "lambda.remove_public_access" => {
            let f = cx.unique("iam-public");
            cx.create_function(&f).await;
            cx.seed_public_access(&f).await;
            let version = cx.publish_version(&f, "v1").await;
            cx.lambda
                .create_alias()
                .function_name(&f)
                .name("live")
                .function_version(&version)
                .send()
                .await
                .expect("alias");
            cx.lambda
                .create_function_url_config()
                .function_name(&f)
                .qualifier("live")
                .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
                .send()
                .await
                .expect("alias url");
            let before = (
                cx.qualifier_snapshot(&f, None).await,
                cx.qualifier_snapshot(&f, Some("live")).await,
            );
            let d = Driver::new(cx, &incident).await;
            let changes = d.run_step(action, json!({"function": f}), &[]).await;
            let (url, statements) = cx.qualifier_snapshot(&f, None).await;
            assert!(url.is_none(), "the URL is still there");
            assert_eq!(statements.keys().collect::<Vec<_>>(), ["s3-orders-bucket"]);
            assert!(cx.qualifier_snapshot(&f, Some("live")).await.0.is_none());
            d.undo(action, &changes, &[]).await;
            let after = (
                cx.qualifier_snapshot(&f, None).await,
                cx.qualifier_snapshot(&f, Some("live")).await,
            );
            assert_eq!(after, before, "recover put every door back");
            Exercised::plain(&d)
        }
        "lambda.disable_event_sources" => {
            let f = cx.unique("iam-esm");
            cx.create_function(&f).await;
            let uuid = cx.create_sqs_mapping(&f).await;
            let d = Driver::new(cx, &incident).await;
            let changes = d.run_step(action, json!({"function": f}), &[]).await;
            cx.wait_mapping_state(&uuid, "Disabled").await;
            d.undo(action, &changes, &[]).await;
            cx.wait_mapping_state(&uuid, "Enabled").await;
            Exercised::plain(&d)
        }
        "lambda.tag" => {
            let f = cx.unique("iam-tag");
            let arn = cx.create_function(&f).await;
            let d = Driver::new(cx, &incident).await;
            let changes = d.run_step(action, json!({"function": f}), &[]).await;
            let tags = |cx: &TestContext| {
                let (lambda, arn) = (cx.lambda.clone(), arn.clone());
                async move {
                    lambda
                        .list_tags()
                        .resource(arn)
                        .send()
                        .await
                        .expect("tags")
                        .tags()
                        .map(|t| t.len())
                        .unwrap_or(0)
                }
            };
            assert!(tags(cx).await > 0, "tagged");
            d.undo(action, &changes, &[]).await;
            assert_eq!(tags(cx).await, 0, "untagged");
            Exercised::plain(&d)
        }
        "iam.deactivate_access_keys" => {
            let user = cx.unique("iam-user");
            cx.iam
                .create_user()
                .user_name(&user)
                .send()
                .await
                .expect("user");
            cx.iam
                .create_access_key()
                .user_name(&user)
                .send()
                .await
                .expect("key");
            let d = Driver::new(cx, &incident).await;
            let changes = d.run_step(action, json!({"users": [user]}), &[]).await;
            d.undo(action, &changes, &[]).await;
            Exercised::plain(&d)
        }
        "evidence.snapshot_config" => {
            // Every document it preserves exists: a role with managed and
            // inline policies, a URL and statements, a mapping, concurrency.
            let role = cx.unique("iam-cfg-role");
            let role_arn = cx.seed_role(&role).await;
            let f = cx.unique("iam-cfg");
            let arn = cx.create_function_with_role(&f, &role_arn).await;
            cx.seed_public_access(&f).await;
            cx.create_sqs_mapping(&f).await;
            // Throttled by this incident first, as lambda-compromise does.
            cx.set_concurrency(&f, 0).await;
            let history = vec![intent(
                "lambda.set_concurrency",
                &arn,
                Value::Null,
                json!(0),
                1,
            )];
            let d = Driver::new(cx, &incident).await;
            d.run_step(action, evidence_args(s, &f), &history).await;
            evidence_exercised(&d)
        }
        "evidence.snapshot_code" => {
            // $LATEST, a published version and a layer: every kind of package.
            let f = cx.unique("iam-code");
            cx.create_function(&f).await;
            let layer = cx
                .lambda
                .publish_layer_version()
                .layer_name(format!("{f}-layer"))
                .content(
                    aws_sdk_lambda::types::LayerVersionContentInput::builder()
                        .zip_file(Blob::new(zip_one_file("python/helper.py", b"X = 1\n")))
                        .build(),
                )
                .send()
                .await
                .expect("publish layer")
                .layer_version_arn()
                .expect("layer arn")
                .to_string();
            cx.lambda
                .update_function_configuration()
                .function_name(&f)
                .layers(layer)
                .send()
                .await
                .expect("attach the layer");
            cx.wait_updated(&f).await;
            cx.publish_version(&f, "v1").await;
            let d = Driver::new(cx, &incident).await;
            d.run_step(action, evidence_args(s, &f), &[]).await;
            evidence_exercised(&d)
        }
        "logs.snapshot" => {
            let f = cx.unique("iam-logs");
            cx.create_function(&f).await;
            let group = format!("/aws/lambda/{f}");
            setup
                .logs
                .create_log_group()
                .log_group_name(&group)
                .send()
                .await
                .expect("log group");
            setup
                .logs
                .create_log_stream()
                .log_group_name(&group)
                .log_stream_name("seed")
                .send()
                .await
                .expect("log stream");
            let at = chrono::Utc::now().timestamp_millis() - 60_000;
            setup
                .logs
                .put_log_events()
                .log_group_name(&group)
                .log_stream_name("seed")
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(at)
                        .message("START RequestId: 1")
                        .build()
                        .expect("event"),
                )
                .send()
                .await
                .expect("put events");
            let d = Driver::new(cx, &incident).await;
            d.run_step(action, evidence_args(s, &f), &[]).await;
            evidence_exercised(&d)
        }
        "cloudtrail.collect" => {
            let f = cx.unique("iam-trail");
            let arn = cx.create_function(&f).await;
            seed_trail_file(cx, setup, &s.trail_bucket, &arn).await;
            let mut args = evidence_args(s, &f);
            args["lookup_api"] = json!(false);
            args["trail_bucket"] = json!(s.trail_bucket);
            let d = Driver::new(cx, &incident).await;
            d.run_step(action, args, &[]).await;
            let mut out = evidence_exercised(&d);
            out.excused.push((
                "cloudtrail:LookupEvents",
                "LocalStack has no CloudTrail API (501); tests/integration/cloudtrail.rs covers LookupEvents with recorded responses",
            ));
            out
        }
        "secrets.discover" => {
            // Every source: an environment reference, and a role with
            // managed and inline policies to read.
            let role = cx.unique("iam-sd-role");
            let role_arn = cx.seed_role(&role).await;
            let f = cx.unique("iam-sd");
            let secret = cx.unique("iam-sd-secret");
            cx.secretsmanager()
                .await
                .create_secret()
                .name(&secret)
                .secret_string("x")
                .send()
                .await
                .expect("secret");
            cx.create_function_full(&f, &role_arn, &[("SECRET_NAME", secret.as_str())])
                .await;
            let d = Driver::new(cx, &incident).await;
            d.run_step(action, json!({"function": f}), &[]).await;
            Exercised::plain(&d)
        }
        "secrets.rotate" => {
            let secret = cx.unique("iam-rot");
            cx.secretsmanager()
                .await
                .create_secret()
                .name(&secret)
                .secret_string(r#"{"password":"x"}"#)
                .send()
                .await
                .expect("secret");
            let d = Driver::new(cx, &incident).await;
            let changes = d
                .run_step(action, json!({"secrets": [secret], "generate": true}), &[])
                .await;
            rotation_is_never_undone(&d, action, &changes).await;
            let mut out = Exercised::plain(&d);
            out.excused.extend([
                ("secretsmanager:RotateSecret", "the rotation-Lambda path: LocalStack accepts RotateSecret but never runs the Lambda; tests/integration/secrets_rotation.rs covers it with recorded responses"),
                ("kms:Decrypt", "checked by KMS on the secret's key when Secrets Manager decrypts for the caller; not a call firebreak sends"),
                ("kms:GenerateDataKey", "checked by KMS on the secret's key when Secrets Manager encrypts for the caller; not a call firebreak sends"),
            ]);
            out
        }
        "ssm.rotate_parameter" => {
            let name = format!("/{}", cx.unique("iam-param"));
            cx.ssm()
                .await
                .put_parameter()
                .name(&name)
                .value("x")
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .expect("parameter");
            let d = Driver::new(cx, &incident).await;
            let changes = d
                .run_step(action, json!({"parameters": [name], "generate": true}), &[])
                .await;
            rotation_is_never_undone(&d, action, &changes).await;
            let mut out = Exercised::plain(&d);
            out.excused.extend([
                ("kms:Decrypt", "checked by KMS on the parameter's key when SSM decrypts for the caller; not a call firebreak sends"),
                ("kms:Encrypt", "checked by KMS on the parameter's key when SSM encrypts for the caller; not a call firebreak sends"),
            ]);
            out
        }
        // Boxed: the attack's setup would otherwise grow every scenario's
        // future (they all run at once on the test thread's stack).
        "lambda.indicators" | "lambda.contain_rogue_functions" | "evidence.snapshot_indicators" => {
            Box::pin(indicator_scenario(action, cx, s, &incident)).await
        }
        _ => return None,
    };
    Some(out)
}

/// What recover does with a rotation: reads it, judges it risky, and
/// refuses to put the old value back.
async fn rotation_is_never_undone(d: &Driver, action: &dyn Action, changes: &[Change]) {
    let name = action.spec().name;
    let args = Map::new();
    let cx = d.step(&args, &[], "recover");
    for change in changes {
        let now = action
            .read(&cx, &change.target, &change.attribute)
            .await
            .unwrap_or_else(|e| panic!("{name}: read: {e}"));
        assert_eq!(now, change.after, "{name}: read as apply left it");
        let inverse = Change::new(
            &change.target,
            &change.attribute,
            now,
            change.before.clone(),
            "recover",
        );
        assert!(action
            .never_restored()
            .is_some_and(|r| r.contains("applications must pick up the new value")));
        assert!(
            action.apply(&cx, &inverse).await.is_err(),
            "{name}: an old value is never restored"
        );
    }
}

/// One CloudTrail log file about `function_arn`, filed where a trail in
/// this account and region delivers it.
async fn seed_trail_file(cx: &TestContext, setup: &Aws, bucket: &str, function_arn: &str) {
    let now = chrono::Utc::now() - chrono::Duration::minutes(30);
    let key = format!(
        "AWSLogs/{acct}/CloudTrail/{REGION}/{day}/{acct}_CloudTrail_{REGION}_{stamp}_{n}.json.gz",
        acct = cx.account,
        day = now.format("%Y/%m/%d"),
        stamp = now.format("%Y%m%dT%H%MZ"),
        n = cx.unique("f"),
    );
    let record = json!({
        "eventVersion": "1.09",
        "eventTime": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": "lambda.amazonaws.com",
        "eventName": "UpdateFunctionCode20150331v2",
        "awsRegion": REGION,
        "eventID": "iam-declared-1",
        "requestParameters": {"functionName": function_arn},
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"Records": [record]}).to_string().as_bytes())
        .expect("gzip");
    setup
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(gz.finish().expect("gzip").into())
        .send()
        .await
        .expect("seed the trail log file");
}

/// Every scenario runs at once on one current-thread runtime: the deepest
/// (an indicator assessment: the SDK's orchestrator under several layers of
/// reads, in a debug build) needs more than a test thread's default 2 MiB
/// of stack, so the test runs on a thread of its own with 16 MiB.
#[test]
fn every_action_sends_only_what_it_declares_and_what_it_declares_is_needed() {
    std::thread::Builder::new()
        .name("iam-declared".into())
        .stack_size(16 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(every_action_declares_what_it_sends())
        })
        .expect("spawn")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

async fn every_action_declares_what_it_sends() {
    let cx = TestContext::new().await;
    let setup = aws_for(&cx).await;
    let s = shared(&cx, &setup).await;

    // Every action at once: each has its own client and its own names.
    let runs = futures::future::join_all(
        registry::all()
            .iter()
            .map(|a| async { (*a, exercise(*a, &cx, &setup, &s).await) }),
    )
    .await;

    let mut problems = Vec::new();
    let mut table = Vec::new();
    for (action, exercised) in runs {
        let spec = action.spec();
        let Some(ex) = exercised else {
            problems.push(format!(
                "{}: no scenario in tests/integration/iam_declared.rs: add one that observes, plans, applies, verifies and undoes it",
                spec.name
            ));
            continue;
        };
        let declared: BTreeSet<&str> = spec.iam_actions.iter().copied().collect();
        let mut needed = BTreeSet::new();
        for op in ex.sent.keys() {
            for iam in iam_actions_for(op, ex.object_lock) {
                if !declared.contains(iam.as_str()) {
                    problems.push(format!(
                        "{}: sends {op}, which needs {iam}, not in its iam_actions",
                        spec.name
                    ));
                }
                needed.insert(iam);
            }
        }
        for iam in &declared {
            if needed.contains(*iam) {
                continue;
            }
            match ex.excused.iter().find(|(x, _)| x == iam) {
                Some((_, why)) => println!("note: {}: {iam} not exercised here: {why}", spec.name),
                None => problems.push(format!(
                    "{}: declares {iam}, but its scenario never needed it (is the declaration wrong, or the scenario incomplete?)",
                    spec.name
                )),
            }
        }
        table.push(format!(
            "{:28} {}",
            spec.name,
            ex.sent
                .iter()
                .map(|(op, n)| format!("{op}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    println!("operations sent per action:\n{}", table.join("\n"));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
