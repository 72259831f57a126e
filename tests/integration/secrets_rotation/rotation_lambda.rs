//! Recorded responses for what LocalStack cannot do: it accepts
//! RotateSecret but never runs the rotation Lambda (AWSPENDING stays
//! empty), and its Secrets Manager and SSM decrypt whatever state the KMS
//! key is in (checked: a disabled key, a key pending deletion and a key id
//! that does not exist all still decrypt; symmetric CreateKey even fails
//! there). So a rotation Lambda that fails or never finishes, and a KMS key
//! the caller cannot use, are played by a small in-memory Secrets Manager
//! and SSM below, answering as AWS does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::operation::rotate_secret::RotateSecretOutput;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use firebreak::action::secrets::rotation_token;
use firebreak::aws::{Aws, CallRecorder, Caller, Guard};
use firebreak::engine::{RunReport, RunStatus, Session};
use firebreak::playbook::{self, Phase, Playbook};
use firebreak::state::{Incident, IncidentId};
use serde_json::{Map, Value};

const ACCOUNT: &str = "111122223333";
const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf";
const OLD: &str = "00000000-0000-0000-0000-000000000001";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:111122223333:function:rotate-db";

fn described(stages: &[(&str, &str)]) -> DescribeSecretOutput {
    let mut b = DescribeSecretOutput::builder()
        .arn(ARN)
        .name("app/db")
        .rotation_enabled(true)
        .rotation_lambda_arn(LAMBDA);
    for (id, stage) in stages {
        b = b.version_ids_to_stages(*id, vec![stage.to_string()]);
    }
    b.build()
}

fn guard() -> Guard {
    Guard {
        dry_run: false,
        recorder: Arc::new(CallRecorder::default()),
    }
}

/// A session over recorded Secrets Manager (and SSM) clients, with the
/// incident's state under `dir`.
fn session(
    dir: &Path,
    run: &str,
    guard: &Guard,
    sm: aws_sdk_secretsmanager::Client,
    ssm: Option<aws_sdk_ssm::Client>,
) -> Session {
    let sts_rule = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        GetCallerIdentityOutput::builder()
            .account(ACCOUNT)
            .arn(format!("arn:aws:iam::{ACCOUNT}:user/oncall"))
            .build()
    });
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&sts_rule]);
    let none: [&Rule; 0] = [];
    let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, &none);
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, &none);
    let mut aws = Aws::from_clients(lambda.clone(), lambda, sts, iam, "us-east-1", guard)
        .with_secretsmanager(sm);
    if let Some(ssm) = ssm {
        aws = aws.with_ssm(ssm);
    }
    let incident = Incident::open(dir, &IncidentId::parse("INC-RL").expect("id"), run, "test")
        .expect("incident");
    let caller = Caller {
        account: ACCOUNT.into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/oncall"),
    };
    Session::new(aws, caller, incident)
}

fn parse(steps: &str) -> Playbook {
    let text =
        format!("apiVersion: firebreak/v1\nkind: Playbook\nname: rl\nphases:\n  contain:\n{steps}");
    playbook::load::parse(Path::new("rl.yaml"), text).expect("valid playbook")
}

async fn plan_and_apply(s: &Session, pb: &Playbook) -> RunReport {
    let plan = s
        .build_plan(pb, &Map::new(), &[Phase::Contain])
        .await
        .expect("plan");
    s.apply_plan(&plan, pb).await.expect("apply")
}

