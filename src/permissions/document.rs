//! The policy as data, and as the JSON IAM reads.
//!
//! Grants (one IAM action on some resources, maybe under a condition) are
//! merged into statements so that the policy allows exactly the union of
//! the grants: first the actions per (Sid, condition, resource), then the
//! resources per (Sid, condition, action set). A statement is always a
//! whole product `actions × resources`, so merging never widens anything.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

/// IAM's limit on a role's inline policies, all together, counted without
/// whitespace.
pub const MAX_INLINE_ROLE_POLICY: usize = 10_240;

/// IAM's limit on a customer managed policy, counted without whitespace.
pub const MAX_MANAGED_POLICY: usize = 6_144;

/// `{operator: {key: [values]}}`, as IAM writes a condition block.
pub type Condition = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// One IAM action allowed on some resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What the statement is for; statements are named (and ordered) by it.
    pub sid: &'static str,
    pub action: String,
    pub resources: BTreeSet<String>,
    pub condition: Option<Condition>,
}

impl Grant {
    pub fn new(
        sid: &'static str,
        action: impl Into<String>,
        resources: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            sid,
            action: action.into(),
            resources: resources.into_iter().collect(),
            condition: None,
        }
    }

    pub fn when(mut self, operator: &str, key: &str, values: Vec<String>) -> Self {
        self.condition
            .get_or_insert_with(Default::default)
            .entry(operator.to_string())
            .or_default()
            .insert(key.to_string(), values);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: String,
    pub actions: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    pub condition: Option<Condition>,
}

/// An identity policy: every statement allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Merges grants into the fewest statements that allow exactly them,
    /// in a deterministic order: Sids in `order` first, in its order, then
    /// the others by name; within a Sid, by first resource.
    pub fn from_grants(grants: impl IntoIterator<Item = Grant>, order: &[&str]) -> Self {
        type Key = (&'static str, Option<Condition>);
        // (sid, condition) → resource → actions
        let mut by_resource: BTreeMap<Key, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for g in grants {
            if g.resources.is_empty() {
                continue;
            }
            let per = by_resource.entry((g.sid, g.condition)).or_default();
            for r in g.resources {
                per.entry(r).or_default().insert(g.action.clone());
            }
        }
        // (sid, condition) → actions → resources
        let mut statements: Vec<Statement> = Vec::new();
        for ((sid, condition), per) in by_resource {
            let mut by_actions: BTreeMap<BTreeSet<String>, BTreeSet<String>> = BTreeMap::new();
            for (resource, actions) in per {
                by_actions.entry(actions).or_default().insert(resource);
            }
            for (actions, resources) in by_actions {
                statements.push(Statement {
                    sid: sid.to_string(),
                    actions,
                    resources,
                    condition: condition.clone(),
                });
            }
        }
        let rank = |sid: &str| order.iter().position(|o| *o == sid).unwrap_or(order.len());
        statements.sort_by(|a, b| {
            (rank(&a.sid), &a.sid, a.resources.iter().next(), &a.actions).cmp(&(
                rank(&b.sid),
                &b.sid,
                b.resources.iter().next(),
                &b.actions,
            ))
        });
        // Sids are unique within a policy: a second statement for the same
        // purpose (other resources, other actions) gets a number.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for s in &mut statements {
            let n = seen.entry(s.sid.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                s.sid = format!("{}{n}", s.sid);
            }
        }
        Self { statements }
    }

    /// Whether the policy allows `action` on exactly `resource` (a string
    /// from the policy itself, not a match): for tests and checks.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.actions.contains(action) && s.resources.contains(resource))
    }

    /// Every IAM action the policy names.
    pub fn actions(&self) -> BTreeSet<&str> {
        self.statements
            .iter()
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect()
    }

    pub fn statement(&self, sid: &str) -> Option<&Statement> {
        self.statements.iter().find(|s| s.sid == sid)
    }

    /// The policy document, as IAM takes it.
    pub fn to_json(&self) -> Value {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                let mut o = Map::new();
                o.insert("Sid".into(), json!(s.sid));
                o.insert("Effect".into(), json!("Allow"));
                o.insert("Action".into(), json!(s.actions));
                o.insert("Resource".into(), json!(s.resources));
                if let Some(c) = &s.condition {
                    o.insert("Condition".into(), json!(c));
                }
                Value::Object(o)
            })
            .collect();
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    /// The size IAM counts against its limits (the JSON without whitespace).
    pub fn size(&self) -> usize {
        self.to_json().to_string().len()
    }
}

