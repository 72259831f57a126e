//! The checks: each reads AWS back with the drill's own clients (never
//! firebreak's report of itself), over every qualifier, and says what it
//! read. A failed check says what was missed and why, naming the
//! playbook step (or its absence) that should have done it.

use std::io::Read;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use serde::Serialize;
use serde_json::Value;

use super::attack::{Artifact, Containment};
use super::baseline::{self, Baselines, Recovery};
use super::lab::Lab;
use super::model::{Check, Drill, Technique};
use super::names::Namespace;
use super::setup::World;
use crate::action::iam::quarantine_role::DENY_POLICY;
use crate::playbook::{Phase, Playbook};

/// One scored check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// `contained` or `recovered`.
    pub phase: &'static str,
    pub check: String,
    /// What it is about (physical name), if anything.
    pub subject: Option<String>,
    pub passed: bool,
    /// What was read.
    pub observed: String,
    /// What was missed and why (failed checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
}

/// What the checks read besides AWS: the evidence bucket's objects, the
/// verifications of the evidence and the audit trail.
pub struct Inputs<'a> {
    pub drill: &'a Drill,
    pub world: &'a World,
    pub artifacts: &'a [Artifact],
    pub attack: &'a [Technique],
    /// (key, bytes) of every object in the forensic bucket.
    pub evidence: &'a [(String, Vec<u8>)],
    pub evidence_verified: Result<String, String>,
    pub audit_verified: Result<String, String>,
    pub ns: &'a Namespace,
    /// Taken before the attack (see `baseline`).
    pub baselines: &'a Baselines,
    /// What recovery reported; `None` before it ran.
    pub recovery: Option<&'a Recovery>,
}

/// Why a playbook did not do something: no step with the action, or the
/// step that has it and what it left.
pub fn why(pb: &Playbook, action: &str, does: &str) -> String {
    let phases = [Phase::Identify, Phase::Contain];
    let found = pb
        .steps_in(&phases)
        .find(|s| s.action.spec().name == action);
    match found {
        None => format!("the playbook `{}` has no step that {does} (action `{action}`)", pb.name),
        Some(s) => format!("step `{}` (`{action}`) of playbook `{}` should have {}, but the end state shows it did not", s.id, pb.name, past(does)),
    }
}

fn past(does: &str) -> String {
    // "disables event source mappings" → "disabled event source mappings"
    let mut words = does.splitn(2, ' ');
    let verb = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default();
    let verb = verb
        .strip_suffix("es")
        .filter(|v| v.ends_with('s'))
        .or_else(|| verb.strip_suffix('s'))
        .unwrap_or(verb);
    let verb = if verb.ends_with('e') {
        format!("{verb}d")
    } else {
        format!("{verb}ed")
    };
    format!("{verb} {rest}")
}

pub async fn concurrency(lab: &Lab, function: &str) -> Result<Option<i32>, String> {
    lab.lambda
        .get_function_concurrency()
        .function_name(function)
        .send()
        .await
        .map(|o| o.reserved_concurrent_executions())
        .map_err(|e| format!("GetFunctionConcurrency: {}", e.code().unwrap_or("error")))
}

/// Invokes; `Ok(true)` when refused as throttled, `Ok(false)` when it ran.
async fn invoke_throttled(
    lab: &Lab,
    function: &str,
    qualifier: Option<&str>,
) -> Result<bool, String> {
    match lab
        .lambda
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
    {
        Ok(_) => Ok(false),
        Err(e) if e.code() == Some("TooManyRequestsException") => Ok(true),
        Err(e) => Err(format!(
            "Invoke answered {}",
            e.code().unwrap_or("an error")
        )),
    }
}

/// Every alias and published version of a function.
async fn qualifiers(lab: &Lab, function: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(a) = lab
        .lambda
        .list_aliases()
        .function_name(function)
        .send()
        .await
    {
        out.extend(
            a.aliases()
                .iter()
                .filter_map(|a| a.name().map(str::to_string)),
        );
    }
    if let Ok(v) = lab
        .lambda
        .list_versions_by_function()
        .function_name(function)
        .send()
        .await
    {
        out.extend(
            v.versions()
                .iter()
                .filter_map(|v| v.version())
                .filter(|v| *v != "$LATEST")
                .map(str::to_string),
        );
    }
    out
}

