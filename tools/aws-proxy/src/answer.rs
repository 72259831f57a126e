//! Over-quota answers, shaped as each AWS protocol shapes them, so that an
//! SDK classifies them as throttling exactly as it would AWS's.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::classify::{Api, Protocol};

/// `Retry-After` in seconds: whole seconds, as AWS sends it, when time runs
/// at its real pace; with time compressed a whole second would stall a
/// client ten times too long, so the exact figure with millisecond
/// precision (SDKs read it as a number).
fn retry_after(wait: Duration, compressed: bool) -> String {
    if compressed {
        format!("{:.3}", wait.as_secs_f64().max(0.001))
    } else {
        wait.as_secs_f64().ceil().max(1.0).to_string()
    }
}

pub fn throttled(api: &Api, wait: Duration, compressed: bool, request_id: &str) -> Response<Bytes> {
    let builder = Response::builder().header("x-amzn-RequestId", request_id);
    let built = match api.protocol {
        // Lambda: 429 TooManyRequestsException, with Retry-After.
        Protocol::RestJson => builder
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("Content-Type", "application/json")
            .header("x-amzn-ErrorType", "TooManyRequestsException")
            .header("Retry-After", retry_after(wait, compressed))
            .body(Bytes::from(format!(
                r#"{{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded","retryAfterSeconds":"{}"}}"#,
                retry_after(wait, compressed)
            ))),
        // awsJson services: 400 ThrottlingException.
        Protocol::AwsJson => builder
            .status(StatusCode::BAD_REQUEST)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("x-amzn-ErrorType", "ThrottlingException")
            .body(Bytes::from_static(
                br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            )),
        // IAM, STS and the other query services: 400 Throttling in XML.
        Protocol::Query => builder
            .status(StatusCode::BAD_REQUEST)
            .header("Content-Type", "text/xml")
            .body(Bytes::from(format!(
                "<ErrorResponse xmlns=\"https://{svc}.amazonaws.com/doc/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                svc = api.service
            ))),
        // S3: 503 SlowDown.
        Protocol::RestXml => builder
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("Content-Type", "application/xml")
            .body(Bytes::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>{request_id}</RequestId></Error>"
            ))),
    };
    // Every header above is a valid constant; a failure here would be a
    // programming error, and an empty 429 still reads as throttling.
    built.unwrap_or_else(|_| {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_unless_time_is_compressed() {
        assert_eq!(retry_after(Duration::from_millis(67), false), "1");
        assert_eq!(retry_after(Duration::from_millis(1200), false), "2");
        assert_eq!(retry_after(Duration::from_micros(6_700), true), "0.007");
    }
}