/// Checks that `doc` is an IAM identity-policy document: the shape IAM
/// accepts, not what it allows. Returns every problem found.
pub fn check_document(doc: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let Some(top) = doc.as_object() else {
        return Err(vec!["the policy is not a JSON object".into()]);
    };
    for k in top.keys() {
        if !["Version", "Id", "Statement"].contains(&k.as_str()) {
            problems.push(format!("unknown top-level key `{k}`"));
        }
    }
    if top.get("Version") != Some(&json!("2012-10-17")) {
        problems.push("`Version` is not \"2012-10-17\"".into());
    }
    let statements = match top.get("Statement") {
        Some(Value::Array(s)) if !s.is_empty() => s.as_slice(),
        _ => {
            problems.push("`Statement` is not a non-empty list".into());
            &[]
        }
    };
    let mut sids = BTreeSet::new();
    for (i, s) in statements.iter().enumerate() {
        let at = format!("statement {}", i + 1);
        let Some(s) = s.as_object() else {
            problems.push(format!("{at} is not an object"));
            continue;
        };
        for k in s.keys() {
            if !["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str()) {
                problems.push(format!(
                    "{at} has the key `{k}`, not one of an identity policy"
                ));
            }
        }
        match s.get("Sid").and_then(Value::as_str) {
            Some(sid) if !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()) => {
                if !sids.insert(sid.to_string()) {
                    problems.push(format!("{at}: Sid `{sid}` is used twice"));
                }
            }
            Some(sid) => problems.push(format!("{at}: Sid `{sid}` is not alphanumeric")),
            None => problems.push(format!("{at} has no Sid")),
        }
        if !matches!(
            s.get("Effect").and_then(Value::as_str),
            Some("Allow" | "Deny")
        ) {
            problems.push(format!("{at}: `Effect` is not Allow or Deny"));
        }
        for (key, ok) in [
            ("Action", is_action as fn(&str) -> bool),
            ("Resource", is_resource),
        ] {
            let items: Vec<&Value> = match s.get(key) {
                Some(Value::String(_)) => vec![&s[key]],
                Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
                _ => {
                    problems.push(format!("{at}: `{key}` is not a string or a non-empty list"));
                    continue;
                }
            };
            for item in items {
                match item.as_str() {
                    Some(text) if ok(text) => {}
                    _ => problems.push(format!("{at}: {item} is not a valid {key}")),
                }
            }
        }
        if let Some(c) = s.get("Condition") {
            let shape_ok = c.as_object().is_some_and(|ops| {
                !ops.is_empty()
                    && ops.values().all(|keys| {
                        keys.as_object().is_some_and(|keys| {
                            !keys.is_empty()
                                && keys.values().all(|v| match v {
                                    Value::String(_) => true,
                                    Value::Array(a) => {
                                        !a.is_empty() && a.iter().all(Value::is_string)
                                    }
                                    _ => false,
                                })
                        })
                    })
            });
            if !shape_ok {
                problems.push(format!(
                    "{at}: `Condition` is not {{operator: {{key: value or [values]}}}}"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `service:Action`, the action part possibly with wildcards.
fn is_action(s: &str) -> bool {
    s == "*"
        || s.split_once(':').is_some_and(|(service, action)| {
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !action.is_empty()
                && action
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
        })
}

/// `*`, or an ARN with its six parts (`arn:partition:service:region:account:resource`).
fn is_resource(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, service, _, _, resource]
        if !partition.is_empty() && !service.is_empty() && !resource.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn merging_allows_exactly_the_grants() {
        let grants = vec![
            Grant::new("Objects", "s3:GetObject", ["arn:aws:s3:::a/*".to_string()]),
            Grant::new("Objects", "s3:PutObject", ["arn:aws:s3:::a/*".to_string()]),
            Grant::new("Objects", "s3:GetObject", ["arn:aws:s3:::b/*".to_string()]),
            Grant::new("Objects", "s3:PutObject", ["arn:aws:s3:::b/*".to_string()]),
            // Read-only on c: must not gain PutObject by being merged.
            Grant::new("Objects", "s3:GetObject", ["arn:aws:s3:::c/*".to_string()]),
            Grant::new("Identity", "sts:GetCallerIdentity", ["*".to_string()]),
        ];
        let p = Policy::from_grants(grants, &["Objects"]);
        let sids: Vec<&str> = p.statements.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(
            sids,
            ["Objects", "Objects2", "Identity"],
            "in the order given"
        );
        assert_eq!(
            p.statements[0].resources,
            set(&["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"])
        );
        assert_eq!(
            p.statements[0].actions,
            set(&["s3:GetObject", "s3:PutObject"])
        );
        assert_eq!(p.statements[1].resources, set(&["arn:aws:s3:::c/*"]));
        assert_eq!(p.statements[1].actions, set(&["s3:GetObject"]));
        assert!(!p.allows("s3:PutObject", "arn:aws:s3:::c/*"));
        assert!(check_document(&p.to_json()).is_ok());
    }

    #[test]
    fn a_condition_keeps_its_statement_apart() {
        let p = Policy::from_grants(
            vec![
                Grant::new("Kms", "kms:Decrypt", ["arn:aws:kms:*:*:key/*".to_string()]).when(
                    "StringLike",
                    "kms:ViaService",
                    vec!["ssm.*.amazonaws.com".into()],
                ),
                Grant::new("Kms", "kms:Decrypt", ["arn:aws:kms:*:*:key/*".to_string()]),
            ],
            &[],
        );
        assert_eq!(p.statements.len(), 2);
        assert_eq!(p.statements[0].sid, "Kms");
        assert_eq!(p.statements[1].sid, "Kms2");
        let doc = p.to_json();
        assert!(check_document(&doc).is_ok(), "{doc}");
    }

    #[test]
    fn the_shape_check_names_what_is_wrong() {
        let bad = json!({
            "Version": "2008-10-17",
            "Statement": [
                {"Sid": "a-b", "Effect": "Allow", "Action": "lambda GetFunction", "Resource": "function:x"},
                {"Sid": "A", "Effect": "Maybe", "Action": [], "Resource": "*", "Principal": "*"},
                {"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringLike": {}}}
            ]
        });
        let problems = check_document(&bad).unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "`Version`",
            "Sid `a-b` is not alphanumeric",
            "\"lambda GetFunction\" is not a valid Action",
            "\"function:x\" is not a valid Resource",
            "`Effect` is not Allow or Deny",
            "`Action` is not a string or a non-empty list",
            "the key `Principal`",
            "Sid `A` is used twice",
            "`Condition` is not",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
