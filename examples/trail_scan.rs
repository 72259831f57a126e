//! Benchmark: reading one large CloudTrail log file from S3 the way
//! `cloudtrail.collect` does (streamed: gunzip and parse one record at a
//! time), printing throughput and peak memory. Needs LocalStack:
//!
//!   FIREBREAK_TEST_ENDPOINT=http://127.0.0.1:4566 \
//!     cargo run --example trail_scan -- [RECORDS]
//!
//! It prints figures and asserts nothing about them.

use std::io::Write;
use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{Duration, Utc};
use firebreak::action::cloudtrail::records::Matcher;
use firebreak::action::cloudtrail::trail::{self, Source};
use firebreak::action::cloudtrail::window::Window;
use firebreak::aws::{Aws, AwsSettings};
use serde_json::json;

const REGION: &str = "us-east-1";

/// (VmRSS, VmHWM) in MiB, from /proc/self/status.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let endpoint = std::env::var("FIREBREAK_TEST_ENDPOINT")
        .map_err(|_| "set FIREBREAK_TEST_ENDPOINT to LocalStack, e.g. http://127.0.0.1:4566")?;
    let nanos = Utc::now().timestamp_subsec_nanos();
    let account = format!(
        "8{:011}",
        (u64::from(std::process::id()) << 20 ^ u64::from(nanos)) % 100_000_000_000
    );
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new(&account, "test", None, None, "bench"))
        .load()
        .await;
    let aws = Aws::from_sdk_config(&sdk, REGION.into(), &AwsSettings::default());
    let bucket = format!("fb-bench-trail-{account}");
    aws.s3.create_bucket().bucket(&bucket).send().await?;

    // One log file: 1 record in 100 is about the function.
    let now = Utc::now();
    let at = now - Duration::hours(1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut raw = 0usize;
    gz.write_all(b"{\"Records\":[")?;
    for i in 0..records {
        let function = if i % 100 == 0 { "victim" } else { "bystander" };
        let r = json!({
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::{account}:assumed-role/deployer/session-{i}"), "accountId": account},
            "eventTime": (at + Duration::milliseconds(i as i64)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": "lambda.amazonaws.com",
            "eventName": "GetFunctionConfiguration20150331v2",
            "awsRegion": REGION,
            "sourceIPAddress": format!("198.51.100.{}", i % 250),
            "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
            "requestParameters": {"functionName": function},
            "responseElements": null,
            "requestID": format!("{i:08x}-0000-4000-8000-000000000000"),
            "eventID": format!("{i:08x}-1111-4000-8000-000000000000"),
            "readOnly": true,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
        })
        .to_string();
        if i > 0 {
            gz.write_all(b",")?;
        }
        raw += r.len() + 1;
        gz.write_all(r.as_bytes())?;
    }
    gz.write_all(b"]}")?;
    let compressed = gz.finish()?;
    let size = compressed.len();
    let key = format!(
        "AWSLogs/{account}/CloudTrail/{REGION}/{}/{account}_CloudTrail_{REGION}_{}_bench.json.gz",
        at.format("%Y/%m/%d"),
        at.format("%Y%m%dT%H%MZ")
    );
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from(compressed))
        .send()
        .await?;

    // Reset the high-water mark so it measures the read alone.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (rss_before, _) = memory();
    let window = Window {
        start: now - Duration::hours(2),
        end: now,
    };
    let source = Source {
        bucket: &bucket,
        prefix: "",
        account: &account,
        region: REGION,
    };
    let matcher = Matcher {
        function_name: "victim".into(),
        function_arn: format!("arn:aws:lambda:{REGION}:{account}:function:victim"),
        role_name: Some("victim-role".into()),
        role_arn: Some(format!("arn:aws:iam::{account}:role/victim-role")),
    };
    let t = Instant::now();
    let found = trail::collect(&aws.s3, &source, &window, &matcher).await?;
    let secs = t.elapsed().as_secs_f64();
    let (rss_after, peak) = memory();
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!("records in file     {}", found.records_read);
    println!("records matched     {}", found.records.len());
    println!(
        "file size           {:.1} MiB gzip'd, {:.1} MiB of JSON",
        mib(size),
        mib(raw)
    );
    println!(
        "read + parse        {secs:.2} s ({:.0} records/s, {:.1} MiB/s of JSON)",
        found.records_read as f64 / secs,
        mib(raw) / secs
    );
    println!("RSS before / after  {rss_before:.1} / {rss_after:.1} MiB");
    if reset {
        println!("peak RSS during read {peak:.1} MiB (high-water mark reset before the read)");
    } else {
        println!("peak RSS {peak:.1} MiB (could not reset the high-water mark: includes generating the file)");
    }
    Ok(())
}
