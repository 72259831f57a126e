//! Incident state shared in S3 (`--state s3://BUCKET/PREFIX`): the state
//! contract on LocalStack, the races it exists for (one lease holder, one
//! writer per record), a takeover of an expired lease, and whole runs of
//! the binary with it, including one SIGKILLed and resumed by another
//! process.
//!
//! Each test has its own account and its own bucket (`fb-state-<account>`).
//! The store's methods are blocking and are called here from inside the
//! tests' current-thread runtime: that they neither deadlock nor panic
//! there is part of what is tested.

use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use aws_sdk_lambda::config::{Credentials, Region};
use firebreak::state::conformance::{self, Harness};
use firebreak::state::{
    Holder, IncidentBackend, IncidentId, LeaseTerms, LogKind, S3Location, S3Store, StateError,
    StateStore,
};

use crate::common::{TestContext, REGION};

async fn sdk(cx: &TestContext) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&cx.account, "test", None, None, "tests"))
        .load()
        .await
}

async fn s3(cx: &TestContext) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk(cx).await)
            .force_path_style(true)
            .build(),
    )
}

/// This test's state bucket (created) and `s3://<it>/<prefix>`.
async fn state_bucket(cx: &TestContext, prefix: &str) -> (String, String) {
    let bucket = format!("fb-state-{}", cx.account);
    let s3 = s3(cx).await;
    if s3.head_bucket().bucket(&bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create the state bucket");
    }
    let url = format!("s3://{bucket}/{prefix}");
    (bucket, url)
}

/// A store of its own (its own request thread), as another responder has.
async fn store(cx: &TestContext, url: &str, terms: LeaseTerms) -> S3Store {
    let client = firebreak::aws::state_s3_client_from(&sdk(cx).await).expect("client");
    S3Store::with_client(S3Location::parse(url).expect("url"), client, terms).expect("store")
}

fn id(s: &str) -> IncidentId {
    IncidentId::parse(s).unwrap()
}

struct S3Harness {
    store: S3Store,
}

impl Harness for S3Harness {
    type Store = S3Store;

    fn store(&self) -> &S3Store {
        &self.store
    }

    /// A PUT is atomic: nothing can be torn.
    fn tear(&self, _: &IncidentId, _: LogKind) -> bool {
        false
    }

    fn intruder(&self, id: &IncidentId) -> Box<dyn IncidentBackend> {
        self.store.unleased(id)
    }
}

#[tokio::test]
async fn the_s3_backend_keeps_the_state_contract() {
    let cx = TestContext::new().await;
    let (_, url) = state_bucket(&cx, "contract").await;
    // Two keys a listing page: every log read here spans several pages.
    let store = store(&cx, &url, LeaseTerms::default())
        .await
        .with_page_size(2);
    conformance::run_all(&S3Harness { store });
}

