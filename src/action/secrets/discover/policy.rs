//! What identity policies let a principal do, evaluated the way IAM does
//! within one account: an action on a resource is allowed when an `Allow`
//! statement matches both and no `Deny` statement does.
//!
//! Discovery must never miss a secret (a missed one stays stolen and
//! valid), so where the answer depends on something not evaluated here it
//! leans towards "readable": an `Allow` with a `Condition` is assumed to
//! apply, and a `Deny` with a `Condition` is assumed *not* to (it cannot be
//! known to cover the function's own requests). Permission boundaries,
//! SCPs, session policies and resource policies are not read: they can
//! only take permissions away, so leaving them out only ever over-reports.

use serde_json::Value;

use crate::action::secrets::wildcard_match;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// `Action` / `Resource` (any listed pattern matches), or `NotAction` /
/// `NotResource` (everything except the listed patterns).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Patterns {
    AnyOf(Vec<String>),
    AllBut(Vec<String>),
}

impl Patterns {
    /// From a statement's `key` or `not_key`; `None` when it has neither
    /// (IAM refuses such a statement, so it grants and denies nothing).
    fn read(st: &Value, key: &str, not_key: &str) -> Option<Self> {
        match (&st[key], &st[not_key]) {
            (v, Value::Null) if !v.is_null() => Some(Patterns::AnyOf(strings(v))),
            (Value::Null, v) if !v.is_null() => Some(Patterns::AllBut(strings(v))),
            _ => None,
        }
    }

    /// Action names are case-insensitive in IAM; ARNs are not.
    fn matches(&self, text: &str, ignore_case: bool) -> bool {
        let hit = |p: &String| {
            if ignore_case {
                wildcard_match(&p.to_ascii_lowercase(), &text.to_ascii_lowercase())
            } else {
                wildcard_match(p, text)
            }
        };
        match self {
            Patterns::AnyOf(ps) => ps.iter().any(hit),
            Patterns::AllBut(ps) => !ps.iter().any(hit),
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    /// The policy it comes from, for the discovered secret's `from`.
    policy: String,
    effect: Effect,
    actions: Patterns,
    resources: Patterns,
    conditional: bool,
}

impl Statement {
    fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions.matches(action, true) && self.resources.matches(resource, false)
    }
}

/// Every statement of a principal's identity policies.
#[derive(Debug, Default)]
pub struct Policies {
    statements: Vec<Statement>,
}

impl Policies {
    /// From `(policy name, document)` pairs. A statement IAM would refuse
    /// (no effect, no action, no resource) is left out.
    pub fn new(documents: &[(String, Value)]) -> Self {
        let mut statements = Vec::new();
        for (policy, doc) in documents {
            let listed = match &doc["Statement"] {
                Value::Array(a) => a.iter().collect(),
                Value::Null => vec![],
                one => vec![one],
            };
            for st in listed {
                let effect = match st["Effect"].as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => continue,
                };
                let (Some(actions), Some(resources)) = (
                    Patterns::read(st, "Action", "NotAction"),
                    Patterns::read(st, "Resource", "NotResource"),
                ) else {
                    continue;
                };
                let conditional = match &st["Condition"] {
                    Value::Null => false,
                    Value::Object(o) => !o.is_empty(),
                    _ => true,
                };
                statements.push(Statement {
                    policy: policy.clone(),
                    effect,
                    actions,
                    resources,
                    conditional,
                });
            }
        }
        Self { statements }
    }

    /// The policies whose statements allow `action` on `resource`, or none
    /// when nothing allows it or an unconditional `Deny` covers it.
    pub fn allowing(&self, action: &str, resource: &str) -> Vec<&str> {
        let denied = self
            .statements
            .iter()
            .any(|s| s.effect == Effect::Deny && !s.conditional && s.covers(action, resource));
        if denied {
            return Vec::new();
        }
        let mut out: Vec<&str> = self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && s.covers(action, resource))
            .map(|s| s.policy.as_str())
            .collect();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GET: &str = "secretsmanager:GetSecretValue";
    const DB: &str = "arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf";
    const API: &str = "arn:aws:secretsmanager:us-east-1:1:secret:app/api-GhIjKl";

