//! The call path with a real SDK client and a fake HTTP connector: no
//! network, virtual time, exact counts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_lambda::config::{Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use tokio::time::Instant;

use super::*;
use crate::aws::guard::Guard;

/// One scripted answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
}

fn ok() -> Answer {
    Answer {
        status: 200,
        headers: vec![],
        body: "{}",
    }
}

fn too_many(retry_after: Option<&'static str>) -> Answer {
    let mut headers = vec![("x-amzn-ErrorType", "TooManyRequestsException")];
    if let Some(s) = retry_after {
        headers.push(("Retry-After", s));
    }
    Answer {
        status: 429,
        headers,
        body: r#"{"Type":"User","message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}"#,
    }
}

/// Answers from a script (then 200 `{}`), remembering when each request
/// arrived and for which path.
#[derive(Debug, Clone)]
struct Fake {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<(String, Duration)>>>,
    start: Instant,
}

impl Fake {
    fn new(script: Vec<Answer>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::default(),
            start: Instant::now(),
        }
    }

    fn seen(&self) -> Vec<(String, Duration)> {
        self.seen.lock().expect("lock").clone()
    }

    fn times(&self, path_part: &str) -> Vec<Duration> {
        self.seen()
            .into_iter()
            .filter(|(p, _)| p.contains(path_part))
            .map(|(_, t)| t)
            .collect()
    }
}

impl HttpConnector for Fake {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.seen
            .lock()
            .expect("lock")
            .push((request.uri().to_string(), self.start.elapsed()));
        let a = self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or_else(ok);
        let mut r = HttpResponse::new(
            StatusCode::try_from(a.status).expect("status"),
            SdkBody::from(a.body),
        );
        for (k, v) in a.headers {
            r.headers_mut().insert(k, v);
        }
        HttpConnectorFuture::ready(Ok(r))
    }
}

fn path_with(lambda: Quota) -> Arc<CallPath> {
    let mut quotas = Quotas::default();
    quotas.set(Family::Lambda, lambda);
    let path = CallPath::new(quotas, Arc::default());
    path.set_account("111122223333");
    path
}

/// A Lambda client's configuration as `Aws` builds one, over `connector`,
/// SDK retries off so that what the test sees is the call path's doing.
fn lambda_config(
    path: &Arc<CallPath>,
    connector: SharedHttpConnector,
) -> aws_sdk_lambda::config::Builder {
    let inner = http_client_fn(move |_, _| connector.clone());
    aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .endpoint_url("http://127.0.0.1:1")
        .http_client(path.http_client(inner))
        .retry_config(RetryConfig::disabled())
        .interceptor(Guard {
            dry_run: false,
            recorder: path.recorder.clone(),
        })
        .interceptor(path.stamp())
}

fn lambda(path: &Arc<CallPath>, fake: &Fake) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::from_conf(
        lambda_config(path, SharedHttpConnector::new(fake.clone())).build(),
    )
}

