//! The forensic bucket writer, manifests and `firebreak evidence verify`
//! against LocalStack S3 (which verifies ChecksumSHA256, honours
//! If-None-Match and enforces Object Lock).

use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use firebreak::aws::{Aws, AwsErrorKind, AwsSettings};
use firebreak::evidence::manifest::Manifest;
use firebreak::evidence::store::{ForensicStore, Retention, RetentionMode};
use firebreak::evidence::verify::MANIFEST_EVENT;
use firebreak::evidence::EvidenceError;
use firebreak::state::{Incident, IncidentId};

use crate::common::{TestContext, REGION};

async fn aws_for(cx: &TestContext, dry_run: bool) -> Aws {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&cx.account, "test", None, None, "tests"))
        .load()
        .await;
    let settings = AwsSettings {
        dry_run,
        ..AwsSettings::default()
    };
    Aws::from_sdk_config(&sdk, REGION.into(), &settings)
}

async fn bucket(aws: &Aws, name: &str, object_lock: bool) {
    aws.s3
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(object_lock)
        .send()
        .await
        .expect("create bucket");
}

/// Writes two artifacts and a manifest for `incident`, recording the
/// manifest in the incident's trail as a run does.
async fn collect(cx: &TestContext, store: &ForensicStore, incident: &str) -> Manifest {
    let id = IncidentId::parse(incident).expect("id");
    let mut inc = Incident::open(&cx.path(".firebreak"), &id, "run-test", "test").expect("open");
    let mut m = Manifest::new(
        incident,
        &cx.account,
        REGION,
        "victim",
        &store.facts().bucket,
    );
    let prefix = m.prefix().expect("prefix");
    for (name, bytes) in [
        (
            "config/function.json",
            br#"{"FunctionName":"victim"}"#.to_vec(),
        ),
        ("code/package.zip", vec![7u8; 300_000]),
    ] {
        let key = format!("{prefix}/{name}");
        let stored = store.put(&key, bytes).await.expect("put");
        m.add(
            name,
            &stored,
            "test:Seed",
            "2026-11-23T00:00:00Z",
            "arn:aws:iam::1:user/t",
        );
    }
    let rec = m.write(store).await.expect("manifest");
    inc.audit
        .append(
            MANIFEST_EVENT,
            None,
            serde_json::to_value(&rec).expect("json"),
        )
        .expect("audit");
    m
}

