//! Baselines in a drill: every scenario function's known-good state, taken
//! after setup and before the attack (`take`), what `recover
//! --to-baseline` did with it (`Recovery`), and the `recovered_to_baseline`
//! check (`check`), which captures the function again and compares.
//!
//! The store is a directory in the run's own output directory, and its
//! key is that directory's `baseline.key`, made for this run: a drill
//! never reads the user's `FIREBREAK_BASELINE_KEY`, and hashes it made
//! compare only within the run.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::lab::Lab;
use super::names::Namespace;
use super::setup::World;
use super::DrillError;
use crate::aws::{Aws, AwsSettings};
use crate::baseline::capture::{capture, Scope};
use crate::baseline::{drift, BaselineStore, Drift, DriftKind, EnvKey};

/// The run's baselines, one per scenario function.
pub struct Baselines {
    pub store: BaselineStore,
    pub key: EnvKey,
    /// Logical function name → its baseline's physical name and time.
    pub taken: BTreeMap<String, Taken>,
}

#[derive(Debug, Clone)]
pub struct Taken {
    pub function: String,
    /// RFC 3339 with milliseconds: before the attack, so recovery (the
    /// newest baseline before the incident started) picks exactly this one.
    pub taken_at: String,
}

impl Baselines {
    /// The physical names of the baselined functions.
    pub fn functions(&self) -> Vec<String> {
        self.taken.values().map(|t| t.function.clone()).collect()
    }
}

/// Firebreak's clients on the drill's account with the dry-run guard on:
/// taking a baseline and checking against it can only read.
fn reader(lab: &Lab, region: &str) -> Aws {
    let settings = AwsSettings {
        region: Some(region.to_string()),
        profile: None,
        endpoint_url: lab.sdk.endpoint_url().map(str::to_string),
        dry_run: true,
        quotas: None,
    };
    Aws::from_sdk_config(&lab.sdk, region.to_string(), &settings)
}

/// What setup made that a baseline records besides the function: every
/// setup user, so that a key the attacker mints on one is drift.
fn scope(w: &World) -> Scope {
    Scope {
        deploy_users: w.users.values().cloned().collect(),
    }
}

/// Takes a baseline of every scenario function into `run_dir/baselines`,
/// as `firebreak baseline --target F --store DIR --deploy-user U` would.
pub async fn take(
    lab: &Lab,
    ns: &Namespace,
    w: &World,
    run_dir: &Path,
) -> Result<Baselines, DrillError> {
    let dir = run_dir.join("baselines");
    let fail = |what: String| {
        move |e: crate::baseline::BaselineError| {
            DrillError::aws("baseline", what, format!("{e} ({})", e.hint()))
        }
    };
    let key = EnvKey::load_or_create(&dir).map_err(fail(dir.display().to_string()))?;
    let store = BaselineStore::Dir(dir);
    let aws = reader(lab, &ns.region);
    let scope = scope(w);
    let mut taken = BTreeMap::new();
    for (logical, f) in &w.functions {
        let mut b = capture(&aws, &ns.account, &f.name, &key, &scope)
            .await
            .map_err(fail(format!("capture {}", f.name)))?;
        store
            .keep_packages(&aws, &mut b)
            .await
            .map_err(fail(format!("keep the code of {}", f.name)))?;
        store
            .put(&aws, &b)
            .await
            .map_err(fail(format!("store the baseline of {}", f.name)))?;
        taken.insert(
            logical.clone(),
            Taken {
                function: f.name.clone(),
                taken_at: b.taken_at,
            },
        );
    }
    Ok(Baselines { store, key, taken })
}

/// What `recover --to-baseline` reported, kept to explain a failed check
/// (never to pass one: the check reads AWS).
#[derive(Debug, Default)]
pub struct Recovery {
    /// The functions it restored (physical names).
    pub functions: Vec<String>,
    /// Why it could not run at all.
    pub error: Option<String>,
    /// (function, item id, why) of what it held for a human or failed.
    pub left: Vec<(String, String, String)>,
    /// Why containment was not lifted.
    pub withheld: Option<String>,
}

impl Recovery {
    pub fn from_report(
        functions: Vec<String>,
        r: &crate::engine::recover_baseline::BaselineRecoverReport,
    ) -> Self {
        use crate::engine::recover_baseline::BaselineItemStatus;
        let mut left: Vec<(String, String, String)> = r
            .items()
            .filter(|i| i.status == BaselineItemStatus::Held)
            .map(|i| {
                (
                    i.function.clone(),
                    i.id.clone(),
                    format!("held: {}", i.reason.clone().unwrap_or_default()),
                )
            })
            .collect();
        for o in r.outcomes.iter().filter(|o| !o.ok) {
            let function = r
                .items()
                .find(|i| i.id == o.id)
                .map(|i| i.function.clone())
                .unwrap_or_default();
            left.push((function, o.id.clone(), format!("failed: {}", o.detail)));
        }
        for o in r.lift.outcomes.iter().filter(|o| !o.ok) {
            left.push((
                String::new(),
                o.id.clone(),
                format!("lifting containment failed: {}", o.detail),
            ));
        }
        Self {
            functions,
            error: None,
            left,
            withheld: r.lift.withheld.clone(),
        }
    }
}

/// A value as a short phrase: `absent`, a string as is, else compact JSON.
fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "absent".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

fn describe(d: &Drift) -> String {
    format!(
        "{} (baseline: {}; now: {})",
        d.id(),
        short(&d.baseline),
        short(&d.current)
    )
}

