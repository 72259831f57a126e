//! Per-operation request counts for one run.
//!
//! Counts, not a list of calls: a responder that runs for days must not
//! grow with every request it sends. The table holds one row per distinct
//! operation (a few dozen at most), in the order each was first seen.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indexmap::IndexMap;
use serde::Serialize;

use super::quota::service_prefix;

/// One operation as the recorder saw it: how many requests it sent or
/// the guard refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    /// Refused by the guard: never serialized, never sent.
    pub refused: bool,
    pub count: u64,
}

/// What the engine reports as `api_calls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// Requests that left the process (every attempt and re-send).
    pub total: u64,
    pub mutating: u64,
    /// Answers that were throttling (HTTP 429, or a throttling error code).
    pub throttled: u64,
    /// Mutations the dry-run guard refused before anything was sent.
    pub refused: u64,
    /// Keyed `"lambda:GetFunction"`.
    pub by_operation: BTreeMap<String, OpCount>,
}

impl CallCounts {
    /// Adds another recorder's counts (a responder holds one connection
    /// per region and account).
    pub fn add(&mut self, other: &CallCounts) {
        self.total += other.total;
        self.mutating += other.mutating;
        self.throttled += other.throttled;
        self.refused += other.refused;
        for (op, c) in &other.by_operation {
            let mine = self.by_operation.entry(op.clone()).or_default();
            mine.calls += c.calls;
            mine.mutating += c.mutating;
            mine.throttled += c.throttled;
            mine.refused += c.refused;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OpCount {
    pub calls: u64,
    pub mutating: u64,
    pub throttled: u64,
    pub refused: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Row {
    mutating: bool,
    sent: u64,
    throttled: u64,
    refused: u64,
}

/// Counts every request of one run's clients; tests, benchmarks and the
/// report read it.
#[derive(Debug, Default)]
pub struct CallRecorder {
    rows: Mutex<IndexMap<(String, String), Row>>,
    /// Time spent waiting for AWS's answers (not for our own pacing): what
    /// is left of a run's wall time is firebreak's own.
    aws_wait_ns: AtomicU64,
    /// Time spent holding requests back to stay under AWS's quotas: a wait
    /// AWS's limits impose, not work of ours.
    paced_ns: AtomicU64,
    /// Wall time with at least one request queued or in flight: what the
    /// sums above count twice when requests run side by side.
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    open: u32,
    since: Option<std::time::Instant>,
    total: std::time::Duration,
}

/// One request from the moment it queues for its bucket until its answer
/// (or its error): dropped, it leaves.
pub struct Outstanding<'a>(&'a CallRecorder);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        let mut w = self.0.waiting();
        w.open = w.open.saturating_sub(1);
        if w.open == 0 {
            if let Some(since) = w.since.take() {
                w.total += since.elapsed();
            }
        }
    }
}

impl CallRecorder {
    fn with_row(&self, service: &str, operation: &str, mutating: bool, f: impl FnOnce(&mut Row)) {
        // A poisoned lock only means another thread panicked mid-update;
        // the counts themselves are still usable.
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let row = rows
            .entry((service.to_string(), operation.to_string()))
            .or_insert(Row {
                mutating,
                ..Row::default()
            });
        f(row);
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Only sums live behind it; a panic elsewhere leaves them usable.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request queues for its bucket: outstanding until the guard drops.
    pub fn outstanding(&self) -> Outstanding<'_> {
        let mut w = self.waiting();
        if w.open == 0 {
            w.since = Some(std::time::Instant::now());
        }
        w.open += 1;
        Outstanding(self)
    }

    /// The wall time so far with at least one request queued or in flight.
    pub fn waited(&self) -> std::time::Duration {
        let w = self.waiting();
        let open = w
            .since
            .filter(|_| w.open > 0)
            .map_or(std::time::Duration::ZERO, |s| s.elapsed());
        w.total + open
    }

    /// One request's round trip to AWS.
    pub fn record_wait(&self, took: std::time::Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.aws_wait_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Every round trip so far, summed.
    pub fn aws_wait(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.aws_wait_ns.load(Ordering::Relaxed))
    }

    /// One request held back by its family's token bucket.
    pub fn record_paced(&self, took: std::time::Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.paced_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Every pacing delay so far, summed.
    pub fn paced(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.paced_ns.load(Ordering::Relaxed))
    }

    /// A request left the process.
    pub fn record_sent(&self, service: &str, operation: &str, mutating: bool) {
        self.with_row(service, operation, mutating, |r| r.sent += 1);
    }

