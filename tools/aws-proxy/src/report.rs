//! Requests and throttled answers per API, and how long the upstream
//! took to answer them (to tell the backend's slowness from the quota's).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Tally {
    /// (requests, throttled, upstream time) per API.
    per_api: Mutex<BTreeMap<String, (u64, u64, Duration)>>,
}

impl Tally {
    pub fn count(&self, api: &str, throttled: bool) {
        let mut m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let row = m.entry(api.to_string()).or_default();
        row.0 += 1;
        row.1 += u64::from(throttled);
    }

    /// The upstream's time to answer one forwarded request.
    pub fn upstream(&self, api: &str, took: Duration) {
        let mut m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(api.to_string()).or_default().2 += took;
    }

    pub fn reset(&self) {
        self.per_api
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `{"requests": N, "throttled": N, "by_api": {"lambda:X": {...}}}`,
    /// each API with its requests, throttled answers and the upstream's
    /// mean time to answer (`upstream_mean_ms`).
    pub fn report(&self) -> serde_json::Value {
        let m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let by_api: serde_json::Map<String, serde_json::Value> = m
            .iter()
            .map(|(k, (n, t, took))| {
                let forwarded = n.saturating_sub(*t).max(1);
                let mean = took.as_secs_f64() * 1000.0 / forwarded as f64;
                (
                    k.clone(),
                    serde_json::json!({
                        "requests": n,
                        "throttled": t,
                        "upstream_mean_ms": (mean * 10.0).round() / 10.0,
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "requests": m.values().map(|r| r.0).sum::<u64>(),
            "throttled": m.values().map(|r| r.1).sum::<u64>(),
            "by_api": by_api,
        })
    }
}
