//! `iam.quarantine_role`: cut a compromised function's execution role off.
//!
//! Order of changes (the executor applies them in plan order): first the
//! explicit deny-all and the revocation of older sessions, which stop harm
//! at once; then detaching managed and deleting inline policies. Every
//! policy's document is in the journal (the change's `before`) before it is
//! removed, so `recover` can put back exactly what was there.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{policy, role};
use crate::action::lambda::function;
use crate::action::spec::{ActionSpec, HarmOrder, OutputDef, ParamDef, ValueType};
use crate::action::{state_of, Action, ActionError, Check, Observation, Planned, StepContext};
use crate::aws::error::classify;
use crate::aws::AwsErrorKind;
use crate::plan::{Change, Decision, DecisionOption};

pub struct QuarantineRole;

pub const DENY_POLICY: &str = "firebreak-quarantine";
pub const REVOKE_POLICY: &str = "firebreak-revoke-sessions";

fn check_scope(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some("ask" | "role" | "function") => Ok(()),
        _ => Err("must be `ask` (hold the step for a decision when the role is shared), `role` or `function`".into()),
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "iam.quarantine_role",
    summary: "Deny everything to the execution role, revoke its older sessions, detach its policies (recorded for recovery).",
    mutating: true,
    stops_harm: true,
    harm_order: HarmOrder::Shared,
    own_state: false,
    params: &[
        ParamDef::new("role", ValueType::String, "the role's name or ARN, e.g. ${steps.facts.role_arn}")
            .check(role::check_literal)
            .parts(role::check_part),
        ParamDef::new("function", ValueType::String, "the compromised function (name or ARN): excluded from the blast radius, and the target of `scope: function`")
            .optional()
            .check(function::check_literal).parts(function::check_part),
        ParamDef::new("scope", ValueType::String, "for a role other functions share: `role` contains them all, `function` denies only this function's sessions; `ask` (default) holds this step for a decision while the rest of the run goes on")
            .optional()
            .check(check_scope),
        ParamDef::new("keep", ValueType::List, "policy ARNs or names to leave in place")
            .optional()
            .parts(role::check_part),
        ParamDef::new("revoke_sessions", ValueType::Boolean, "deny credentials issued before the incident started (default true)").optional(),
        ParamDef::new("detach", ValueType::Boolean, "detach managed and delete inline policies after the deny (default true; not with scope function)").optional(),
        ParamDef::new("attacker_functions", ValueType::List, "functions (ARNs or names) on the role that identify marks as the attacker's, e.g. ${steps.indicators.rogue_functions}: they do not count as blast radius, so a role shared only with them is quarantined without asking")
            .optional(),
    ],
    outputs: &[
        OutputDef::new("role_arn", ValueType::String, "the role's ARN"),
        OutputDef::new("removed_policies", ValueType::List, "managed policy ARNs and inline policy names this step removes"),
        OutputDef::new("shared_with", ValueType::List, "other functions that use the role"),
    ],
    iam_actions: &[
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:AttachRolePolicy",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:GetAccountAuthorizationDetails",
        "lambda:ListFunctions",
    ],
};

/// A change to one inline policy: `inline_policy:NAME`.
pub const INLINE: &str = "inline_policy:";
/// A change to one managed policy's attachment: `attached_policy:ARN`.
pub const ATTACHED: &str = "attached_policy:";

/// What quarantine observes of the role. Policy documents stay JSON: they
/// are IAM's documents, recorded verbatim for recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RoleState {
    /// Managed policy ARNs.
    attached: Vec<String>,
    /// Inline policy name → document.
    inline: BTreeMap<String, Value>,
    /// ARNs of the region's functions whose execution role this is;
    /// `null` when the scope was chosen and the run did not wait for the
    /// region's listing to put the deny on (`run --yes`): the trail's
    /// `blast_radius` record names them right after containment.
    functions_using_role: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct QuarantineArgs {
    role: role::RoleArg,
    function: Option<function::FunctionArg>,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    keep: Vec<String>,
    #[serde(default = "yes")]
    revoke_sessions: bool,
    #[serde(default = "yes")]
    detach: bool,
    #[serde(default)]
    attacker_functions: Vec<String>,
}

fn yes() -> bool {
    true
}

/// What a shared role's quarantine covers (`scope:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scope {
    /// Hold the step for a decision when other functions share the role.
    #[default]
    Ask,
    Role,
    Function,
}