/// Public or foreign statements and NONE-auth URLs on one qualifier.
async fn open_access(
    lab: &Lab,
    function: &str,
    qualifier: Option<&str>,
    account: &str,
) -> Vec<String> {
    let mut open = Vec::new();
    let q = qualifier.unwrap_or("$LATEST");
    if let Ok(u) = lab
        .lambda
        .get_function_url_config()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
    {
        if u.auth_type().as_str() == "NONE" {
            open.push(format!("{q}: function URL with AuthType NONE"));
        }
    }
    if let Ok(p) = lab
        .lambda
        .get_policy()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
    {
        let doc: Value = serde_json::from_str(p.policy().unwrap_or("{}")).unwrap_or_default();
        for st in doc["Statement"].as_array().into_iter().flatten() {
            let principal = &st["Principal"];
            let aws = principal.get("AWS").unwrap_or(principal);
            let text = aws
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| aws.to_string());
            let public = text == "*" || principal == "*";
            let foreign = !public
                && text.chars().filter(char::is_ascii_digit).count() >= 12
                && !text.contains(account);
            if public || foreign {
                open.push(format!(
                    "{q}: statement {} ({})",
                    st["Sid"].as_str().unwrap_or("?"),
                    if public { "anyone" } else { "another account" }
                ));
            }
        }
    }
    open
}

async fn role_policies(lab: &Lab, role: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let attached = lab
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| format!("ListAttachedRolePolicies: {}", e.code().unwrap_or("error")))?;
    let inline = lab
        .iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| format!("ListRolePolicies: {}", e.code().unwrap_or("error")))?;
    Ok((
        attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
        inline.policy_names().to_vec(),
    ))
}

async fn has_deny_all(lab: &Lab, role: &str) -> bool {
    let Ok(p) = lab
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(DENY_POLICY)
        .send()
        .await
    else {
        return false;
    };
    let doc = crate::action::iam::policy::decode(p.policy_document());
    doc["Statement"].as_array().into_iter().flatten().any(|s| {
        s["Effect"] == "Deny"
            && (s["Action"] == "*"
                || s["Action"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "*")))
    })
}

fn result(
    phase: &'static str,
    check: &Check,
    subject: Option<String>,
    ok: Result<String, (String, String)>,
) -> CheckResult {
    match ok {
        Ok(observed) => CheckResult {
            phase,
            check: check.name().into(),
            subject,
            passed: true,
            observed,
            missed: None,
        },
        Err((observed, missed)) => CheckResult {
            phase,
            check: check.name().into(),
            subject,
            passed: false,
            observed,
            missed: Some(missed),
        },
    }
}