#[tokio::test]
async fn evidence_is_written_once_and_verify_names_every_tampered_or_missing_object() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let name = format!("fb-evidence-{}", cx.account);
    bucket(&aws, &name, false).await;
    let store = ForensicStore::open(aws.s3.clone(), &name, None)
        .await
        .expect("open");
    assert!(!store.facts().object_lock);
    let warning = store.facts().warning().expect("no-lock warning");
    assert!(warning.contains("no Object Lock"), "{warning}");

    let m = collect(&cx, &store, "INC-EV-1").await;
    let code_key = m
        .artifacts
        .iter()
        .find(|a| a.name == "code/package.zip")
        .expect("code")
        .key
        .clone();

    // The same bytes again: nothing new is written; other bytes: refused.
    let again = store
        .put(&code_key, vec![7u8; 300_000])
        .await
        .expect("same bytes");
    assert!(!again.written);
    let rec = m.write(&store).await.expect("same manifest");
    assert!(!rec.written);
    assert!(rec.key.ends_with("/manifest.json"), "{}", rec.key);
    match store.put(&code_key, vec![8u8; 10]).await {
        Err(EvidenceError::Different { .. }) => {}
        other => panic!("overwrite with other bytes was not refused: {other:?}"),
    }

    let verify = |bucket: &str| {
        cx.run(&[
            "evidence",
            "verify",
            "--incident",
            "INC-EV-1",
            "--bucket",
            bucket,
        ])
    };
    let ok = verify(&name);
    ok.expect_code(0);
    assert!(
        ok.stdout
            .contains("1 manifest(s), 2 artifact(s) checked, 0 mismatch(es)"),
        "{}",
        ok.stdout
    );
    assert!(ok.stderr.contains("no Object Lock"), "{}", ok.stderr);

    // One byte changed behind our back (possible without Object Lock).
    let mut tampered = vec![7u8; 300_000];
    tampered[123_456] = 6;
    aws.s3
        .put_object()
        .bucket(&name)
        .key(&code_key)
        .body(ByteStream::from(tampered))
        .send()
        .await
        .expect("tamper");
    let bad = verify(&name);
    bad.expect_code(1);
    assert!(
        bad.stderr
            .contains(&format!("MISMATCH s3://{name}/{code_key}: sha256")),
        "{}",
        bad.stderr
    );

    // An object deleted.
    let config_key = m
        .artifacts
        .iter()
        .find(|a| a.name == "config/function.json")
        .expect("cfg")
        .key
        .clone();
    aws.s3
        .delete_object()
        .bucket(&name)
        .key(&config_key)
        .send()
        .await
        .expect("delete");
    let gone = cx.run(&[
        "--output",
        "json",
        "evidence",
        "verify",
        "--incident",
        "INC-EV-1",
        "--bucket",
        &name,
    ]);
    gone.expect_code(1);
    let problems: Vec<String> = gone.json()["report"]["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["key"].as_str().unwrap_or(""),
                m["problem"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&config_key) && p.ends_with("object missing from the bucket")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with(&code_key)),
        "{problems:?}"
    );

    // A bucket the trail never wrote to, and one that does not exist.
    let other = format!("fb-evidence-other-{}", cx.account);
    bucket(&aws, &other, false).await;
    let none = verify(&other);
    none.expect_code(1);
    assert!(
        none.stderr.contains("records no manifest"),
        "{}",
        none.stderr
    );
    let missing = verify("fb-no-such-bucket-anywhere");
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn a_changed_manifest_is_caught_against_the_audit_trail() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let name = format!("fb-evidence-m-{}", cx.account);
    bucket(&aws, &name, false).await;
    let store = ForensicStore::open(aws.s3.clone(), &name, None)
        .await
        .expect("open");
    let m = collect(&cx, &store, "INC-EV-2").await;
    let key = format!("{}/manifest.json", m.prefix().expect("prefix"));
    // Rewritten to drop an artifact: still valid JSON, no longer the one audited.
    let mut forged = m.clone();
    forged.artifacts.pop();
    aws.s3
        .put_object()
        .bucket(&name)
        .key(&key)
        .body(ByteStream::from(forged.to_bytes()))
        .send()
        .await
        .expect("forge");
    let r = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-EV-2",
        "--bucket",
        &name,
    ]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("differs from the audit trail"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn object_lock_buckets_refuse_overwrite_and_delete() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let name = format!("fb-evidence-lock-{}", cx.account);
    bucket(&aws, &name, true).await;
    let retention = Retention {
        mode: RetentionMode::Compliance,
        days: 1,
    };
    let store = ForensicStore::open(aws.s3.clone(), &name, Some(retention))
        .await
        .expect("open");
    assert!(store.facts().object_lock);
    assert_eq!(store.facts().warning(), None);
    let m = collect(&cx, &store, "INC-EV-3").await;
    let key = &m.artifacts[0].key;

    let head = aws
        .s3
        .head_object()
        .bucket(&name)
        .key(key)
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("COMPLIANCE")
    );
    let version = head.version_id().expect("versioned").to_string();
    let del = aws
        .s3
        .delete_object()
        .bucket(&name)
        .key(key)
        .version_id(&version)
        .send()
        .await;
    assert!(del.is_err(), "S3 let a locked version be deleted");
    let over = aws
        .s3
        .put_object()
        .bucket(&name)
        .key(key)
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(over.is_err(), "S3 let a locked object be overwritten");
    cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-EV-3",
        "--bucket",
        &name,
    ])
    .expect_code(0);
}

#[tokio::test]
async fn in_dry_run_the_store_reads_but_cannot_write() {
    let cx = TestContext::new().await;
    let name = format!("fb-evidence-dry-{}", cx.account);
    bucket(&aws_for(&cx, false).await, &name, false).await;
    let aws = aws_for(&cx, true).await;
    let store = ForensicStore::open(aws.s3.clone(), &name, None)
        .await
        .expect("reads are allowed");
    match store.put("INC/x", b"x".to_vec()).await {
        Err(EvidenceError::Aws(e)) => assert_eq!(e.kind, AwsErrorKind::DryRunRefused),
        other => panic!("PutObject was not refused in dry-run: {other:?}"),
    }
    let calls = aws.calls.sent();
    assert!(calls.iter().all(|c| !c.mutating), "{calls:?}");
}