impl QuarantineArgs {
    /// Whether `keep` names the policy (by ARN, or by the name an ARN ends in).
    fn kept(&self, policy: &str) -> bool {
        self.keep
            .iter()
            .any(|k| k == policy || policy.ends_with(&format!("/{k}")))
    }

    /// Whether identify marked `arn` as the attacker's function.
    fn attackers(&self, arn: &str) -> bool {
        let name = arn.rsplit(':').next().unwrap_or(arn);
        self.attacker_functions
            .iter()
            .any(|a| a == arn || a == name)
    }

    fn function_arn(&self, cx: &StepContext<'_>) -> Result<Option<String>, ActionError> {
        self.function
            .as_ref()
            .map(|f| f.resolve(cx).map(|f| f.arn))
            .transpose()
    }
}

/// Which targets of the run observed each role (role ARN to function
/// ARNs): before the region's listing is read, the only way to tell a
/// role another target may change (`owns_observed`).
#[derive(Default)]
struct RoleObservers(std::sync::Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>);

impl RoleObservers {
    fn add(&self, role: &str, function: String) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.entry(role.to_string()).or_default().insert(function);
    }

    /// Whether `function` is the only target that observed `role`.
    fn only(&self, role: &str, function: &str) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(role)
            .is_some_and(|f| f.len() == 1 && f.contains(function))
    }
}

#[async_trait]
impl Action for QuarantineRole {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError> {
        let args: QuarantineArgs = cx.args_as(&SPEC)?;
        // The three reads side by side: they need only the role's name,
        // and the deny that may stop every function on the role waits for
        // each round trip (issue 15). GetRole still refuses a
        // service-linked role before anything is planned.
        let named = args.role.resolve(cx.caller)?;
        let (r, attached, inline) = futures::try_join!(
            role::get_planned(cx, &named),
            role::attached_planned(cx, &named),
            role::inline_planned(cx, &named),
        )?;
        // A chosen scope plans the same changes whoever else uses the
        // role: the deny need not wait for the region's listing (twenty
        // pages for a thousand functions) when the run allows it.
        let users = match args.scope {
            Scope::Role | Scope::Function => {
                let users = role::functions_using_unless_deferred(cx, &r).await?;
                if users.is_none() {
                    cx.run.blast_radius_deferred(cx.step_id, &r.arn);
                }
                users
            }
            Scope::Ask => Some(role::functions_using(cx, &r).await?),
        };
        if let Ok(Some(this)) = args.function_arn(cx) {
            cx.run.slot::<RoleObservers>().add(&r.arn, this);
        }
        let state = RoleState {
            attached,
            inline,
            functions_using_role: users,
        };
        Ok(Observation {
            target: r.arn.clone(),
            state: state_of(&SPEC, &state)?,
        })
    }

    /// The deny alone stops harm: an explicit deny of every action
    /// overrides every allow. The session revocation (redundant while the
    /// deny is on), the detach and the deletions keep the role harmless
    /// once the deny is lifted, and wait for the second pass: with a role
    /// per function they are three IAM writes a role that containment
    /// would otherwise wait for (issue 15).
    fn change_stops_harm(&self, change: &Change) -> bool {
        change.attribute == format!("{INLINE}{DENY_POLICY}")
    }