/// Runs the checks of one phase.
pub async fn run(
    lab: &Lab,
    account: &str,
    phase: &'static str,
    checks: &[Check],
    i: &Inputs<'_>,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let pb = &i.drill.respond.playbook;
    for c in checks {
        let function = c
            .subject()
            .and_then(|s| i.world.function(s))
            .map(|f| f.name.clone());
        match c {
            Check::ArtifactsContained => {
                for a in i
                    .artifacts
                    .iter()
                    .filter(|a| !matches!(a.contain, Containment::Nothing))
                {
                    let r = contained(lab, a)
                        .await
                        .map_err(|observed| (observed, why(pb, a.needs, does(a.needs))));
                    out.push(result(phase, c, Some(a.what.clone()), r));
                }
                continue;
            }
            Check::ArtifactsInEvidence => {
                for a in i.artifacts {
                    let Some(marker) = &a.marker else { continue };
                    let found = i
                        .evidence
                        .iter()
                        .find(|(_, body)| contains(body, marker.as_bytes()));
                    let r = match found {
                        Some((key, _)) => Ok(format!("found in s3://{}/{key}", i.world.bucket)),
                        None => Err((
                            format!(
                                "not in any of the {} object(s) in s3://{}",
                                i.evidence.len(),
                                i.world.bucket
                            ),
                            why(pb, evidence_action(a.needs), "preserves it as evidence"),
                        )),
                    };
                    out.push(result(phase, c, Some(a.what.clone()), r));
                }
                continue;
            }
            Check::ArtifactsStayRemoved => {
                for a in i.artifacts.iter().filter(|a| {
                    matches!(
                        a.contain,
                        Containment::StatementGone { .. }
                            | Containment::InlinePolicyGone { .. }
                            | Containment::UrlClosed { .. }
                    )
                }) {
                    let r = contained(lab, a).await.map_err(|observed| (observed, "`firebreak recover` put the attacker's change back: it must hold back what re-opens access".to_string()));
                    out.push(result(phase, c, Some(a.what.clone()), r));
                }
                continue;
            }
            _ => {}
        }
        let subject = function.clone().or_else(|| match c {
            Check::RoleQuarantined(r) | Check::RoleRestored(r) => i.world.roles.get(r).cloned(),
            Check::KeysDeactivated(u) => i.world.users.get(u).cloned(),
            Check::SecretRotated(s) => i.world.secrets.get(s).map(|x| x.0.clone()),
            Check::ParameterRotated(p) => i.world.parameters.get(p).map(|x| x.0.clone()),
            _ => None,
        });
        let name = subject.clone().unwrap_or_default();
        let r: Result<String, (String, String)> = match c {
            Check::FunctionThrottled(_) => throttled(lab, &name).await.map_err(|o| {
                (
                    o,
                    why(pb, "lambda.set_concurrency", "throttles the function"),
                )
            }),
            Check::PublicAccessClosed(_) => {
                let mut open = open_access(lab, &name, None, account).await;
                let qs = qualifiers(lab, &name).await;
                for q in &qs {
                    open.extend(open_access(lab, &name, Some(q), account).await);
                }
                if open.is_empty() {
                    Ok(format!(
                        "no public or cross-account access on $LATEST and {} other qualifier(s)",
                        qs.len()
                    ))
                } else {
                    Err((
                        open.join("; "),
                        why(pb, "lambda.remove_public_access", "removes public access"),
                    ))
                }
            }
            Check::RoleQuarantined(_) => match role_policies(lab, &name).await {
                Err(e) => Err((e, "the role could not be read".into())),
                Ok((attached, inline)) => {
                    let deny = has_deny_all(lab, &name).await;
                    let observed = format!(
                        "deny-all {}; {} managed polic(ies) attached; inline: {}",
                        if deny { "present" } else { "absent" },
                        attached.len(),
                        if inline.is_empty() {
                            "none".into()
                        } else {
                            inline.join(", ")
                        }
                    );
                    if deny && attached.is_empty() {
                        Ok(observed)
                    } else {
                        Err((
                            observed,
                            why(pb, "iam.quarantine_role", "quarantines the execution role"),
                        ))
                    }
                }
            },
            Check::KeysDeactivated(_) => {
                match lab.iam.list_access_keys().user_name(&name).send().await {
                    Err(e) => Err((
                        format!("ListAccessKeys: {}", e.code().unwrap_or("error")),
                        "the user could not be read".into(),
                    )),
                    Ok(k) => {
                        let active: Vec<String> = k
                            .access_key_metadata()
                            .iter()
                            .filter(|m| m.status().is_some_and(|s| s.as_str() == "Active"))
                            .filter_map(|m| m.access_key_id().map(str::to_string))
                            .collect();
                        let n = k.access_key_metadata().len();
                        if active.is_empty() {
                            Ok(format!("all {n} key(s) Inactive"))
                        } else {
                            Err((
                                format!("{} of {n} key(s) still Active", active.len()),
                                why(
                                    pb,
                                    "iam.deactivate_access_keys",
                                    "deactivates the deploy user's access keys",
                                ),
                            ))
                        }
                    }
                }
            }
            Check::EventSourcesDisabled(_) => match lab
                .lambda
                .list_event_source_mappings()
                .function_name(&name)
                .send()
                .await
            {
                Err(e) => Err((
                    format!("ListEventSourceMappings: {}", e.code().unwrap_or("error")),
                    "the mappings could not be read".into(),
                )),
                Ok(m) => {
                    let enabled: Vec<String> = m
                        .event_source_mappings()
                        .iter()
                        .filter(|x| x.state().is_some_and(|s| s == "Enabled" || s == "Enabling"))
                        .filter_map(|x| x.uuid().map(str::to_string))
                        .collect();
                    let n = m.event_source_mappings().len();
                    if enabled.is_empty() {
                        Ok(format!("all {n} mapping(s) disabled"))
                    } else {
                        Err((
                            format!("{} of {n} mapping(s) still Enabled", enabled.len()),
                            why(
                                pb,
                                "lambda.disable_event_sources",
                                "disables event source mappings",
                            ),
                        ))
                    }
                }
            },
            Check::SecretRotated(s) => {
                let before = i
                    .world
                    .secrets
                    .get(s)
                    .map(|x| x.2.clone())
                    .unwrap_or_default();
                match lab.secrets.describe_secret().secret_id(&name).send().await {
                    Err(e) => Err((
                        format!("DescribeSecret: {}", e.code().unwrap_or("error")),
                        "the secret could not be read".into(),
                    )),
                    Ok(d) => {
                        let current = d
                            .version_ids_to_stages()
                            .and_then(|m| {
                                m.iter()
                                    .find(|(_, st)| st.iter().any(|x| x == "AWSCURRENT"))
                                    .map(|(v, _)| v.clone())
                            })
                            .unwrap_or_default();
                        if !current.is_empty() && current != before {
                            Ok("AWSCURRENT is a new version (value not shown)".into())
                        } else {
                            Err(("AWSCURRENT is still the version from before the attack".into(), why(pb, "secrets.rotate", "rotates the function's secrets") + " (with `generate_secrets: true` where the stored value is the credential)"))
                        }
                    }
                }
            }
            Check::ParameterRotated(p) => {
                let before = i.world.parameters.get(p).map(|x| x.1).unwrap_or_default();
                match lab
                    .ssm
                    .get_parameter()
                    .name(&name)
                    .with_decryption(false)
                    .send()
                    .await
                {
                    Err(e) => Err((
                        format!("GetParameter: {}", e.code().unwrap_or("error")),
                        "the parameter could not be read".into(),
                    )),
                    Ok(o) => {
                        let v = o.parameter().map(|p| p.version()).unwrap_or_default();
                        if v > before {
                            Ok(format!("version {before} → {v} (value not shown)"))
                        } else {
                            Err((
                                format!("still version {v}"),
                                why(
                                    pb,
                                    "ssm.rotate_parameter",
                                    "rotates the function's SSM parameters",
                                ),
                            ))
                        }
                    }
                }
            }
            Check::EvidenceVerified => i.evidence_verified.clone().map_err(|o| {
                (
                    o,
                    why(
                        pb,
                        "evidence.snapshot_config",
                        "stores evidence in the forensic bucket",
                    ),
                )
            }),
            Check::AuditVerified => i.audit_verified.clone().map_err(|o| {
                (
                    o,
                    "the audit trail does not verify: it was edited, truncated or reordered".into(),
                )
            }),
            Check::FunctionInvocable(_) => match (
                concurrency(lab, &name).await,
                invoke_throttled(lab, &name, None).await,
            ) {
                (Ok(Some(0)), _) | (_, Ok(true)) => Err((
                    "still throttled".into(),
                    "`firebreak recover` did not restore the function's concurrency".into(),
                )),
                (Ok(c), Ok(false)) => Ok(format!(
                    "Invoke runs; reserved concurrency {}",
                    c.map_or("none".into(), |c| c.to_string())
                )),
                (Err(e), _) | (_, Err(e)) => {
                    Err((e, "the function could not be read or invoked".into()))
                }
            },
            Check::RoleRestored(r) => match role_policies(lab, &name).await {
                Err(e) => Err((e, "the role could not be read".into())),
                Ok((attached, _)) => {
                    let want = i.world.managed.get(r).cloned().unwrap_or_default();
                    let missing: Vec<&String> =
                        want.iter().filter(|p| !attached.contains(p)).collect();
                    let deny = has_deny_all(lab, &name).await;
                    if missing.is_empty() && !deny {
                        Ok(format!(
                            "{} managed polic(ies) back, no deny-all",
                            want.len()
                        ))
                    } else {
                        Err((
                            format!(
                                "deny-all {}; {} managed polic(ies) missing",
                                if deny { "still present" } else { "gone" },
                                missing.len()
                            ),
                            "`firebreak recover` did not restore the role".into(),
                        ))
                    }
                }
            },
            Check::RecoveredToBaseline(f) => {
                baseline::check(lab, i.ns, i.baselines, f, i.recovery).await
            }
            Check::RogueFunctionsThrottled => rogue(lab, i, true).await,
            Check::RogueRulesDisabled => rogue(lab, i, false).await,
            Check::ArtifactsContained
            | Check::ArtifactsInEvidence
            | Check::ArtifactsStayRemoved => continue,
        };
        out.push(result(phase, c, subject, r));
    }
    out
}

