//! The one call path every AWS request of a run takes (design contract 9):
//! paced ahead of time by token buckets per (account, region, API family),
//! throttling detected, counted and backed off, every request counted per
//! operation.
//!
//! Two halves, because neither sees everything alone:
//! - the `Stamp` interceptor, attached to every client where it is built,
//!   knows the operation (SDK `Metadata`), the region and the account, and
//!   writes them onto each attempt's request in `modify_before_transmit`;
//! - the connector (`connector.rs`), given to `aws_config` as its HTTP
//!   client, sees every attempt on the wire and the raw answer.
//!
//! `CallPath` is run-scoped (owned by `aws::Aws`): its buckets and counts
//! die with the run, unlike a process-global registry that a long-lived
//! responder would grow forever.

mod bucket;
pub mod connector;
pub mod counts;
pub mod quota;
pub mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::region::Region;

pub use bucket::{Bucket, Class, Priority};
pub use counts::{Call, CallCounts, CallRecorder, OpCount};
pub use quota::{Family, Quota, QuotaError, Quotas};

tokio::task_local! {
    /// The position in the run of the target whose work the current task
    /// does: the bucket serves earlier targets first (`bucket` says why).
    /// Scoped to the task, so concurrent runs never see each other's.
    static TARGET: u32;
}

/// Runs `work` as the work of target number `target`.
pub async fn for_target<F: std::future::Future>(target: usize, work: F) -> F::Output {
    // Boxed: a target's whole run is one large future, and moving it into
    // the scope inline would copy it through the stack of every caller.
    TARGET
        .scope(u32::try_from(target).unwrap_or(u32::MAX), Box::pin(work))
        .await
}

/// The current task's target, 0 outside any target's work.
pub fn current_target() -> u32 {
    TARGET.try_with(|t| *t).unwrap_or(0)
}

tokio::task_local! {
    /// Set while the current task's reads start changes: each page of a
    /// streamed listing starts its targets' harm-stopping steps.
    static FEEDS_CHANGES: ();
}

/// Runs `work`, whose reads the bucket serves as it serves changes. A
/// streamed ListFunctions page queued behind the changes of the targets
/// already started waited for all of them (reads go after changes), so
/// the next page's targets started late and the quota idled between
/// pages: 24 throttles a second of the 30 allowed at N = 1,000.
pub async fn feeding_changes<F: std::future::Future>(work: F) -> F::Output {
    FEEDS_CHANGES.scope((), Box::pin(work)).await
}

tokio::task_local! {
    /// Set while the current task applies changes that do not stop harm
    /// by themselves (`after_harm`).
    static AFTER_HARM: ();
}

/// Runs `work`, whose changes the bucket serves after every harm-stopping
/// change waiting and before reads: removing a public statement at
/// target 1 must not hold back the throttle of target 500 (issue 15:
/// "deny on shared roles first, then concurrency 0, then public access").
pub async fn after_harm<F: std::future::Future>(work: F) -> F::Output {
    AFTER_HARM.scope((), Box::pin(work)).await
}

/// A request's place in its bucket's queue: harm-stopping changes, and
/// the reads that start them, first; then other changes; then reads;
/// among equals, earlier targets first.
pub fn priority(mutating: bool) -> Priority {
    let feeds = FEEDS_CHANGES.try_with(|_| ()).is_ok();
    let later = AFTER_HARM.try_with(|_| ()).is_ok();
    let class = if feeds || (mutating && !later) {
        Class::StopsHarm
    } else if mutating {
        Class::Change
    } else {
        Class::Read
    };
    Priority::of(class, current_target())
}

/// Until `Aws::caller` has named the account, requests are keyed by this.
const ACCOUNT_NOT_YET_KNOWN: &str = "caller";

type BucketKey = (Arc<str>, Arc<str>, Family);

#[derive(Debug)]
pub struct CallPath {
    quotas: Quotas,
    buckets: Mutex<HashMap<BucketKey, Arc<Bucket>>>,
    /// The account the run's own credentials belong to, once known.
    account: RwLock<Option<Arc<str>>>,
    pub recorder: Arc<CallRecorder>,
}

impl CallPath {
    pub fn new(quotas: Quotas, recorder: Arc<CallRecorder>) -> Arc<Self> {
        Arc::new(Self {
            quotas,
            buckets: Mutex::default(),
            account: RwLock::default(),
            recorder,
        })
    }

    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// Names the account the run's credentials act in (after STS
    /// GetCallerIdentity): every later request of the run's clients is
    /// paced in that account's buckets.
    pub fn set_account(&self, account: &str) {
        let mut a = self.account.write().unwrap_or_else(|e| e.into_inner());
        *a = Some(Arc::from(account));
    }

    pub fn account(&self) -> Option<Arc<str>> {
        self.account
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The interceptor for clients acting with the run's own credentials.
    pub fn stamp(self: &Arc<Self>) -> Stamp {
        Stamp {
            path: self.clone(),
            account: None,
        }
    }

    /// The interceptor for clients acting in another account (an assumed
    /// role): their requests draw from that account's buckets. It wins over
    /// the run's own stamp whatever the order the two are attached in.
    pub fn stamp_for_account(self: &Arc<Self>, account: &str) -> Stamp {
        Stamp {
            path: self.clone(),
            account: Some(Arc::from(account)),
        }
    }

    /// `inner` behind this call path: give it to `aws_config`.
    pub fn http_client(self: &Arc<Self>, inner: SharedHttpClient) -> SharedHttpClient {
        connector::wrap(inner, self.clone())
    }

    /// The counts so far (the report's `api_calls`).
    pub fn counts(&self) -> CallCounts {
        self.recorder.snapshot()
    }

    /// The bucket of one family in one account and region, made on first use.
    pub fn bucket(&self, account: &str, region: &str, family: Family) -> Arc<Bucket> {
        let region = if family.is_global() { "global" } else { region };
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((Arc::from(account), Arc::from(region), family))
            .or_insert_with(|| Arc::new(Bucket::new(self.quotas.get(family))))
            .clone()
    }
}

/// What the connector needs to know about a request, written on it by the
/// `Stamp` interceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub service: String,
    pub operation: String,
    pub account: Arc<str>,
    pub region: Arc<str>,
    /// Stamped for an explicit account (an assumed role): not overwritten by
    /// the run's own stamp.
    pub fixed_account: bool,
}

#[derive(Debug, Clone)]
pub struct Stamp {
    path: Arc<CallPath>,
    account: Option<Arc<str>>,
}

impl Intercept for Stamp {
    fn name(&self) -> &'static str {
        "firebreak-call-path-stamp"
    }

    // Runs again for every attempt: the orchestrator clears extensions when
    // it clones a request for a retry.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if self.account.is_none()
            && request
                .extension::<Stamped>()
                .is_some_and(|s| s.fixed_account)
        {
            return Ok(());
        }
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_ascii_lowercase(), m.name().to_string()),
            None => ("unknown".into(), "unknown".into()),
        };
        let region: Arc<str> = cfg
            .load::<Region>()
            .map_or_else(|| Arc::from("unknown"), |r| Arc::from(r.as_ref()));
        let account = match &self.account {
            Some(a) => a.clone(),
            None => self
                .path
                .account()
                .unwrap_or_else(|| Arc::from(ACCOUNT_NOT_YET_KNOWN)),
        };
        request.add_extension(Stamped {
            service,
            operation,
            account,
            region,
            fixed_account: self.account.is_some(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
