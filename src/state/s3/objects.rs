//! The few S3 requests the store makes, each retried in one place, and
//! their failures turned into [`StateError`]s that say what AWS answered
//! and what to do.
//!
//! The subtle one is a conditional PUT whose answer was lost (a timeout, a
//! dropped connection, a 5xx): it may have landed, and its retry then gets
//! 412 PreconditionFailed *from our own write*. Every PUT therefore carries
//! a nonce in its user metadata (`x-amz-meta-firebreak-put`); a 412 after an
//! attempt of unknown outcome is settled by reading the object's metadata
//! back: our nonce means the write is ours, any other means another writer
//! won. (The SDK's own retries are off for this reason: see
//! `aws/state_client.rs`.)

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::aws::error::classify;
use crate::aws::{AwsError, AwsErrorKind};
use crate::state::StateError;

/// User metadata key of the per-PUT nonce.
const NONCE: &str = "firebreak-put";
/// Attempts per request for failures that may pass (throttling, timeouts,
/// 5xx, a concurrent conditional write): 0.1 + 0.2 + 0.4 + 0.8 s of pauses.
const ATTEMPTS: u32 = 5;
/// Reads of one log's records in flight at once.
pub const PARALLEL_READS: usize = 8;

/// An object as read: its bytes and the ETag to make a conditional write on.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: String,
}

/// The condition of a PUT.
#[derive(Debug, Clone, Copy)]
pub enum Cond<'a> {
    /// `If-None-Match: *`: create, never overwrite.
    Create,
    /// `If-Match: <etag>`: replace exactly that version.
    Match(&'a str),
}

/// The answer to a conditional PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written; the new ETag.
    Done { etag: String },
    /// 412: the key exists (Create) or has moved on (Match), by another writer.
    Precondition,
}

/// Why one request failed, before retrying decides.
#[derive(Debug)]
enum Failure {
    Precondition,
    /// NoSuchKey (GetObject) or 404 (HeadObject): the object is absent.
    Absent,
    /// Might pass if asked again; the request may have landed.
    Transient(AwsError),
    Fatal(AwsError),
}

/// Names the bucket and prefix in the errors a user can fix.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
}

impl Target<'_> {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

fn failure<E>(
    op: &'static str,
    iam: &str,
    t: &Target<'_>,
    err: SdkError<E, HttpResponse>,
) -> Failure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let mut e = classify(op, iam, t.url(), err);
    match (e.code.as_deref(), status) {
        (Some("PreconditionFailed"), _) | (_, Some(412)) => return Failure::Precondition,
        (Some("NoSuchKey"), _) => return Failure::Absent,
        (Some("NotFound"), _) | (None, Some(404)) if op == "HeadObject" => return Failure::Absent,
        // A conditional write raced another in flight on the same key (S3
        // answers 409 and asks for a retry).
        (Some("ConditionalRequestConflict" | "OperationAborted"), _) => {
            return Failure::Transient(e)
        }
        _ => {}
    }
    e.hint = match (e.code.as_deref(), e.kind) {
        (Some("NoSuchBucket"), _) => format!(
            "the state bucket `{}` does not exist (or belongs to another account or region): create it (`aws s3api create-bucket --bucket {}`, with versioning on) or correct --state s3://BUCKET/PREFIX",
            t.bucket, t.bucket
        ),
        (_, AwsErrorKind::AccessDenied) => format!(
            "the caller needs s3:GetObject and s3:PutObject on arn:aws:s3:::{}/PREFIX/* and s3:ListBucket on arn:aws:s3:::{} (see docs/architecture.md, \"Shared state in S3\")",
            t.bucket, t.bucket
        ),
        _ => e.hint,
    };
    if e.kind.retryable() || e.kind == AwsErrorKind::EndpointUnreachable {
        Failure::Transient(e)
    } else {
        Failure::Fatal(e)
    }
}

fn store_error(at: String, e: AwsError) -> StateError {
    StateError::Store {
        at,
        source: Box::new(e),
    }
}

/// What a failure that is not the caller's to interpret becomes.
fn unexpected(t: &Target<'_>, op: &'static str, f: Failure) -> StateError {
    match f {
        Failure::Transient(e) | Failure::Fatal(e) => store_error(t.url(), e),
        Failure::Precondition | Failure::Absent => store_error(
            t.url(),
            AwsError::new(
                op,
                t.url(),
                AwsErrorKind::Other,
                "S3 answered with an unexpected condition failure",
                "re-run the command; if it persists, check that the endpoint is S3 (or S3 compatible with conditional writes)",
            ),
        ),
    }
}

