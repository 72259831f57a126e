//! Issue 11, bad input: secrets that cannot be rotated are each reported
//! with their own reason, every other secret is still rotated, and the
//! journal and the audit trail record exactly the rotations that happened.
//!
//! Against LocalStack: a secret scheduled for deletion, a rotation already
//! in progress (an AWSPENDING version put by someone else), a parameter
//! that is not SecureString, and references to a secret and a parameter
//! that do not exist. A KMS key the caller cannot use and a failing or
//! slow rotation Lambda need recorded responses (LocalStack's Secrets
//! Manager and SSM decrypt whatever the key's state, and never run a
//! rotation Lambda): `secrets_rotation::rotation_lambda`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::types::ParameterType;
use serde_json::Value;

use crate::common::TestContext;
use crate::secrets_rotation::{
    current_and_previous, parameter, parameter_version, playbook, secret, with_params,
};

const GOOD_TOKEN: &str = "seeded-good-token-41c7e2";
const GOOD_DB_PW: &str = "seeded-good-db-pw-93ab10";
const GOOD_PARAM: &str = "seeded-good-param-6d2f88";
const DELETED: &str = "seeded-deleted-0b5e7c";
const PENDING_OLD: &str = "seeded-pending-old-27d9aa";
const PENDING_NEW: &str = "seeded-pending-new-c3f104";
const PLAIN: &str = "seeded-plain-config-8e61d3";

struct Mixed {
    function: String,
    good_secrets: BTreeSet<String>,
    good_parameter: String,
    deleted: String,
    pending: String,
    missing_secret: String,
    plain: String,
    missing_parameter: String,
}

