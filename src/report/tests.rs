//! The report model from real trails, written the way the engine writes
//! them (through `Incident` and its audit log) into a temporary state
//! directory.

use serde_json::{json, Value};

use super::*;
use crate::aws::Caller;
use crate::state::{AuditEvent, Incident, LocalStore};

const FN: &str = "arn:aws:lambda:us-east-1:111122223333:function:pay";
const DB: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf";
const API: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/api-GhIjKl";

/// One run's records: `(event, step, data)`.
type Run<'a> = (&'a str, Vec<(AuditEvent, Option<&'a str>, Value)>);

fn trail(dir: &std::path::Path, runs: &[Run<'_>]) -> IncidentReport {
    let id = IncidentId::parse("INC-T").unwrap();
    for (run, records) in runs {
        let mut incident = Incident::open(dir, &id, run, "test").unwrap();
        incident.audit.caller = Some(Caller {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/oncall".into(),
        });
        for (event, step, data) in records {
            incident
                .audit
                .append(event.as_str(), *step, data.clone())
                .unwrap();
        }
    }
    build(&LocalStore::new(dir), &id, "2026-01-01T00:00:00Z").unwrap()
}

fn change(target: &str, attribute: &str, before: Value, after: Value) -> Value {
    json!({"target": target, "attribute": attribute, "kind": "update",
        "before": before, "after": after, "reason": "contain"})
}

fn started(dry_run: bool) -> (AuditEvent, Option<&'static str>, Value) {
    (
        AuditEvent::RunStarted,
        None,
        json!({"command": if dry_run { "firebreak plan" } else { "firebreak run" },
            "dry_run": dry_run, "region": "us-east-1",
            "playbook": {"name": "lambda-compromise"}, "phases": ["identify", "contain"]}),
    )
}

fn finished(status: &str) -> (AuditEvent, Option<&'static str>, Value) {
    (
        AuditEvent::RunFinished,
        None,
        json!({"command": "firebreak run", "status": status}),
    )
}

fn observed(action: &str, target: &str, state: Value) -> Value {
    json!({"action": action, "target": target, "state": state})
}

#[test]
fn each_change_says_how_its_call_ended() {
    let dir = tempfile::tempdir().unwrap();
    let throttle = change(FN, "reserved_concurrency", json!(null), json!(0));
    let rot_db = change(DB, "AWSCURRENT", json!("v1"), json!("t1"));
    let rot_api = change(API, "AWSCURRENT", json!("v2"), json!("t2"));
    let tag = change(FN, "tag:firebreak:incident", json!(null), json!("INC-T"));
    let r = trail(
        dir.path(),
        &[
            (
                "run-1",
                vec![
                    started(false),
                    (
                        AuditEvent::Observation,
                        Some("rotate"),
                        observed("secrets.rotate", "2 secret(s)", json!({})),
                    ),
                    (AuditEvent::Applying, Some("throttle"), throttle.clone()),
                    (AuditEvent::Applied, Some("throttle"), throttle.clone()),
                    (AuditEvent::Applying, Some("rotate"), rot_db.clone()),
                    (
                        AuditEvent::OutcomeUnknown,
                        Some("rotate"),
                        json!({"change": rot_db, "message": "timed out"}),
                    ),
                    (AuditEvent::Applying, Some("rotate"), rot_api.clone()),
                    (
                        AuditEvent::Error,
                        Some("rotate"),
                        json!({"message": "refused", "hint": "h", "resource": API}),
                    ),
                    // Killed during the call: no outcome at all.
                    (AuditEvent::Applying, Some("mark"), tag.clone()),
                ],
            ),
            (
                "run-2",
                vec![
                    started(false),
                    (
                        AuditEvent::Confirmed,
                        Some("rotate"),
                        json!({"change": rot_db, "detail": "d"}),
                    ),
                    finished("ok"),
                ],
            ),
            (
                "run-3",
                vec![
                    (
                        AuditEvent::RunStarted,
                        None,
                        json!({"command": "firebreak recover", "dry_run": false}),
                    ),
                    (
                        AuditEvent::Applying,
                        Some("recover"),
                        change(FN, "reserved_concurrency", json!(0), json!(null)),
                    ),
                    (
                        AuditEvent::Applied,
                        Some("recover"),
                        change(FN, "reserved_concurrency", json!(0), json!(null)),
                    ),
                ],
            ),
        ],
    );
    let outcome = |target: &str, attribute: &str| -> Vec<(ChangeStatus, bool)> {
        r.changes
            .iter()
            .filter(|c| c.target == target && c.attribute == attribute)
            .map(|c| (c.status, c.settled_later))
            .collect()
    };
    assert_eq!(
        outcome(FN, "reserved_concurrency"),
        vec![
            (ChangeStatus::Applied, false),
            (ChangeStatus::Restored, false)
        ]
    );
    assert_eq!(
        outcome(DB, "AWSCURRENT"),
        vec![
            (ChangeStatus::InDoubt, true),
            (ChangeStatus::Confirmed, false)
        ],
        "in doubt, then settled by the next run"
    );
    assert_eq!(
        outcome(API, "AWSCURRENT"),
        vec![(ChangeStatus::Failed, false)]
    );
    let killed = outcome(FN, "tag:firebreak:incident");
    assert_eq!(killed, vec![(ChangeStatus::InDoubt, false)]);
    // The rotation that landed is listed by name, the refused one is not.
    let rotated: Vec<&str> = r
        .secrets_rotated
        .iter()
        .map(|x| x.resource.as_str())
        .collect();
    assert_eq!(rotated, vec![DB]);
    assert_eq!(r.secrets_rotated[0].kind, "secret");
    // The killed tag is open until a run settles it; the settled one is not.
    let in_doubt: Vec<&str> = r
        .open_items
        .iter()
        .filter(|i| i.kind == OpenKind::InDoubt)
        .filter_map(|i| i.resource.as_deref())
        .collect();
    assert_eq!(in_doubt, vec![FN]);
    assert_eq!(r.status, Some(RunStatus::Ok), "the latest containing run");
    assert!(r.integrity.intact, "{:?}", r.integrity);
    assert_eq!(r.runs.len(), 3);
    assert!(r.runs[0].finished_at.is_none(), "run-1 was killed");
}

#[test]
fn what_is_left_comes_from_the_latest_containing_run() {
    let dir = tempfile::tempdir().unwrap();
    let decision = json!({"question": "role r is shared by 1 other function(s)", "affects": ["arn:f2"],
        "argument": "scope", "options": [{"value": "role", "effect": "deny all", "how": "--param scope=role"}]});
    let r = trail(
        dir.path(),
        &[
            (
                "run-1",
                vec![
                    started(false),
                    (
                        AuditEvent::Error,
                        Some("throttle"),
                        json!({"message": "AccessDenied", "hint": "grant it"}),
                    ),
                    finished("failed"),
                ],
            ),
            (
                "run-2",
                vec![
                    started(false),
                    (
                        AuditEvent::Held,
                        Some("quarantine-role"),
                        json!({"target": "arn:role", "decision": decision}),
                    ),
                    (
                        AuditEvent::Observation,
                        Some("find-secrets"),
                        observed(
                            "secrets.discover",
                            FN,
                            json!({
                        "secrets": [{"arn": DB, "from": ["policy p"]}],
                        "parameters": [], "plain_parameters": [{"name": "/cfg", "from": ["policy p"]}],
                        "plaintext_findings": [{"variable": "API_TOKEN", "why": "name suggests a secret"}]}),
                        ),
                    ),
                    (
                        AuditEvent::Observation,
                        Some("rotate-secrets"),
                        observed(
                            "secrets.rotate",
                            "1 secret(s)",
                            json!({
                        "secrets": [{"arn": DB, "status": "at_source"}]}),
                        ),
                    ),
                    (
                        AuditEvent::Verification,
                        Some("throttle"),
                        json!({"name": "invoke is throttled", "target": FN, "passed": false, "detail": "Invoke succeeded"}),
                    ),
                    finished("decision_pending"),
                ],
            ),
            // A later dry run changes nothing: it does not decide what is open.
            (
                "run-3",
                vec![
                    started(true),
                    (
                        AuditEvent::Error,
                        Some("x"),
                        json!({"message": "plan-only"}),
                    ),
                ],
            ),
        ],
    );
    let kinds: Vec<OpenKind> = r.open_items.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        vec![
            OpenKind::CheckFailed,
            OpenKind::Decision,
            OpenKind::RotateAtSource,
            OpenKind::PlaintextSecret
        ],
        "{:#?}",
        r.open_items
    );
    let at_source = &r.open_items[2];
    assert_eq!(at_source.resource.as_deref(), Some(DB));
    assert!(
        at_source.how.contains("where it is checked"),
        "{}",
        at_source.how
    );
    assert!(r.open_items[3].what.contains("API_TOKEN"));
    assert_eq!(r.decisions_pending.len(), 1);
    assert_eq!(
        r.decisions_pending[0].decision.options[0].how,
        "--param scope=role"
    );
    assert_eq!(r.status, Some(RunStatus::DecisionPending));
    let f = &r.findings[0];
    assert_eq!(f.function, FN);
    assert_eq!(f.secrets[0].resource, DB);
    assert_eq!(f.plain_parameters[0].resource, "/cfg");
    assert_eq!(f.plaintext_variables[0].variable, "API_TOKEN");
}

#[test]
fn evidence_names_each_artifact_once_with_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = |key: &str, listed: Value| {
        json!({"bucket": "ev", "key": key, "sha256": "m".repeat(64), "size": 10,
            "artifacts": 2, "function": "pay", "written": true, "listed": listed})
    };
    let a = json!({"name": "config/function.json", "key": "INC-T/1/r/pay/config/function.json", "size": 5, "sha256": "a".repeat(64)});
    let b = json!({"name": "code/inventory.json", "key": "INC-T/1/r/pay/code/inventory.json", "size": 7, "sha256": "b".repeat(64)});
    let r = trail(
        dir.path(),
        &[(
            "run-1",
            vec![
                started(false),
                (
                    AuditEvent::EvidenceManifest,
                    Some("preserve-config"),
                    manifest("INC-T/1/r/pay/manifest.json", json!([a])),
                ),
                (
                    AuditEvent::EvidenceManifest,
                    Some("preserve-code"),
                    manifest("INC-T/1/r/pay/manifest.2.json", json!([a, b])),
                ),
                (
                    AuditEvent::EvidenceAuditCopy,
                    None,
                    json!({"bucket": "ev", "key": "INC-T/1/r/audit/audit.000004.jsonl", "sha256": "c".repeat(64), "size": 9, "lines": 4}),
                ),
                finished("ok"),
            ],
        )],
    );
    let keys: Vec<&str> = r
        .evidence
        .artifacts
        .iter()
        .map(|x| x.key.as_str())
        .collect();
    assert_eq!(
        keys,
        vec![
            "INC-T/1/r/pay/code/inventory.json",
            "INC-T/1/r/pay/config/function.json"
        ]
    );
    assert_eq!(r.evidence.artifacts[1].sha256, "a".repeat(64));
    assert_eq!(r.evidence.manifests.len(), 2);
    assert_eq!(r.evidence.audit_copies[0].lines, 4);
    assert_eq!(r.evidence.manifests_without_listing, 0);
}