const SNAPSHOT_PLAYBOOK: &str = r#"apiVersion: firebreak/v1
kind: Playbook
name: snapshot-then-throttle
description: Preserve the configuration, then throttle.
params:
  function: {type: string, required: true}
  forensic_bucket: {type: string, required: true}
  env_values: {type: boolean, default: false}
phases:
  identify:
    - id: snapshot
      action: evidence.snapshot_config
      with:
        function: "${params.function}"
        bucket: "${params.forensic_bucket}"
        include_env_values: "${params.env_values}"
  contain:
    - id: throttle
      action: lambda.set_concurrency
      with: {function: "${params.function}", value: 0}
"#;

const SECRET: &str = "sk_live_do-not-leak-4242";

async fn object_count(aws: &Aws, bucket: &str) -> usize {
    aws.s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list")
        .key_count()
        .unwrap_or(0) as usize
}

async fn object_text(aws: &Aws, bucket: &str, key: &str) -> String {
    let out = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get");
    String::from_utf8(
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec(),
    )
    .expect("utf8")
}

#[tokio::test]
async fn snapshot_config_preserves_everything_once_and_never_leaks_env_values() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let f = cx.unique("snap");
    let role_arn = cx.seed_role(&format!("{f}-role")).await;
    cx.create_function_full(&f, &role_arn, &[("API_TOKEN", SECRET)])
        .await;
    let name = format!("fb-snap-{}", cx.account);
    bucket(&aws, &name, false).await;
    std::fs::write(cx.path("pb.yaml"), SNAPSHOT_PLAYBOOK).expect("write playbook");
    let (pf, pb) = (format!("function={f}"), format!("forensic_bucket={name}"));
    let base = ["-p", pf.as_str(), "-p", pb.as_str()];

    let plan = cx.run(
        &[
            &[
                "--output",
                "json",
                "plan",
                "pb.yaml",
                "--incident",
                "INC-SNAP",
            ][..],
            &base[..],
        ]
        .concat(),
    );
    plan.expect_code(2);
    assert_eq!(
        object_count(&aws, &name).await,
        0,
        "plan wrote to the bucket"
    );
    let plan = plan.json();
    let snap = plan["targets"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "snapshot")
        .expect("snapshot step")
        .clone();
    let attrs: Vec<&str> = snap["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["attribute"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        attrs,
        [
            "evidence:function",
            "evidence:resource-policy",
            "evidence:function-url",
            "evidence:event-source-mappings",
            "evidence:concurrency",
            "evidence:tags",
            "evidence:execution-role",
            "evidence:manifest"
        ]
    );
    assert!(
        snap["note"]
            .as_str()
            .unwrap_or("")
            .contains("no Object Lock"),
        "{snap}"
    );

    let run = cx.run(
        &[
            &["run", "pb.yaml", "--incident", "INC-SNAP", "--yes"][..],
            &base[..],
        ]
        .concat(),
    );
    run.expect_code(0);
    assert_eq!(
        object_count(&aws, &name).await,
        11,
        "7 documents, a manifest, the throttle step's pre-change state, the manifest listing it, the audit trail copy"
    );
    assert!(
        run.stdout
            .contains("Chain of custody: 1 pre-change state(s) preserved"),
        "{}",
        run.stdout
    );
    let verify = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-SNAP",
        "--bucket",
        &name,
    ]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains("2 manifest(s), 9 artifact(s) checked, 0 mismatch(es)"),
        "{}",
        verify.stdout
    );
    let prefix = format!("INC-SNAP/{}/{REGION}/{f}", cx.account);
    let pre: serde_json::Value = serde_json::from_str(
        &object_text(&aws, &name, &format!("{prefix}/pre-change/throttle.json")).await,
    )
    .expect("json");
    assert_eq!(pre["action"], "lambda.set_concurrency", "{pre}");
    assert!(pre["observed_before_change"].is_object(), "{pre}");
    // The bucket's audit trail copy is the local trail as it stood.
    let copies = aws
        .s3
        .list_objects_v2()
        .bucket(&name)
        .prefix(format!("INC-SNAP/{}/{REGION}/audit/", cx.account))
        .send()
        .await
        .expect("list");
    let copy_key = copies.contents()[0].key().expect("key").to_string();
    let copy = object_text(&aws, &name, &copy_key).await;
    let local =
        std::fs::read_to_string(cx.incident_dir("INC-SNAP").join("audit.jsonl")).expect("audit");
    assert!(
        local.starts_with(&copy) && copy.lines().count() > 5,
        "{copy_key}"
    );

    // What was preserved: names of env vars only, the role with its documents.
    let function_doc = object_text(&aws, &name, &format!("{prefix}/config/function.json")).await;
    assert!(
        function_doc.contains("API_TOKEN") && !function_doc.contains(SECRET),
        "{function_doc}"
    );
    let role_doc: serde_json::Value = serde_json::from_str(
        &object_text(&aws, &name, &format!("{prefix}/config/execution-role.json")).await,
    )
    .expect("json");
    assert_eq!(
        role_doc["AttachedPolicies"].as_array().map(Vec::len),
        Some(2),
        "{role_doc}"
    );
    assert_eq!(
        role_doc["InlinePolicies"].as_object().map(|m| m.len()),
        Some(2),
        "{role_doc}"
    );
    assert_eq!(
        role_doc["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "lambda.amazonaws.com"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&object_text(&aws, &name, &format!("{prefix}/manifest.json")).await)
            .expect("json");
    let a = &manifest["artifacts"][0];
    assert!(
        a["sha256"].as_str().is_some_and(|s| s.len() == 64)
            && a["source"].as_str().is_some_and(|s| s.contains(':'))
            && a["collector"]
                .as_str()
                .is_some_and(|s| s.starts_with("arn:"))
            && a["collected_at"].as_str().is_some(),
        "{a}"
    );

    // A second run plans and writes nothing, though the function is now throttled.
    let again = cx.run(
        &[
            &[
                "--output",
                "json",
                "plan",
                "pb.yaml",
                "--incident",
                "INC-SNAP",
            ][..],
            &base[..],
        ]
        .concat(),
    );
    again.expect_code(0);
    cx.run(
        &[
            &["run", "pb.yaml", "--incident", "INC-SNAP", "--yes"][..],
            &base[..],
        ]
        .concat(),
    )
    .expect_code(0);
    assert_eq!(
        object_count(&aws, &name).await,
        11,
        "a second run wrote something"
    );

    // Recovery restores concurrency and leaves the evidence alone.
    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-SNAP",
        "--dry-run",
    ]);
    let items = rec.json()["items"].as_array().expect("items").clone();
    assert!(
        items
            .iter()
            .all(|i| !i["id"].as_str().unwrap_or("").contains("evidence")),
        "{items:?}"
    );
    assert_eq!(items.len(), 1, "{items:?}");
    // Recovering joins the trail to the evidence too: a new copy that
    // records the restoration.
    let recovered = cx.run(&["recover", "--incident", "INC-SNAP", "--yes"]);
    recovered.expect_code(0);
    assert!(
        recovered.stdout.contains("Chain of custody: audit trail"),
        "{}",
        recovered.stdout
    );
    assert_eq!(object_count(&aws, &name).await, 12);
    let after = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-SNAP",
        "--bucket",
        &name,
    ]);
    after.expect_code(0);
    assert!(
        after
            .stdout
            .contains("2 manifest(s), 10 artifact(s) checked, 0 mismatch(es)"),
        "{}",
        after.stdout
    );

    // Opting in stores values in the bucket, and only there.
    let opt = cx.run(
        &[
            &[
                "run",
                "pb.yaml",
                "--incident",
                "INC-SNAP-ENV",
                "--yes",
                "-p",
                "env_values=true",
            ][..],
            &base[..],
        ]
        .concat(),
    );
    opt.expect_code(0);
    let with_values = object_text(
        &aws,
        &name,
        &format!(
            "INC-SNAP-ENV/{}/{REGION}/{f}/config/function.json",
            cx.account
        ),
    )
    .await;
    assert!(with_values.contains(SECRET), "{with_values}");
    for out in [
        &plan.to_string(),
        &run.stdout,
        &run.stderr,
        &opt.stdout,
        &opt.stderr,
    ] {
        assert!(!out.contains(SECRET), "the secret leaked into output");
    }
    for id in ["INC-SNAP", "INC-SNAP-ENV"] {
        for file in ["journal.jsonl", "audit.jsonl"] {
            let text = std::fs::read_to_string(cx.incident_dir(id).join(file)).expect(file);
            assert!(!text.contains(SECRET), "the secret leaked into {id}/{file}");
        }
    }

    // A replaced audit trail copy is named by verify (no Object Lock here).
    aws.s3
        .put_object()
        .bucket(&name)
        .key(&copy_key)
        .body(ByteStream::from(
            copy.replacen("run", "ran", 1).into_bytes(),
        ))
        .send()
        .await
        .expect("overwrite the copy");
    let tampered = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-SNAP",
        "--bucket",
        &name,
    ]);
    tampered.expect_code(1);
    assert!(
        tampered.stdout.contains("audit trail copy: sha256")
            || tampered.stderr.contains("audit trail copy: sha256"),
        "{}{}",
        tampered.stdout,
        tampered.stderr
    );
}

