//! `cloudtrail.collect`. LocalStack has no CloudTrail API (501), so the
//! LookupEvents path runs on recorded responses (paging, throttling, a page
//! failing midway), and the trail-bucket path runs against LocalStack S3
//! with seeded CloudTrail log files.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_cloudtrail::error::ErrorMetadata;
use aws_sdk_cloudtrail::operation::lookup_events::{
    LookupEventsError, LookupEventsInput, LookupEventsOutput,
};
use aws_sdk_cloudtrail::types::{Event, LookupAttributeKey, Resource};
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use chrono::{DateTime, Duration as Span, Utc};
use firebreak::action::cloudtrail::lookup::{self, Query, Settings};
use firebreak::action::cloudtrail::window::Window;
use firebreak::aws::{Aws, AwsSettings, CallPath, Guard, Quotas};
use firebreak::engine::Session;
use firebreak::playbook::{self, Phase};
use firebreak::state::{Incident, IncidentId};
use serde_json::{json, Map, Value};

use crate::common::{TestContext, REGION};

// ---------------------------------------------------------------- helpers

async fn aws_for(cx: &TestContext) -> Aws {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(Credentials::new(&cx.account, "test", None, None, "tests"))
        .load()
        .await;
    Aws::from_sdk_config(&sdk, REGION.into(), &AwsSettings::default())
}

async fn bucket(aws: &Aws, name: &str) {
    aws.s3
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
}

