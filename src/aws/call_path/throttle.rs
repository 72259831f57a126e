//! Recognising a throttled answer, and how long to hold off after one.
//!
//! AWS says "slow down" in several dialects: HTTP 429 (Lambda), 400 with a
//! `Throttling` code (IAM, STS: XML), 400 with `ThrottlingException` (JSON
//! services, in `x-amzn-ErrorType` and the body), 503 `SlowDown` (S3). The
//! status alone is not enough for 400 and 503, so the error code is read
//! from the header or, failing that, from the (small) body, which is then
//! put back for the SDK to parse as usual.

use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// Error codes that mean "you are over a request-rate quota".
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
];

/// Error bodies are a few hundred bytes; anything larger is not one we read.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The longest the call path holds a family on one answer's say-so: a
/// Retry-After beyond it is passed to the SDK's retry instead of stalling
/// every caller.
pub const MAX_PAUSE: Duration = Duration::from_secs(20);

/// What a throttled answer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub code: Option<String>,
    pub retry_after: Option<Duration>,
}

/// The pause after the `attempt`-th throttled answer without a Retry-After:
/// 0.5 s, 1 s, 2 s, 4 s, ... capped at 8 s. No jitter: the paused bucket
/// already releases the family's callers one interval apart.
pub fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(4);
    (Duration::from_millis(500) * (1 << exp)).min(Duration::from_secs(8))
}

/// `Retry-After` in seconds (AWS sends an integer; a date is ignored).
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    let v = response.headers().get("retry-after")?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn header_code(response: &HttpResponse) -> Option<String> {
    // "ThrottlingException:http://internal.amazon.com/coral/..." → the name.
    let v = response.headers().get("x-amzn-errortype")?;
    let code = v.split(':').next().unwrap_or(v).trim();
    Some(code.to_string())
}

/// A throttling code named in an error body: XML `<Code>X</Code>`, JSON
/// `"__type": "...#X"` or `"code": "X"`.
fn body_code(body: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(body).ok()?;
    THROTTLING_CODES.iter().copied().find(|code| {
        text.contains(&format!("<Code>{code}</Code>"))
            || text.contains(&format!("#{code}\""))
            || text.contains(&format!("\"{code}\""))
    })
}

/// Whether `response` is a throttle. May buffer a small error body; the
/// response handed back always carries its whole body.
pub async fn inspect(
    mut response: HttpResponse,
) -> Result<(HttpResponse, Option<Throttled>), aws_smithy_types::byte_stream::error::Error> {
    let status = response.status().as_u16();
    if !matches!(status, 400 | 429 | 503) {
        return Ok((response, None));
    }
    let retry_after = retry_after(&response);
    let mut code = header_code(&response);
    if status == 429 {
        return Ok((response, Some(Throttled { code, retry_after })));
    }
    if code.is_none() && small_body(&response) {
        let body = response.take_body();
        let bytes = ByteStream::new(body).collect().await?.into_bytes();
        code = body_code(&bytes).map(str::to_string);
        *response.body_mut() = SdkBody::from(bytes);
    }
    let throttled = code
        .as_deref()
        .is_some_and(|c| THROTTLING_CODES.contains(&c));
    Ok((
        response,
        throttled.then_some(Throttled { code, retry_after }),
    ))
}

fn small_body(response: &HttpResponse) -> bool {
    if let Some(b) = response.body().bytes() {
        return b.len() as u64 <= MAX_ERROR_BODY;
    }
    response
        .headers()
        .get("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n <= MAX_ERROR_BODY)
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::http::StatusCode;

    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut r = HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::from(body.to_string()),
        );
        for (k, v) in headers {
            r.headers_mut().insert(k.to_string(), v.to_string());
        }
        r
    }

    async fn code_of(r: HttpResponse) -> Option<Throttled> {
        inspect(r).await.expect("inspect").1
    }

    #[tokio::test]
    async fn every_dialect_of_throttling_is_recognised() {
        let t = code_of(response(429, &[("Retry-After", "2")], "{}")).await;
        assert_eq!(t.and_then(|t| t.retry_after), Some(Duration::from_secs(2)));
        let iam = r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#;
        assert!(code_of(response(400, &[], iam)).await.is_some());
        let json = r#"{"__type":"com.amazonaws.cloudtrail#ThrottlingException","message":"Rate exceeded"}"#;
        assert!(code_of(response(400, &[], json)).await.is_some());
        let header = [(
            "x-amzn-ErrorType",
            "ThrottlingException:http://internal.amazon.com/",
        )];
        assert!(code_of(response(400, &header, "{}")).await.is_some());
        assert!(
            code_of(response(503, &[], "<Error><Code>SlowDown</Code></Error>"))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn other_errors_are_not_throttling_and_keep_their_body() {
        let body = r#"{"__type":"ResourceNotFoundException","message":"no such function"}"#;
        let (r, t) = inspect(response(400, &[], body)).await.expect("inspect");
        assert_eq!(t, None);
        assert_eq!(r.body().bytes(), Some(body.as_bytes()));
        let limit = r#"{"__type":"LimitExceededException"}"#;
        assert_eq!(code_of(response(400, &[], limit)).await, None);
        assert_eq!(
            code_of(response(
                503,
                &[],
                "<Error><Code>ServiceUnavailable</Code></Error>"
            ))
            .await,
            None
        );
        assert_eq!(
            code_of(response(200, &[], "<Code>Throttling</Code>")).await,
            None
        );
    }

    #[test]
    fn backoff_doubles_and_stops_growing() {
        let got: Vec<u64> = (1..=7).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(got, [500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    }
}
