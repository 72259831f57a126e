//! Requests and throttled answers per API, and how long the upstream
//! took to answer them (to tell the backend's slowness from the quota's),
//! and how many it let through each second (to see where a caller left the
//! quota idle).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The first request of any API since the start or the last reset:
    /// second 0 of every row's `forwarded_per_s`.
    start: Option<Instant>,
    per_api: BTreeMap<String, Row>,
    /// Every request, in the order they ended (`Tally::trace`).
    requests: Vec<Traced>,
}

/// One request's times, for a benchmark that needs to see which calls
/// shared the upstream with which (`--trace`).
#[derive(Debug)]
struct Traced {
    api: String,
    /// The request's path (a REST API's resource: Lambda's function).
    path: String,
    received: SystemTime,
    /// When the upstream's answer was read; `None`: throttled or failed.
    answered: Option<SystemTime>,
    status: u16,
}

#[derive(Debug, Default)]
struct Row {
    requests: u64,
    throttled: u64,
    upstream: Duration,
    /// When the first request arrived, before any added latency, hold or
    /// throttling: a test can tell two calls were asked side by side.
    first_received: Option<SystemTime>,
    /// When the first forwarded request was answered: a benchmark reads
    /// "harm stopped" as the first answered deny on a role.
    first_answered: Option<SystemTime>,
    last_answered: Option<SystemTime>,
    /// Requests forwarded (not throttled), by whole seconds since `start`.
    forwarded_per_s: Vec<u32>,
}

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a handler panicked; the counts stand.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn count(&self, api: &str, throttled: bool) {
        let mut m = self.lock();
        let second = m.start.get_or_insert_with(Instant::now).elapsed().as_secs() as usize;
        let row = m.per_api.entry(api.to_string()).or_default();
        row.requests += 1;
        row.throttled += u64::from(throttled);
        if !throttled {
            if row.forwarded_per_s.len() <= second {
                row.forwarded_per_s.resize(second + 1, 0);
            }
            row.forwarded_per_s[second] += 1;
        }
    }

    /// A request has arrived (counted by `count` once it is forwarded or
    /// throttled).
    pub fn received(&self, api: &str) {
        let now = SystemTime::now();
        let mut m = self.lock();
        let row = m.per_api.entry(api.to_string()).or_default();
        row.first_received.get_or_insert(now);
    }

    /// The upstream's time to answer one forwarded request.
    pub fn upstream(&self, api: &str, took: Duration) {
        let mut m = self.lock();
        let row = m.per_api.entry(api.to_string()).or_default();
        row.upstream += took;
        let now = SystemTime::now();
        row.first_answered.get_or_insert(now);
        row.last_answered = Some(now);
    }

    /// A request has ended: answered by the upstream (`answered`) or not
    /// (throttled, or the upstream failed), with the status the caller got.
    pub fn ended(
        &self,
        api: &str,
        path: &str,
        received: SystemTime,
        answered: Option<SystemTime>,
        status: u16,
    ) {
        self.lock().requests.push(Traced {
            api: api.to_string(),
            path: path.to_string(),
            received,
            answered,
            status,
        });
    }

    /// One JSON object per request, in the order they ended: `api`,
    /// `path`, `received_ms` and `answered_ms` (since the Unix epoch; `null` when
    /// the upstream did not answer it) and `status`.
    pub fn trace(&self) -> Vec<serde_json::Value> {
        self.lock()
            .requests
            .iter()
            .map(|t| {
                serde_json::json!({
                    "api": t.api,
                    "path": t.path,
                    "received_ms": epoch_ms(Some(t.received)),
                    "answered_ms": epoch_ms(t.answered),
                    "status": t.status,
                })
            })
            .collect()
    }

    pub fn reset(&self) {
        *self.lock() = Inner::default();
    }

    /// `{"requests": N, "throttled": N, "by_api": {"lambda:X": {...}}}`,
    /// each API with its requests, throttled answers and the upstream's
    /// mean time to answer (`upstream_mean_ms`), when the first request
    /// arrived (`first_received_ms`, since the Unix epoch), when the
    /// upstream first answered one (`first_answered_ms`) and last
    /// (`last_answered_ms`), and the requests it forwarded in each second
    /// since the first request of any API (`forwarded_per_s`).
    pub fn report(&self) -> serde_json::Value {
        let inner = self.lock();
        let m = &inner.per_api;
        let by_api: serde_json::Map<String, serde_json::Value> = m
            .iter()
            .map(|(k, r)| {
                let forwarded = r.requests.saturating_sub(r.throttled).max(1);
                let mean = r.upstream.as_secs_f64() * 1000.0 / forwarded as f64;
                (
                    k.clone(),
                    serde_json::json!({
                        "requests": r.requests,
                        "throttled": r.throttled,
                        "upstream_mean_ms": (mean * 10.0).round() / 10.0,
                        "first_received_ms": epoch_ms(r.first_received),
                        "first_answered_ms": epoch_ms(r.first_answered),
                        "last_answered_ms": epoch_ms(r.last_answered),
                        "forwarded_per_s": r.forwarded_per_s,
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "requests": m.values().map(|r| r.requests).sum::<u64>(),
            "throttled": m.values().map(|r| r.throttled).sum::<u64>(),
            "by_api": by_api,
        })
    }
}

fn epoch_ms(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_requests_are_counted_by_the_second_and_throttled_ones_are_not() {
        let t = Tally::default();
        t.count("lambda:PutFunctionConcurrency", false);
        t.count("lambda:PutFunctionConcurrency", false);
        t.count("lambda:PutFunctionConcurrency", true);
        t.count("lambda:GetFunction", false);
        t.received("lambda:GetAccountSettings");
        let r = t.report();
        let put = &r["by_api"]["lambda:PutFunctionConcurrency"];
        assert_eq!(put["requests"], 3);
        assert_eq!(put["throttled"], 1);
        assert_eq!(put["forwarded_per_s"], serde_json::json!([2]));
        assert_eq!(
            r["by_api"]["lambda:GetFunction"]["forwarded_per_s"],
            serde_json::json!([1])
        );
        let asked = &r["by_api"]["lambda:GetAccountSettings"];
        assert!(asked["first_received_ms"].as_u64().is_some(), "{r}");
        assert_eq!(asked["first_answered_ms"], serde_json::Value::Null);
        assert_eq!(asked["requests"], 0);
        let now = SystemTime::now();
        t.ended("lambda:GetFunction", "/f", now, Some(now), 200);
        t.ended("lambda:PutFunctionConcurrency", "/f", now, None, 429);
        let trace = t.trace();
        assert_eq!(trace.len(), 2);
        assert_eq!(trace[0]["api"], "lambda:GetFunction");
        assert_eq!(trace[0]["path"], "/f");
        assert_eq!(trace[0]["received_ms"], trace[0]["answered_ms"]);
        assert_eq!(trace[1]["answered_ms"], serde_json::Value::Null);
        assert_eq!(trace[1]["status"], 429);
        t.reset();
        assert_eq!(t.report()["requests"], 0);
        assert!(t.trace().is_empty());
    }
}
