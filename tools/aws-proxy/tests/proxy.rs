//! The proxy over the network, in front of a stub upstream (so these run
//! without LocalStack): quotas enforced at their rate, answers the AWS SDK
//! classifies as throttling, latency added, every request counted.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use aws_smithy_types::retry::RetryConfig;
use bytes::Bytes;
use firebreak_aws_proxy::{Config, Proxy, Quotas, Rule};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// An upstream that answers every request with a body fit for the APIs the
/// tests call: Lambda's PutFunctionConcurrency (JSON) and IAM's GetRole.
async fn stub_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stub");
    let addr = listener.local_addr().expect("stub address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let iam = req.uri().path() == "/" && req.method() == hyper::Method::POST;
                    let body = if iam {
                        "<GetRoleResponse><GetRoleResult><Role><Path>/</Path><RoleName>r</RoleName><RoleId>AROA1</RoleId><Arn>arn:aws:iam::111122223333:role/r</Arn><CreateDate>2026-12-02T00:00:00Z</CreateDate></Role></GetRoleResult></GetRoleResponse>"
                    } else {
                        r#"{"ReservedConcurrentExecutions":0}"#
                    };
                    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
                    let ct = if iam { "text/xml" } else { "application/json" };
                    r.headers_mut()
                        .insert("content-type", hyper::header::HeaderValue::from_static(ct));
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

async fn proxy(rules: &[&str], latency: Duration, compress: f64) -> Proxy {
    let rules: Vec<Rule> = rules.iter().map(|r| r.parse().expect("rule")).collect();
    let config = Config {
        upstream: stub_upstream().await.parse().expect("uri"),
        latency,
        compress,
        slow: Default::default(),
    };
    Proxy::start("127.0.0.1:0", config, Quotas::new(rules, compress))
        .await
        .expect("start the proxy")
}

async fn sdk_config(proxy: &Proxy, retry: RetryConfig) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{}", proxy.addr))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "111122223333",
            "test",
            None,
            None,
            "test",
        ))
        .retry_config(retry)
        .load()
        .await
}

#[tokio::test]
async fn lambda_over_quota_is_a_429_the_sdk_reads_as_throttling() {
    let p = proxy(&["lambda=1/2"], Duration::ZERO, 1.0).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(&p, RetryConfig::disabled()).await);
    let put = || {
        lambda
            .put_function_concurrency()
            .function_name("f")
            .reserved_concurrent_executions(0)
            .send()
    };
    put().await.expect("first call within the burst");
    put().await.expect("second call within the burst");
    let err = put()
        .await
        .expect_err("third call in the same second is over quota");
    // The SDK retries the 429 (it classifies it as throttling, not as a
    // client error) and gets through once the bucket refills.
    let retrying = aws_sdk_lambda::Client::new(
        &sdk_config(&p, RetryConfig::standard().with_max_attempts(5)).await,
    );
    retrying
        .put_function_concurrency()
        .function_name("f")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("retried until the bucket refilled");
    let service = err
        .as_service_error()
        .expect("a service error, not a transport one");
    assert!(service.is_too_many_requests_exception(), "{service:?}");
    let raw = err.raw_response().expect("the raw answer");
    assert_eq!(raw.status().as_u16(), 429);
    assert_eq!(raw.headers().get("retry-after"), Some("1"));

    let report = p.stop().await;
    let row = &report["by_api"]["lambda:PutFunctionConcurrency"];
    assert!(row["throttled"].as_u64() >= Some(2), "{report}");
    assert_eq!(
        row["requests"].as_u64().unwrap_or(0) - row["throttled"].as_u64().unwrap_or(0),
        3,
        "three calls got through: {report}"
    );
}

#[tokio::test]
async fn iam_over_quota_is_throttling_and_the_sdk_retries_it() {
    let p = proxy(&["iam=2/1"], Duration::ZERO, 1.0).await;
    let iam = aws_sdk_iam::Client::new(&sdk_config(&p, RetryConfig::disabled()).await);
    iam.get_role()
        .role_name("r")
        .send()
        .await
        .expect("first call");
    let err = iam
        .get_role()
        .role_name("r")
        .send()
        .await
        .expect_err("second call at once is over a 1-request burst");
    let service = err.as_service_error().expect("a service error");
    assert_eq!(service.meta().code(), Some("Throttling"));

    // With the SDK's standard retry the throttled call is retried and
    // succeeds: the SDK classified the answer as throttling, as AWS's.
    let retrying = aws_sdk_iam::Client::new(
        &sdk_config(&p, RetryConfig::standard().with_max_attempts(5)).await,
    );
    retrying
        .get_role()
        .role_name("r")
        .send()
        .await
        .expect("retried until the bucket refilled");
    let report = p.stop().await;
    let row = &report["by_api"]["iam:GetRole"];
    assert!(row["throttled"].as_u64() >= Some(2), "{report}");
    assert_eq!(
        row["requests"].as_u64().unwrap_or(0) - row["throttled"].as_u64().unwrap_or(0),
        2,
        "two calls got through: {report}"
    );
}

