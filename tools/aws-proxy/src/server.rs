//! The reverse proxy: each request is classified, held for the configured
//! latency, checked against its quota, and either answered as AWS answers
//! an over-quota caller or forwarded to the upstream (LocalStack).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::answer;
use crate::aws_like;
use crate::classify::classify;
use crate::quota::{Quotas, Verdict};
use crate::report::Tally;

#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` of the service behind the proxy.
    pub upstream: Uri,
    /// Added to every call (before compression).
    pub latency: Duration,
    /// Rates are multiplied and latencies divided by it.
    pub compress: f64,
    /// Latency added to one API's calls on top of `latency` (by API name,
    /// `lambda:ListFunctions`): a test can make one call slow on purpose
    /// to show what does or does not wait for it.
    pub slow: BTreeMap<String, Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the upstream `{0}` is not an http://HOST:PORT address")]
    Upstream(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

struct Shared {
    config: Config,
    quotas: Quotas,
    tally: Tally,
    client: Client<HttpConnector, Full<Bytes>>,
    next_id: AtomicU64,
}

/// A running proxy; dropping it (or `stop`) stops accepting.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(listen: &str, config: Config, quotas: Quotas) -> Result<Self, ProxyError> {
        if config.upstream.scheme_str() != Some("http") || config.upstream.authority().is_none() {
            return Err(ProxyError::Upstream(config.upstream.to_string()));
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Listen {
                addr: listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Listen {
            addr: listen.to_string(),
            source,
        })?;
        let shared = Arc::new(Shared {
            config,
            quotas,
            tally: Tally::default(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            next_id: AtomicU64::new(1),
        });
        let (stop, mut stopped) = watch::channel(false);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// Requests and throttled answers per API so far.
    pub fn report(&self) -> serde_json::Value {
        self.shared.tally.report()
    }

    /// Every request so far (`Tally::trace`).
    pub fn trace(&self) -> Vec<serde_json::Value> {
        self.shared.tally.trace()
    }

    /// Stops accepting; the report as it ends.
    pub async fn stop(self) -> serde_json::Value {
        self.stop_traced().await.0
    }

    /// `stop`, with every request (`trace`).
    pub async fn stop_traced(self) -> (serde_json::Value, Vec<serde_json::Value>) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        (self.shared.tally.report(), self.shared.tally.trace())
    }
}

async fn handle(
    s: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = SystemTime::now();
    let path = req.uri().path().to_string();
    let (api, answered, response) = forward(&s, req).await;
    if let Some(api) = api {
        let status = response.status().as_u16();
        s.tally.ended(&api, &path, received, answered, status);
    }
    Ok(response)
}

/// `handle`'s work: the request's API (`None` for the proxy's own paths),
/// when the upstream answered it, and the answer.
async fn forward(
    s: &Shared,
    req: Request<Incoming>,
) -> (Option<String>, Option<SystemTime>, Response<Full<Bytes>>) {
    let (parts, body) = req.into_parts();
    match parts.uri.path() {
        "/_proxy/report" => return (None, None, json(StatusCode::OK, s.tally.report())),
        "/_proxy/reset" => {
            s.tally.reset();
            return (
                None,
                None,
                json(StatusCode::OK, serde_json::json!({"reset": true})),
            );
        }
        _ => {}
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return (
                None,
                None,
                text(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request: {e}"),
                ),
            )
        }
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let api = classify(
        header("authorization"),
        header("x-amz-target"),
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &body,
    );
    let name = api.name();
    s.tally.received(&name);
    let compress = s.config.compress;
    let extra = s.config.slow.get(&api.name()).copied().unwrap_or_default();
    let latency = (s.config.latency + extra).div_f64(compress);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let id = format!("proxy-{:016x}", s.next_id.fetch_add(1, Ordering::Relaxed));
    if let Verdict::Throttle { retry_after } = s.quotas.check(&api) {
        s.tally.count(&api.name(), true);
        let answer = answer::throttled(&api, retry_after, compress != 1.0, &id);
        let (p, b) = answer.into_parts();
        return (Some(name), None, Response::from_parts(p, Full::new(b)));
    }
    s.tally.count(&api.name(), false);
    let mut uri = s.config.upstream.clone().into_parts();
    uri.path_and_query = parts.uri.path_and_query().cloned();
    let Ok(uri) = Uri::from_parts(uri) else {
        return (
            Some(name),
            None,
            text(
                StatusCode::BAD_REQUEST,
                "the request's path is not valid".into(),
            ),
        );
    };
    // Kept only where the answer may need completing (`aws_like`).
    let asked = (api.name() == "lambda:GetFunction").then(|| {
        (
            parts.uri.path().to_string(),
            parts.uri.query().map(str::to_string),
            parts.headers.clone(),
        )
    });
    let mut forward = Request::from_parts(parts, Full::new(body));
    *forward.uri_mut() = uri;
    let sent = std::time::Instant::now();
    let response = match s.client.request(forward).await {
        Ok(r) => r,
        Err(e) => {
            return (
                Some(name),
                None,
                text(
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream did not answer: {e}"),
                ),
            )
        }
    };
    let (mut p, b) = response.into_parts();
    let collected = b.collect().await;
    s.tally.upstream(&name, sent.elapsed());
    let answered = Some(SystemTime::now());
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return (
                Some(name),
                None,
                text(
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream's answer broke off: {e}"),
                ),
            )
        }
    };
    let status = p.status.as_u16();
    let ask = asked.and_then(|(path, query, headers)| {
        aws_like::concurrency_path(&api.name(), &path, query.as_deref(), status, &body)
            .map(|at| (at, headers))
    });
    if let Some((at, headers)) = ask {
        if let Some(completed) = completed_concurrency(s, &at, headers, &body).await {
            p.headers.remove(http::header::CONTENT_LENGTH);
            return (
                Some(name),
                answered,
                Response::from_parts(p, Full::new(completed)),
            );
        }
    }
    (
        Some(name),
        answered,
        Response::from_parts(p, Full::new(body)),
    )
}

/// GetFunction's answer with the function's reserved concurrency, asked
/// of the upstream with the caller's headers (`aws_like`); `None` leaves
/// the answer as it was.
async fn completed_concurrency(
    s: &Shared,
    path: &str,
    headers: http::HeaderMap,
    body: &Bytes,
) -> Option<Bytes> {
    let mut uri = s.config.upstream.clone().into_parts();
    uri.path_and_query = Some(path.parse().ok()?);
    let mut ask = Request::new(Full::new(Bytes::new()));
    *ask.uri_mut() = Uri::from_parts(uri).ok()?;
    *ask.headers_mut() = headers;
    let answer = s.client.request(ask).await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    let setting = answer.into_body().collect().await.ok()?.to_bytes();
    aws_like::with_concurrency(body, &setting)
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(message)));
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = text(status, value.to_string());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