async fn keys(aws: &Aws, bucket: &str) -> Vec<String> {
    let out = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

async fn object(aws: &Aws, bucket: &str, key: &str) -> Vec<u8> {
    let out = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get");
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

fn gunzip_lines(bytes: &[u8]) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn event(id: &str, at: DateTime<Utc>, name: &str) -> Event {
    Event::builder()
        .event_id(id)
        .event_name(name)
        .event_source("lambda.amazonaws.com")
        .event_time(aws_smithy_types::DateTime::from_secs(at.timestamp()))
        .username("oncall")
        .resources(
            Resource::builder()
                .resource_type("AWS::Lambda::Function")
                .resource_name("victim")
                .build(),
        )
        .cloud_trail_event(format!(r#"{{"eventID":"{id}","eventName":"{name}"}}"#))
        .build()
}

fn asks(r: &LookupEventsInput, key: LookupAttributeKey, value: &str, token: Option<&str>) -> bool {
    let a = r.lookup_attributes();
    a.len() == 1
        && a[0].attribute_key() == &key
        && a[0].attribute_value() == value
        && r.next_token() == token
        && r.max_results() == Some(50)
        && r.start_time().is_some()
        && r.end_time().is_some()
}

fn page(events: Vec<Event>, next: Option<&str>) -> LookupEventsOutput {
    LookupEventsOutput::builder()
        .set_events(Some(events))
        .set_next_token(next.map(str::to_string))
        .build()
}

fn throttled() -> LookupEventsError {
    LookupEventsError::generic(
        ErrorMetadata::builder()
            .code("ThrottlingException")
            .message("Rate exceeded")
            .build(),
    )
}

fn denied() -> LookupEventsError {
    LookupEventsError::generic(
        ErrorMetadata::builder()
            .code("AccessDeniedException")
            .message("User: arn:aws:iam::111122223333:user/oncall is not authorized to perform: cloudtrail:LookupEvents")
            .build(),
    )
}

/// A CloudTrail client answering from `rules`, guarded, without SDK
/// retries and behind a call path (LookupEvents paced at 2/s) like the one
/// `Aws` builds.
fn cloudtrail(rules: &[&Rule], guard: Guard) -> aws_sdk_cloudtrail::Client {
    let path = CallPath::new(Quotas::default(), guard.recorder.clone());
    let http = path.http_client(aws_smithy_mocks::create_mock_http_client());
    let stamp = path.stamp();
    mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, rules, move |b| b
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .http_client(http.clone())
        .interceptor(guard.clone())
        .interceptor(stamp.clone()))
}

fn guard() -> Guard {
    Guard {
        dry_run: false,
        recorder: Arc::new(firebreak::aws::CallRecorder::default()),
    }
}

// ------------------------------------------------ LookupEvents, recorded

#[tokio::test(start_paused = true)]
async fn lookup_reads_every_page_backs_off_when_throttled_and_merges_queries() {
    let t0 = Utc::now() - Span::hours(3);
    let first = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| asks(r, LookupAttributeKey::ResourceName, "victim", None))
        .then_output(move || {
            page(
                vec![
                    event("e3", t0 + Span::minutes(3), "UpdateFunctionCode20150331v2"),
                    event("e2", t0 + Span::minutes(2), "GetFunction20150331v2"),
                ],
                Some("page-2"),
            )
        });
    // The second page is throttled once, then answers.
    let second = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| {
            asks(
                r,
                LookupAttributeKey::ResourceName,
                "victim",
                Some("page-2"),
            )
        })
        .sequence()
        .error(throttled)
        .output(move || {
            page(
                vec![event(
                    "e1",
                    t0 + Span::minutes(1),
                    "AddPermission20150331v2",
                )],
                None,
            )
        })
        .build();
    // The same event found by another query is kept once, tagged with both.
    let by_user = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| asks(r, LookupAttributeKey::Username, "victim", None))
        .then_output(move || {
            page(
                vec![event("e2", t0 + Span::minutes(2), "GetFunction20150331v2")],
                None,
            )
        });
    let client = cloudtrail(&[&first, &second, &by_user], guard());
    let window = Window {
        start: t0 - Span::hours(1),
        end: t0 + Span::hours(1),
    };
    let settings = Settings {
        attempts: 3,
        backoff: Duration::from_secs(1),
    };
    let queries = [
        Query::new(LookupAttributeKey::ResourceName, "victim"),
        Query::new(LookupAttributeKey::Username, "victim"),
    ];
    let clock = tokio::time::Instant::now();
    let found = lookup::lookup(&client, &queries, &window, &settings)
        .await
        .expect("lookup");

    let ids: Vec<&str> = found
        .events
        .iter()
        .map(|e| e["EventId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["e1", "e2", "e3"], "deduplicated, oldest first");
    assert_eq!(
        found.events[1]["MatchedBy"],
        json!(["ResourceName=victim", "Username=victim"])
    );
    assert_eq!(
        found.events[0]["CloudTrailEvent"],
        r#"{"eventID":"e1","eventName":"AddPermission20150331v2"}"#,
        "the raw record is kept verbatim"
    );
    assert_eq!(found.throttled, 1);
    assert_eq!(found.pages.get("ResourceName=victim"), Some(&2));
    assert_eq!(found.pages.get("Username=victim"), Some(&1));
    assert_eq!(
        (first.num_calls(), second.num_calls(), by_user.num_calls()),
        (1, 2, 1)
    );
    // Paced at 2/s, the throttled call at 0.5 s backs off 1 s, so its retry
    // and the call after it go at 1.5 s and 2 s (virtual time: exact).
    let waited = clock.elapsed();
    assert!(waited >= Duration::from_millis(2000), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn throttling_that_never_ends_and_a_missing_api_are_clear_errors() {
    let always = mock!(aws_sdk_cloudtrail::Client::lookup_events).then_error(throttled);
    let client = cloudtrail(&[&always], guard());
    let window = Window {
        start: Utc::now() - Span::hours(1),
        end: Utc::now(),
    };
    let settings = Settings {
        attempts: 3,
        backoff: Duration::from_secs(1),
    };
    let q = [Query::new(LookupAttributeKey::ResourceName, "victim")];
    let err = lookup::lookup(&client, &q, &window, &settings)
        .await
        .expect_err("throttled forever");
    assert_eq!(always.num_calls(), 3);
    let text = err.to_string();
    assert!(
        text.contains("ThrottlingException") && text.contains("after 3 attempts"),
        "{text}"
    );
    assert!(text.contains("ResourceName=victim (page 1)"), "{text}");

    // What LocalStack answers: the fix is named, and it is not retried.
    let missing = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .http_status(
            501,
            Some(r#"{"__type":"InternalFailure","message":"not emulated"}"#.into()),
        )
        .repeatedly()
        .build();
    let client = cloudtrail(&[&missing], guard());
    let err = lookup::lookup(&client, &q, &window, &settings)
        .await
        .expect_err("501");
    assert_eq!(missing.num_calls(), 1);
    assert!(
        err.to_string().contains("does not implement CloudTrail"),
        "{err}"
    );
    assert!(
        err.hint().contains("`lookup_api: false`") && err.hint().contains("trail_bucket"),
        "{}",
        err.hint()
    );
}

const LOOKUP_PLAYBOOK: &str = r#"apiVersion: firebreak/v1
kind: Playbook
name: collect-lookup
phases:
  identify:
    - id: trail
      action: cloudtrail.collect
      with:
        function: victim
        role: victim-role
        bucket: BUCKET
"#;

/// A session on LocalStack (S3 for the forensic bucket) whose CloudTrail
/// client answers from `rules`.
async fn mocked_session(cx: &TestContext, rules: &[&Rule], run: &str) -> Session {
    let mut aws = aws_for(cx).await;
    aws.cloudtrail = cloudtrail(
        rules,
        Guard {
            dry_run: false,
            recorder: aws.calls.clone(),
        },
    );
    let caller = aws.caller().await.expect("caller");
    let id = IncidentId::parse("INC-CT-API").expect("id");
    let incident = Incident::open(&cx.path(".firebreak"), &id, run, "test").expect("incident");
    Session::new(aws, caller, incident)
}

#[tokio::test]
async fn a_page_failing_midway_stores_nothing_and_the_rerun_completes_a_verified_manifest() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let name = format!("fb-ct-api-{}", cx.account);
    bucket(&aws, &name).await;
    let pb = playbook::load::parse(
        std::path::Path::new("collect.yaml"),
        LOOKUP_PLAYBOOK.replace("BUCKET", &name),
    )
    .expect("playbook");
    let t0 = Utc::now() - Span::hours(2);
    let page_one = move || {
        page(
            vec![event(
                "e2",
                t0 + Span::minutes(2),
                "UpdateFunctionCode20150331v2",
            )],
            Some("page-2"),
        )
    };
    let page_two = move || page(vec![event("e1", t0, "AddPermission20150331v2")], None);
    let empty = || page(vec![], None);

    // Page 2 of the first query is refused: the step fails before writing.
    {
        let one = mock!(aws_sdk_cloudtrail::Client::lookup_events)
            .match_requests(|r| asks(r, LookupAttributeKey::ResourceName, "victim", None))
            .then_output(page_one);
        let two = mock!(aws_sdk_cloudtrail::Client::lookup_events)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_error(denied);
        let s = mocked_session(&cx, &[&one, &two], "run-1").await;
        // The step fails; the plan records it and goes on (contract 14).
        let plan = s
            .build_plan(&pb, &Map::new(), &[Phase::Identify])
            .await
            .expect("a failed read is recorded in the plan, not an error");
        let step = &plan.steps[0];
        assert_eq!(step.status, firebreak::plan::StepStatus::Failed);
        let err = step.error.clone().expect("the failure is recorded");
        assert!(
            err.message.contains("AccessDeniedException") && err.message.contains("(page 2)"),
            "{}",
            err.message
        );
        assert!(err.hint.contains("cloudtrail:LookupEvents"), "{}", err.hint);
        assert!(
            keys(&aws, &name).await.is_empty(),
            "a partial collection was stored"
        );
        assert!(s.incident().journal.records().is_empty());
    }

    // Every page answers: events, collection record and manifest, verified.
    let one = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| asks(r, LookupAttributeKey::ResourceName, "victim", None))
        .then_output(page_one);
    let two = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(page_two);
    let rest = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| r.next_token().is_none())
        .then_output(empty);
    let s = mocked_session(&cx, &[&one, &two, &rest], "run-2").await;
    let plan = s
        .build_plan(&pb, &Map::new(), &[Phase::Identify])
        .await
        .expect("plan");
    let step = &plan.steps[0];
    let attrs: Vec<&str> = step.changes.iter().map(|c| c.attribute.as_str()).collect();
    assert_eq!(
        attrs,
        [
            "evidence:lookup-events.jsonl.gz",
            "evidence:collection.json",
            "evidence:manifest"
        ]
    );
    let note = step.note.as_deref().unwrap_or("");
    assert!(
        note.contains("window ")
            && note.contains(&format!("role arn:aws:iam::{}:role/victim-role", cx.account))
            && note.contains("LookupEvents ResourceName=victim, Username=victim, ResourceName=victim-role: 2 event(s)"),
        "{note}"
    );
    let report = s.apply_plan(&plan, &pb).await.expect("apply");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        (one.num_calls(), two.num_calls(), rest.num_calls()),
        (1, 1, 2),
        "apply reuses what the plan collected: no second round of LookupEvents"
    );
    let stored = keys(&aws, &name).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    let events_key = stored
        .iter()
        .find(|k| k.ends_with("/lookup-events.jsonl.gz"))
        .expect("events artifact");
    assert!(
        events_key.starts_with(&format!(
            "INC-CT-API/{}/{REGION}/victim/cloudtrail/",
            cx.account
        )),
        "{events_key}"
    );
    let lines = gunzip_lines(&object(&aws, &name, events_key).await);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["EventId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["e1", "e2"]);
    cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-CT-API",
        "--bucket",
        &name,
    ])
    .expect_code(0);

    // The same incident again: same window (from the journal), nothing new.
    drop(s); // releases the incident's lock
    let s = mocked_session(&cx, &[&one, &two, &rest], "run-3").await;
    let again = s
        .build_plan(&pb, &Map::new(), &[Phase::Identify])
        .await
        .expect("plan");
    assert_eq!(again.summary().changes, 0, "{:?}", again.steps[0].changes);
    assert_eq!(keys(&aws, &name).await.len(), 3);
}

