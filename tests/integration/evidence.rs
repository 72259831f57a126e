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
