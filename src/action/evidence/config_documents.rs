//! The documents `evidence.snapshot_config` preserves, read from the APIs
//! and rendered as deterministic JSON: maps sorted, lists ordered, so the
//! same state always hashes the same and a re-run writes nothing new.

use std::collections::BTreeMap;

use aws_smithy_types::date_time::Format;
use serde_json::{json, Value};

use crate::action::iam::{policy, quarantine_role, role};
use crate::action::lambda::concurrency;
use crate::action::lambda::function::FunctionRef;
use crate::action::lambda::public_access;
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;

/// One document to store: its artifact name and the API calls behind it.
pub struct Document {
    pub name: &'static str,
    pub source: &'static str,
    pub body: Value,
}

impl Document {
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(&self.body).unwrap_or_default();
        b.push(b'\n');
        b
    }
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Value {
    json!(t.and_then(|t| t.fmt(Format::DateTime).ok()))
}

fn absent_if_not_found<T>(r: Result<T, crate::aws::AwsError>) -> Result<Option<T>, ActionError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == AwsErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every document, in a fixed order. Environment variable values are
/// included only when `env_values` is set; they then exist only in the
/// returned bytes, which go to the bucket and nowhere else.
pub async fn collect(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    env_values: bool,
) -> Result<Vec<Document>, ActionError> {
    let lambda = &cx.aws.lambda;
    let c = lambda
        .get_function_configuration()
        .function_name(&f.name)
        .send()
        .await
        .map_err(|e| {
            classify(
                "GetFunctionConfiguration",
                "lambda:GetFunctionConfiguration",
                &f.arn,
                e,
            )
        })?;
    let vars: BTreeMap<String, String> = c
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let environment = if env_values {
        json!({"Variables": vars})
    } else {
        json!({"VariableNames": vars.keys().collect::<Vec<_>>(), "ValuesOmitted": true})
    };
    let mut docs = vec![Document {
        name: "function",
        source: "lambda:GetFunctionConfiguration",
        body: json!({
            "FunctionName": c.function_name(),
            "FunctionArn": c.function_arn(),
            "Runtime": c.runtime().map(|r| r.as_str()),
            "Role": c.role(),
            "Handler": c.handler(),
            "CodeSize": c.code_size(),
            "CodeSha256": c.code_sha256(),
            "Description": c.description(),
            "Timeout": c.timeout(),
            "MemorySize": c.memory_size(),
            "LastModified": c.last_modified(),
            "Version": c.version(),
            "RevisionId": c.revision_id(),
            "State": c.state().map(|s| s.as_str()),
            "PackageType": c.package_type().map(|p| p.as_str()),
            "Architectures": c.architectures().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "Environment": environment,
            "KMSKeyArn": c.kms_key_arn(),
            "TracingMode": c.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()),
            "VpcConfig": c.vpc_config().map(|v| json!({
                "VpcId": v.vpc_id(),
                "SubnetIds": v.subnet_ids(),
                "SecurityGroupIds": v.security_group_ids(),
            })),
            "Layers": c.layers().iter().map(|l| json!({"Arn": l.arn(), "CodeSize": l.code_size()})).collect::<Vec<_>>(),
            "DeadLetterTargetArn": c.dead_letter_config().and_then(|d| d.target_arn()),
            "EphemeralStorageSize": c.ephemeral_storage().map(|e| e.size()),
            "SigningProfileVersionArn": c.signing_profile_version_arn(),
        }),
    }];

    let policy_doc = absent_if_not_found(
        lambda
            .get_policy()
            .function_name(&f.name)
            .send()
            .await
            .map_err(|e| classify("GetPolicy", "lambda:GetPolicy", &f.arn, e)),
    )?
    .map(|p| json!({"Policy": p.policy().map(policy::decode), "RevisionId": p.revision_id()}));
    let before = public_access::latest_before_this_incident(cx.history, &f.arn);
    docs.push(Document {
        name: "resource-policy",
        source: "lambda:GetPolicy",
        body: policy_before_this_incident(policy_doc, &before.statements),
    });

    let url = absent_if_not_found(
        lambda
            .get_function_url_config()
            .function_name(&f.name)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "GetFunctionUrlConfig",
                    "lambda:GetFunctionUrlConfig",
                    &f.arn,
                    e,
                )
            }),
    )?
    .map(|u| {
        json!({
            "FunctionUrl": u.function_url(),
            "AuthType": u.auth_type().as_str(),
            "InvokeMode": u.invoke_mode().map(|m| m.as_str()),
            "Cors": u.cors().map(|c| json!({
                "AllowCredentials": c.allow_credentials(),
                "AllowHeaders": c.allow_headers(),
                "AllowMethods": c.allow_methods(),
                "AllowOrigins": c.allow_origins(),
                "ExposeHeaders": c.expose_headers(),
                "MaxAge": c.max_age(),
            })),
            "CreationTime": u.creation_time(),
        })
    });
    docs.push(Document {
        name: "function-url",
        source: "lambda:GetFunctionUrlConfig",
        body: url_before_this_incident(url, before.url.as_ref()),
    });

    let mut mappings = Vec::new();
    let mut pages = lambda
        .list_event_source_mappings()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListEventSourceMappings",
                "lambda:ListEventSourceMappings",
                &f.arn,
                e,
            )
        })?;
        for m in page.event_source_mappings() {
            mappings.push(json!({
                "UUID": m.uuid(),
                "EventSourceArn": m.event_source_arn(),
                "FunctionArn": m.function_arn(),
                "State": m.state(),
                "StateTransitionReason": m.state_transition_reason(),
                "BatchSize": m.batch_size(),
                "MaximumBatchingWindowInSeconds": m.maximum_batching_window_in_seconds(),
                "StartingPosition": m.starting_position().map(|p| p.as_str()),
                "LastModified": time(m.last_modified()),
            }));
        }
    }
    mappings.sort_by(|a, b| a["UUID"].as_str().cmp(&b["UUID"].as_str()));
    docs.push(Document {
        name: "event-source-mappings",
        source: "lambda:ListEventSourceMappings",
        body: json!(mappings),
    });

    docs.push(Document {
        name: "concurrency",
        // GetFunction's `Concurrency`, confirmed with GetFunctionConcurrency
        // where GetFunction is silent and this incident changed it
        // (`concurrency::read_planned`).
        source: "lambda:GetFunction+GetFunctionConcurrency",
        body: concurrency_before_this_incident(
            cx.history,
            &f.arn,
            concurrency::read_planned(cx, f).await?,
        ),
    });

    let tags: BTreeMap<String, String> = lambda
        .list_tags()
        .resource(&f.arn)
        .send()
        .await
        .map_err(|e| classify("ListTags", "lambda:ListTags", &f.arn, e))?
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    docs.push(Document {
        name: "tags",
        source: "lambda:ListTags",
        body: json!(tags),
    });

    docs.push(Document {
        name: "execution-role",
        source:
            "iam:GetRole+ListAttachedRolePolicies+GetPolicyVersion+ListRolePolicies+GetRolePolicy",
        body: match c.role() {
            Some(arn) => execution_role(cx, arn).await?,
            None => Value::Null,
        },
    });
    Ok(docs)
}