    fn policies(statements: Value) -> Policies {
        Policies::new(&[("p".to_string(), json!({"Statement": statements}))])
    }

    #[test]
    fn an_allow_grants_by_action_and_resource_wildcards() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": "SecretsManager:Get*", "Resource": "arn:aws:secretsmanager:*:*:secret:app/db-*"}
        ]));
        assert_eq!(p.allowing(GET, DB), vec!["p"]);
        assert!(p.allowing(GET, API).is_empty());
        assert!(p.allowing("ssm:GetParameter", DB).is_empty());
    }

    #[test]
    fn an_unconditional_deny_covering_the_resource_removes_it() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["secretsmanager:GetSecretValue"], "Resource": "arn:aws:secretsmanager:*:*:secret:app/db-*"}
        ]));
        assert!(p.allowing(GET, DB).is_empty(), "denied");
        assert_eq!(p.allowing(GET, API), vec!["p"], "not covered by the deny");
    }

    #[test]
    fn a_deny_of_every_action_removes_too() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": GET, "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": DB}
        ]));
        assert!(p.allowing(GET, DB).is_empty());
    }

    #[test]
    fn a_conditional_deny_is_not_assumed_to_apply() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": GET, "Resource": "*"},
            {"Effect": "Deny", "Action": GET, "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}
        ]));
        assert_eq!(p.allowing(GET, DB), vec!["p"]);
    }

    #[test]
    fn a_conditional_allow_is_assumed_to_apply() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": GET, "Resource": DB,
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
        ]));
        assert_eq!(p.allowing(GET, DB), vec!["p"]);
    }

    #[test]
    fn not_action_grants_everything_it_does_not_exclude() {
        let p = policies(json!([
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
        ]));
        assert_eq!(
            p.allowing(GET, DB),
            vec!["p"],
            "NotAction iam:* grants every secret"
        );
        assert!(p.allowing("iam:PassRole", DB).is_empty());
        let excluded = policies(json!([
            {"Effect": "Allow", "NotAction": ["secretsmanager:*", "iam:*"], "Resource": "*"}
        ]));
        assert!(
            excluded.allowing(GET, DB).is_empty(),
            "excluded by NotAction"
        );
    }

    #[test]
    fn not_resource_grants_every_resource_it_does_not_exclude() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": GET, "NotResource": "arn:aws:secretsmanager:*:*:secret:app/db-*"}
        ]));
        assert!(p.allowing(GET, DB).is_empty());
        assert_eq!(p.allowing(GET, API), vec!["p"]);
    }

    #[test]
    fn a_deny_with_not_action_or_not_resource_covers_what_it_does_not_exclude() {
        let p = policies(json!([
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "NotAction": "s3:*", "Resource": DB},
            {"Effect": "Deny", "Action": GET, "NotResource": [DB, API]}
        ]));
        assert!(
            p.allowing(GET, DB).is_empty(),
            "NotAction s3:* covers GetSecretValue"
        );
        assert_eq!(p.allowing(GET, API), vec!["p"]);
        let other = "arn:aws:secretsmanager:us-east-1:1:secret:other-MnOpQr";
        assert!(
            p.allowing(GET, other).is_empty(),
            "outside NotResource: denied"
        );
    }

    #[test]
    fn malformed_statements_grant_nothing() {
        let p = policies(json!([
            {"Effect": "Allow", "Resource": "*"},
            {"Action": GET, "Resource": "*"},
            {"Effect": "Allow", "Action": GET}
        ]));
        assert!(p.allowing(GET, DB).is_empty());
        // A single statement object instead of a list.
        let one = Policies::new(&[(
            "q".to_string(),
            json!({"Statement": {"Effect": "Allow", "Action": GET, "Resource": "*"}}),
        )]);
        assert_eq!(one.allowing(GET, DB), vec!["q"]);
    }

    #[test]
    fn each_allowing_policy_is_named_once() {
        let docs = [
            (
                "a".to_string(),
                json!({"Statement": [
                    {"Effect": "Allow", "Action": GET, "Resource": "*"},
                    {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": DB}
                ]}),
            ),
            (
                "b".to_string(),
                json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
            ),
        ];
        assert_eq!(Policies::new(&docs).allowing(GET, DB), vec!["a", "b"]);
    }
}