async fn pause(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
}

/// The object at `key`, or `None` when there is none.
pub async fn get(c: &Client, t: Target<'_>) -> Result<Option<Object>, StateError> {
    for attempt in 1..=ATTEMPTS {
        let sent = c.get_object().bucket(t.bucket).key(t.key).send().await;
        let f = match sent {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                match out.body.collect().await {
                    Ok(body) => {
                        return Ok(Some(Object {
                            bytes: body.into_bytes().to_vec(),
                            etag,
                        }))
                    }
                    // The body broke off: read it again.
                    Err(e) => Failure::Transient(AwsError::new(
                        "GetObject",
                        t.url(),
                        AwsErrorKind::Timeout,
                        format!("the object's body could not be read: {e}"),
                        "re-run the command; check the network to the state bucket",
                    )),
                }
            }
            Err(e) => failure("GetObject", "s3:GetObject", &t, e),
        };
        match f {
            Failure::Absent => return Ok(None),
            Failure::Transient(_) if attempt < ATTEMPTS => pause(attempt).await,
            f => return Err(unexpected(&t, "GetObject", f)),
        }
    }
    unreachable!("the last attempt returns")
}

/// The ETag and nonce of the object at `key`, or `None` when there is none.
async fn head(c: &Client, t: &Target<'_>) -> Result<Option<(String, Option<String>)>, StateError> {
    for attempt in 1..=ATTEMPTS {
        match c.head_object().bucket(t.bucket).key(t.key).send().await {
            Ok(out) => {
                let nonce = out.metadata().and_then(|m| m.get(NONCE)).cloned();
                return Ok(Some((out.e_tag().unwrap_or_default().to_string(), nonce)));
            }
            Err(e) => match failure("HeadObject", "s3:GetObject", t, e) {
                Failure::Absent => return Ok(None),
                Failure::Transient(_) if attempt < ATTEMPTS => pause(attempt).await,
                f => return Err(unexpected(t, "HeadObject", f)),
            },
        }
    }
    unreachable!("the last attempt returns")
}

/// The current ETag of `key` (to make a first conditional write on an
/// object this handle never read), or `None` when there is none.
pub async fn etag(c: &Client, t: Target<'_>) -> Result<Option<String>, StateError> {
    Ok(head(c, &t).await?.map(|(etag, _)| etag))
}

/// A conditional PUT of `body` (see the module's note on lost answers).
pub async fn put(
    c: &Client,
    t: Target<'_>,
    body: &[u8],
    cond: Cond<'_>,
) -> Result<Put, StateError> {
    let nonce = nonce()?;
    let mut maybe_landed = false;
    for attempt in 1..=ATTEMPTS {
        let req = c
            .put_object()
            .bucket(t.bucket)
            .key(t.key)
            .content_type("application/json")
            .metadata(NONCE, &nonce)
            .body(ByteStream::from(body.to_vec()));
        let req = match cond {
            Cond::Create => req.if_none_match("*"),
            Cond::Match(etag) => req.if_match(etag),
        };
        let f = match req.send().await {
            Ok(out) => {
                let etag = match out.e_tag() {
                    Some(e) => e.to_string(),
                    // Not every S3-compatible store answers with it.
                    None => head(c, &t).await?.map(|(e, _)| e).unwrap_or_default(),
                };
                return Ok(Put::Done { etag });
            }
            Err(e) => failure("PutObject", "s3:PutObject", &t, e),
        };
        match f {
            Failure::Precondition if maybe_landed => {
                return Ok(match head(c, &t).await? {
                    Some((etag, Some(n))) if n == nonce => Put::Done { etag },
                    _ => Put::Precondition,
                });
            }
            Failure::Precondition => return Ok(Put::Precondition),
            Failure::Transient(_) if attempt < ATTEMPTS => {
                maybe_landed = true;
                pause(attempt).await;
            }
            f => return Err(unexpected(&t, "PutObject", f)),
        }
    }
    unreachable!("the last attempt returns")
}

