//! Indicators from a baseline: the drift of a function from its newest
//! known-good snapshot taken before the incident, judged item by item.
//!
//! Why a port and not a call: reading a baseline (the store, the keyed
//! hashes, a full capture of the function now) lives in `baseline`, which
//! sits above `action` because capturing reuses the IAM and Lambda readers
//! here. Moving the capture down would drag the whole store with it, so
//! only the pure pieces the judgement needs live here (the drift items,
//! `Drift`/`DriftKind`, re-exported by `baseline::drift`), and the read is
//! a trait (`BaselineReader`) that `baseline` implements and the engine
//! hands to the run (`RunContext::with_baselines`). Every caller of
//! `assess` (identify, evidence, containment, recover) then judges with
//! the same baseline, without a step-specific argument to carry it.
//!
//! How each drift item is judged (`judge`), first rule that applies:
//! 1. Firebreak's own containment (the quarantine's deny policies, as the
//!    journal records them) is not an indicator.
//! 2. A heuristic flags the same thing: suspicious, whoever made it (a
//!    deployer's stolen credentials are how most such changes arrive).
//! 3. CloudTrail attributes it (later, in `attribution`): a listed deployer
//!    makes it expected, anyone else suspicious.
//! 4. Something removed or disabled since the baseline opens nothing:
//!    expected (`recover --to-baseline` puts it back); so are fields that
//!    change neither what runs nor who can call it (description, timeout,
//!    memory, tags, a version published but not aliased).
//! 5. Anything else the baseline did not have (code, handler, runtime,
//!    role, layers, variables, statements, URLs, mappings, role policies
//!    and trust, deploy users' keys, functions and rules on the role):
//!    suspicious.
//!
//! A heuristic finding that matches no drift item is about something the
//! known-good baseline already had: it stays listed, marked expected.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};

use super::model::{Indicator, Kind, Source};
use crate::action::iam::quarantine_role::{DENY_POLICY, REVOKE_POLICY};
use crate::action::lambda::public_access::policy::sid;
use crate::action::ActionError;
use crate::aws::Aws;

/// What kind of thing drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// A field of `$LATEST`'s configuration (`field` names it; an
    /// environment variable is `environment.NAME`).
    Configuration,
    /// A published version (the field is `code_sha256`).
    Version,
    /// An alias (the field is `version`).
    Alias,
    /// A resource-policy statement (resource: qualifier, field: Sid).
    Statement,
    /// A function URL (resource: qualifier).
    Url,
    /// An event source mapping (resource: `SOURCE -> QUALIFIER`).
    Mapping,
    Tag,
    /// The role's trust policy.
    RoleTrust,
    /// An inline policy of the role (field: its name).
    RoleInline,
    /// A managed policy attached to the role (field: its ARN).
    RoleAttached,
    /// A deploy user's access key (resource: user, field: key id).
    AccessKey,
    /// A function on the same execution role.
    RoleFunction,
    /// An EventBridge rule targeting the function or one on its role.
    Rule,
}

/// One difference. `baseline` or `current` is `null` when the thing is
/// absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    pub kind: DriftKind,
    pub resource: String,
    pub field: String,
    pub baseline: Value,
    pub current: Value,
}

impl Drift {
    /// Whether the drift is something a responder must remove before the
    /// function runs again. A version published since the baseline stays
    /// as evidence (versions are immutable); it matters only while an alias
    /// points to it, and that is an alias drift.
    pub fn blocking(&self) -> bool {
        !(self.kind == DriftKind::Version && self.baseline.is_null())
    }

    /// `kind:resource:field`, the id a plan names it by.
    pub fn id(&self) -> String {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if self.field.is_empty() {
            format!("{kind}:{}", self.resource)
        } else {
            format!("{kind}:{}:{}", self.resource, self.field)
        }
    }
}

/// What a baseline says about a function now.
#[derive(Debug, Clone)]
pub struct BaselineDrift {
    /// When the baseline was taken (RFC 3339).
    pub taken_at: String,
    /// Where it was read (a directory or `s3://...`).
    pub store: String,
    /// The deploy users whose keys the baseline records: keys of other
    /// users are outside what it can judge.
    pub deploy_users: Vec<String>,
    pub drift: Vec<Drift>,
}