#[test]
fn an_unknown_incident_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let id = IncidentId::parse("INC-NONE").unwrap();
    let e = build(&LocalStore::new(dir.path()), &id, "t").unwrap_err();
    assert!(matches!(e, ReportError::UnknownIncident { .. }), "{e}");
    assert!(e.to_string().contains("INC-NONE"), "{e}");
    assert!(e.hint().contains("--state-dir"), "{}", e.hint());
}

#[test]
fn a_trail_that_does_not_verify_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let _ = trail(
        dir.path(),
        &[("run-1", vec![started(false), finished("ok")])],
    );
    let path = dir.path().join("incidents/INC-T/audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"ok\"", "\"failed\"")).unwrap();
    let id = IncidentId::parse("INC-T").unwrap();
    let r = build(&LocalStore::new(dir.path()), &id, "t").unwrap();
    assert!(!r.integrity.intact);
    assert_eq!(r.integrity.broken_line, Some(2));
}

#[test]
fn long_values_are_shown_briefly() {
    assert_eq!(brief(&json!(null)), "(none)");
    assert_eq!(brief(&json!({"key": "a/b.json"})), "s3 key a/b.json");
    assert_eq!(
        brief(&json!({"Version": "2012-10-17", "Statement": []})),
        "policy document (39 bytes)"
    );
    assert_eq!(
        brief(&json!({"bucket": "b", "artifacts": ["x", "y"]})),
        "manifest of 2 artifact(s)"
    );
    assert!(brief(&json!("x".repeat(500))).ends_with('…'));
}
