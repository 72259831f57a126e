//! What an indicator of compromise is, whatever found it.
//!
//! Three sources feed the same type: heuristics that need no baseline
//! (`heuristics`), CloudTrail (`attribution`: who made the change, when),
//! and the drift from a known-good snapshot (`Source::Baseline`, judged in
//! `drift`). Consumers (the identify step, the
//! evidence writer, containment, `recover`) read only this type.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kind of change an indicator is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A resource-policy statement for `*` (anyone), on any qualifier.
    PublicStatement,
    /// A resource-policy statement letting another account in.
    ForeignStatement,
    /// A function URL with `AuthType NONE`.
    PublicUrl,
    /// A layer owned by another account.
    ForeignLayer,
    /// `AWS_LAMBDA_EXEC_WRAPPER`: a script that runs before the handler.
    ExecWrapper,
    /// A `*_ENDPOINT` variable: SDK calls sent somewhere else.
    EndpointVariable,
    /// Code published or deployed inside the window that no earlier
    /// version had.
    CodeChanged,
    /// An alias pointing at such code.
    AliasRepointed,
    /// An inline policy on the execution role granting `*` on `*`.
    AdminInlinePolicy,
    /// An event source mapping fed by another account's resource.
    ForeignEventSource,
    /// Another function on the same role, created or changed in the window.
    RogueFunction,
    /// An EventBridge rule invoking such a function.
    RogueRule,
    /// An access key created inside the window for a named user (or, with
    /// a baseline, one the baseline did not have).
    AccessKey,
    // Drift from a baseline that no heuristic above names more precisely.
    /// Runtime, handler, role, timeout, memory or description.
    ConfigurationChanged,
    /// The layer list of `$LATEST`.
    LayerChanged,
    /// An environment variable added, removed or given another value.
    VariableChanged,
    /// A version published since the baseline.
    VersionPublished,
    /// A resource-policy statement added, removed or changed.
    StatementChanged,
    /// A function URL added, removed or changed.
    UrlChanged,
    /// An event source mapping added, removed, enabled or disabled.
    EventSourceChanged,
    TagChanged,
    /// The execution role's trust, inline or attached policies.
    RolePolicyChanged,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PublicStatement => "public_statement",
            Kind::ForeignStatement => "foreign_statement",
            Kind::PublicUrl => "public_url",
            Kind::ForeignLayer => "foreign_layer",
            Kind::ExecWrapper => "exec_wrapper",
            Kind::EndpointVariable => "endpoint_variable",
            Kind::CodeChanged => "code_changed",
            Kind::AliasRepointed => "alias_repointed",
            Kind::AdminInlinePolicy => "admin_inline_policy",
            Kind::ForeignEventSource => "foreign_event_source",
            Kind::RogueFunction => "rogue_function",
            Kind::RogueRule => "rogue_rule",
            Kind::AccessKey => "access_key",
            Kind::ConfigurationChanged => "configuration_changed",
            Kind::LayerChanged => "layer_changed",
            Kind::VariableChanged => "variable_changed",
            Kind::VersionPublished => "version_published",
            Kind::StatementChanged => "statement_changed",
            Kind::UrlChanged => "url_changed",
            Kind::EventSourceChanged => "event_source_changed",
            Kind::TagChanged => "tag_changed",
            Kind::RolePolicyChanged => "role_policy_changed",
        }
    }

    /// The CloudTrail events that make this kind of change (name prefixes:
    /// Lambda's event names carry an API version, `AddPermission20150331v2`).
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Kind::PublicStatement | Kind::ForeignStatement => &["AddPermission"],
            Kind::PublicUrl => &["CreateFunctionUrlConfig", "UpdateFunctionUrlConfig"],
            Kind::ForeignLayer | Kind::ExecWrapper | Kind::EndpointVariable => {
                &["UpdateFunctionConfiguration", "CreateFunction"]
            }
            Kind::CodeChanged => &["PublishVersion", "UpdateFunctionCode"],
            Kind::AliasRepointed => &["UpdateAlias", "CreateAlias"],
            Kind::AdminInlinePolicy => &["PutRolePolicy"],
            Kind::ForeignEventSource => &["CreateEventSourceMapping"],
            Kind::RogueFunction => &["CreateFunction"],
            Kind::RogueRule => &["PutTargets", "PutRule"],
            Kind::AccessKey => &["CreateAccessKey"],
            Kind::ConfigurationChanged | Kind::LayerChanged | Kind::VariableChanged => {
                &["UpdateFunctionConfiguration"]
            }
            Kind::VersionPublished => &["PublishVersion"],
            Kind::StatementChanged => &["AddPermission", "RemovePermission"],
            Kind::UrlChanged => &[
                "CreateFunctionUrlConfig",
                "UpdateFunctionUrlConfig",
                "DeleteFunctionUrlConfig",
            ],
            Kind::EventSourceChanged => &[
                "CreateEventSourceMapping",
                "UpdateEventSourceMapping",
                "DeleteEventSourceMapping",
            ],
            Kind::TagChanged => &["TagResource", "UntagResource"],
            Kind::RolePolicyChanged => &[
                "PutRolePolicy",
                "DeleteRolePolicy",
                "AttachRolePolicy",
                "DetachRolePolicy",
                "UpdateAssumeRolePolicy",
            ],
        }
    }

    /// Whether `recover` must keep containment while it is in effect: the
    /// attacker's code, layer, variables, statements, URL, policy, mapping,
    /// key or function would run again (design contract 16).
    pub fn blocks_recovery(self) -> bool {
        true
    }
}