/// Reads the newest baseline of a function taken before a time and
/// compares it with the function now. Implemented by `baseline`.
#[async_trait]
pub trait BaselineReader: Send + Sync {
    /// `None` when the store has no baseline of `function` before `before`.
    async fn read(
        &self,
        aws: &Aws,
        account: &str,
        store: &str,
        function: &str,
        before: &str,
    ) -> Result<Option<BaselineDrift>, ActionError>;
}

/// Where the things a drift item names live, as ARNs.
pub struct Place<'a> {
    pub account: &'a str,
    pub function_arn: &'a str,
    pub role_arn: Option<&'a str>,
}

impl Place<'_> {
    fn qualified(&self, q: &str) -> String {
        if q == "$LATEST" || q.is_empty() {
            self.function_arn.to_string()
        } else {
            format!("{}:{q}", self.function_arn)
        }
    }

    fn function(&self, name: &str) -> String {
        match self.function_arn.split_once(":function:") {
            Some((head, _)) => format!("{head}:function:{name}"),
            None => name.to_string(),
        }
    }

    fn role(&self, name: &str) -> String {
        self.role_arn
            .filter(|r| r.rsplit('/').next() == Some(name))
            .map(str::to_string)
            .unwrap_or_else(|| format!("arn:aws:iam::{}:role/{name}", self.account))
    }
}

fn added(d: &Drift) -> bool {
    d.baseline.is_null()
}

fn removed(d: &Drift) -> bool {
    d.current.is_null()
}

/// Turned off since the baseline (a mapping or a rule disabled).
fn disabled(d: &Drift) -> bool {
    d.baseline["enabled"] == true && d.current["enabled"] == false
}

fn benign(d: &Drift) -> bool {
    match d.kind {
        DriftKind::Tag => true,
        DriftKind::Configuration => {
            matches!(d.field.as_str(), "description" | "timeout" | "memory_size")
        }
        _ => !d.blocking(),
    }
}

/// The quarantine's own deny policies, when this incident's journal says
/// the quarantine put them there.
fn ours(d: &Drift, history: &crate::state::History) -> bool {
    d.kind == DriftKind::RoleInline
        && (d.field == DENY_POLICY || d.field == REVOKE_POLICY)
        && history.iter().any(|r| {
            r.action == "iam.quarantine_role"
                && r.change.attribute == format!("inline_policy:{}", d.field)
        })
}

fn kind_of(d: &Drift) -> Kind {
    match d.kind {
        DriftKind::Configuration if d.field == "code_sha256" => Kind::CodeChanged,
        DriftKind::Configuration if d.field == "layers" => Kind::LayerChanged,
        DriftKind::Configuration if d.field.starts_with("environment.") => Kind::VariableChanged,
        DriftKind::Configuration => Kind::ConfigurationChanged,
        DriftKind::Version => Kind::VersionPublished,
        DriftKind::Alias => Kind::AliasRepointed,
        DriftKind::Statement => Kind::StatementChanged,
        DriftKind::Url => Kind::UrlChanged,
        DriftKind::Mapping => Kind::EventSourceChanged,
        DriftKind::Tag => Kind::TagChanged,
        DriftKind::RoleTrust | DriftKind::RoleInline | DriftKind::RoleAttached => {
            Kind::RolePolicyChanged
        }
        DriftKind::AccessKey => Kind::AccessKey,
        DriftKind::RoleFunction => Kind::RogueFunction,
        DriftKind::Rule => Kind::RogueRule,
    }
}

fn resource_of(d: &Drift, at: &Place<'_>) -> String {
    match d.kind {
        DriftKind::Configuration | DriftKind::Tag => at.function_arn.to_string(),
        DriftKind::Version | DriftKind::Alias => at.qualified(&d.field),
        DriftKind::Statement | DriftKind::Url => at.qualified(&d.resource),
        DriftKind::Mapping => at.qualified(d.resource.rsplit(" -> ").next().unwrap_or("")),
        DriftKind::RoleTrust | DriftKind::RoleInline | DriftKind::RoleAttached => {
            at.role(d.resource.rsplit('/').next().unwrap_or(&d.resource))
        }
        DriftKind::AccessKey => format!("arn:aws:iam::{}:user/{}", at.account, d.resource),
        DriftKind::RoleFunction => at.function(&d.resource),
        DriftKind::Rule => d.current["arn"]
            .as_str()
            .or_else(|| d.baseline["arn"].as_str())
            .unwrap_or(&d.resource)
            .to_string(),
    }
}

