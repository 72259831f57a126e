//! Requests and throttled answers per API, and how long the upstream
//! took to answer them (to tell the backend's slowness from the quota's).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Tally {
    per_api: Mutex<BTreeMap<String, Row>>,
}

#[derive(Debug, Default)]
struct Row {
    requests: u64,
    throttled: u64,
    upstream: Duration,
    /// When the first forwarded request was answered: a benchmark reads
    /// "harm stopped" as the first answered deny on a role.
    first_answered: Option<SystemTime>,
    last_answered: Option<SystemTime>,
}

impl Tally {
    pub fn count(&self, api: &str, throttled: bool) {
        let mut m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let row = m.entry(api.to_string()).or_default();
        row.requests += 1;
        row.throttled += u64::from(throttled);
    }

    /// The upstream's time to answer one forwarded request.
    pub fn upstream(&self, api: &str, took: Duration) {
        let mut m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let row = m.entry(api.to_string()).or_default();
        row.upstream += took;
        let now = SystemTime::now();
        row.first_answered.get_or_insert(now);
        row.last_answered = Some(now);
    }

    pub fn reset(&self) {
        self.per_api
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `{"requests": N, "throttled": N, "by_api": {"lambda:X": {...}}}`,
    /// each API with its requests, throttled answers and the upstream's
    /// mean time to answer (`upstream_mean_ms`) and when it first answered
    /// one (`first_answered_ms`, since the Unix epoch) and last
    /// (`last_answered_ms`).
    pub fn report(&self) -> serde_json::Value {
        let m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let by_api: serde_json::Map<String, serde_json::Value> = m
            .iter()
            .map(|(k, r)| {
                let forwarded = r.requests.saturating_sub(r.throttled).max(1);
                let mean = r.upstream.as_secs_f64() * 1000.0 / forwarded as f64;
                let epoch_ms = |t: Option<SystemTime>| {
                    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as u64)
                };
                (
                    k.clone(),
                    serde_json::json!({
                        "requests": r.requests,
                        "throttled": r.throttled,
                        "upstream_mean_ms": (mean * 10.0).round() / 10.0,
                        "first_answered_ms": epoch_ms(r.first_answered),
                        "last_answered_ms": epoch_ms(r.last_answered),
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