/// The role with its trust policy and every policy document. A role
/// deleted meanwhile is recorded as missing, not guessed.
async fn execution_role(cx: &StepContext<'_>, arn: &str) -> Result<Value, ActionError> {
    let r = role::from_arn(arn);
    let got = absent_if_not_found(
        cx.aws
            .iam
            .get_role()
            .role_name(&r.name)
            .send()
            .await
            .map_err(|e| classify("GetRole", "iam:GetRole", arn, e)),
    )?;
    let Some(got) = got else {
        return Ok(json!({"RoleArn": arn, "Missing": "GetRole answered NoSuchEntity"}));
    };
    let role_out = got.role();
    let mut attached = role::attached_planned(cx, &r).await?;
    let mut inline = role::inline_planned(cx, &r).await?;
    let restored = before_this_incident(cx.history, &r.name, &mut attached, &mut inline);
    attached.sort();
    let mut managed = Vec::new();
    for p in &attached {
        managed.push(json!({"PolicyArn": p, "Document": role::managed_document(cx.aws, p).await?}));
    }
    let mut doc = json!({
        "RoleName": r.name,
        "RoleArn": role_out.map(|x| x.arn()).unwrap_or(arn),
        "Path": role_out.map(|x| x.path()),
        "CreateDate": time(role_out.map(|x| x.create_date())),
        "MaxSessionDuration": role_out.and_then(|x| x.max_session_duration()),
        "AssumeRolePolicyDocument": role_out.and_then(|x| x.assume_role_policy_document()).map(policy::decode),
        "AttachedPolicies": managed,
        "InlinePolicies": inline,
    });
    if !restored.is_empty() {
        doc["RestoredFromJournal"] = json!({
            "attributes": restored,
            "note": "this incident's journal shows firebreak changed these; they are given as they were before its first change",
        });
    }
    Ok(doc)
}