/// What changed, in words: values only where they are safe and short
/// (never an environment variable's hash, let alone its value).
fn what(d: &Drift) -> String {
    let how = if added(d) {
        "added"
    } else if removed(d) {
        "removed"
    } else if disabled(d) {
        "disabled"
    } else {
        "changed"
    };
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match d.kind {
        DriftKind::Configuration if d.field.starts_with("environment.") => format!(
            "variable {} {how}",
            d.field.trim_start_matches("environment.")
        ),
        DriftKind::Configuration | DriftKind::Alias if how == "changed" => format!(
            "{} {} changed from {} to {}",
            if d.kind == DriftKind::Alias {
                "alias"
            } else {
                "configuration"
            },
            d.field,
            shown(&d.baseline),
            shown(&d.current)
        ),
        DriftKind::Configuration => format!("configuration {} {how}", d.field),
        DriftKind::Version => format!("version {} {how}", d.field),
        DriftKind::Alias => format!("alias {} {how}", d.field),
        DriftKind::Statement => format!("statement `{}` on {} {how}", d.field, d.resource),
        DriftKind::Url => format!("function URL on {} {how}", d.resource),
        DriftKind::Mapping => format!("event source mapping {} {how}", d.resource),
        DriftKind::Tag => format!("tag {} {how}", d.field),
        DriftKind::RoleTrust => format!("trust policy of role {} {how}", d.resource),
        DriftKind::RoleInline => {
            format!("inline policy `{}` of role {} {how}", d.field, d.resource)
        }
        DriftKind::RoleAttached => {
            format!("managed policy {} on role {} {how}", d.field, d.resource)
        }
        DriftKind::AccessKey => format!("access key {} of {} {how}", d.field, d.resource),
        DriftKind::RoleFunction => {
            format!("function {} on the same execution role {how}", d.resource)
        }
        DriftKind::Rule => format!("EventBridge rule {} {how}", d.resource),
    }
}