// ------------------------------------------- trail bucket, on LocalStack

const TRAIL_PLAYBOOK: &str = r#"apiVersion: firebreak/v1
kind: Playbook
name: collect-trail
params:
  function: {type: string, required: true}
  forensic_bucket: {type: string, required: true}
  trail_bucket: {type: string, required: true}
phases:
  identify:
    - id: trail
      action: cloudtrail.collect
      with:
        function: "${params.function}"
        bucket: "${params.forensic_bucket}"
        lookup_api: false
        trail_bucket: "${params.trail_bucket}"
        trail_prefix: org-trail
"#;

fn record(id: &str, at: DateTime<Utc>, name: &str, extra: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09",
        "eventTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": "lambda.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.7",
        "eventID": id,
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory"},
    });
    if let (Some(r), Some(x)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(x.clone());
    }
    r
}

/// Writes one CloudTrail log file, named and filed the way CloudTrail does.
async fn seed_log(
    aws: &Aws,
    cx: &TestContext,
    bucket: &str,
    region: &str,
    written: DateTime<Utc>,
    records: Vec<Value>,
) -> String {
    let key = format!(
        "org-trail/AWSLogs/{acct}/CloudTrail/{region}/{day}/{acct}_CloudTrail_{region}_{stamp}_{n}.json.gz",
        acct = cx.account,
        day = written.format("%Y/%m/%d"),
        stamp = written.format("%Y%m%dT%H%MZ"),
        n = cx.unique("f"),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"Records": records}).to_string().as_bytes())
        .expect("gzip");
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from(gz.finish().expect("gzip")))
        .send()
        .await
        .expect("seed log file");
    key
}

