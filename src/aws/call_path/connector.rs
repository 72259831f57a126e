//! The HTTP client every AWS request of a run goes through.
//!
//! It wraps the real client (`aws_config` is given it once, so every SDK
//! client built from that config, and every retry attempt, passes here).
//! Per request: wait for the family's bucket, send, and look at the answer;
//! a throttled answer pauses the family (Retry-After, else exponential
//! backoff) and is sent again from here when the body can be replayed, a
//! bounded number of times, before it is handed to the SDK's own retry.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use super::bucket::Wire;
use super::quota::Family;
use super::{throttle, CallPath, Stamped};
use crate::aws::guard::is_read_operation;

/// Sends per SDK attempt: the first and up to three re-sends.
pub const MAX_SENDS: u32 = 4;

/// How long one send may take, from leaving the queue to the response's
/// head (and a throttle's error body): what the SDK's attempt timeout
/// would be if the wait for a quota were not part of its attempt
/// (`aws::sdk_timeouts`). A timed-out send is a connector timeout, which
/// the SDK's standard retry retries.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct PacedClient {
    pub(super) inner: SharedHttpClient,
    pub(super) path: Arc<CallPath>,
}

impl HttpClient for PacedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            path: self.path.clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct PacedConnector {
    pub(super) inner: SharedHttpConnector,
    pub(super) path: Arc<CallPath>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, path) = (self.inner.clone(), self.path.clone());
        HttpConnectorFuture::new(async move { send(inner, path, request).await })
    }
}

async fn send(
    inner: SharedHttpConnector,
    path: Arc<CallPath>,
    mut request: HttpRequest,
) -> Result<aws_smithy_runtime_api::client::orchestrator::HttpResponse, ConnectorError> {
    // Unstamped requests are the credential providers' own (IMDS, SSO,
    // web identity): not ours to pace or count.
    let Some(stamp) = request.extension::<Stamped>().cloned() else {
        return timed(inner.call(request)).await;
    };
    let Some(family) = Family::of(&stamp.service, &stamp.operation) else {
        // Unpaced and never judged (Invoke: its 429 is an answer, not a
        // throttle of ours).
        return timed(inner.call(request)).await;
    };
    let _outstanding = path.recorder.outstanding();
    let bucket = path.bucket(&stamp.account, &stamp.region, family);
    let mutating = !is_read_operation(&stamp.service, &stamp.operation);
    let priority = super::priority(mutating);
    let mut sends = 1u32;
    loop {
        // Cloned before sending: a sent body is consumed.
        let replay = (sends < MAX_SENDS).then(|| request.try_clone()).flatten();
        let queued = std::time::Instant::now();
        let wire = if mutating { Wire::Change } else { Wire::Read };
        let _on_the_wire = bucket.acquire(priority, wire).await;
        path.recorder.record_paced(queued.elapsed());
        let started = std::time::Instant::now();
        let answered = timed(async {
            let response = inner.call(request).await?;
            throttle::inspect(response)
                .await
                .map_err(|e| ConnectorError::io(e.into()))
        })
        .await;
        path.recorder.record_wait(started.elapsed());
        let (response, throttled) = answered?;
        let Some(t) = throttled else {
            return Ok(response);
        };
        path.recorder
            .record_throttled(&stamp.service, &stamp.operation, mutating);
        let pause = t
            .retry_after
            .unwrap_or_else(|| throttle::backoff(sends))
            .min(throttle::MAX_PAUSE);
        bucket.pause(pause);
        tracing::warn!(
            operation = %format!("{}:{}", stamp.service, stamp.operation),
            code = t.code.as_deref().unwrap_or("HTTP 429"),
            ?pause,
            send = sends,
            "throttled; pausing the family"
        );
        match replay {
            Some(next) => {
                // The re-send is a request like any other: counted here,
                // since the SDK's interceptors only see its own attempts.
                path.recorder
                    .record_sent(&stamp.service, &stamp.operation, mutating);
                request = next;
                sends += 1;
            }
            // The SDK's retry (if any) comes back through the paused bucket.
            None => return Ok(response),
        }
    }
}

/// `send` within `SEND_TIMEOUT`.
async fn timed<T>(
    send: impl std::future::Future<Output = Result<T, ConnectorError>>,
) -> Result<T, ConnectorError> {
    match tokio::time::timeout(SEND_TIMEOUT, send).await {
        Ok(answered) => answered,
        Err(_) => Err(ConnectorError::timeout(
            format!("no answer within {} s of sending", SEND_TIMEOUT.as_secs()).into(),
        )),
    }
}

/// The client `aws_config` is given: `inner` behind the run's call path.
pub fn wrap(inner: SharedHttpClient, path: Arc<CallPath>) -> SharedHttpClient {
    SharedHttpClient::new(PacedClient { inner, path })
}
