//! `firebreak report`: an incident's report from its audit trail, in
//! Markdown and JSON, after a real run against LocalStack: status, what is
//! left to do, decisions pending, secrets rotated (names only), findings,
//! changes with before → after, evidence with keys and hashes, timeline.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::TestContext;
use crate::secrets_rotation::{parameter, playbook, secret, with_params};

const DB_PASSWORD: &str = "seeded-report-db-pw-5c81e2";
const SHARED: &str = "seeded-report-shared-0d7a44";
const SIGNING: &str = "seeded-report-signing-93f1b6";
const PLAINTEXT: &str = "sk_live_51ReportQpLmZvT8kR2wYbN4";

struct Seeded {
    function: String,
    secrets: BTreeSet<String>,
    parameter: String,
    missing: String,
}

/// A function whose role another function shares (the quarantine waits
/// for a decision), reading a secret by ARN, one through its role, one
/// parameter, with a plaintext API key; the playbook also names a secret
/// that does not exist.
async fn seed(cx: &TestContext) -> Seeded {
    let f = cx.unique("rep");
    let db = secret(
        cx,
        &format!("{f}/db"),
        &format!(r#"{{"username":"app","password":"{DB_PASSWORD}"}}"#),
    )
    .await;
    let shared = secret(cx, &format!("{f}-shared/one"), SHARED).await;
    let signing = format!("/{f}/signing");
    parameter(cx, &signing, SIGNING).await;
    let role = format!("{f}-role");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role_arn = cx
        .iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("role")
        .role()
        .expect("role")
        .arn()
        .to_string();
    let a = &cx.account;
    cx.iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("read-shared")
        .policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:{a}:secret:{f}-shared/*"}}]}}"#
        ))
        .send()
        .await
        .expect("inline policy");
    cx.create_function_full(
        &f,
        &role_arn,
        &[
            ("DB_SECRET_ARN", db.as_str()),
            ("SIGNING_PARAM", signing.as_str()),
            ("STRIPE_API_KEY", PLAINTEXT),
        ],
    )
    .await;
    cx.create_function_with_role(&format!("{f}-sibling"), &role_arn)
        .await;
    Seeded {
        secrets: [db, shared].into_iter().collect(),
        parameter: signing,
        missing: format!("{f}/missing"),
        function: f,
    }
}

fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i[key].as_str())
        .collect()
}

fn snapshot(cx: &TestContext, name: &str, text: &str) {
    let text = text.replace(&cx.account, "[account]");
    insta::with_settings!({
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
        filters => vec![
            (r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)", "[time]"),
            (r"run-\d{8}T[\d.]+Z-\d+", "[run]"),
            (r"[0-9a-f]{64}", "[sha256]"),
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[version]"),
            // Secrets Manager's random suffix of a secret's ARN.
            (r"(secret:[\w/+=.@-]+)-[A-Za-z0-9]{6}\b", "$1-[suffix]"),
            // Object sizes follow bytes LocalStack returns (dates, ids).
            (r"\| \d+ \|\n", "| [bytes] |\n"),
            (r"\d+ bytes\)", "[bytes])"),
            // A trail line's number: the throttle, applied as soon as its
            // GetFunction is answered, lands among the plan's lines at a
            // place the timing decides.
            (r"\| \[time\] \| \d+ \|", "| [time] | [n] |"),
        ],
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[tokio::test]
async fn report_shows_an_incident_in_markdown_and_json_without_a_value() {
    let cx = TestContext::new().await;
    let s = seed(&cx).await;
    let mut params = vec![
        format!("function={}", s.function),
        "generate_secrets=true".to_string(),
        format!("secrets={}", s.missing),
    ];
    params.extend(cx.evidence_params().await);
    let pb = playbook();
    let inc = "INC-REP";
    let run = cx.run(&with_params(
        &["--output", "json", "run", &pb, "--incident", inc, "--yes"],
        &params,
    ));
    // The missing secret failed (a harm-stopping step): exit 1.
    run.expect_code(1);

    let md = cx.run(&["-vv", "report", "--incident", inc]);
    md.expect_code(0);
    let json = cx.run(&["-vv", "--output", "json", "report", "--incident", inc]);
    json.expect_code(0);
    let explicit = cx.run(&["report", "--incident", inc, "--format", "json"]);
    explicit.expect_code(0);
    let v = json.json();
    assert_eq!(v["kind"], "report");
    assert_eq!(v["summary"]["changes"], 0);
    assert_eq!(v["summary"]["intact"], true);
    assert_eq!(
        explicit.json()["report"]["changes"],
        v["report"]["changes"],
        "--format json is the same object"
    );
    let r = &v["report"];
    assert_eq!(r["incident"], inc);
    assert_eq!(r["status"], "failed", "{}", r["status"]);
    assert_eq!(r["accounts"], serde_json::json!([cx.account]));

    // Secrets rotated: exactly what the run rotated, by name or ARN.
    let rotated: BTreeSet<&str> = strings(&r["secrets_rotated"], "resource")
        .into_iter()
        .collect();
    let mut expected: BTreeSet<&str> = s.secrets.iter().map(String::as_str).collect();
    let parameter_arn = format!(
        "arn:aws:ssm:us-east-1:{}:parameter{}",
        cx.account, s.parameter
    );
    expected.insert(&parameter_arn);
    assert_eq!(rotated, expected);

    // What is left: the secret that does not exist, the shared role's
    // decision, the plaintext key.
    let items = r["open_items"].as_array().expect("open items");
    let find = |kind: &str| {
        items
            .iter()
            .find(|i| i["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} item in {items:#?}"))
    };
    let failed = find("failed_step");
    assert_eq!(failed["resource"], s.missing.as_str());
    assert!(failed["what"]
        .as_str()
        .unwrap_or("")
        .contains("does not exist"));
    let decide = find("decision");
    assert_eq!(decide["step"], "quarantine-role");
    assert!(decide["how"]
        .as_str()
        .unwrap_or("")
        .contains("--param scope=role"));
    assert!(find("plaintext_secret")["what"]
        .as_str()
        .unwrap_or("")
        .contains("STRIPE_API_KEY"));
    assert_eq!(items.len(), 3, "{items:#?}");
    assert_eq!(r["decisions_pending"][0]["step"], "quarantine-role");

    // Changes with before → after, and how each ended.
    let changes = r["changes"].as_array().expect("changes");
    let throttle = changes
        .iter()
        .find(|c| c["attribute"] == "reserved_concurrency")
        .expect("throttle");
    assert_eq!(
        (&throttle["before"], &throttle["after"], &throttle["status"]),
        (
            &Value::Null,
            &serde_json::json!(0),
            &serde_json::json!("applied")
        )
    );
    let refused = changes
        .iter()
        .find(|c| c["target"] == s.missing.as_str())
        .expect("the missing secret's change");
    assert_eq!(refused["status"], "failed");

    // Findings: what the function could read, and from where.
    let found = &r["findings"][0];
    assert_eq!(
        strings(&found["secrets"], "resource")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        s.secrets
            .iter()
            .map(String::as_str)
            .chain([s.missing.as_str()])
            .collect()
    );

    // Evidence: every artifact with its key and SHA-256, manifests, copies.
    let artifacts = r["evidence"]["artifacts"].as_array().expect("artifacts");
    assert!(artifacts.len() >= 5, "{artifacts:#?}");
    for a in artifacts {
        let key = a["key"].as_str().unwrap_or_default();
        assert!(key.starts_with(&format!("{inc}/{}/", cx.account)), "{key}");
        let sha = a["sha256"].as_str().unwrap_or_default();
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{a}"
        );
    }
    assert!(artifacts
        .iter()
        .any(|a| a["name"] == "config/function.json"));
    assert!(!r["evidence"]["manifests"].as_array().expect("m").is_empty());
    assert!(!r["evidence"]["audit_copies"]
        .as_array()
        .expect("c")
        .is_empty());

    // The timeline: from the start to the trail's copy, each with its time.
    let timeline = r["timeline"].as_array().expect("timeline");
    assert_eq!(timeline[0]["event"], "run_started");
    assert!(timeline.iter().all(|t| t["time"].is_string()));
    assert!(timeline.iter().any(|t| t["event"] == "run_finished"));

    // The Markdown says the same, for people.
    for needle in [
        "# Incident report: INC-REP",
        "a harm-stopping step failed: containment is NOT complete",
        "## What is left to do",
        "--param scope=role",
        "## Secrets rotated",
        "## Evidence",
        "config/function.json",
        "## Timeline",
        "hash chain intact",
    ] {
        assert!(
            md.stdout.contains(needle),
            "{needle} missing:\n{}",
            md.stdout
        );
    }
    snapshot(&cx, "report_md", &md.stdout);

    // Never a value.
    for text in [&md.stdout, &md.stderr, &json.stdout, &json.stderr] {
        for value in [DB_PASSWORD, SHARED, SIGNING, PLAINTEXT] {
            assert!(!text.contains(value), "a secret value is in the report");
        }
    }
}

#[tokio::test]
async fn report_on_an_unknown_incident_says_so() {
    let cx = TestContext::new().await;
    let text = cx.run(&["report", "--incident", "INC-NEVER"]);
    text.expect_code(1);
    assert!(
        text.stderr
            .contains("error: there is no incident `INC-NEVER`: nothing was ever recorded at"),
        "{}",
        text.stderr
    );
    assert!(text.stderr.contains("--state-dir"), "{}", text.stderr);
    assert!(text.stdout.is_empty());
    let json = cx.run(&["--output", "json", "report", "--incident", "INC-NEVER"]);
    json.expect_code(1);
    let v = json.json();
    assert_eq!(v["kind"], "error");
    assert_eq!(v["error"]["class"], "input");
}