/// Sequential requests as fast as they go for `over`: how many passed.
async fn hammer(p: &Proxy, over: Duration) -> (u64, u64) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let auth = "AWS4-HMAC-SHA256 Credential=111122223333/20261202/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x";
    let started = Instant::now();
    let (mut ok, mut throttled) = (0, 0);
    while started.elapsed() < over {
        let req = hyper::Request::builder()
            .method("PUT")
            .uri(format!(
                "http://{}/2017-10-31/functions/f/concurrency",
                p.addr
            ))
            .header("authorization", auth)
            .body(Full::new(Bytes::from_static(
                b"{\"ReservedConcurrentExecutions\":0}",
            )))
            .expect("request");
        let status = client
            .request(req)
            .await
            .expect("the proxy answers")
            .status();
        if status == 429 {
            throttled += 1;
        } else {
            ok += 1;
        }
    }
    (ok, throttled)
}

#[tokio::test]
async fn a_compressed_quota_passes_its_rate_times_the_factor() {
    // 15/s compressed 4x: 60 a second. A burst of 2 lets a probe that
    // arrives a little after its slot still have it (with a burst of 1 a
    // late caller loses the time, as with AWS's buckets).
    let p = proxy(&["lambda=15/2"], Duration::ZERO, 4.0).await;
    let (ok, throttled) = hammer(&p, Duration::from_secs(2)).await;
    // The exact count is the unit tests' (a fake clock); over a real
    // network the first and last slots may fall either side.
    assert!(
        (119..=123).contains(&ok),
        "passed {ok}, throttled {throttled}"
    );
    assert!(throttled > 0, "offered more than the quota");
}

#[tokio::test]
async fn latency_is_added_to_each_call_and_compressed() {
    let p = proxy(&[], Duration::from_millis(200), 4.0).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(&p, RetryConfig::disabled()).await);
    let started = Instant::now();
    for _ in 0..3 {
        lambda
            .put_function_concurrency()
            .function_name("f")
            .reserved_concurrent_executions(0)
            .send()
            .await
            .expect("no quota");
    }
    // 200 ms compressed 4x is 50 ms a call.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let (report, trace) = p.stop_traced().await;
    assert_eq!(report["requests"], 3);
    // Each call in the trace, answered 50 ms or more after it arrived.
    assert_eq!(trace.len(), 3, "{trace:?}");
    for t in &trace {
        assert_eq!(t["api"], "lambda:PutFunctionConcurrency", "{t}");
        assert_eq!(t["status"], 200, "{t}");
        let (asked, answered) = (t["received_ms"].as_u64(), t["answered_ms"].as_u64());
        assert!(
            matches!((asked, answered), (Some(a), Some(b)) if b >= a + 50),
            "{t}"
        );
    }
}

#[tokio::test]
async fn a_bad_upstream_is_refused_with_what_to_give() {
    let config = Config {
        upstream: "https://example.com".parse().expect("uri"),
        latency: Duration::ZERO,
        compress: 1.0,
        slow: Default::default(),
    };
    let err = Proxy::start("127.0.0.1:0", config, Quotas::new(Vec::new(), 1.0))
        .await
        .err()
        .expect("https upstream refused");
    assert!(err.to_string().contains("http://HOST:PORT"), "{err}");
}

/// LocalStack leaves a reserved concurrency of 0 out of GetFunction; AWS
/// does not. Through the proxy the SDK reads AWS's answer, and the proxy's
/// own question upstream is neither counted nor paced.
#[tokio::test]
async fn get_function_carries_a_zero_concurrency_as_on_aws() {
    let p = proxy(&["lambda=15/15"], Duration::ZERO, 1.0).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(&p, RetryConfig::disabled()).await);
    let out = lambda
        .get_function()
        .function_name("f")
        .send()
        .await
        .expect("GetFunction through the proxy");
    assert_eq!(
        out.concurrency()
            .and_then(|c| c.reserved_concurrent_executions()),
        Some(0)
    );
    let report = p.stop().await;
    assert_eq!(report["requests"], 1, "{report}");
    assert_eq!(
        report["by_api"]["lambda:GetFunction"]["requests"], 1,
        "{report}"
    );
    assert!(
        report["by_api"]
            .get("lambda:GetFunctionConcurrency")
            .is_none(),
        "{report}"
    );
}