#[tokio::test]
async fn rotate_secret_runs_once_and_waits_for_the_new_awscurrent() {
    let dir = tempfile::tempdir().unwrap();
    let token = rotation_token("INC-RL", ARN);
    let t1 = token.clone();
    let t2 = token.clone();
    let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret)
        .sequence()
        // plan, the engine's re-observation, apply's own check
        .output(|| described(&[(OLD, "AWSCURRENT")]))
        .times(3)
        // the Lambda is still at work
        .output(move || described(&[(OLD, "AWSCURRENT"), (&t1, "AWSPENDING")]))
        .output(move || described(&[(&t2, "AWSCURRENT"), (OLD, "AWSPREVIOUS")]))
        .repeatedly()
        .build();
    let t3 = token.clone();
    let rotate = mock!(aws_sdk_secretsmanager::Client::rotate_secret)
        .match_requests(move |r| {
            r.client_request_token() == Some(t3.as_str()) && r.rotate_immediately() == Some(true)
        })
        .then_output(|| RotateSecretOutput::builder().arn(ARN).build());
    let guard = guard();
    let g = guard.clone();
    let sm = mock_client!(
        aws_sdk_secretsmanager,
        RuleMode::MatchAny,
        &[&describe, &rotate],
        move |b| b.interceptor(g.clone())
    );
    let s = session(dir.path(), "run-rl", &guard, sm, None);
    let pb = parse(&format!(
        "    - id: rotate\n      action: secrets.rotate\n      with: {{secrets: [\"{ARN}\"], wait_seconds: 30}}\n"
    ));
    let plan = s
        .build_plan(&pb, &Map::new(), &[Phase::Contain])
        .await
        .unwrap();
    let change = &plan.steps[0].changes[0];
    assert_eq!(change.before, serde_json::json!(OLD));
    assert_eq!(
        change.after,
        serde_json::json!(token),
        "the new version id is known before the call"
    );
    let report = s.apply_plan(&plan, &pb).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.outcomes.len(), 1);
    assert_eq!(
        rotate.num_calls(),
        1,
        "RotateSecret once, with the incident's token"
    );
    assert!(describe.num_calls() >= 5, "waited for AWSCURRENT");
}

mod fake;

use fake::{Fake, LambdaBehaviour};

/// Targets of the journal's records of `event` (`applied`, `failed`,
/// `intent`).
fn journaled(dir: &Path, event: &str) -> Vec<String> {
    lines(&dir.join("incidents/INC-RL/journal.jsonl"))
        .into_iter()
        .filter(|r| r["event"] == event)
        .filter_map(|r| r["change"]["target"].as_str().map(str::to_string))
        .collect()
}

