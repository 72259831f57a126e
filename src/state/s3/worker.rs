//! How the blocking state traits reach the async SDK: a thread of the
//! store's own, running a current-thread tokio runtime, to which each trait
//! method sends one job and whose answer it waits for on a std channel.
//!
//! Why not call the SDK on the caller's runtime: the traits are synchronous
//! and are called from async code (the engine, under its mutex) on a
//! multi-thread runtime, and from tests on current-thread runtimes.
//! `Handle::block_on` from inside a runtime panics; `block_in_place` panics
//! on a current-thread runtime; a future parked on the caller's own
//! current-thread runtime while that thread blocks waiting for it never
//! runs (deadlock). A job on this thread depends on nothing of the caller:
//! the caller only blocks on `std::sync::mpsc::Receiver::recv`, which works
//! the same inside or outside any runtime (tokio's `blocking_recv` would
//! panic inside one). The cost is that the calling thread blocks for one
//! request, exactly as a local fsync blocks it; the engine makes no AWS
//! call before the append is durable anyway (`store.rs`).
//!
//! The runtime also carries the lease's heartbeat, so a holder keeps its
//! lease while the caller's runtime is busy (or, in crash tests, parked).
//! Jobs run concurrently (each is spawned), so a slow request does not hold
//! up the heartbeat. The thread ends when the last handle to it is dropped.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::aws::{AwsError, AwsErrorKind, AwsSettings};
use crate::state::StateError;

type Client = aws_sdk_s3::Client;
type Job =
    Box<dyn FnOnce(Result<Client, AwsError>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A backstop only: every request has its own SDK timeouts and a bounded
/// number of attempts, well inside this.
const ANSWER_WITHIN: Duration = Duration::from_secs(300);

/// Where the worker's client comes from.
#[derive(Debug)]
pub enum ClientSource {
    /// Built on the worker from the global AWS settings.
    Settings(AwsSettings),
    /// Built by the caller (tests, with their own credentials).
    Ready(Client),
}

#[derive(Debug, Clone)]
pub struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// For messages when the worker cannot answer.
    at: String,
}

impl Worker {
    /// Starts the thread; the client is built on it (credentials are
    /// resolved there too), and a failure to build it is every job's answer.
    pub fn start(source: ClientSource, at: String) -> Result<Self, StateError> {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("firebreak-state-s3")
            .build()
            .map_err(|e| StateError::Io {
                at: at.clone(),
                source: e,
            })?;
        std::thread::Builder::new()
            .name("firebreak-state-s3".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let client = match source {
                        ClientSource::Settings(s) => crate::aws::state_s3_client(&s).await,
                        ClientSource::Ready(c) => Ok(c),
                    };
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(job(client.clone()));
                    }
                });
            })
            .map_err(|e| StateError::Io {
                at: at.clone(),
                source: e,
            })?;
        Ok(Self { jobs, at })
    }

    /// Runs `f` with the client on the worker's runtime and waits for its
    /// answer. Safe from any thread, inside or outside any runtime.
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StateError>> + Send + 'static,
    {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let at = self.at.clone();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let result = match client {
                    Ok(c) => f(c).await,
                    Err(e) => Err(StateError::Store {
                        at,
                        source: Box::new(e),
                    }),
                };
                // The caller may have given up waiting (the backstop): then
                // nobody wants the answer.
                let _ = reply.send(result);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| self.gone("is not running"))?;
        match answer.recv_timeout(ANSWER_WITHIN) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(self.gone("did not answer within 5 minutes"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(self.gone("stopped before answering"))
            }
        }
    }

    fn gone(&self, what: &str) -> StateError {
        StateError::Store {
            at: self.at.clone(),
            source: Box::new(AwsError::new(
                "state request",
                self.at.clone(),
                AwsErrorKind::Other,
                format!("the state store's request thread {what}"),
                "re-run the command; if it persists, run with -vv and report it",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn worker() -> Worker {
        let rule = mock!(Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .body(ByteStream::from_static(b"ok"))
                .build()
        });
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&rule]);
        Worker::start(ClientSource::Ready(client), "s3://b/p".into()).unwrap()
    }

    /// One blocking call, the way the traits make it.
    fn fetch(w: &Worker) -> Vec<u8> {
        w.call(|c| async move {
            let out = c.get_object().bucket("b").key("k").send().await.unwrap();
            Ok(out.body.collect().await.unwrap().into_bytes().to_vec())
        })
        .unwrap()
    }

    #[test]
    fn a_call_works_outside_any_runtime() {
        assert_eq!(fetch(&worker()), b"ok");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_works_inside_a_current_thread_runtime() {
        // The caller's only thread blocks; the request runs on the worker.
        assert_eq!(fetch(&worker()), b"ok");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_works_inside_a_multi_thread_runtime_and_from_its_tasks() {
        let w = worker();
        assert_eq!(fetch(&w), b"ok");
        let from_task = tokio::spawn(async move { fetch(&w) }).await.unwrap();
        assert_eq!(from_task, b"ok");
    }

    #[test]
    fn an_error_comes_back_as_the_answer() {
        let w = worker();
        let r: Result<(), StateError> =
            w.call(|_| async { Err(StateError::BadMetaName("x".into())) });
        assert!(matches!(r, Err(StateError::BadMetaName(_))));
    }
}