struct Trail {
    cx: TestContext,
    aws: Aws,
    forensic: String,
    trail: String,
    function: String,
}

/// A function, a forensic bucket and a trail bucket whose log files hold
/// three records about the function or its role (one delivered twice)
/// among records that must be left out.
async fn seeded_trail() -> Trail {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let f = cx.unique("ctfn");
    cx.create_function(&f).await;
    let role = format!("{f}-role");
    let forensic = format!("fb-ct-ev-{}", cx.account);
    let trail = format!("fb-ct-trail-{}", cx.account);
    bucket(&aws, &forensic).await;
    bucket(&aws, &trail).await;
    let now = Utc::now();
    let (h2, h3) = (now - Span::hours(2), now - Span::hours(3));
    let fn_arn = format!("arn:aws:lambda:{REGION}:{}:function:{f}", cx.account);
    let code = record(
        "m1",
        h2,
        "UpdateFunctionCode20150331v2",
        json!({"requestParameters": {"functionName": fn_arn}}),
    );
    let by_role = record(
        "m2",
        h2 + Span::minutes(1),
        "ListBuckets",
        json!({"eventSource": "s3.amazonaws.com", "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{f}", cx.account)}}),
    );
    let attach = record(
        "m3",
        h3,
        "AttachRolePolicy",
        json!({"eventSource": "iam.amazonaws.com", "requestParameters": {"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}}),
    );
    let other_fn = record(
        "n1",
        h2,
        "UpdateFunctionCode20150331v2",
        json!({"requestParameters": {"functionName": format!("{f}-other")}}),
    );
    let too_old = record(
        "o1",
        now - Span::hours(30),
        "UpdateFunctionCode20150331v2",
        json!({"requestParameters": {"functionName": f}}),
    );
    let future = record(
        "o2",
        now + Span::hours(3),
        "UpdateFunctionCode20150331v2",
        json!({"requestParameters": {"functionName": f}}),
    );
    seed_log(
        &aws,
        &cx,
        &trail,
        REGION,
        h2 + Span::minutes(5),
        vec![code.clone(), by_role, other_fn, too_old, future],
    )
    .await;
    // CloudTrail may deliver a record twice.
    seed_log(
        &aws,
        &cx,
        &trail,
        REGION,
        h3 + Span::minutes(5),
        vec![attach, code.clone()],
    )
    .await;
    // Another region's folder, and a file written long before the window.
    seed_log(
        &aws,
        &cx,
        &trail,
        "eu-west-1",
        h2 + Span::minutes(5),
        vec![record(
            "r1",
            h2,
            "UpdateFunctionCode20150331v2",
            json!({"requestParameters": {"functionName": f}}),
        )],
    )
    .await;
    seed_log(
        &aws,
        &cx,
        &trail,
        REGION,
        now - Span::hours(40),
        vec![record(
            "o3",
            now - Span::hours(40),
            "CreateFunction20150331",
            json!({"requestParameters": {"functionName": f}}),
        )],
    )
    .await;
    std::fs::write(cx.path("pb.yaml"), TRAIL_PLAYBOOK).expect("playbook");
    Trail {
        cx,
        aws,
        forensic,
        trail,
        function: f,
    }
}

impl Trail {
    fn args<'a>(
        &'a self,
        lead: &[&'a str],
        incident: &'a str,
        params: &'a [String; 3],
    ) -> Vec<&'a str> {
        let mut a: Vec<&str> = lead.to_vec();
        a.extend(["pb.yaml", "--incident", incident]);
        for p in params {
            a.extend(["-p", p.as_str()]);
        }
        a
    }

    fn params(&self) -> [String; 3] {
        [
            format!("function={}", self.function),
            format!("forensic_bucket={}", self.forensic),
            format!("trail_bucket={}", self.trail),
        ]
    }
}

#[tokio::test]
async fn trail_log_files_give_exactly_the_matching_records_verified_and_written_once() {
    let t = seeded_trail().await;
    let (cx, aws) = (&t.cx, &t.aws);
    let params = t.params();

    let plan = cx.run(&t.args(&["--output", "json", "plan"], "INC-CT-TRAIL", &params));
    plan.expect_code(2);
    assert!(
        keys(aws, &t.forensic).await.is_empty(),
        "plan wrote to the bucket"
    );
    let step = plan.json()["targets"][0]["steps"][0].clone();
    let note = step["note"].as_str().unwrap_or("");
    assert!(
        note.contains("window ")
            && note.contains(&format!("trail s3://{}/org-trail/AWSLogs/{}/CloudTrail/{REGION}/: 2 file(s), 3 of 7 record(s) match", t.trail, cx.account)),
        "{note}"
    );
    let planned_keys: Vec<String> = step["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["after"]["key"].as_str().map(str::to_string))
        .collect();
    assert_eq!(planned_keys.len(), 2, "{step}");
    assert!(planned_keys.iter().all(|k| k.starts_with(&format!(
        "INC-CT-TRAIL/{}/{REGION}/{}/cloudtrail/",
        cx.account, t.function
    ))));

    cx.run(&[t.args(&["run"], "INC-CT-TRAIL", &params), vec!["--yes"]].concat())
        .expect_code(0);
    let mut stored = keys(aws, &t.forensic).await;
    stored.sort();
    // Two artifacts, the manifest and the audit trail's copy.
    assert_eq!(stored.len(), 4, "{stored:?}");
    let verify = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-CT-TRAIL",
        "--bucket",
        &t.forensic,
    ]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            // Two artifacts and the audit trail's copy.
            .contains("1 manifest(s), 3 artifact(s) checked, 0 mismatch(es)"),
        "{}",
        verify.stdout
    );

    // Exactly the three records, once each, oldest first, as the trail wrote them.
    let records_key = stored
        .iter()
        .find(|k| k.ends_with("/trail-records.jsonl.gz"))
        .expect("records");
    let bytes = object(aws, &t.forensic, records_key).await;
    let lines = gunzip_lines(&bytes);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["eventID"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["m3", "m1", "m2"]);
    assert_eq!(lines[0]["sourceIPAddress"], "203.0.113.7");
    let manifest_key = stored
        .iter()
        .find(|k| k.ends_with("/manifest.json"))
        .expect("manifest");
    let manifest: Value =
        serde_json::from_slice(&object(aws, &t.forensic, manifest_key).await).expect("json");
    let listed = manifest["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["key"] == records_key.as_str())
        .expect("records listed")
        .clone();
    assert_eq!(listed["sha256"], sha256_hex(&bytes));
    assert_eq!(
        listed["source"],
        format!("s3:GetObject s3://{}/org-trail/AWSLogs/", t.trail)
    );
    let collection_key = stored
        .iter()
        .find(|k| k.ends_with("/collection.json"))
        .expect("collection");
    let collection: Value =
        serde_json::from_slice(&object(aws, &t.forensic, collection_key).await).expect("json");
    assert_eq!(
        collection["trail_files_read"].as_array().map(Vec::len),
        Some(2),
        "{collection}"
    );
    assert_eq!(
        collection["role"],
        format!("arn:aws:iam::{}:role/{}-role", cx.account, t.function)
    );

    // A second run: nothing to plan, nothing written.
    cx.run(&t.args(&["plan"], "INC-CT-TRAIL", &params))
        .expect_code(0);
    cx.run(&[t.args(&["run"], "INC-CT-TRAIL", &params), vec!["--yes"]].concat())
        .expect_code(0);
    assert_eq!(keys(aws, &t.forensic).await.len(), 4);
}

#[tokio::test]
async fn a_sigkill_mid_collection_then_a_rerun_completes_the_same_window() {
    let t = seeded_trail().await;
    let (cx, aws) = (&t.cx, &t.aws);
    let params = t.params();
    let mut args = t.args(&["run"], "INC-CT-KILL", &params);
    args.push("--yes");

    // Killed right after the first artifact reached S3: no manifest yet.
    crate::crash::kill_at(cx, &args, "after_apply:trail");
    assert_eq!(keys(aws, &t.forensic).await.len(), 1);
    let early = cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-CT-KILL",
        "--bucket",
        &t.forensic,
    ]);
    early.expect_code(1);
    assert!(
        early.stderr.contains("records no manifest"),
        "{}",
        early.stderr
    );

    // A new process: the journal gives it the same window, so the first
    // artifact is found stored and the rest completes beside it.
    cx.run(&args).expect_code(0);
    let stored = keys(aws, &t.forensic).await;
    assert_eq!(
        stored.len(),
        4,
        "a different window would add a folder (4: two artifacts, the manifest, the audit copy): {stored:?}"
    );
    cx.run(&[
        "evidence",
        "verify",
        "--incident",
        "INC-CT-KILL",
        "--bucket",
        &t.forensic,
    ])
    .expect_code(0);
}