#[tokio::test(start_paused = true)]
async fn sixty_calls_wait_for_the_family_bucket() {
    let path = path_with(Quota {
        rate: 15.0,
        burst: 5,
    });
    let fake = Fake::new(vec![]);
    let client = lambda(&path, &fake);
    let t0 = Instant::now();
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                // Two different operations: one shared control-plane quota.
                if i % 2 == 0 {
                    c.get_function_concurrency()
                        .function_name("f")
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                } else {
                    c.list_tags()
                        .resource("arn:aws:lambda:us-east-1:111122223333:function:f")
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
        })
        .collect();
    for c in calls {
        c.await.expect("task").expect("call");
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs_f64(55.0 / 15.0) - Duration::from_millis(1),
        "{took:?}"
    );
    let counts = path.counts();
    assert_eq!(
        (counts.total, counts.throttled, counts.mutating),
        (60, 0, 0)
    );
    assert_eq!(
        counts.by_operation["lambda:GetFunctionConcurrency"].calls,
        30
    );
    assert_eq!(counts.by_operation["lambda:ListTags"].calls, 30);

    // GetFunction has its own bucket: 100/s, unaffected by the above.
    let t1 = Instant::now();
    for _ in 0..10 {
        client.get_function().function_name("f").send().await.ok();
    }
    assert!(
        t1.elapsed() <= Duration::from_millis(10),
        "{:?}",
        t1.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_the_whole_family_and_is_counted() {
    let path = path_with(Quota {
        rate: 15.0,
        burst: 5,
    });
    let fake = Fake::new(vec![too_many(Some("2"))]);
    let client = lambda(&path, &fake);
    let first = {
        let c = client.clone();
        tokio::spawn(async move { c.get_function_concurrency().function_name("f").send().await })
    };
    // Another caller in the family, after the throttle was seen.
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .list_tags()
        .resource("arn:aws:lambda:us-east-1:111122223333:function:f")
        .send()
        .await
        .expect("list tags");
    first.await.expect("task").expect("re-sent after the pause");

    let concurrency = fake.times("/concurrency");
    assert_eq!(concurrency.len(), 2, "{:?}", fake.seen());
    assert_eq!(concurrency[0], Duration::ZERO);
    assert!(concurrency[1] >= Duration::from_secs(2), "{concurrency:?}");
    let tags = fake.times("/tags/");
    assert!(
        tags[0] >= Duration::from_secs(2),
        "the family waited too: {tags:?}"
    );

    let counts = path.counts();
    assert_eq!((counts.total, counts.throttled), (3, 1));
    assert_eq!(
        counts.by_operation["lambda:GetFunctionConcurrency"],
        OpCount {
            calls: 2,
            mutating: 0,
            throttled: 1,
            refused: 0
        }
    );
    assert_eq!(counts.by_operation["lambda:ListTags"].calls, 1);
}

#[tokio::test(start_paused = true)]
async fn throttling_that_does_not_end_is_handed_to_the_sdk_after_bounded_sends() {
    let path = path_with(Quota {
        rate: 15.0,
        burst: 5,
    });
    let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let throttle = Answer {
        status: 400,
        headers: vec![],
        body,
    };
    let fake = Fake::new(vec![throttle; 10]);
    let client = lambda(&path, &fake);
    let err = client
        .put_function_concurrency()
        .function_name("f")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect_err("still throttled");
    let code = aws_sdk_lambda::error::ProvideErrorMetadata::code(&err);
    assert_eq!(
        code,
        Some("ThrottlingException"),
        "the SDK parses the put-back body"
    );
    let times = fake.times("/concurrency");
    assert_eq!(times.len(), connector::MAX_SENDS as usize);
    // Backoff 0.5 s, 1 s, 2 s between the four sends.
    assert!(times[3] >= Duration::from_millis(3_500), "{times:?}");
    let c = &path.counts().by_operation["lambda:PutFunctionConcurrency"];
    assert_eq!((c.calls, c.mutating, c.throttled), (4, 4, 4));
}

#[tokio::test(start_paused = true)]
async fn invoke_at_concurrency_zero_is_an_answer_not_a_throttle() {
    let path = path_with(Quota {
        rate: 1.0,
        burst: 1,
    });
    let fake = Fake::new(vec![too_many(Some("30")), too_many(Some("30"))]);
    let client = lambda(&path, &fake);
    for _ in 0..2 {
        let err = client
            .invoke()
            .function_name("f")
            .send()
            .await
            .expect_err("429");
        assert!(err.into_service_error().is_too_many_requests_exception());
    }
    // Neither paced (1/s would space them) nor paused for 30 s.
    let times = fake.times("/invocations");
    assert_eq!(times, [Duration::ZERO, Duration::ZERO]);
    let t0 = Instant::now();
    client
        .get_function_concurrency()
        .function_name("f")
        .send()
        .await
        .expect("get");
    assert_eq!(t0.elapsed(), Duration::ZERO, "the family was not paused");
    let counts = path.counts();
    assert_eq!(counts.throttled, 0);
    assert_eq!(
        counts.by_operation["lambda:Invoke"],
        OpCount {
            calls: 2,
            mutating: 2,
            throttled: 0,
            refused: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_assumed_role_s_account_has_its_own_buckets() {
    let path = path_with(Quota {
        rate: 1.0,
        burst: 1,
    });
    let fake = Fake::new(vec![]);
    let run = lambda(&path, &fake);
    let other = aws_sdk_lambda::Client::from_conf(
        run.config()
            .to_builder()
            .interceptor(path.stamp_for_account("999988887777"))
            .build(),
    );
    let t0 = Instant::now();
    run.get_function_concurrency()
        .function_name("f")
        .send()
        .await
        .expect("run");
    other
        .get_function_concurrency()
        .function_name("f")
        .send()
        .await
        .expect("other");
    assert_eq!(t0.elapsed(), Duration::ZERO, "two accounts, two buckets");
    run.get_function_concurrency()
        .function_name("f")
        .send()
        .await
        .expect("run again");
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

/// Where a ListFunctions page queued behind five targets' changes is
/// served: (its position among the six requests after the first).
async fn listing_position(feeding: bool) -> usize {
    let path = path_with(Quota {
        rate: 1.0,
        burst: 1,
    });
    let fake = Fake::new(vec![]);
    let client = lambda(&path, &fake);
    // Takes the burst: everything below waits for the bucket.
    client.get_account_settings().send().await.expect("first");
    let mut tasks = Vec::new();
    for target in 1..=5 {
        let c = client.clone();
        tasks.push(tokio::spawn(for_target(target, async move {
            c.put_function_concurrency()
                .function_name(format!("f{target}"))
                .reserved_concurrent_executions(0)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })));
    }
    // The changes are queued before the page asks.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let c = client.clone();
    let list = async move {
        c.list_functions()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tasks.push(if feeding {
        tokio::spawn(feeding_changes(list))
    } else {
        tokio::spawn(list)
    });
    for t in tasks {
        t.await.expect("task").expect("call");
    }
    let seen = fake.seen();
    assert_eq!(seen.len(), 7, "{seen:?}");
    seen[1..]
        .iter()
        .position(|(uri, _)| uri.ends_with("/2015-03-31/functions"))
        .unwrap_or_else(|| panic!("no ListFunctions in {seen:?}"))
}

#[tokio::test(start_paused = true)]
async fn a_streamed_listings_page_goes_before_the_changes_it_will_start_more_of() {
    assert_eq!(
        listing_position(false).await,
        5,
        "a plain read waits for changes"
    );
    assert_eq!(
        listing_position(true).await,
        0,
        "a page feeding changes does not"
    );
}

/// The SDK's clock, following tokio's paused one: without it the SDK's
/// stall detection would measure throughput in real time while the test's
/// minutes pass in none.
#[derive(Debug)]
struct VirtualClock {
    base: std::time::SystemTime,
    start: Instant,
}

impl aws_smithy_async::time::TimeSource for VirtualClock {
    fn now(&self) -> std::time::SystemTime {
        self.base + self.start.elapsed()
    }
}

/// A Lambda client with a run's timeouts and stall protection (the ones
/// `Aws::connect` gives the SDK) over `connector`, SDK retries off.
fn lambda_as_run(path: &Arc<CallPath>, connector: SharedHttpConnector) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::from_conf(
        lambda_config(path, connector)
            .timeout_config(crate::aws::sdk_timeouts())
            .stalled_stream_protection(crate::aws::stalled_stream_protection())
            .time_source(VirtualClock {
                base: std::time::SystemTime::now(),
                start: Instant::now(),
            })
            .build(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_request_waits_for_its_quota_as_long_as_it_takes_without_timing_out() {
    // One change every five minutes: the second waits longer than any
    // attempt timeout, and its body (a change has one) is not read while
    // it waits, which the SDK's upload stall protection took for a stall.
    let path = path_with(Quota {
        rate: 1.0 / 300.0,
        burst: 1,
    });
    let fake = Fake::new(vec![]);
    let client = lambda_as_run(&path, SharedHttpConnector::new(fake.clone()));
    let put = |name: &'static str| {
        let c = client.clone();
        tokio::spawn(async move {
            c.put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(0)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "{}",
                        aws_smithy_types::error::display::DisplayErrorContext(e)
                    )
                })
        })
    };
    let (first, second) = (put("a"), put("b"));
    first.await.expect("task").expect("first");
    second.await.expect("task").expect("second, after its wait");
    let times = fake.times("/concurrency");
    assert_eq!(times.len(), 2, "sent once each: {times:?}");
    assert!(times[1] >= Duration::from_secs(299), "{times:?}");
}

/// Takes every request and never answers, remembering when each arrived.
#[derive(Debug, Clone)]
struct Silent {
    seen: Arc<Mutex<Vec<Duration>>>,
    start: Instant,
}

impl HttpConnector for Silent {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        self.seen.lock().expect("lock").push(self.start.elapsed());
        HttpConnectorFuture::new(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_send_times_out_from_when_it_leaves_the_queue() {
    let path = path_with(Quota {
        rate: 1.0 / 100.0,
        burst: 1,
    });
    let t0 = Instant::now();
    let silent = Silent {
        seen: Arc::default(),
        start: t0,
    };
    let client = lambda_as_run(&path, SharedHttpConnector::new(silent.clone()));
    let get = |name: &'static str| {
        let c = client.clone();
        tokio::spawn(async move {
            let err = c
                .get_function_concurrency()
                .function_name(name)
                .send()
                .await
                .expect_err("never answered");
            (t0.elapsed(), err)
        })
    };
    let (first, second) = (get("a"), get("b"));
    // Bounded, so that a send without a timeout fails here instead of
    // hanging the suite.
    let (first, second) = tokio::time::timeout(Duration::from_secs(3600), async {
        (first.await.expect("task"), second.await.expect("task"))
    })
    .await
    .expect("both sends time out");
    let ((first_at, first_err), (second_at, second_err)) = (first, second);
    for err in [&first_err, &second_err] {
        let aws_sdk_lambda::error::SdkError::DispatchFailure(d) = err else {
            panic!("a dispatch failure: {err:?}");
        };
        assert!(d.is_timeout(), "{err:?}");
    }
    // Each failed 30 s after it was sent; the second was sent after its
    // 100 s in the queue, which did not count.
    let sent = silent.seen.lock().expect("lock").clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], Duration::ZERO, "{sent:?}");
    assert!(sent[1] >= Duration::from_secs(99), "{sent:?}");
    assert_eq!(first_at, connector::SEND_TIMEOUT);
    assert_eq!(second_at, sent[1] + connector::SEND_TIMEOUT, "{sent:?}");
}

/// Answers after `delay`, counting how many requests it holds at once.
#[derive(Debug, Clone, Default)]
struct Slow {
    delay: Duration,
    now: Arc<Mutex<usize>>,
    most: Arc<Mutex<usize>>,
}

impl HttpConnector for Slow {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let this = self.clone();
        HttpConnectorFuture::new(async move {
            {
                let mut now = this.now.lock().expect("lock");
                *now += 1;
                let mut most = this.most.lock().expect("lock");
                *most = (*most).max(*now);
            }
            tokio::time::sleep(this.delay).await;
            *this.now.lock().expect("lock") -= 1;
            Ok(HttpResponse::new(
                StatusCode::try_from(200).expect("status"),
                SdkBody::from("{}"),
            ))
        })
    }
}

/// A Lambda client paced at `lambda` through a service that answers each
/// request after a second, and that service (to count what it held).
fn answered_in_a_second(lambda: Quota) -> (aws_sdk_lambda::Client, Slow) {
    let slow = Slow {
        delay: Duration::from_secs(1),
        ..Slow::default()
    };
    let client = aws_sdk_lambda::Client::from_conf(
        lambda_config(&path_with(lambda), SharedHttpConnector::new(slow.clone())).build(),
    );
    (client, slow)
}

/// Forty reads a quota allows at once, from a service that takes a second
/// to answer each: no more than `MAX_IN_FLIGHT` are on the wire together,
/// so the forty take three rounds instead of one.
#[tokio::test(start_paused = true)]
async fn a_family_keeps_sixteen_requests_on_the_wire_at_most() {
    let (client, slow) = answered_in_a_second(Quota {
        rate: 1000.0,
        burst: 100,
    });
    let t0 = Instant::now();
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                c.list_aliases()
                    .function_name("f")
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for c in calls {
        c.await.expect("task").expect("call");
    }
    assert_eq!(*slow.most.lock().expect("lock"), bucket::MAX_IN_FLIGHT);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_millis(3100),
        "{took:?}"
    );
}

/// Forty throttles at 30/s, from a service that takes a second to answer
/// each: they leave at the quota's pace, not sixteen at a time, so a slow
/// spell at the service does not cost the quota's slots (the last leaves
/// at 1.3 s and is answered at 2.3 s; with the reads' sixteen places the
/// seventeenth would wait for the first answer, and the last be answered
/// after 3.3 s).
#[tokio::test(start_paused = true)]
async fn a_slow_service_does_not_hold_back_a_familys_changes() {
    let (client, slow) = answered_in_a_second(Quota {
        rate: 30.0,
        burst: 1,
    });
    let t0 = Instant::now();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.put_function_concurrency()
                    .function_name(format!("f{i}"))
                    .reserved_concurrent_executions(0)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for c in calls {
        c.await.expect("task").expect("call");
    }
    let most = *slow.most.lock().expect("lock");
    assert!(most > bucket::MAX_IN_FLIGHT, "{most} on the wire at most");
    assert!(most <= bucket::MAX_CHANGES_IN_FLIGHT, "{most}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2300) && took < Duration::from_millis(2400),
        "{took:?}"
    );
}