/// Why the drift is there, from what recovery said about this function.
fn why(function: &str, recovery: Option<&Recovery>, drift: &[Drift]) -> String {
    let Some(r) = recovery else {
        return "checked before recovery: `recover --to-baseline` runs only in the `recovered` phase; move this check to `expect.recovered`".into();
    };
    if let Some(e) = &r.error {
        return format!("`firebreak recover --to-baseline` did not run to the end: {e}");
    }
    if !r.functions.iter().any(|f| f == function) {
        return format!(
            "`firebreak recover --to-baseline` did not restore `{function}`: the incident's journal names only {} (its containment never touched this function); a responder must name it with `--target`",
            if r.functions.is_empty() { "no function".to_string() } else { r.functions.join(", ") }
        );
    }
    let mut parts: Vec<String> = r
        .left
        .iter()
        .filter(|(f, _, _)| f == function || f.is_empty())
        .map(|(_, id, why)| format!("`recover --to-baseline` {why} (`{id}`)"))
        .collect();
    if parts.is_empty() {
        use crate::action::iam::quarantine_role::{DENY_POLICY, REVOKE_POLICY};
        let ours = drift.iter().any(|d| {
            d.kind == DriftKind::RoleInline && (d.field == DENY_POLICY || d.field == REVOKE_POLICY)
        });
        parts.push(if ours {
            "firebreak's own containment is still in place: `recover --to-baseline` did not lift it".into()
        } else {
            "`recover --to-baseline` reported nothing left for this function, yet AWS differs: it has no operation for these items, or something changed them after it".into()
        });
    }
    if let Some(w) = &r.withheld {
        parts.push(format!("so {w}"));
    }
    parts.join("; ")
}

/// `recovered_to_baseline`: the function captured again, now, compared
/// with the baseline read back from the store; passes only when no
/// blocking drift is left (versions published since stay as evidence).
pub async fn check(
    lab: &Lab,
    ns: &Namespace,
    baselines: &Baselines,
    logical: &str,
    recovery: Option<&Recovery>,
) -> Result<String, (String, String)> {
    let Some(t) = baselines.taken.get(logical) else {
        return Err((
            format!("no baseline of `{logical}` was taken"),
            "the drill takes a baseline of every setup function before the attack; this one is not a setup function".into(),
        ));
    };
    let aws = reader(lab, &ns.region);
    let unread = |what: &str, e: crate::baseline::BaselineError| {
        (
            format!("{what}: {e}"),
            format!("the check could not read it ({})", e.hint()),
        )
    };
    let base = baselines
        .store
        .get(&aws, &ns.account, &ns.region, &t.function, &t.taken_at)
        .await
        .map_err(|e| unread("reading the baseline back", e))?;
    let scope = Scope {
        deploy_users: base.deploy_users.keys().cloned().collect(),
    };
    let now = capture(&aws, &ns.account, &t.function, &baselines.key, &scope)
        .await
        .map_err(|e| unread("capturing the function now", e))?;
    let all = drift(&base, &now);
    let kept = all.iter().filter(|d| !d.blocking()).count();
    let blocking: Vec<Drift> = all.into_iter().filter(Drift::blocking).collect();
    if blocking.is_empty() {
        return Ok(format!(
            "a fresh capture has no drift from the baseline taken before the attack{}",
            match kept {
                0 => String::new(),
                n => format!(" ({n} version(s) published since kept as evidence)"),
            }
        ));
    }
    let observed = format!(
        "{} item(s) differ from the baseline: {}",
        blocking.len(),
        blocking.iter().map(describe).collect::<Vec<_>>().join("; ")
    );
    Err((observed, why(&t.function, recovery, &blocking)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(kind: DriftKind, field: &str) -> Drift {
        Drift {
            kind,
            resource: "api".into(),
            field: field.into(),
            baseline: Value::Null,
            current: serde_json::json!("x"),
        }
    }

    #[test]
    fn a_failure_names_what_recovery_held_and_why_containment_stays() {
        let r = Recovery {
            functions: vec!["api".into()],
            left: vec![(
                "api".into(),
                "configuration:api:environment".into(),
                "held: no published version holds the baseline's environment values".into(),
            )],
            withheld: Some("containment kept: drift from the baseline remains".into()),
            ..Default::default()
        };
        let why = why(
            "api",
            Some(&r),
            &[d(
                DriftKind::Configuration,
                "environment.AWS_LAMBDA_EXEC_WRAPPER",
            )],
        );
        assert_eq!(
            why,
            "`recover --to-baseline` held: no published version holds the baseline's environment values (`configuration:api:environment`); so containment kept: drift from the baseline remains"
        );
    }

    #[test]
    fn a_function_recovery_did_not_cover_is_named() {
        let r = Recovery {
            functions: vec!["api".into()],
            ..Default::default()
        };
        let worker = why("worker", Some(&r), &[d(DriftKind::Tag, "t")]);
        assert!(worker.contains("did not restore `worker`"), "{worker}");
        assert!(worker.contains("--target"), "{worker}");
        assert!(why("api", None, &[]).contains("expect.recovered"));
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("x".repeat(200));
        assert_eq!(short(&long).chars().count(), 81);
        assert_eq!(short(&Value::Null), "absent");
        assert_eq!(short(&serde_json::json!({"a": 1})), r#"{"a":1}"#);
    }
}