fn does(action: &str) -> &'static str {
    match action {
        "lambda.set_concurrency" => "throttles the function",
        "lambda.remove_public_access" => "removes public access",
        "lambda.disable_event_sources" => "disables event source mappings",
        "iam.quarantine_role" => "quarantines the execution role",
        "iam.deactivate_access_keys" => "deactivates access keys",
        _ => "contains it",
    }
}

fn evidence_action(needs: &str) -> &'static str {
    match needs {
        "logs.snapshot" => "logs.snapshot",
        "lambda.set_concurrency" => "evidence.snapshot_code",
        _ => "evidence.snapshot_config",
    }
}

async fn throttled(lab: &Lab, name: &str) -> Result<String, String> {
    let c = concurrency(lab, name).await?;
    if c != Some(0) {
        return Err(format!(
            "reserved concurrency {}",
            c.map_or("none".into(), |c| c.to_string())
        ));
    }
    let mut refused = vec!["$LATEST".to_string()];
    if !invoke_throttled(lab, name, None).await? {
        return Err("reserved concurrency 0, but Invoke on $LATEST ran".into());
    }
    for q in qualifiers(lab, name).await {
        if !invoke_throttled(lab, name, Some(&q)).await? {
            return Err(format!("Invoke on {q} ran"));
        }
        refused.push(q);
    }
    Ok(format!(
        "reserved concurrency 0; Invoke refused (TooManyRequests) on {}",
        refused.join(", ")
    ))
}