#[tokio::test]
async fn a_sigkill_mid_snapshot_then_a_rerun_yields_a_complete_verified_manifest() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let f = cx.unique("snapkill");
    cx.create_function(&f).await;
    let name = format!("fb-snapkill-{}", cx.account);
    bucket(&aws, &name, false).await;
    std::fs::write(cx.path("pb.yaml"), SNAPSHOT_PLAYBOOK).expect("write playbook");
    let (pf, pb) = (format!("function={f}"), format!("forensic_bucket={name}"));
    let args = [
        "run",
        "pb.yaml",
        "--incident",
        "INC-SK",
        "--yes",
        "-p",
        pf.as_str(),
        "-p",
        pb.as_str(),
    ];

    // Killed right after the first document reached S3: no manifest yet.
    crate::crash::kill_at(&cx, &args, "after_apply:snapshot");
    assert_eq!(object_count(&aws, &name).await, 1);
    let early = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-SK",
        "--bucket",
        &name,
    ]);
    early.expect_code(1);
    assert!(
        early.stderr.contains("records no manifest"),
        "{}",
        early.stderr
    );

    cx.run(&args).expect_code(0);
    assert_eq!(object_count(&aws, &name).await, 11);
    // The throttle went first (harm before evidence) in the killed run, so
    // the re-run has nothing left to change there: the prior value its
    // journal recorded is what is preserved.
    let pre = object_text(
        &aws,
        &name,
        &format!(
            "INC-SK/{}/{REGION}/{f}/pre-change/throttle.json",
            cx.account
        ),
    )
    .await;
    assert!(pre.contains("recorded_before_change"), "{pre}");
    cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-SK",
        "--bucket",
        &name,
    ])
    .expect_code(0);
    let audit = cx.audit("INC-SK");
    let receipts = audit
        .iter()
        .filter(|r| r["event"] == MANIFEST_EVENT)
        .count();
    assert_eq!(
        receipts, 2,
        "the snapshot's manifest and the one listing the pre-change state"
    );

    // Killed after the throttle and before the run could seal: the re-run
    // has nothing left to change, and preserves the prior value the
    // journal recorded.
    let g = cx.unique("snapkill2");
    cx.create_function(&g).await;
    let pg = format!("function={g}");
    let args2 = [
        "run",
        "pb.yaml",
        "--incident",
        "INC-SK2",
        "--yes",
        "-p",
        pg.as_str(),
        "-p",
        pb.as_str(),
    ];
    crate::crash::kill_at(&cx, &args2, "after_apply:throttle");
    cx.run(&args2).expect_code(0);
    let pre = object_text(
        &aws,
        &name,
        &format!(
            "INC-SK2/{}/{REGION}/{g}/pre-change/throttle.json",
            cx.account
        ),
    )
    .await;
    assert!(pre.contains("recorded_before_change"), "{pre}");
    cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-SK2",
        "--bucket",
        &name,
    ])
    .expect_code(0);
}