    /// A role no other function of the region uses is the target's own:
    /// no other target changes it, so the plan's observation of it can
    /// stand for the re-read before the change (issue 15). Observed before
    /// the region's listing was read (a streamed selection's first pages),
    /// a role no other target of this run has observed is taken for the
    /// target's own: only targets change it, and one that observes it
    /// later finds it not its own and re-reads it. The runner asks this
    /// while it holds the role (`RunContext::exclusive`), so two targets
    /// never both skip the re-read of a role they share.
    fn owns_observed(&self, cx: &StepContext<'_>, observed: &Observation) -> bool {
        let (Ok(args), Ok(state)) = (
            cx.args_as::<QuarantineArgs>(&SPEC),
            cx.state_as::<RoleState>(&SPEC, observed),
        ) else {
            return false;
        };
        match (args.function_arn(cx), state.functions_using_role) {
            (Ok(Some(this)), Some(users)) => users.iter().all(|f| *f == this),
            (Ok(Some(this)), None) => cx.run.slot::<RoleObservers>().only(&observed.target, &this),
            _ => false,
        }
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError> {
        let args: QuarantineArgs = cx.args_as(&SPEC)?;
        let role_arn = &observed.target;
        let this = args.function_arn(cx)?;
        let RoleState {
            attached,
            inline,
            functions_using_role,
        } = cx.state_as(&SPEC, observed)?;
        let listed = functions_using_role.is_some();
        let (attackers, others): (Vec<String>, Vec<String>) = functions_using_role
            .unwrap_or_default()
            .into_iter()
            .filter(|f| Some(f.as_str()) != this.as_deref())
            .partition(|f| args.attackers(f));
        // A role shared only with the attacker's own functions affects
        // nothing legitimate: no decision is needed (issue 13).
        let scope = match args.scope {
            Scope::Ask if others.is_empty() => Scope::Role,
            s => s,
        };
        if !others.is_empty() && scope == Scope::Ask {
            return Err(ActionError::Decision(Box::new(Decision {
                question: format!(
                    "role {role_arn} is shared by {} other function(s); quarantining it would stop them too",
                    others.len(),
                ),
                affects: others,
                argument: "scope".into(),
                options: vec![
                    DecisionOption {
                        value: "role".into(),
                        effect: "deny everything to the role: every function using it is contained too".into(),
                        how: String::new(),
                    },
                    DecisionOption {
                        value: "function".into(),
                        effect: "deny only credentials Lambda issues to this function (lambda:SourceFunctionArn); the others keep working".into(),
                        how: String::new(),
                    },
                ],
            })));
        }
        let source = match scope {
            Scope::Function => Some(this.clone().ok_or_else(|| {
                ActionError::input(
                    "`scope: function` needs the `function` parameter",
                    "add `function:` (the compromised function) to the step",
                )
            })?),
            _ => None,
        };
        let mut changes = Vec::new();
        let mut want = vec![(
            DENY_POLICY,
            policy::deny_all(source.as_deref()),
            "contain: explicit deny of every action to the role",
        )];
        if args.revoke_sessions {
            want.push((
                REVOKE_POLICY,
                policy::revoke_sessions(cx.incident_started_at, source.as_deref()),
                "contain: credentials issued before the incident started are denied (IAM's revoke active sessions)",
            ));
        }
        for (name, doc, why) in want {
            let current = inline.get(name).cloned().unwrap_or(Value::Null);
            if current != doc {
                let why = match &source {
                    Some(f) => format!("{why}, only for sessions of {f}"),
                    None => why.to_string(),
                };
                changes.push(Change::new(
                    role_arn,
                    format!("{INLINE}{name}"),
                    current,
                    doc,
                    why,
                ));
            }
        }
        let mut removed = Vec::new();
        if args.detach && source.is_none() {
            for arn in &attached {
                if !args.kept(arn) {
                    removed.push(arn.to_string());
                    changes.push(Change::new(
                        role_arn,
                        format!("{ATTACHED}{arn}"),
                        json!(true),
                        Value::Null,
                        "contain: detach the managed policy (recorded for recovery)",
                    ));
                }
            }
            for (name, doc) in &inline {
                if name != DENY_POLICY && name != REVOKE_POLICY && !args.kept(name) {
                    removed.push(name.clone());
                    changes.push(Change::new(
                        role_arn,
                        format!("{INLINE}{name}"),
                        doc.clone(),
                        Value::Null,
                        "contain: delete the inline policy (its document is recorded for recovery)",
                    ));
                }
            }
        }
        let attacker_note = (!attackers.is_empty()).then(|| {
            format!(
                "also used by {}, which identify marks as the attacker's: quarantined with the role, nothing legitimate is affected",
                attackers.join(", ")
            )
        });
        let unlisted = "the deny went on before the region's functions were listed: the trail's `blast_radius` record names them";
        let note = match (&source, others.is_empty(), listed) {
            (None, _, false) => Some(format!(
                "scope role: every function using this role is contained too; {unlisted}"
            )),
            (Some(f), _, false) => Some(format!(
                "scoped to {f}: the deny applies only to credentials Lambda issues to that function (lambda:SourceFunctionArn); any other function on the role keeps it and its policies ({unlisted}). It does not stop other principals that can assume the role"
            )),
            (_, true, true) => attacker_note,
            (Some(f), false, true) => Some(format!(
                "scoped to {f}: the deny applies only to credentials Lambda issues to that function (lambda:SourceFunctionArn); {} keep the role and its policies. It does not stop other principals that can assume the role",
                others.join(", ")
            )),
            (None, false, true) => Some(format!("scope role: {} use this role and are contained too", others.join(", "))),
        };
        let mut outputs = Map::new();
        outputs.insert("role_arn".into(), json!(role_arn));
        outputs.insert("removed_policies".into(), json!(removed));
        // Not known yet, so not given: a step reading it fails to plan
        // rather than reading an empty list.
        if listed {
            outputs.insert("shared_with".into(), json!(others));
        }
        Ok(Planned {
            changes,
            outputs,
            note,
        })
    }

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError> {
        let r = role::from_arn(&change.target);
        if let Some(name) = change.attribute.strip_prefix(INLINE) {
            if change.after.is_null() {
                let res = cx
                    .aws
                    .iam
                    .delete_role_policy()
                    .role_name(&r.name)
                    .policy_name(name)
                    .send()
                    .await;
                return done_unless_error(
                    res.map(|_| ()).map_err(|e| {
                        classify("DeleteRolePolicy", "iam:DeleteRolePolicy", &r.arn, e)
                    }),
                );
            }
            let doc = serde_json::to_string(&change.after).map_err(|e| {
                ActionError::input(e.to_string(), "the journal was edited or damaged")
            })?;
            cx.aws
                .iam
                .put_role_policy()
                .role_name(&r.name)
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .map_err(|e| classify("PutRolePolicy", "iam:PutRolePolicy", &r.arn, e))?;
            return Ok(());
        }
        if let Some(arn) = change.attribute.strip_prefix(ATTACHED) {
            if change.after.is_null() {
                let res = cx
                    .aws
                    .iam
                    .detach_role_policy()
                    .role_name(&r.name)
                    .policy_arn(arn)
                    .send()
                    .await;
                return done_unless_error(
                    res.map(|_| ()).map_err(|e| {
                        classify("DetachRolePolicy", "iam:DetachRolePolicy", &r.arn, e)
                    }),
                );
            }
            cx.aws
                .iam
                .attach_role_policy()
                .role_name(&r.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| classify("AttachRolePolicy", "iam:AttachRolePolicy", &r.arn, e))?;
            return Ok(());
        }
        Err(ActionError::input(
            format!("unknown attribute `{}`", change.attribute),
            "the journal was edited or damaged",
        ))
    }

    async fn read(
        &self,
        cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        let r = role::from_arn(target);
        if let Some(name) = attribute.strip_prefix(INLINE) {
            return Ok(role::inline_document(cx.aws, &r, name)
                .await?
                .unwrap_or(Value::Null));
        }
        if let Some(arn) = attribute.strip_prefix(ATTACHED) {
            let attached = role::attached(cx.aws, &r).await?;
            return Ok(if attached.iter().any(|a| a == arn) {
                json!(true)
            } else {
                Value::Null
            });
        }
        Err(ActionError::input(
            format!("unknown attribute `{attribute}`"),
            "the journal was edited or damaged",
        ))
    }

    async fn restore_risk(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<String>, ActionError> {
        if change.after.is_null() {
            return Ok(None);
        }
        if change.attribute.starts_with(INLINE) {
            return Ok(policy::broad_grant(&change.after));
        }
        if let Some(arn) = change.attribute.strip_prefix(ATTACHED) {
            let doc = role::managed_document(cx.aws, arn).await?;
            return Ok(policy::broad_grant(&doc));
        }
        Ok(None)
    }

    async fn verify(
        &self,
        cx: &StepContext<'_>,
        observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        let r = role::from_arn(&observed.target);
        let planned = self.plan(cx, &self.observe(cx).await?)?;
        let mut checks = vec![Check {
            name: "role carries the deny".into(),
            target: r.arn.clone(),
            passed: !planned.changes.iter().any(|c| {
                c.attribute == format!("{INLINE}{DENY_POLICY}")
                    || c.attribute == format!("{INLINE}{REVOKE_POLICY}")
            }),
            detail: "the explicit deny (and session revocation) are in place exactly as planned"
                .into(),
        }];
        let leftovers: Vec<String> = planned
            .changes
            .iter()
            .filter(|c| c.after.is_null())
            .map(|c| c.attribute.clone())
            .collect();
        checks.push(Check {
            name: "role carries no other policy".into(),
            target: r.arn,
            passed: leftovers.is_empty(),
            detail: if leftovers.is_empty() {
                "only firebreak's denies and kept policies remain".into()
            } else {
                format!("still present: {}", leftovers.join(", "))
            },
        });
        Ok(checks)
    }
}

/// Removing something already gone is the desired state, not an error.
fn done_unless_error(res: Result<(), crate::aws::AwsError>) -> Result<(), ActionError> {
    match res {
        Err(e) if e.kind == AwsErrorKind::NotFound => Ok(()),
        other => other.map_err(ActionError::from),
    }
}