#[tokio::test]
async fn a_missing_trail_bucket_and_the_lookup_api_on_localstack_are_clear_errors() {
    let cx = TestContext::new().await;
    let aws = aws_for(&cx).await;
    let f = cx.unique("ctmiss");
    cx.create_function(&f).await;
    let forensic = format!("fb-ct-miss-{}", cx.account);
    bucket(&aws, &forensic).await;
    std::fs::write(cx.path("pb.yaml"), TRAIL_PLAYBOOK).expect("playbook");
    let params = [
        format!("function={f}"),
        format!("forensic_bucket={forensic}"),
        "trail_bucket=fb-no-such-trail-bucket".to_string(),
    ];
    let mut args = vec!["plan", "pb.yaml", "--incident", "INC-CT-MISS"];
    for p in &params {
        args.extend(["-p", p.as_str()]);
    }
    let r = cx.run(&args);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("trail bucket fb-no-such-trail-bucket does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`trail_bucket`"), "{}", r.stderr);

    // A log file that is not one (truncated, altered): the step names it.
    let trail = format!("fb-ct-bad-{}", cx.account);
    bucket(&aws, &trail).await;
    let written = Utc::now() - Span::hours(1);
    let bad_key = format!(
        "org-trail/AWSLogs/{acct}/CloudTrail/{REGION}/{}/{acct}_CloudTrail_{REGION}_{}_bad.json.gz",
        written.format("%Y/%m/%d"),
        written.format("%Y%m%dT%H%MZ"),
        acct = cx.account,
    );
    aws.s3
        .put_object()
        .bucket(&trail)
        .key(&bad_key)
        .body(ByteStream::from_static(b"\x1f\x8b truncated"))
        .send()
        .await
        .expect("seed");
    let bad_param = format!("trail_bucket={trail}");
    let mut bad_args = args.clone();
    if let Some(last) = bad_args.last_mut() {
        *last = bad_param.as_str();
    }
    let r = cx.run(&bad_args);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(&format!("s3://{trail}/{bad_key}"))
            && r.stderr.contains("not a readable CloudTrail log file"),
        "{}",
        r.stderr
    );

    // The API path in plan mode: the guard lets LookupEvents through (a read)
    // and LocalStack's 501 becomes the fix to make.
    let api = TRAIL_PLAYBOOK
        .replace("        lookup_api: false\n", "")
        .replace(
            "        trail_bucket: \"${params.trail_bucket}\"\n        trail_prefix: org-trail\n",
            "",
        );
    std::fs::write(cx.path("api.yaml"), api).expect("playbook");
    args[1] = "api.yaml";
    let r = cx.run(&args);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("does not implement CloudTrail LookupEvents"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`lookup_api: false`"), "{}", r.stderr);
    assert!(!r.stderr.contains("dry-run refused"), "{}", r.stderr);
    assert!(keys(&aws, &forensic).await.is_empty());
}