    /// The guard refused a request before it was serialized.
    pub fn record_refused(&self, service: &str, operation: &str) {
        self.with_row(service, operation, true, |r| r.refused += 1);
    }

    /// An answer was throttling.
    pub fn record_throttled(&self, service: &str, operation: &str, mutating: bool) {
        self.with_row(service, operation, mutating, |r| r.throttled += 1);
    }

    fn rows(&self) -> Vec<((String, String), Row)> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Operations that sent at least one request, with how many.
    pub fn sent(&self) -> Vec<Call> {
        self.rows()
            .into_iter()
            .filter(|(_, r)| r.sent > 0)
            .map(|((service, operation), r)| Call {
                service,
                operation,
                mutating: r.mutating,
                refused: false,
                count: r.sent,
            })
            .collect()
    }

    pub fn mutating_sent(&self) -> Vec<Call> {
        self.sent().into_iter().filter(|c| c.mutating).collect()
    }

    /// Operations the guard refused, with how many times.
    pub fn refused(&self) -> Vec<Call> {
        self.rows()
            .into_iter()
            .filter(|(_, r)| r.refused > 0)
            .map(|((service, operation), r)| Call {
                service,
                operation,
                mutating: true,
                refused: true,
                count: r.refused,
            })
            .collect()
    }

    /// The counts as the report shows them.
    pub fn snapshot(&self) -> CallCounts {
        let mut out = CallCounts::default();
        for ((service, operation), r) in self.rows() {
            let mutating = if r.mutating { r.sent } else { 0 };
            out.total += r.sent;
            out.mutating += mutating;
            out.throttled += r.throttled;
            out.refused += r.refused;
            let key = format!("{}:{operation}", service_prefix(&service));
            let op = out.by_operation.entry(key).or_default();
            op.calls += r.sent;
            op.mutating += mutating;
            op.throttled += r.throttled;
            op.refused += r.refused;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_side_by_side_are_waited_for_once() {
        use std::time::{Duration, Instant};
        let r = CallRecorder::default();
        assert_eq!(r.waited(), Duration::ZERO);
        let t0 = Instant::now();
        let first = r.outstanding();
        std::thread::sleep(Duration::from_millis(20));
        let t1 = Instant::now();
        let second = r.outstanding();
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        let t2 = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        // Still open: the second request's wait is counted as it goes.
        assert!(r.waited() >= Duration::from_millis(60), "{:?}", r.waited());
        drop(second);
        let t3 = Instant::now();
        let done = r.waited();
        // Each moment once: no more than the span in which either was
        // open, and less than their two waits added (they overlapped by
        // 20 ms or more).
        assert!(done <= t3 - t0, "{done:?} > {:?}", t3 - t0);
        assert!(done < (t2 - t0) + (t3 - t1), "{done:?}");
        // Nothing outstanding: no more waiting is counted.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(r.waited(), done);
    }

    #[test]
    fn counts_are_per_operation_and_bounded() {
        let rec = CallRecorder::default();
        for _ in 0..1_000 {
            rec.record_sent("lambda", "GetFunction", false);
        }
        rec.record_sent("lambda", "PutFunctionConcurrency", true);
        rec.record_throttled("lambda", "PutFunctionConcurrency", true);
        rec.record_sent("lambda", "PutFunctionConcurrency", true);
        rec.record_refused("iam", "PutRolePolicy");
        rec.record_sent("cloudwatch logs", "FilterLogEvents", false);

        assert_eq!(rec.rows().len(), 4, "one row per operation, not per call");
        let c = rec.snapshot();
        assert_eq!(
            (c.total, c.mutating, c.throttled, c.refused),
            (1_003, 2, 1, 1)
        );
        assert_eq!(
            c.by_operation["lambda:PutFunctionConcurrency"],
            OpCount {
                calls: 2,
                mutating: 2,
                throttled: 1,
                refused: 0
            }
        );
        assert_eq!(c.by_operation["logs:FilterLogEvents"].calls, 1);
        assert_eq!(c.by_operation["iam:PutRolePolicy"].refused, 1);
        let sent: Vec<_> = rec
            .sent()
            .into_iter()
            .map(|c| (c.operation, c.count))
            .collect();
        assert_eq!(
            sent,
            [
                ("GetFunction".to_string(), 1_000),
                ("PutFunctionConcurrency".to_string(), 2),
                ("FilterLogEvents".to_string(), 1)
            ]
        );
        assert_eq!(rec.mutating_sent().len(), 1);
        let json = serde_json::to_value(&c).expect("serializable");
        assert_eq!(json["by_operation"]["lambda:GetFunction"]["calls"], 1_000);
    }
}
