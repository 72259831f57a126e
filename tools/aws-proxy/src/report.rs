//! Requests and throttled answers per API.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Tally {
    per_api: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl Tally {
    pub fn count(&self, api: &str, throttled: bool) {
        let mut m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let row = m.entry(api.to_string()).or_default();
        row.0 += 1;
        row.1 += u64::from(throttled);
    }

    pub fn reset(&self) {
        self.per_api
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `{"requests": N, "throttled": N, "by_api": {"lambda:X": {...}}}`.
    pub fn report(&self) -> serde_json::Value {
        let m = self.per_api.lock().unwrap_or_else(|e| e.into_inner());
        let by_api: serde_json::Map<String, serde_json::Value> = m
            .iter()
            .map(|(k, (n, t))| {
                (
                    k.clone(),
                    serde_json::json!({"requests": n, "throttled": t}),
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