async fn contained(lab: &Lab, a: &Artifact) -> Result<String, String> {
    match &a.contain {
        Containment::StatementGone { function, sid } => {
            let p = lab.lambda.get_policy().function_name(function).send().await;
            let present = p
                .ok()
                .and_then(|p| p.policy().map(|d| d.contains(&format!("\"{sid}\""))))
                .unwrap_or(false);
            if present {
                Err(format!("statement {sid} still in the resource policy"))
            } else {
                Ok(format!("statement {sid} removed"))
            }
        }
        Containment::Throttled { function } => throttled(lab, function).await,
        Containment::InlinePolicyGone { role, policy } => match role_policies(lab, role).await {
            Ok((_, inline)) if inline.contains(policy) => {
                Err(format!("inline policy {policy} still on {role}"))
            }
            Ok(_) => Ok(format!("inline policy {policy} removed from {role}")),
            Err(e) => Err(e),
        },
        Containment::UrlClosed {
            function,
            qualifier,
        } => {
            let q = (qualifier != "$LATEST").then(|| qualifier.clone());
            let open = open_access(lab, function, q.as_deref(), "").await;
            let open: Vec<&String> = open
                .iter()
                .filter(|o| o.contains("URL") || o.contains("anyone"))
                .collect();
            if open.is_empty() {
                Ok(format!("no public URL or statement on {qualifier}"))
            } else {
                Err(open
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; "))
            }
        }
        Containment::MappingDisabled { uuid } => match lab
            .lambda
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
        {
            Ok(m) => {
                let state = m.state().unwrap_or("?").to_string();
                if state == "Disabled" || state == "Disabling" {
                    Ok(format!("mapping {uuid} {state}"))
                } else {
                    Err(format!("mapping {uuid} still {state}"))
                }
            }
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                Ok(format!("mapping {uuid} deleted"))
            }
            Err(e) => Err(format!(
                "GetEventSourceMapping: {}",
                e.code().unwrap_or("error")
            )),
        },
        Containment::KeyInactive { user, key_id } => {
            match lab.iam.list_access_keys().user_name(user).send().await {
                Ok(k) => match k
                    .access_key_metadata()
                    .iter()
                    .find(|m| m.access_key_id() == Some(key_id.as_str()))
                {
                    Some(m) if m.status().is_some_and(|s| s.as_str() == "Active") => {
                        Err(format!("key {key_id} still Active"))
                    }
                    _ => Ok(format!("key {key_id} Inactive")),
                },
                Err(e) => Err(format!("ListAccessKeys: {}", e.code().unwrap_or("error"))),
            }
        }
        Containment::RoleDenied { role } => {
            if has_deny_all(lab, role).await {
                Ok(format!("role {role} carries firebreak's deny-all"))
            } else {
                Err(format!("role {role} has no deny-all"))
            }
        }
        Containment::Nothing => Ok("nothing to contain".into()),
    }
}