#[tokio::test]
async fn two_responders_racing_for_one_lease_exactly_one_wins() {
    let cx = TestContext::new().await;
    let (_, url) = state_bucket(&cx, "race").await;
    const RACERS: usize = 6;
    let mut stores = Vec::new();
    for _ in 0..RACERS {
        stores.push(store(&cx, &url, LeaseTerms::default()).await);
    }
    for round in 0..3 {
        let i = id(&format!("INC-RACE-{round}"));
        let start = Arc::new(Barrier::new(RACERS));
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(n, st)| {
                    let (start, i) = (start.clone(), i.clone());
                    s.spawn(move || {
                        start.wait();
                        (n, st.lock(&i, Holder::current(&format!("racer {n}"))))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one holder");
        let winner = format!("racer {}", winners[0]);
        for (n, r) in &results {
            match r {
                Ok(_) => {}
                Err(StateError::Locked { lease: Some(l), .. }) => {
                    assert_eq!(l.holder.command, winner, "racer {n} is told who won");
                    assert!(l.expires_at.is_some());
                }
                Err(e) => panic!("racer {n}: expected Locked naming the winner, got {e:?}"),
            }
        }
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_its_old_holder_gets_lease_lost() {
    let cx = TestContext::new().await;
    let (_, url) = state_bucket(&cx, "takeover").await;
    let i = id("INC-TAKEOVER");
    // A holder that stopped renewing (stalled, or cut off from S3): a
    // one-second lease and no heartbeat within the test.
    let stalled = LeaseTerms {
        ttl: Duration::from_secs(1),
        heartbeat: Duration::from_secs(3600),
    };
    let a = store(&cx, &url, stalled).await;
    let b = store(&cx, &url, LeaseTerms::default()).await;
    let first = a.lock(&i, Holder::current("responder A")).unwrap();
    first.read_log(LogKind::Journal).unwrap();
    first.append(LogKind::Journal, 1, br#"{"by":"A"}"#).unwrap();
    match b.lock(&i, Holder::current("responder B")) {
        Err(StateError::Locked { lease: Some(l), .. }) => {
            assert_eq!(l.holder.command, "responder A")
        }
        other => panic!("A's lease is live: expected Locked, got {other:?}"),
    }

    std::thread::sleep(Duration::from_millis(1500));
    let second = b
        .lock(&i, Holder::current("responder B"))
        .expect("an expired lease is taken over");
    assert_eq!(second.lease().holder.command, "responder B");
    // B resumes from what A recorded.
    assert_eq!(second.read_log(LogKind::Journal).unwrap().records.len(), 1);
    second
        .append(LogKind::Journal, 2, br#"{"by":"B"}"#)
        .unwrap();

    match first.renew() {
        Err(StateError::LeaseLost { lease: Some(l), .. }) => {
            assert_eq!(l.holder.command, "responder B", "A is told who has it")
        }
        other => panic!("expected LeaseLost naming B, got {other:?}"),
    }
    // Once lost, A writes nothing more: it stops at the lease, before
    // even trying its next number.
    assert!(matches!(
        first.append(LogKind::Journal, 2, b"{}"),
        Err(StateError::LeaseLost { .. })
    ));
    assert!(matches!(
        first.write_head(b"{}"),
        Err(StateError::LeaseLost { .. })
    ));
    // A going away does not free B's lease.
    drop(first);
    assert!(matches!(
        a.lock(&i, Holder::current("responder A again")),
        Err(StateError::Locked { .. })
    ));
    second.renew().unwrap();
    second.append(LogKind::Journal, 3, b"{}").unwrap();
    let journal = second.read_log(LogKind::Journal).unwrap().records;
    assert_eq!(journal[1], br#"{"by":"B"}"#);
}

#[tokio::test]
async fn a_live_holder_keeps_its_lease_past_its_term_by_the_heartbeat() {
    let cx = TestContext::new().await;
    let (_, url) = state_bucket(&cx, "heartbeat").await;
    let i = id("INC-BEAT");
    // A 4 s term (heartbeat every 1 s): under the full suite's load a
    // LocalStack S3 write can take most of a second, and a 1 s term left
    // the heartbeat no slack (seen once in CI as a takeover by B).
    const TERM: Duration = Duration::from_secs(4);
    let short = LeaseTerms::new(TERM);
    let a = store(&cx, &url, short).await;
    let b = store(&cx, &url, short).await;
    let held = a.lock(&i, Holder::current("responder A")).unwrap();
    let before = held.lease().expires_at;
    // Three terms without any call from the holder: only the heartbeat
    // keeps the lease.
    std::thread::sleep(TERM * 3);
    assert!(matches!(
        b.lock(&i, Holder::current("responder B")),
        Err(StateError::Locked { .. })
    ));
    assert_ne!(held.lease().expires_at, before, "renewed");
    held.release().unwrap();
    b.lock(&i, Holder::current("responder B"))
        .expect("free once released, without waiting for expiry");
}

#[tokio::test]
async fn two_writers_racing_for_one_sequence_number_exactly_one_wins() {
    let cx = TestContext::new().await;
    let (bucket, url) = state_bucket(&cx, "append").await;
    let i = id("INC-APPEND");
    const WRITERS: usize = 6;
    let mut stores = Vec::new();
    for _ in 0..WRITERS {
        stores.push(store(&cx, &url, LeaseTerms::default()).await);
    }
    let writers: Vec<_> = stores.iter().map(|s| s.unleased(&i)).collect();
    for seq in 1..=3u64 {
        let start = Arc::new(Barrier::new(WRITERS));
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = writers
                .iter()
                .enumerate()
                .map(|(n, w)| {
                    let start = start.clone();
                    s.spawn(move || {
                        let body = format!(r#"{{"writer":{n}}}"#);
                        start.wait();
                        (body.clone(), w.append(LogKind::Audit, seq, body.as_bytes()))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&String> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(b, _)| b)
            .collect();
        assert_eq!(won.len(), 1, "record {seq}: exactly one writer");
        for (_, r) in &results {
            match r {
                Ok(()) => {}
                Err(StateError::Conflict { seq: s, .. }) => assert_eq!(*s, seq),
                Err(e) => panic!("expected Conflict on record {seq}, got {e:?}"),
            }
        }
        // What is stored is the winner's record, untouched by the others.
        let key = format!("append/INC-APPEND/audit/{seq:020}.json");
        let stored = s3(&cx)
            .await
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .expect("the record")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&stored[..], won[0].as_bytes());
    }
}

#[tokio::test]
async fn a_malformed_state_url_or_a_missing_bucket_is_explained() {
    let cx = TestContext::new().await;
    let bad = cx.run(&[
        "--state",
        "s3:/acme/x",
        "audit",
        "verify",
        "--incident",
        "INC-1",
    ]);
    bad.expect_code(64);
    assert!(
        bad.stderr.contains("does not start with s3://"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("s3://BUCKET/PREFIX"), "{}", bad.stderr);

    let missing = format!("s3://fb-missing-{}/fb", cx.account);
    let pb = TestContext::throttle_playbook().display().to_string();
    for args in [
        vec!["audit", "verify", "--incident", "INC-1"],
        vec![
            "run",
            &pb,
            "--incident",
            "INC-1",
            "-p",
            "function=f",
            "--yes",
        ],
    ] {
        let r = cx.run(&[&["--state", &missing][..], &args].concat());
        r.expect_code(1);
        assert!(r.stderr.contains("NoSuchBucket"), "{}", r.stderr);
        assert!(r.stderr.contains(&missing), "names where: {}", r.stderr);
        assert!(
            r.stderr.contains("create-bucket"),
            "says what to do: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("ServiceError"),
            "no raw Debug: {}",
            r.stderr
        );
    }
    assert!(!cx.path(".firebreak").exists(), "no local state was used");
}

/// The audit records of an incident kept in S3, parsed.
async fn audit_in(cx: &TestContext, bucket: &str, prefix: &str) -> Vec<serde_json::Value> {
    let mut records: Vec<(String, serde_json::Value)> = cx
        .bucket_objects(bucket)
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, b)| (k, serde_json::from_slice(&b).expect("a JSON record")))
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records.into_iter().map(|(_, v)| v).collect()
}

#[tokio::test]
async fn a_run_with_s3_state_then_audit_verify_and_recover() {
    let cx = TestContext::new().await;
    let f = cx.unique("s3state");
    cx.create_function(&f).await;
    cx.set_concurrency(&f, 3).await;
    let (bucket, url) = state_bucket(&cx, "ir/state").await;
    let pb = TestContext::throttle_playbook().display().to_string();
    let param = format!("function={f}");
    let state = ["--state", url.as_str()];
    let with = |args: &[&str]| cx.run(&[&state[..], args].concat());

    with(&["run", &pb, "--incident", "INC-S3", "-p", &param, "--yes"]).expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(0));
    assert!(!cx.path(".firebreak").exists(), "no local state was used");
    let journal = audit_in(&cx, &bucket, "ir/state/INC-S3/journal/").await;
    let events: Vec<&str> = journal.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(events, ["intent", "applied"]);

    // The lease went with the process: the next command needs no wait.
    with(&["run", &pb, "--incident", "INC-S3", "-p", &param, "--yes"]).expect_code(0);
    let ok = with(&["audit", "verify", "--incident", "INC-S3"]);
    ok.expect_code(0);
    assert!(
        ok.stdout.contains("hash chain intact, head matches"),
        "{}",
        ok.stdout
    );

    with(&["recover", "--incident", "INC-S3", "--yes"]).expect_code(0);
    assert_eq!(
        cx.concurrency(&f).await,
        Some(3),
        "recover put back the prior value"
    );
    with(&["audit", "verify", "--incident", "INC-S3"]).expect_code(0);
    let audit = audit_in(&cx, &bucket, "ir/state/INC-S3/audit/").await;
    assert_eq!(
        TestContext::audit_events(&audit, "applied", "throttle").len(),
        1
    );

    // The trail in S3 is checked like a file: a deleted record is named.
    s3(&cx)
        .await
        .delete_object()
        .bucket(&bucket)
        .key(format!("ir/state/INC-S3/audit/{:020}.json", 2))
        .send()
        .await
        .expect("delete a record");
    let broken = with(&["audit", "verify", "--incident", "INC-S3"]);
    broken.expect_code(1);
    assert!(
        broken.stderr.contains("record 2 is missing"),
        "{}",
        broken.stderr
    );
    // And a run refuses to continue an incident whose trail lost a record.
    let refused = with(&["run", &pb, "--incident", "INC-S3", "-p", &param, "--yes"]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("record 2 is missing"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn the_full_playbook_with_s3_state_then_evidence_verify_reads_the_trail_from_s3() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let forensic = ev[0].trim_start_matches("forensic_bucket=").to_string();
    let f = cx.unique("s3ev");
    let role_arn = cx.seed_role(&format!("{f}-role")).await;
    cx.create_function_with_role(&f, &role_arn).await;
    let (_, url) = state_bucket(&cx, "ev").await;
    let flagship = crate::common::crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string();
    let param = format!("function={f}");
    let state = ["--state", url.as_str()];
    let run = [
        "run",
        &flagship,
        "--incident",
        "INC-S3EV",
        "-p",
        &param,
        "-p",
        "scope=role",
        "--yes",
    ];
    let params: Vec<&str> = ev.iter().flat_map(|p| ["-p", p.as_str()]).collect();
    cx.run(&[&state[..], &run[..], &params[..]].concat())
        .expect_code(0);
    let verify = [
        "evidence",
        "verify",
        "--incident",
        "INC-S3EV",
        "--bucket",
        &forensic,
    ];
    let ok = cx.run(&[&state[..], &verify[..]].concat());
    ok.expect_code(0);
    assert!(ok.stdout.contains(" 0 mismatch(es)"), "{}", ok.stdout);
    // The trail it checked the manifests against is the one in S3: there
    // is none in the local directory.
    let local = cx.run(&verify);
    assert_ne!(local.code, 0, "{}", local.stdout);
    assert!(local.stderr.contains("no audit trail"), "{}", local.stderr);
}

#[tokio::test]
async fn a_run_killed_mid_way_is_resumed_by_another_process_once_its_lease_expires() {
    let cx = TestContext::new().await;
    let f = cx.unique("s3kill");
    cx.create_function(&f).await;
    cx.set_concurrency(&f, 3).await;
    let (bucket, url) = state_bucket(&cx, "fleet").await;
    let pb = TestContext::throttle_playbook().display().to_string();
    let param = format!("function={f}");
    const LEASE: u64 = 3;
    let lease = LEASE.to_string();
    let args = [
        "--state",
        url.as_str(),
        "--state-lease",
        lease.as_str(),
        "run",
        pb.as_str(),
        "--incident",
        "INC-KILL",
        "-p",
        param.as_str(),
        "--yes",
    ];

    // The first responder makes the call, then stops before recording it.
    let marker = cx.path("paused");
    let mut first = cx
        .firebreak()
        .args(args)
        .env("FIREBREAK_TEST_PAUSE_AT", "after_apply:throttle")
        .env("FIREBREAK_TEST_PAUSE_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the first run never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Alive (if stuck), it keeps its lease beyond the term by the heartbeat.
    std::thread::sleep(Duration::from_secs(LEASE + 1));
    let busy = cx.run(&args);
    busy.expect_code(3);
    assert!(
        busy.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        busy.stderr
    );

    first.kill().expect("SIGKILL");
    let _ = first.wait();
    // Nothing frees a killed holder's lock but time.
    let refused = cx.run(&args);
    refused.expect_code(3);
    assert!(refused.stderr.contains("lease until"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("if it died, its lease lapses at"),
        "{}",
        refused.stderr
    );
    std::thread::sleep(Duration::from_secs(LEASE + 1));

    let resumed = cx.run(&[&["--output", "json"][..], &args].concat());
    resumed.expect_code(0);
    assert!(
        resumed.stderr.contains("took the incident over"),
        "{}",
        resumed.stderr
    );
    let v = resumed.json();
    assert_eq!(v["summary"]["confirmed"], 1, "{v}");
    assert_eq!(v["summary"]["checks_failed"], 0, "{v}");
    assert_eq!(cx.concurrency(&f).await, Some(0));
    let audit = audit_in(&cx, &bucket, "fleet/INC-KILL/audit/").await;
    // The call went out once (the first responder's); the second saw it
    // done and recorded it without calling again.
    assert_eq!(
        TestContext::audit_events(&audit, "applied", "throttle").len(),
        0
    );
    assert_eq!(
        TestContext::audit_events(&audit, "confirmed", "throttle").len(),
        1
    );
    let state = ["--state", url.as_str()];
    cx.run(&[&state[..], &["audit", "verify", "--incident", "INC-KILL"]].concat())
        .expect_code(0);
    cx.run(&[&state[..], &["recover", "--incident", "INC-KILL", "--yes"]].concat())
        .expect_code(0);
    assert_eq!(cx.concurrency(&f).await, Some(3));
}