/// Every key under `prefix`, all pages (`page_size` keys a page; S3's
/// default of 1,000 when `None`).
pub async fn list(
    c: &Client,
    bucket: &str,
    prefix: &str,
    page_size: Option<i32>,
) -> Result<Vec<String>, StateError> {
    let t = Target {
        bucket,
        key: prefix,
    };
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut page = None;
        for attempt in 1..=ATTEMPTS {
            let sent = c
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_max_keys(page_size)
                .set_continuation_token(token.clone())
                .send()
                .await;
            match sent {
                Ok(out) => {
                    page = Some(out);
                    break;
                }
                Err(e) => match failure("ListObjectsV2", "s3:ListBucket", &t, e) {
                    Failure::Transient(_) if attempt < ATTEMPTS => pause(attempt).await,
                    f => return Err(unexpected(&t, "ListObjectsV2", f)),
                },
            }
        }
        let Some(out) = page else {
            unreachable!("the last attempt returns or breaks")
        };
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) && token.as_deref() != Some(next) => {
                token = Some(next.to_string());
            }
            _ => return Ok(keys),
        }
    }
}

/// 16 random bytes, hex: a PUT's nonce, a lease's token.
pub fn nonce() -> Result<String, StateError> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).map_err(|e| StateError::Io {
        at: "the operating system's random generator".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    //! A lost answer, staged with recorded responses (LocalStack cannot
    //! drop a response on purpose).

    use std::sync::{Arc, Mutex};

    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    const PRECONDITION: &str = "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>";

    /// PutObject answers 503 (it may have landed), then 412 to the retry;
    /// HeadObject shows the nonce of the attempt (`ours`) or another one.
    async fn lost_answer_then_412(ours: bool) -> Put {
        let seen = Arc::new(Mutex::new(String::new()));
        let capture = seen.clone();
        let put_rule = mock!(Client::put_object)
            .match_requests(move |r| {
                let nonce = r.metadata().and_then(|m| m.get(NONCE)).cloned();
                *capture.lock().unwrap() = nonce.unwrap_or_default();
                r.if_none_match() == Some("*")
            })
            .sequence()
            .http_status(503, None)
            .http_status(412, Some(PRECONDITION.into()))
            .build();
        let head = mock!(Client::head_object).then_output(move || {
            let nonce = if ours {
                seen.lock().unwrap().clone()
            } else {
                "theirs".into()
            };
            HeadObjectOutput::builder()
                .e_tag("\"e1\"")
                .metadata(NONCE, nonce)
                .build()
        });
        let c = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put_rule, &head], |b| b
            .retry_config(aws_config::retry::RetryConfig::disabled()));
        let t = Target {
            bucket: "b",
            key: "INC-1/journal/00000000000000000001.json",
        };
        put(&c, t, b"{}", Cond::Create).await.unwrap()
    }

    #[tokio::test]
    async fn a_412_after_a_lost_answer_is_ours_when_the_object_carries_our_nonce() {
        assert_eq!(
            lost_answer_then_412(true).await,
            Put::Done {
                etag: "\"e1\"".into()
            }
        );
    }

    #[tokio::test]
    async fn a_412_after_a_lost_answer_is_a_conflict_when_another_writer_won() {
        assert_eq!(lost_answer_then_412(false).await, Put::Precondition);
    }

    #[tokio::test]
    async fn a_plain_412_is_a_conflict_without_reading_back() {
        // No HeadObject rule: reading back would fail the test.
        let put_rule = mock!(Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"e0\""))
            .then_http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(412).unwrap(),
                    aws_smithy_types::body::SdkBody::from(PRECONDITION),
                )
            });
        let ok = mock!(Client::put_object)
            .then_output(|| PutObjectOutput::builder().e_tag("\"e2\"").build());
        let c = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put_rule, &ok], |b| b
            .retry_config(aws_config::retry::RetryConfig::disabled()));
        let t = || Target {
            bucket: "b",
            key: "INC-1/lock.json",
        };
        assert_eq!(
            put(&c, t(), b"{}", Cond::Match("\"e0\"")).await.unwrap(),
            Put::Precondition
        );
        assert_eq!(
            put(&c, t(), b"{}", Cond::Match("\"e1\"")).await.unwrap(),
            Put::Done {
                etag: "\"e2\"".into()
            }
        );
    }
}