/// The audit records of `event`: the change target (`applied`,
/// `outcome_unknown`) or the failed resource (`error`).
fn audited(dir: &Path, event: &str) -> Vec<String> {
    lines(&dir.join("incidents/INC-RL/audit.jsonl"))
        .into_iter()
        .filter(|r| r["event"] == event)
        .filter_map(|r| {
            let d = &r["data"];
            d["target"]
                .as_str()
                .or(d["change"]["target"].as_str())
                .or(d["resource"].as_str())
                .map(str::to_string)
        })
        .collect()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// The failures of a report by resource: (message, hint).
fn failures(report: &RunReport) -> BTreeMap<String, (String, String)> {
    report
        .failures
        .iter()
        .map(|f| {
            (
                f.resource.clone().unwrap_or_else(|| "(step)".into()),
                (f.message.clone(), f.hint.clone()),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_kms_key_the_caller_cannot_use_is_reported_per_secret_and_the_others_are_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let locked = fake.secret("app/locked", None, true);
    let ok = fake.secret("app/ok", None, false);
    let locked_p = fake.parameter("/app/locked", true);
    let ok_p = fake.parameter("/app/ok", false);
    let guard = guard();
    let s = session(
        dir.path(),
        "run-1",
        &guard,
        fake.secretsmanager(&guard),
        Some(fake.ssm(&guard)),
    );
    let pb = parse(&format!(
        "    - id: rotate-secrets\n      action: secrets.rotate\n      on_error: continue\n      with: {{secrets: [\"{locked}\", \"{ok}\"], generate: true}}\n    - id: rotate-parameters\n      action: ssm.rotate_parameter\n      with: {{parameters: [\"/app/locked\", \"/app/ok\"], generate: true}}\n"
    ));
    let report = plan_and_apply(&s, &pb).await;

    let f = failures(&report);
    assert_eq!(f.len(), 2, "{f:#?}");
    for resource in [&locked, &locked_p] {
        let (message, _) = &f[resource];
        assert!(message.contains(resource.as_str()), "{message}");
        assert!(
            message.contains("its KMS key cannot be used by this caller"),
            "{message}"
        );
    }
    assert!(
        f[&locked].0.contains("DecryptionFailure"),
        "{:?}",
        f[&locked]
    );
    assert!(
        f[&locked_p].0.contains("InvalidKeyId"),
        "{:?}",
        f[&locked_p]
    );
    assert_eq!(report.status(), RunStatus::Failed);

    // The others were rotated, the locked ones left alone.
    assert_eq!(
        fake.current(&ok),
        Some(rotation_token("INC-RL", &ok)),
        "new AWSCURRENT"
    );
    assert_eq!(fake.previous(&ok).as_deref(), Some(fake::FIRST_VERSION));
    assert_eq!(fake.current(&locked).as_deref(), Some(fake::FIRST_VERSION));
    assert_eq!(fake.parameter_version(&ok_p), 2);
    assert_eq!(fake.parameter_version(&locked_p), 1);
    assert_eq!(fake.writes(), 2, "one PutSecretValue, one PutParameter");

    assert_eq!(
        journaled(dir.path(), "applied"),
        vec![ok.clone(), ok_p.clone()]
    );
    assert_eq!(
        journaled(dir.path(), "failed"),
        vec![locked.clone(), locked_p.clone()]
    );
    assert_eq!(audited(dir.path(), "applied"), vec![ok, ok_p]);
    assert_eq!(audited(dir.path(), "error"), vec![locked, locked_p]);
}

#[tokio::test]
async fn a_rotation_lambda_that_fails_or_times_out_is_reported_per_secret() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    // In this order: neither the refusal nor the timeout may keep the last
    // secret from being rotated.
    let broken = fake.secret("app/broken", Some(LambdaBehaviour::CannotBeInvoked), false);
    let slow = fake.secret("app/slow", Some(LambdaBehaviour::NeverFinishes), false);
    let db = fake.secret("app/db", Some(LambdaBehaviour::Finishes), false);
    let pb = parse(&format!(
        "    - id: rotate\n      action: secrets.rotate\n      with: {{secrets: [\"{broken}\", \"{slow}\", \"{db}\"], wait_seconds: 1}}\n"
    ));
    let guard = guard();
    let s = session(
        dir.path(),
        "run-1",
        &guard,
        fake.secretsmanager(&guard),
        None,
    );
    let report = plan_and_apply(&s, &pb).await;

    let f = failures(&report);
    assert_eq!(f.len(), 2, "{f:#?}");
    let (message, hint) = &f[&broken];
    assert!(message.contains(broken.as_str()), "{message}");
    assert!(
        message.contains("cannot invoke the specified Lambda"),
        "{message}"
    );
    assert!(hint.contains("rotation Lambda"), "{hint}");
    let (message, hint) = &f[&slow];
    assert!(message.contains(slow.as_str()), "{message}");
    assert!(
        message.contains("did not make version") && message.contains("within 1 s"),
        "{message}"
    );
    assert!(hint.contains("run again to keep waiting"), "{hint}");
    assert_eq!(report.status(), RunStatus::Failed);

    let token = |arn: &str| rotation_token("INC-RL", arn);
    assert_eq!(fake.current(&db), Some(token(&db)), "db rotated");
    assert_eq!(fake.current(&slow).as_deref(), Some(fake::FIRST_VERSION));
    assert_eq!(fake.pending(&slow), Some(token(&slow)), "started, not done");
    assert_eq!(fake.current(&broken).as_deref(), Some(fake::FIRST_VERSION));
    assert_eq!(fake.rotations(), 3, "RotateSecret once per secret");

    // The journal: db applied, broken failed, slow in doubt (intent only).
    assert_eq!(journaled(dir.path(), "applied"), vec![db.clone()]);
    assert_eq!(journaled(dir.path(), "failed"), vec![broken.clone()]);
    assert_eq!(
        journaled(dir.path(), "intent"),
        vec![broken.clone(), slow.clone(), db.clone()]
    );
    assert_eq!(audited(dir.path(), "applied"), vec![db.clone()]);
    assert_eq!(audited(dir.path(), "outcome_unknown"), vec![slow.clone()]);
    assert_eq!(
        audited(dir.path(), "error"),
        vec![broken.clone(), slow.clone()]
    );
    drop(s);

    // The Lambda finishes after the run gave up; the next run confirms the
    // rotation without starting it again.
    fake.finish_pending(&slow);
    let s = session(
        dir.path(),
        "run-2",
        &guard,
        fake.secretsmanager(&guard),
        None,
    );
    let report = plan_and_apply(&s, &pb).await;
    assert_eq!(failures(&report).keys().collect::<Vec<_>>(), vec![&broken]);
    let confirmed: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|o| o.outcome == firebreak::engine::Outcome::Confirmed)
        .map(|o| o.change.target.as_str())
        .collect();
    assert_eq!(confirmed, vec![slow.as_str()]);
    assert_eq!(fake.rotations(), 4, "only the broken one is tried again");
    assert_eq!(journaled(dir.path(), "applied"), vec![db, slow]);
}