const CODE_PLAYBOOK: &str = r#"apiVersion: firebreak/v1
kind: Playbook
name: snapshot-config-and-code
description: Preserve the configuration and the code.
params:
  function: {type: string, required: true}
  forensic_bucket: {type: string, required: true}
phases:
  identify:
    - id: config
      action: evidence.snapshot_config
      with: {function: "${params.function}", bucket: "${params.forensic_bucket}"}
    - id: code
      action: evidence.snapshot_code
      with: {function: "${params.function}", bucket: "${params.forensic_bucket}"}
"#;

async fn wait_updated(cx: &TestContext, name: &str) {
    for _ in 0..150 {
        let c = cx
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("get config");
        let done = c.last_update_status().map(|s| s.as_str()) != Some("InProgress")
            && c.state().map(|s| s.as_str()) == Some("Active");
        if done {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("function {name} never finished updating");
}

fn sha256_hex(bytes: &[u8]) -> String {
    firebreak::evidence::store::sha256_parts(bytes).0
}

#[tokio::test]
async fn snapshot_code_keeps_every_version_alias_and_layer_once() {
    use crate::common::zip_one_file;
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{AliasRoutingConfiguration, LayerVersionContentInput};

    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let f = cx.unique("code");
    cx.create_function(&f).await;
    let original = cx
        .lambda
        .get_function_configuration()
        .function_name(&f)
        .send()
        .await
        .expect("config")
        .code_sha256()
        .map(str::to_string);

    // A layer, version 1 with it, then the "attacker's" code as version 2
    // behind an alias that still sends a quarter of traffic to version 1.
    let layer_zip = zip_one_file("python/util.py", b"X = 1\n");
    let layer = cx
        .lambda
        .publish_layer_version()
        .layer_name(format!("{f}-layer"))
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(layer_zip.clone()))
                .build(),
        )
        .send()
        .await
        .expect("publish layer");
    let layer_arn = layer.layer_version_arn().expect("layer arn").to_string();
    cx.lambda
        .update_function_configuration()
        .function_name(&f)
        .layers(&layer_arn)
        .send()
        .await
        .expect("add layer");
    wait_updated(&cx, &f).await;
    cx.lambda
        .publish_version()
        .function_name(&f)
        .send()
        .await
        .expect("publish 1");
    let evil = zip_one_file(
        "handler.py",
        b"import os\ndef handler(e, c):\n    return os.environ\n",
    );
    cx.lambda
        .update_function_code()
        .function_name(&f)
        .zip_file(Blob::new(evil.clone()))
        .send()
        .await
        .expect("update code");
    wait_updated(&cx, &f).await;
    cx.lambda
        .publish_version()
        .function_name(&f)
        .send()
        .await
        .expect("publish 2");
    cx.lambda
        .create_alias()
        .function_name(&f)
        .name("live")
        .function_version("2")
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights("1", 0.25)
                .build(),
        )
        .send()
        .await
        .expect("alias");

    let name = format!("fb-code-{}", cx.account);
    bucket(&aws, &name, false).await;
    std::fs::write(cx.path("pb.yaml"), CODE_PLAYBOOK).expect("write playbook");
    let (pf, pb) = (format!("function={f}"), format!("forensic_bucket={name}"));
    let args = [
        "run",
        "pb.yaml",
        "--incident",
        "INC-CODE",
        "--yes",
        "-p",
        pf.as_str(),
        "-p",
        pb.as_str(),
    ];

    let plan_args: Vec<&str> = ["--output", "json", "plan"]
        .into_iter()
        .chain(args[1..].iter().copied().filter(|a| *a != "--yes"))
        .collect();
    let plan = cx.run(&plan_args);
    plan.expect_code(2);
    let plan = plan.json();
    let code = plan["targets"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "code")
        .expect("code step")
        .clone();
    let mut attrs: Vec<String> = code["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["attribute"].as_str().unwrap_or("").to_string())
        .collect();
    attrs.sort();
    let mut want = vec![
        format!("evidence:package:{}", sha256_hex(&evil)),
        format!("evidence:package:{}", sha256_hex(&layer_zip)),
        "evidence:inventory".to_string(),
        "evidence:manifest".to_string(),
    ];
    let original_hex = original
        .as_deref()
        .and_then(firebreak::evidence::store::b64_to_hex)
        .expect("original code sha");
    want.push(format!("evidence:package:{original_hex}"));
    want.sort();
    assert_eq!(
        attrs, want,
        "three distinct packages: original, evil, layer"
    );
    assert_eq!(
        object_count(&aws, &name).await,
        0,
        "plan wrote to the bucket"
    );
    assert!(
        !plan.to_string().contains("Signature"),
        "a presigned URL reached the plan"
    );

    let run = cx.run(&args);
    run.expect_code(0);
    // 7 config documents + 3 packages + inventory + 2 manifest generations
    // + the audit trail copy.
    assert_eq!(object_count(&aws, &name).await, 14);
    let prefix = format!("INC-CODE/{}/{REGION}/{f}", cx.account);
    for (bytes, what) in [(&evil, "evil"), (&layer_zip, "layer")] {
        let key = format!("{prefix}/code/packages/{}.zip", sha256_hex(bytes));
        let body = aws
            .s3
            .get_object()
            .bucket(&name)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what} package {key}: {e:?}"))
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(body.as_ref(), bytes.as_slice(), "{what} package bytes");
    }
    let inventory: serde_json::Value = serde_json::from_str(
        &object_text(&aws, &name, &format!("{prefix}/code/inventory.json")).await,
    )
    .expect("json");
    assert_eq!(inventory["Aliases"][0]["Name"], "live", "{inventory}");
    assert_eq!(inventory["Aliases"][0]["FunctionVersion"], "2");
    assert_eq!(
        inventory["Aliases"][0]["AdditionalVersionWeights"]["1"],
        0.25
    );
    let versions: Vec<&str> = inventory["Versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["Version"].as_str())
        .collect();
    assert_eq!(versions, ["$LATEST", "1", "2"]);
    assert_eq!(inventory["Layers"][0]["LayerVersionArn"], layer_arn);

    // The newest manifest lists configuration and code, with Lambda's hash
    // beside ours; verify checks every object once.
    let newest: serde_json::Value =
        serde_json::from_str(&object_text(&aws, &name, &format!("{prefix}/manifest.2.json")).await)
            .expect("json");
    let listed = newest["artifacts"].as_array().expect("artifacts");
    assert_eq!(listed.len(), 11, "{newest}");
    let evil_entry = listed
        .iter()
        .find(|a| a["name"] == format!("code/packages/{}.zip", sha256_hex(&evil)))
        .expect("evil package listed");
    assert_eq!(evil_entry["sha256"], evil_entry["reported_sha256"]);
    let verify = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-CODE",
        "--bucket",
        &name,
    ]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains("2 manifest(s), 12 artifact(s) checked, 0 mismatch(es)"),
        "{}",
        verify.stdout
    );

    // A second run downloads and writes nothing.
    cx.run(&plan_args).expect_code(0);
    cx.run(&args).expect_code(0);
    assert_eq!(object_count(&aws, &name).await, 14);
    for out in [&run.stdout, &run.stderr] {
        assert!(
            !out.contains("Signature"),
            "a presigned URL reached the output"
        );
    }
    for file in ["journal.jsonl", "audit.jsonl"] {
        let text = std::fs::read_to_string(cx.incident_dir("INC-CODE").join(file)).expect(file);
        assert!(
            !text.contains("Signature"),
            "a presigned URL reached {file}"
        );
    }
}