async fn rogue(lab: &Lab, i: &Inputs<'_>, functions: bool) -> Result<String, (String, String)> {
    let rogue: Vec<String> = i
        .artifacts
        .iter()
        .filter(|a| a.technique == "rogue_function")
        .filter_map(|a| a.marker.clone())
        .collect();
    let why13 = "no step of this playbook contains other functions on the role: add `lambda.indicators` to identify and `lambda.contain_rogue_functions` to contain (rogue functions throttled, their EventBridge rules disabled), as playbooks/lambda-compromise.yaml does".to_string();
    if rogue.is_empty()
        || !i
            .attack
            .iter()
            .any(|t| matches!(t, Technique::RogueFunction { .. }))
    {
        return Err((
            "the attack created no rogue function".into(),
            "add a `rogue_function` step to `attack`".into(),
        ));
    }
    let mut bad = Vec::new();
    for f in &rogue {
        if functions {
            if concurrency(lab, f).await.ok().flatten() != Some(0) {
                bad.push(format!("{f} not throttled"));
            }
        } else {
            let rule = format!("{f}-every-5m");
            let state = lab
                .events
                .describe_rule()
                .name(&rule)
                .send()
                .await
                .ok()
                .and_then(|r| r.state().map(|s| s.as_str().to_string()));
            if state.as_deref() != Some("DISABLED") {
                bad.push(format!(
                    "rule {rule} {}",
                    state.unwrap_or_else(|| "unreadable".into())
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(format!("{} rogue function(s) contained", rogue.len()))
    } else {
        Err((bad.join("; "), why13))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every object in the forensic bucket (gunzipped when compressed), at
/// most 10 MB each: what "present in the evidence" is checked against.
pub async fn evidence_objects(lab: &Lab, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        // A busy LocalStack drops a request now and then: a page or an
        // object read that failed is tried again before it counts as
        // missing (a missed object would fail a check that should pass).
        let mut page = None;
        for attempt in 0..ATTEMPTS {
            match lab
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token.clone())
                .send()
                .await
            {
                Ok(p) => {
                    page = Some(p);
                    break;
                }
                Err(_) => pause(attempt).await,
            }
        }
        let Some(page) = page else { break };
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if o.size().unwrap_or(0) > 10_000_000 {
                continue;
            }
            if let Some(bytes) = object(lab, bucket, key).await {
                out.push((key.to_string(), bytes));
            }
        }
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    out
}

const ATTEMPTS: u32 = 4;

async fn pause(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
}

/// One object's bytes, gunzipped when gzip; `None` when it cannot be read.
async fn object(lab: &Lab, bucket: &str, key: &str) -> Option<Vec<u8>> {
    for attempt in 0..ATTEMPTS {
        let Ok(obj) = lab.s3.get_object().bucket(bucket).key(key).send().await else {
            pause(attempt).await;
            continue;
        };
        let Ok(body) = obj.body.collect().await else {
            pause(attempt).await;
            continue;
        };
        let bytes = body.into_bytes().to_vec();
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            return Some(bytes);
        }
        let mut d = Vec::new();
        return Some(
            match flate2::read::MultiGzDecoder::new(&bytes[..])
                .take(50_000_000)
                .read_to_end(&mut d)
            {
                Ok(_) => d,
                Err(_) => bytes,
            },
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::past;

    #[test]
    fn missed_steps_read_as_sentences() {
        assert_eq!(
            past("disables event source mappings"),
            "disabled event source mappings"
        );
        assert_eq!(past("throttles the function"), "throttled the function");
        assert_eq!(past("deactivates access keys"), "deactivated access keys");
        assert_eq!(
            past("quarantines the execution role"),
            "quarantined the execution role"
        );
        assert_eq!(past("preserves it as evidence"), "preserved it as evidence");
        assert_eq!(
            past("stores evidence in the forensic bucket"),
            "stored evidence in the forensic bucket"
        );
    }
}