/// The reserved concurrency as it was before this incident first changed
/// it (a throttle by an earlier run of the incident, or one resumed after
/// it), else as read; the journal says exactly what firebreak did. This
/// plan's own early throttle is not in `history` (`OwnChanges`): the read
/// the plan shares was made before it.
fn concurrency_before_this_incident(
    history: &crate::state::History,
    function_arn: &str,
    read: Option<i32>,
) -> Value {
    let first = history
        .iter()
        .find(|r| r.change.target == function_arn && r.change.attribute == concurrency::ATTRIBUTE);
    match first {
        Some(r) if r.change.before != json!(read) => json!({
            "ReservedConcurrentExecutions": r.change.before,
            "RestoredFromJournal": {
                "attributes": [concurrency::ATTRIBUTE],
                "note": "this incident's journal shows firebreak changed it; it is given as it was before its first change",
            },
        }),
        _ => json!({"ReservedConcurrentExecutions": read}),
    }
}

/// The function's resource policy (`{"Policy", "RevisionId"}`, `None`
/// when it has none) with every statement this incident removed put back
/// as it was before its first change, when it is not there: read after
/// containment, the document still shows the attacker's statement.
fn policy_before_this_incident(read: Option<Value>, removed: &[(String, Value)]) -> Value {
    let mut doc = read.unwrap_or(Value::Null);
    let mut restored = Vec::new();
    for (attribute, statement) in removed {
        if statement.is_null() {
            continue;
        }
        let live = doc["Policy"]["Statement"]
            .as_array()
            .is_some_and(|sts| sts.iter().any(|st| st["Sid"] == statement["Sid"]));
        if live {
            continue;
        }
        if !doc.is_object() {
            doc = json!({"Policy": {"Version": "2012-10-17", "Statement": []}, "RevisionId": null});
        }
        if !doc["Policy"]["Statement"].is_array() {
            doc["Policy"]["Statement"] = json!([]);
        }
        if let Some(sts) = doc["Policy"]["Statement"].as_array_mut() {
            sts.push(statement.clone());
        }
        restored.push(attribute.clone());
    }
    if !restored.is_empty() {
        doc["RestoredFromJournal"] = json!({
            "attributes": restored,
            "note": "this incident's journal shows firebreak removed these statements; they are given as they were before its first change",
        });
    }
    doc
}

/// The function's URL as read, or, when this incident deleted it, its
/// configuration as recorded before the deletion (the journal keeps its
/// AuthType, InvokeMode and CORS, not its address or creation time).
fn url_before_this_incident(read: Option<Value>, deleted: Option<&(String, Value)>) -> Value {
    match (read, deleted) {
        (Some(live), _) => live,
        (None, Some((attribute, before))) if !before.is_null() => {
            let mut doc = before.clone();
            doc["RestoredFromJournal"] = json!({
                "attributes": [attribute],
                "note": "this incident's journal shows firebreak deleted the URL; its configuration is given as it was before (the URL's address and creation time are not in the journal)",
            });
            doc
        }
        (None, _) => Value::Null,
    }
}