const CROSS_ACCOUNT_PLAYBOOK: &str = r#"apiVersion: firebreak/v1
kind: Playbook
name: snapshot-to-a-forensic-account
description: Preserve the configuration in another account's bucket, then throttle.
params:
  function: {type: string, required: true}
  forensic_bucket: {type: string, required: true}
  forensic_role: {type: string, required: true}
phases:
  identify:
    - id: snapshot
      action: evidence.snapshot_config
      with:
        function: "${params.function}"
        bucket: "${params.forensic_bucket}"
        bucket_role: "${params.forensic_role}"
  contain:
    - id: throttle
      action: lambda.set_concurrency
      with: {function: "${params.function}", value: 0}
"#;

#[tokio::test]
async fn a_bucket_in_a_separate_forensic_account_is_written_through_its_role() {
    let cx = TestContext::new().await;
    // The forensic account: another 12-digit id, its own role and bucket.
    let other = if cx.account.starts_with('9') {
        "8"
    } else {
        "9"
    };
    let forensic = format!("{other}{}", &cx.account[1..]);
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&forensic, "test", None, None, "tests"))
        .load()
        .await;
    let theirs = Aws::from_sdk_config(&sdk, REGION.into(), &AwsSettings::default());
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", cx.account)}, "Action": "sts:AssumeRole"}]
    });
    theirs
        .iam
        .create_role()
        .role_name("forensic-writer")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("role in the forensic account");
    let role = format!("arn:aws:iam::{forensic}:role/forensic-writer");
    let name = format!("fb-xacct-{}", cx.account);
    bucket(&theirs, &name, true).await;

    let f = cx.unique("xacct");
    cx.create_function(&f).await;
    std::fs::write(cx.path("pb.yaml"), CROSS_ACCOUNT_PLAYBOOK).expect("write playbook");
    let (pf, pb, pr) = (
        format!("function={f}"),
        format!("forensic_bucket={name}"),
        format!("forensic_role={role}"),
    );
    let base = ["-p", pf.as_str(), "-p", pb.as_str(), "-p", pr.as_str()];
    let plan = cx.run(&[&["plan", "pb.yaml", "--incident", "INC-X"][..], &base[..]].concat());
    plan.expect_code(2);
    let writer = format!("evidence is written as arn:aws:sts::{forensic}:assumed-role/forensic-writer/firebreak-INC-X");
    assert!(plan.stdout.contains(&writer), "{}", plan.stdout);

    cx.run(
        &[
            &["run", "pb.yaml", "--incident", "INC-X", "--yes"][..],
            &base[..],
        ]
        .concat(),
    )
    .expect_code(0);
    // Config documents, manifests, the pre-change state and the trail copy,
    // all under Object Lock in the forensic account's bucket.
    assert_eq!(object_count(&theirs, &name).await, 11);
    let key = format!("INC-X/{}/{REGION}/{f}/config/function.json", cx.account);
    let retention = theirs
        .s3
        .get_object_retention()
        .bucket(&name)
        .key(&key)
        .send()
        .await
        .expect("retention");
    assert_eq!(
        retention
            .retention()
            .and_then(|r| r.mode())
            .map(|m| m.as_str()),
        Some("COMPLIANCE")
    );
    cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-X",
        "--bucket",
        &name,
        "--bucket-role",
        &role,
    ])
    .expect_code(0);
    // A role ARN that is not one is refused before any call.
    let bad = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-X",
        "--bucket",
        &name,
        "--bucket-role",
        "forensic-writer",
    ]);
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("is not an IAM role ARN"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn a_package_that_differs_from_what_lambda_reports_is_named_by_verify() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx, false).await;
    let name = format!("fb-evidence-r-{}", cx.account);
    bucket(&aws, &name, false).await;
    let store = ForensicStore::open(aws.s3.clone(), &name, None)
        .await
        .expect("open");
    let id = IncidentId::parse("INC-EV-R").expect("id");
    let mut inc = Incident::open(&cx.path(".firebreak"), &id, "run-test", "test").expect("open");
    let mut m = Manifest::new("INC-EV-R", &cx.account, REGION, "victim", &name);
    let prefix = m.prefix().expect("prefix");
    let claimed = sha256_hex(b"what Lambda says it runs");
    let key = format!("{prefix}/code/packages/{claimed}.zip");
    let stored = store
        .put(&key, b"what was downloaded".to_vec())
        .await
        .expect("put");
    m.add(
        "code/packages/x.zip",
        &stored,
        "lambda:GetFunction",
        "2026-11-23T00:00:00Z",
        "arn:aws:iam::1:user/t",
    );
    m.set_reported_sha256(&key, &claimed);
    let rec = m.write(&store).await.expect("manifest");
    inc.audit
        .append(
            MANIFEST_EVENT,
            None,
            serde_json::to_value(&rec).expect("json"),
        )
        .expect("audit");
    drop(inc);
    let r = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-EV-R",
        "--bucket",
        &name,
    ]);
    r.expect_code(1);
    assert!(
        r.stderr
            .contains(&format!("the service reported sha256 {claimed}"))
            && r.stderr.contains(&stored.sha256),
        "{}",
        r.stderr
    );
}