/// Where an indicator comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A rule that needs no baseline.
    Heuristic,
    /// The drift from a known-good snapshot taken before the incident.
    Baseline,
    /// Found, or confirmed, in CloudTrail.
    Cloudtrail,
}

/// One finding: a change, where it is, and whether it looks like the
/// attacker's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    pub kind: Kind,
    /// The ARN of what carries it (a function, qualifier, role, mapping,
    /// rule, user).
    pub resource: String,
    /// What exactly: a statement's Sid, a layer ARN, variable names (never
    /// values, except the address a `*_ENDPOINT` variable points to).
    pub detail: String,
    pub suspicious: bool,
    /// Why it is marked suspicious or expected.
    pub why: String,
    pub source: Source,
    /// Who made the change (CloudTrail's `userIdentity.arn`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When the change was made (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Whether it is in effect now (a disabled mapping, an inactive key or
    /// a disabled rule is not, though it stays an indicator).
    pub active: bool,
    /// The attacker artifact as evidence: the statement, the layer ARN,
    /// the version ARN and its code hash, the URL configuration, the
    /// mapping UUID and queue ARN, the variable names and endpoint, the key
    /// id, the rogue function and rule.
    pub artifact: Value,
}

impl Indicator {
    /// One line for plans, reports and refusals.
    pub fn line(&self) -> String {
        let mark = if self.suspicious {
            "SUSPICIOUS"
        } else {
            "expected"
        };
        let mut s = format!(
            "{mark} {} {}: {} ({})",
            self.kind.as_str(),
            self.resource,
            self.detail,
            self.why
        );
        match (&self.actor, &self.when) {
            (Some(a), Some(w)) => s.push_str(&format!(" [by {a} at {w}]")),
            (Some(a), None) => s.push_str(&format!(" [by {a}]")),
            (None, Some(w)) => s.push_str(&format!(" [at {w}]")),
            (None, None) => {}
        }
        if !self.active {
            s.push_str(" (no longer in effect)");
        }
        s
    }

    /// Whether it keeps `recover` from lifting containment.
    pub fn blocks_recovery(&self) -> bool {
        self.suspicious && self.active && self.kind.blocks_recovery()
    }
}

/// What one assessment found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub function_arn: String,
    /// The start of the incident window (RFC 3339).
    pub since: String,
    pub indicators: Vec<Indicator>,
    /// Whether CloudTrail was read for attribution, and what it said if not.
    pub cloudtrail: String,
    /// What the judgement was made from (`facts::to_json`: names, ARNs and
    /// hashes; never a variable's value).
    pub facts: Value,
    /// Which baseline the drift was judged against, or why none was
    /// (empty: no `baseline_store` given; heuristics only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub baseline: String,
}

impl Assessment {
    pub fn suspicious(&self) -> impl Iterator<Item = &Indicator> {
        self.indicators.iter().filter(|i| i.suspicious)
    }

    /// ARNs of other functions on the victim's role that identify marks as
    /// the attacker's.
    pub fn rogue_functions(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .suspicious()
            .filter(|i| i.kind == Kind::RogueFunction)
            .map(|i| i.resource.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The suspicious indicators still in effect: what `recover` names.
    pub fn blocking(&self) -> Vec<&Indicator> {
        self.indicators
            .iter()
            .filter(|i| i.blocks_recovery())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ind(kind: Kind, suspicious: bool, active: bool) -> Indicator {
        Indicator {
            kind,
            resource: "arn:aws:lambda:us-east-1:111122223333:function:f".into(),
            detail: "d".into(),
            suspicious,
            why: "w".into(),
            source: Source::Heuristic,
            actor: None,
            when: None,
            active,
            artifact: json!({}),
        }
    }

    #[test]
    fn only_suspicious_indicators_in_effect_block_recovery() {
        assert!(ind(Kind::ForeignLayer, true, true).blocks_recovery());
        assert!(!ind(Kind::ForeignLayer, false, true).blocks_recovery());
        assert!(!ind(Kind::AccessKey, true, false).blocks_recovery());
    }

    #[test]
    fn a_line_names_kind_resource_actor_and_time() {
        let mut i = ind(Kind::PublicUrl, true, true);
        i.actor = Some("arn:aws:iam::1:user/mallory".into());
        i.when = Some("2026-11-23T08:00:00Z".into());
        assert_eq!(
            i.line(),
            "SUSPICIOUS public_url arn:aws:lambda:us-east-1:111122223333:function:f: d (w) [by arn:aws:iam::1:user/mallory at 2026-11-23T08:00:00Z]"
        );
        assert_eq!(serde_json::to_value(Kind::RogueRule).unwrap(), "rogue_rule");
    }
}