/// The role's policies as they were before this incident changed them:
/// `attached` and `inline` as read, each policy the journal shows this
/// incident changed (`iam.quarantine_role`'s `inline_policy:NAME` and
/// `attached_policy:ARN`) put back to the value recorded before its first
/// change. The reads are shared across the run's targets and may come
/// after another target's deny, or from a run resumed after its changes;
/// the journal says exactly what firebreak did. Returns what it put back.
fn before_this_incident(
    history: &crate::state::History,
    role_name: &str,
    attached: &mut Vec<String>,
    inline: &mut BTreeMap<String, Value>,
) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut restored = Vec::new();
    for r in history {
        let c = &r.change;
        if !c.target.contains(":role/")
            || role::from_arn(&c.target).name != role_name
            || !seen.insert(c.attribute.clone())
        {
            continue;
        }
        if let Some(name) = c.attribute.strip_prefix(quarantine_role::INLINE) {
            let now = inline.get(name).cloned().unwrap_or(Value::Null);
            if now != c.before {
                match &c.before {
                    Value::Null => inline.remove(name),
                    doc => inline.insert(name.to_string(), doc.clone()),
                };
                restored.push(c.attribute.clone());
            }
        } else if let Some(arn) = c.attribute.strip_prefix(quarantine_role::ATTACHED) {
            let was = c.before == Value::Bool(true);
            let is = attached.iter().any(|a| a == arn);
            if was != is {
                if was {
                    attached.push(arn.to_string());
                } else {
                    attached.retain(|a| a != arn);
                }
                restored.push(c.attribute.clone());
            }
        }
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;
    use crate::state::{JournalEvent, JournalRecord};
    use std::sync::Arc;

    const ROLE: &str = "arn:aws:iam::111111111111:role/team/orders";

    fn record(
        seq: u64,
        target: &str,
        attribute: &str,
        before: Value,
        after: Value,
    ) -> Arc<JournalRecord> {
        Arc::new(JournalRecord {
            seq,
            time: String::new(),
            run: "run-1".into(),
            event: JournalEvent::Applied,
            step: "quarantine-role".into(),
            action: "iam.quarantine_role".into(),
            change: Change::new(target, attribute, before, after, "test"),
            confirmed_by_observation: false,
            error: None,
        })
    }

    /// Read after the deny and pass 2 (detach, delete): the document is
    /// given as the attacker left the role, and says what was put back.
    #[test]
    fn the_role_is_given_as_it_was_before_this_incidents_changes() {
        let admin = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        let deny = json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]});
        let managed = "arn:aws:iam::111111111111:policy/admin";
        let history = vec![
            record(
                1,
                ROLE,
                "inline_policy:firebreak-quarantine",
                Value::Null,
                deny.clone(),
            ),
            record(
                2,
                ROLE,
                "attached_policy:arn:aws:iam::111111111111:policy/admin",
                json!(true),
                Value::Null,
            ),
            record(
                3,
                ROLE,
                "inline_policy:backdoor",
                admin.clone(),
                Value::Null,
            ),
            // A later change of the same policy: the first one's `before` stands.
            record(
                4,
                ROLE,
                "inline_policy:firebreak-quarantine",
                deny.clone(),
                json!({"other": 1}),
            ),
            // Another role, and a secret whose name ends like the role.
            record(
                5,
                "arn:aws:iam::111111111111:role/payments",
                "inline_policy:keep",
                Value::Null,
                json!({}),
            ),
            record(
                6,
                "arn:aws:secretsmanager:us-east-1:111111111111:secret:x/orders",
                "inline_policy:read",
                Value::Null,
                json!({}),
            ),
        ];
        let mut attached = vec![];
        let mut inline: BTreeMap<String, Value> = [
            ("firebreak-quarantine".to_string(), deny),
            ("read".to_string(), json!({})),
        ]
        .into();
        let restored = before_this_incident(&history, "orders", &mut attached, &mut inline);
        assert_eq!(attached, [managed]);
        assert_eq!(
            inline.keys().collect::<Vec<_>>(),
            ["backdoor", "read"],
            "the deny gone, the deleted policy back, the unrelated one kept"
        );
        assert_eq!(inline["backdoor"], admin);
        assert_eq!(
            restored,
            [
                "inline_policy:firebreak-quarantine",
                "attached_policy:arn:aws:iam::111111111111:policy/admin",
                "inline_policy:backdoor"
            ]
        );
        // Read before any change: nothing to put back.
        let mut attached = vec![managed.to_string()];
        let mut inline: BTreeMap<String, Value> = [("backdoor".to_string(), admin)].into();
        assert!(before_this_incident(&history, "orders", &mut attached, &mut inline).is_empty());
    }

    /// Read after an earlier run removed the public statement and deleted
    /// the URL: both are given as they were, and say so; read before any
    /// change, as read.
    #[test]
    fn public_access_is_given_as_it_was_before_this_incidents_removals() {
        let fn_arn = "arn:aws:lambda:us-east-1:111111111111:function:orders";
        let anyone = json!({"Sid": "anyone", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"});
        let s3 = json!({"Sid": "s3", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "lambda:InvokeFunction"});
        let on_live = json!({"Sid": "anyone", "Effect": "Allow", "Principal": "*"});
        let url = json!({"AuthType": "NONE", "InvokeMode": "BUFFERED", "Cors": null});
        let history = vec![
            record(
                1,
                fn_arn,
                "policy_statement:anyone",
                anyone.clone(),
                Value::Null,
            ),
            // A later change of the same statement: the first `before` stands.
            record(
                2,
                fn_arn,
                "policy_statement:anyone",
                json!({"Sid": "anyone"}),
                Value::Null,
            ),
            record(
                3,
                fn_arn,
                "policy_statement:live:anyone",
                on_live,
                Value::Null,
            ),
            record(4, fn_arn, "function_url", url.clone(), Value::Null),
            record(
                5,
                "arn:aws:lambda:us-east-1:111111111111:function:other",
                "policy_statement:x",
                json!({"Sid": "x"}),
                Value::Null,
            ),
        ];
        let before = public_access::latest_before_this_incident(&history, fn_arn);
        assert_eq!(
            before.statements,
            vec![("policy_statement:anyone".to_string(), anyone.clone())]
        );
        assert_eq!(before.url, Some(("function_url".to_string(), url.clone())));

        // The s3 statement stayed; the removed one is put back after it.
        let read =
            json!({"Policy": {"Version": "2012-10-17", "Statement": [s3]}, "RevisionId": "r2"});
        let doc = policy_before_this_incident(Some(read), &before.statements);
        assert_eq!(doc["Policy"]["Statement"], json!([s3, anyone]));
        assert_eq!(doc["RevisionId"], "r2");
        assert_eq!(
            doc["RestoredFromJournal"]["attributes"],
            json!(["policy_statement:anyone"])
        );
        // Every statement removed: GetPolicy found none.
        let doc = policy_before_this_incident(None, &before.statements);
        assert_eq!(doc["Policy"]["Statement"], json!([anyone]));
        // Still there (the removal never went through): as read.
        let read = json!({"Policy": {"Statement": [anyone]}, "RevisionId": "r1"});
        assert_eq!(
            policy_before_this_incident(Some(read.clone()), &before.statements),
            read
        );
        assert_eq!(policy_before_this_incident(None, &[]), Value::Null);

        let doc = url_before_this_incident(None, before.url.as_ref());
        assert_eq!(doc["AuthType"], "NONE");
        assert_eq!(
            doc["RestoredFromJournal"]["attributes"],
            json!(["function_url"])
        );
        let live = json!({"FunctionUrl": "https://x", "AuthType": "AWS_IAM"});
        assert_eq!(
            url_before_this_incident(Some(live.clone()), before.url.as_ref()),
            live
        );
        assert_eq!(url_before_this_incident(None, None), Value::Null);
    }

    /// Throttled by an earlier run: the concurrency before it; read
    /// before any change, as read.
    #[test]
    fn the_concurrency_is_given_as_it_was_before_this_incidents_throttle() {
        let fn_arn = "arn:aws:lambda:us-east-1:111111111111:function:orders";
        let throttled = vec![record(
            1,
            fn_arn,
            "reserved_concurrency",
            json!(5),
            json!(0),
        )];
        let doc = concurrency_before_this_incident(&throttled, fn_arn, Some(0));
        assert_eq!(doc["ReservedConcurrentExecutions"], 5);
        assert_eq!(
            doc["RestoredFromJournal"]["attributes"][0],
            "reserved_concurrency"
        );
        assert_eq!(
            concurrency_before_this_incident(&throttled, fn_arn, Some(5)),
            json!({"ReservedConcurrentExecutions": 5})
        );
        assert_eq!(
            concurrency_before_this_incident(&[], fn_arn, None),
            json!({"ReservedConcurrentExecutions": null})
        );
    }
}