/// Whether heuristic finding `h` is about drift item `d`.
fn matches(h: &Indicator, d: &Drift) -> bool {
    let a = &h.artifact;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match h.kind {
        Kind::PublicStatement | Kind::ForeignStatement => {
            d.kind == DriftKind::Statement
                && d.resource == s(&a["qualifier"])
                && d.field == sid(&a["statement"])
        }
        Kind::PublicUrl => d.kind == DriftKind::Url && d.resource == s(&a["qualifier"]),
        Kind::ForeignLayer => {
            let layer = &a["layer_arn"];
            let has = |v: &Value| v.as_array().is_some_and(|l| l.contains(layer));
            d.kind == DriftKind::Configuration
                && d.field == "layers"
                && has(&d.current)
                && !has(&d.baseline)
        }
        Kind::ExecWrapper | Kind::EndpointVariable => {
            d.kind == DriftKind::Configuration
                && a["variable_names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|n| d.field == format!("environment.{}", s(n)))
        }
        Kind::CodeChanged => {
            if a["version"] == "$LATEST" {
                d.kind == DriftKind::Configuration && d.field == "code_sha256"
            } else {
                d.kind == DriftKind::Version && d.field == s(&a["version"])
            }
        }
        Kind::AliasRepointed => d.kind == DriftKind::Alias && d.field == s(&a["alias"]),
        Kind::AdminInlinePolicy => {
            d.kind == DriftKind::RoleInline && d.field == s(&a["policy_name"])
        }
        Kind::ForeignEventSource => {
            d.kind == DriftKind::Mapping
                && d.resource
                    .starts_with(&format!("{} -> ", s(&a["event_source_arn"])))
        }
        Kind::RogueFunction => {
            d.kind == DriftKind::RoleFunction
                && Some(d.resource.as_str()) == h.resource.rsplit(':').next()
        }
        Kind::RogueRule => d.kind == DriftKind::Rule && d.resource == s(&a["rule"]),
        Kind::AccessKey => {
            d.kind == DriftKind::AccessKey
                && d.resource == s(&a["user"])
                && d.field == s(&a["access_key_id"])
        }
        _ => false,
    }
}

/// Whether the baseline could have had what `h` is about (it records only
/// the deploy users it was taken with).
fn covered(h: &Indicator, b: &BaselineDrift) -> bool {
    h.kind != Kind::AccessKey
        || b.deploy_users
            .iter()
            .any(|u| h.artifact["user"].as_str() == Some(u))
}

fn drift_artifact(d: &Drift) -> Value {
    // Environment hashes are keyed digests, not values, but they say
    // nothing to a reader: only the name is kept.
    let env = d.kind == DriftKind::Configuration && d.field.starts_with("environment.");
    let side = |v: &Value| {
        if env && !v.is_null() {
            json!("(keyed hash)")
        } else {
            v.clone()
        }
    };
    json!({"id": d.id(), "baseline": side(&d.baseline), "current": side(&d.current)})
}

/// One judged indicator per drift item (or per heuristic finding it
/// explains), then the heuristic findings the baseline already had, marked
/// expected. The returned flags say which indicators a heuristic also
/// flags: they stay suspicious whoever CloudTrail says made them
/// (`keep_suspicious`).
pub fn judge(
    b: &BaselineDrift,
    heuristics: Vec<Indicator>,
    at: &Place<'_>,
    history: &crate::state::History,
) -> (Vec<Indicator>, Vec<bool>) {
    let since_baseline = format!("not in the baseline taken at {}", b.taken_at);
    let mut used = vec![false; heuristics.len()];
    let mut out = Vec::new();
    let mut flagged = Vec::new();
    for d in b.drift.iter().filter(|d| !ours(d, history)) {
        let hits: Vec<usize> = heuristics
            .iter()
            .enumerate()
            .filter(|(_, h)| matches(h, d))
            .map(|(n, _)| n)
            .collect();
        for &n in &hits {
            used[n] = true;
            let h = &heuristics[n];
            let mut i = h.clone();
            i.source = Source::Baseline;
            i.suspicious = true;
            i.why = format!("{since_baseline}; {}", h.why);
            if let Value::Object(m) = &mut i.artifact {
                m.insert("drift".into(), drift_artifact(d));
            }
            out.push(i);
            flagged.push(true);
        }
        if !hits.is_empty() {
            continue;
        }
        let (suspicious, why) = if removed(d) || disabled(d) {
            (
                false,
                format!("since the baseline taken at {}: it opens nothing (`recover --to-baseline` puts it back)", b.taken_at),
            )
        } else if benign(d) {
            (
                false,
                format!("since the baseline taken at {}: it changes neither what runs nor who can call it", b.taken_at),
            )
        } else {
            (
                true,
                format!("{since_baseline}, and no heuristic or listed deployer explains it"),
            )
        };
        let mut artifact = json!({"drift": drift_artifact(d)});
        let kind = kind_of(d);
        // Containment reads the rule and the function it fires.
        if kind == Kind::RogueRule {
            let target = d.current["targets"]
                .as_object()
                .and_then(|t| t.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            artifact["rule"] = json!(d.resource);
            artifact["rule_arn"] = json!(resource_of(d, at));
            artifact["target"] = target;
        }
        if kind == Kind::RogueFunction {
            artifact["function_arn"] = json!(resource_of(d, at));
        }
        out.push(Indicator {
            kind,
            resource: resource_of(d, at),
            detail: what(d),
            suspicious,
            why,
            source: Source::Baseline,
            actor: None,
            when: None,
            // A disabled mapping or rule, or a thing removed, is not in
            // effect.
            active: !removed(d) && d.current["enabled"] != false,
            artifact,
        });
        flagged.push(false);
    }
    for (h, used) in heuristics.into_iter().zip(used) {
        if used {
            continue;
        }
        let mut h = h;
        if covered(&h, b) {
            h.suspicious = false;
            h.why = format!(
                "{}; but the baseline taken at {} already had it (known-good)",
                h.why, b.taken_at
            );
        }
        out.push(h);
        flagged.push(false);
    }
    (out, flagged)
}

/// After attribution: what a heuristic also flags stays suspicious, even
/// when a listed deployer made it.
pub fn keep_suspicious(indicators: &mut [Indicator], flagged: &[bool]) {
    for (i, f) in indicators.iter_mut().zip(flagged) {
        if *f && !i.suspicious {
            i.suspicious = true;
            i.why = format!(
                "{}; but a heuristic flags it too: a deployer's credentials may be the attacker's",
                i.why
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "arn:aws:lambda:us-east-1:111122223333:function:victim";

    fn heuristic(kind: Kind, artifact: Value) -> Indicator {
        Indicator {
            kind,
            resource: F.into(),
            detail: "d".into(),
            suspicious: true,
            why: "heuristic".into(),
            source: Source::Heuristic,
            actor: None,
            when: None,
            active: true,
            artifact,
        }
    }

    fn item(kind: DriftKind, resource: &str, field: &str, b: Value, c: Value) -> Drift {
        Drift {
            kind,
            resource: resource.into(),
            field: field.into(),
            baseline: b,
            current: c,
        }
    }

    fn place() -> Place<'static> {
        Place {
            account: "111122223333",
            function_arn: F,
            role_arn: Some("arn:aws:iam::111122223333:role/victim-role"),
        }
    }

    #[test]
    fn drift_is_judged_and_what_the_baseline_had_is_expected() {
        let layer = "arn:aws:lambda:us-east-1:999999999999:layer:evil:1";
        let b = BaselineDrift {
            taken_at: "2026-12-01T10:00:00.000Z".into(),
            store: "baselines".into(),
            deploy_users: vec![],
            drift: vec![
                item(
                    DriftKind::Configuration,
                    "victim",
                    "layers",
                    json!([]),
                    json!([layer]),
                ),
                item(
                    DriftKind::Configuration,
                    "victim",
                    "environment.DEBUG",
                    Value::Null,
                    json!("h"),
                ),
                item(
                    DriftKind::Configuration,
                    "victim",
                    "timeout",
                    json!(3),
                    json!(30),
                ),
                item(
                    DriftKind::Statement,
                    "$LATEST",
                    "gone",
                    json!({"Sid": "gone"}),
                    Value::Null,
                ),
                item(
                    DriftKind::RoleInline,
                    "victim-role",
                    DENY_POLICY,
                    Value::Null,
                    json!({}),
                ),
            ],
        };
        let hs = vec![
            heuristic(Kind::ForeignLayer, json!({"layer_arn": layer})),
            heuristic(
                Kind::ForeignStatement,
                json!({"qualifier": "$LATEST", "statement": {"Sid": "partner"}}),
            ),
        ];
        let history = vec![];
        let (out, flagged) = judge(&b, hs, &place(), &history);
        let by = |k: Kind| out.iter().find(|i| i.kind == k).unwrap();
        assert_eq!(out.len(), 6, "{out:#?}");
        assert!(
            by(Kind::ForeignLayer).suspicious && by(Kind::ForeignLayer).source == Source::Baseline
        );
        assert_eq!(by(Kind::ForeignLayer).artifact["layer_arn"], layer);
        let var = by(Kind::VariableChanged);
        assert!(var.suspicious && var.detail == "variable DEBUG added");
        assert_eq!(var.artifact["drift"]["current"], "(keyed hash)");
        assert!(!by(Kind::ConfigurationChanged).suspicious);
        assert!(!by(Kind::StatementChanged).suspicious && !by(Kind::StatementChanged).active);
        // Without the quarantine in the journal, a deny policy is drift.
        assert!(by(Kind::RolePolicyChanged).suspicious);
        let partner = by(Kind::ForeignStatement);
        assert!(!partner.suspicious && partner.source == Source::Heuristic);
        assert_eq!(flagged, vec![true, false, false, false, false, false]);

        let mut attributed = out.clone();
        attributed[0].suspicious = false;
        keep_suspicious(&mut attributed, &flagged);
        assert!(attributed[0].suspicious);
    }
}
