//! The plan as data: what each step observed and the changes it would make.
//!
//! `plan` prints it, `plan --out` saves it, `run` applies it; the text and
//! JSON views in `render` are two renderings of this one structure.

pub mod saved;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::fmt;

/// The phases of a playbook, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Identify,
    Contain,
    Recover,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Identify, Phase::Contain, Phase::Recover];
    pub const NAMES: [&'static str; 3] = ["identify", "contain", "recover"];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Identify => "identify",
            Phase::Contain => "contain",
            Phase::Recover => "recover",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A setting that did not exist is created (`+`).
    Create,
    /// A setting changes value (`~`).
    Update,
    /// A setting is removed (`-`).
    Delete,
}

impl ChangeKind {
    pub fn symbol(self) -> char {
        match self {
            ChangeKind::Create => '+',
            ChangeKind::Update => '~',
            ChangeKind::Delete => '-',
        }
    }

    /// The kind of moving an attribute from `before` to `after` (null = absent).
    pub fn between(before: &Value, after: &Value) -> Self {
        match (before.is_null(), after.is_null()) {
            (true, false) => ChangeKind::Create,
            (false, true) => ChangeKind::Delete,
            _ => ChangeKind::Update,
        }
    }
}

/// One attribute of one resource moving from `before` to `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The resource, as an ARN.
    pub target: String,
    /// What about it changes, e.g. `reserved_concurrency`.
    pub attribute: String,
    pub kind: ChangeKind,
    /// `null` when the attribute was absent.
    pub before: Value,
    /// `null` when the attribute will be absent.
    pub after: Value,
    /// Why, in the responder's words.
    pub reason: String,
}

impl Change {
    pub fn new(
        target: impl Into<String>,
        attribute: impl Into<String>,
        before: Value,
        after: Value,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            target: target.into(),
            attribute: attribute.into(),
            kind: ChangeKind::between(&before, &after),
            before,
            after,
            reason: reason.into(),
        }
    }

    /// Same resource, attribute and destination: the same intent, whatever
    /// the state it started from.
    pub fn same_intent(&self, other: &Change) -> bool {
        self.target == other.target
            && self.attribute == other.attribute
            && self.after == other.after
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step would change something.
    Changes,
    /// Already in the desired state: nothing to do.
    Satisfied,
    /// A read-only step: it observes and produces outputs.
    Read,
    /// `when` was false.
    Skipped,
    /// Needs a human decision before it can change anything (see
    /// `decision`); every step that needs none still runs (contract 14).
    Held,
    /// Could not be observed or planned (see `error`): reported, and never
    /// a reason to leave the function running.
    Failed,
}

/// A choice the responder must make before a step may run, and how to make
/// it: the plan and the report name it, the run goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub question: String,
    /// Other resources the step would affect.
    pub affects: Vec<String>,
    /// The step argument the decision sets.
    pub argument: String,
    pub options: Vec<DecisionOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionOption {
    pub value: String,
    pub effect: String,
    /// What to pass or edit to choose this (filled by the engine, which
    /// knows whether the argument comes from a param).
    #[serde(default)]
    pub how: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPlan {
    pub id: String,
    pub phase: Phase,
    pub action: String,
    pub status: StepStatus,
    /// Arguments with every reference resolved: exactly what will be used.
    pub args: Map<String, Value>,
    pub target: Option<String>,
    /// The observed state the changes were computed from (for staleness).
    pub observed: Option<Value>,
    pub changes: Vec<Change>,
    pub outputs: Map<String, Value>,
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Total number of changes; 0 means nothing to do.
    pub changes: usize,
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub satisfied: usize,
    pub read: usize,
    pub skipped: usize,
    #[serde(default)]
    pub held: usize,
    #[serde(default)]
    pub failed: usize,
}

impl Summary {
    pub fn add(&mut self, x: &Summary) {
        self.changes += x.changes;
        self.create += x.create;
        self.update += x.update;
        self.delete += x.delete;
        self.satisfied += x.satisfied;
        self.read += x.read;
        self.skipped += x.skipped;
        self.held += x.held;
        self.failed += x.failed;
    }

    /// The counts of several targets' plans together.
    pub fn of(plans: &[Plan]) -> Summary {
        let mut s = Summary::default();
        for p in plans {
            s.add(&p.summary());
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

/// A complete plan: also the format of `plan --out FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub incident: String,
    pub playbook: PlaybookRef,
    pub params: Map<String, Value>,
    pub phases: Vec<Phase>,
    pub account: String,
    pub region: String,
    pub created_at: String,
    pub steps: Vec<StepPlan>,
}

impl Plan {
    pub const FORMAT: u32 = 1;

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for step in &self.steps {
            match step.status {
                StepStatus::Changes => {}
                StepStatus::Satisfied => s.satisfied += 1,
                StepStatus::Read => s.read += 1,
                StepStatus::Skipped => s.skipped += 1,
                StepStatus::Held => s.held += 1,
                StepStatus::Failed => s.failed += 1,
            }
            for c in &step.changes {
                s.changes += 1;
                match c.kind {
                    ChangeKind::Create => s.create += 1,
                    ChangeKind::Update => s.update += 1,
                    ChangeKind::Delete => s.delete += 1,
                }
            }
        }
        s
    }
}

/// Top-level fields of two observations that differ, for stale-plan messages.
pub fn moved_fields(before: &Value, now: &Value) -> Vec<String> {
    match (before, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<String> = a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .map(|k| {
                    format!(
                        "{k}: {} → {}",
                        short(a.get(&k).unwrap_or(&Value::Null)),
                        short(b.get(&k).unwrap_or(&Value::Null))
                    )
                })
                .collect()
        }
        _ if before != now => vec![format!("{} → {}", short(before), short(now))],
        _ => vec![],
    }
}

/// A value for humans: `(none)` for absent, JSON otherwise.
pub fn short(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn change_kind_follows_presence() {
        assert_eq!(
            Change::new("t", "a", json!(null), json!(0), "").kind,
            ChangeKind::Create
        );
        assert_eq!(
            Change::new("t", "a", json!(5), json!(null), "").kind,
            ChangeKind::Delete
        );
        assert_eq!(
            Change::new("t", "a", json!(5), json!(0), "").kind,
            ChangeKind::Update
        );
    }

    #[test]
    fn moved_fields_names_what_changed() {
        let a = json!({"reserved_concurrency": null, "x": 1});
        let b = json!({"reserved_concurrency": 7, "x": 1});
        assert_eq!(
            moved_fields(&a, &b),
            vec!["reserved_concurrency: (none) → 7"]
        );
    }
}