/// Good and bad secrets side by side, referenced the ways a function and a
/// playbook reference them: by ARN and by name in the environment, and in
/// the playbook's `secrets` / `parameters` lists.
async fn seed(cx: &TestContext) -> Mixed {
    let f = cx.unique("mixed");
    let sm = cx.secretsmanager().await;
    let token = secret(cx, &format!("{f}/token"), GOOD_TOKEN).await;
    let db = secret(
        cx,
        &format!("{f}/db"),
        &format!(r#"{{"username":"app","password":"{GOOD_DB_PW}"}}"#),
    )
    .await;
    let deleted = secret(cx, &format!("{f}/deleted"), DELETED).await;
    sm.delete_secret()
        .secret_id(&deleted)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("schedule deletion");
    let pending = secret(cx, &format!("{f}/pending"), PENDING_OLD).await;
    sm.put_secret_value()
        .secret_id(&pending)
        .secret_string(PENDING_NEW)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a rotation in progress");
    let good_parameter = format!("/{f}/signing");
    parameter(cx, &good_parameter, GOOD_PARAM).await;
    let plain = format!("/{f}/plain");
    cx.ssm()
        .await
        .put_parameter()
        .name(&plain)
        .value(PLAIN)
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("plain parameter");

    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role_arn = cx
        .iam
        .create_role()
        .role_name(format!("{f}-role"))
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("role")
        .role()
        .expect("role")
        .arn()
        .to_string();
    cx.create_function_full(
        &f,
        &role_arn,
        &[
            ("DB_SECRET_ARN", db.as_str()),
            ("TOKEN_SECRET", &format!("{f}/token")),
            // Not in ListSecrets any more; the ARN is kept as a reference.
            ("OLD_SECRET_ARN", deleted.as_str()),
            ("SIGNING_PARAM", good_parameter.as_str()),
        ],
    )
    .await;
    Mixed {
        good_secrets: [token, db].into_iter().collect(),
        good_parameter,
        deleted,
        pending,
        missing_secret: format!("{f}/missing"),
        plain,
        missing_parameter: format!("/{f}/missing"),
        function: f,
    }
}

/// The run's errors of `step`, by the resource each one is about.
fn errors_of(run: &Value, step: &str) -> BTreeMap<String, String> {
    run["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["step"] == step)
        .map(|e| {
            (
                e["resource"].as_str().unwrap_or("(step)").to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn lines(path: std::path::PathBuf) -> Vec<Value> {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Targets of the journal records of `event` in the rotation steps.
fn journaled(cx: &TestContext, inc: &str, event: &str) -> BTreeSet<String> {
    lines(cx.incident_dir(inc).join("journal.jsonl"))
        .iter()
        .filter(|r| r["event"] == event)
        .filter(|r| r["step"] == "rotate-secrets" || r["step"] == "rotate-parameters")
        .filter_map(|r| r["change"]["target"].as_str().map(str::to_string))
        .collect()
}

/// What the audit trail says about the rotation steps: the targets of
/// `applied` records and the resources of `error` records.
fn audited(cx: &TestContext, inc: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let records = cx.audit(inc);
    let rotation = |r: &&Value| r["step"] == "rotate-secrets" || r["step"] == "rotate-parameters";
    let applied = records
        .iter()
        .filter(rotation)
        .filter(|r| r["event"] == "applied")
        .filter_map(|r| r["data"]["target"].as_str().map(str::to_string))
        .collect();
    let errors = records
        .iter()
        .filter(rotation)
        .filter(|r| r["event"] == "error")
        .filter_map(|r| r["data"]["resource"].as_str().map(str::to_string))
        .collect();
    (applied, errors)
}

async fn parameter_arn(cx: &TestContext, name: &str) -> String {
    cx.ssm()
        .await
        .get_parameter()
        .name(name)
        .send()
        .await
        .expect("parameter")
        .parameter()
        .and_then(|p| p.arn())
        .expect("arn")
        .to_string()
}

#[tokio::test]
async fn each_bad_secret_is_reported_with_its_reason_and_every_good_one_is_rotated() {
    let cx = TestContext::new().await;
    let m = seed(&cx).await;
    let mut before = BTreeMap::new();
    for arn in m.good_secrets.iter().chain([&m.deleted, &m.pending]) {
        before.insert(arn.clone(), current_and_previous(&cx, arn).await);
    }
    let mut params = vec![
        format!("function={}", m.function),
        "generate_secrets=true".to_string(),
        // The pending secret by name, as a responder would list it.
        format!("secrets={}/pending,{}", m.function, m.missing_secret),
        format!("parameters={},{}", m.plain, m.missing_parameter),
    ];
    params.extend(cx.evidence_params().await);
    let pb = playbook();
    let inc = "INC-BAD";
    let run = cx.run(&with_params(
        &["--output", "json", "run", &pb, "--incident", inc, "--yes"],
        &params,
    ));
    // A harm-stopping step (a rotation) failed: exit 1, status `failed`.
    run.expect_code(1);
    let v = run.json();
    assert_eq!(v["status"], "failed", "{v}");

    // Each bad one, with its own reason; nothing else failed.
    let plain_arn = parameter_arn(&cx, &m.plain).await;
    let secrets = errors_of(&v, "rotate-secrets");
    let parameters = errors_of(&v, "rotate-parameters");
    let expected: [(&BTreeMap<String, String>, &str, &str); 5] = [
        (&secrets, &m.deleted, "scheduled for deletion"),
        (&secrets, &m.pending, "a rotation is already in progress"),
        (&secrets, &m.missing_secret, "does not exist"),
        (
            &parameters,
            &plain_arn,
            "is a String parameter, not SecureString",
        ),
        (&parameters, &m.missing_parameter, "does not exist"),
    ];
    for (errors, resource, why) in expected {
        let message = errors
            .get(resource)
            .unwrap_or_else(|| panic!("no error for {resource}: {:#}", v["errors"]));
        assert!(message.contains(why), "{resource}: {message}");
        assert!(
            message.contains(resource),
            "the message names it: {message}"
        );
    }
    assert_eq!(
        secrets.len() + parameters.len(),
        5,
        "{secrets:#?} {parameters:#?}"
    );
    assert_eq!(
        v["errors"].as_array().map(Vec::len),
        Some(5),
        "only the bad secrets failed: {}",
        v["errors"]
    );

    // AWS read back: every good one rotated, every bad one untouched.
    for arn in &m.good_secrets {
        let (old, _) = &before[arn];
        let (cur, prev) = current_and_previous(&cx, arn).await;
        assert_ne!(&cur, old, "{arn} rotated");
        assert_eq!(
            prev.as_ref(),
            Some(old),
            "{arn}: the old version is AWSPREVIOUS"
        );
    }
    for arn in [&m.deleted, &m.pending] {
        assert_eq!(
            current_and_previous(&cx, arn).await,
            before[arn],
            "{arn} untouched"
        );
    }
    assert_eq!(parameter_version(&cx, &m.good_parameter).await.0, 2);
    assert_eq!(parameter_version(&cx, &m.plain).await, (1, PLAIN.into()));

    // The journal and the audit trail: rotations for exactly the good ones,
    // a failure for exactly the bad ones.
    let good_parameter_arn = parameter_arn(&cx, &m.good_parameter).await;
    let mut good: BTreeSet<String> = m.good_secrets.clone();
    good.insert(good_parameter_arn);
    let bad: BTreeSet<String> = [
        m.deleted.clone(),
        m.pending.clone(),
        m.missing_secret.clone(),
        plain_arn.clone(),
        m.missing_parameter.clone(),
    ]
    .into_iter()
    .collect();
    assert_eq!(journaled(&cx, inc, "applied"), good);
    assert_eq!(journaled(&cx, inc, "failed"), bad);
    let (applied, errors) = audited(&cx, inc);
    assert_eq!(applied, good, "audit `applied`");
    assert_eq!(errors, bad, "audit `error`");

    // Again, in text: the same bad ones fail (each named on stderr), nothing
    // is rotated twice.
    let again = cx.run(&with_params(
        &["run", &pb, "--incident", inc, "--yes"],
        &params,
    ));
    again.expect_code(1);
    for resource in &bad {
        assert!(
            again
                .stderr
                .contains(&format!("(ssm.rotate_parameter) on {resource}:"))
                || again
                    .stderr
                    .contains(&format!("(secrets.rotate) on {resource}:")),
            "{resource} named on stderr:\n{}",
            again.stderr
        );
    }
    assert_eq!(
        journaled(&cx, inc, "applied"),
        good,
        "nothing rotated twice"
    );
    assert_eq!(parameter_version(&cx, &m.good_parameter).await.0, 2);

    // No value anywhere in what the runs printed or recorded.
    let mut texts = vec![run.stdout, run.stderr, again.stdout, again.stderr];
    for file in ["journal.jsonl", "audit.jsonl"] {
        texts.push(std::fs::read_to_string(cx.incident_dir(inc).join(file)).expect("state"));
    }
    for value in [
        GOOD_TOKEN,
        GOOD_DB_PW,
        GOOD_PARAM,
        DELETED,
        PENDING_OLD,
        PENDING_NEW,
        PLAIN,
    ] {
        for (i, t) in texts.iter().enumerate() {
            assert!(!t.contains(value), "a seeded value leaked into #{i}");
        }
    }
}
