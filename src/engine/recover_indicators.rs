//! `recover` never lifts containment over live indicators (design
//! contract 16, issue 13 item 5).
//!
//! Plain recover stays the exact inverse of this incident's changes, but
//! the restorations that lift containment (the throttle, the role's
//! quarantine, the attacker's functions and rules) are held while the
//! identify step's indicators of compromise are still in effect: the
//! attacker's code, layer, variables, statements, URL, policy, mapping,
//! key or function. The question asked is the one identify asked: its
//! arguments are read back from the audit trail (the latest observation of
//! each `lambda.indicators` target) and judged afresh against AWS now.
//! `--accept-indicators` lifts containment anyway, and says so.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::recover::{ItemStatus, RecoverItem};
use super::{EngineError, Session};
use crate::action::lambda::indicators::{self, IndicatorArgs};
use crate::action::ActionError;
use crate::state::audit::AuditRecord;
use crate::state::AuditEvent;

/// The actions whose restoration lets a contained function run again.
pub const LIFTS_CONTAINMENT: [&str; 3] = [
    "lambda.set_concurrency",
    "iam.quarantine_role",
    "lambda.contain_rogue_functions",
];

/// The arguments of the latest identify observation per function, from
/// the trail's bytes (one JSON record a line; a torn or foreign line is
/// skipped: `audit verify` is what judges the trail).
pub fn identify_args(trail: &[u8]) -> Vec<Map<String, Value>> {
    let mut latest: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for line in trail.split(|b| *b == b'\n') {
        let Ok(r) = serde_json::from_slice::<AuditRecord>(line) else {
            continue;
        };
        if r.event != "observation" || r.data["action"] != "lambda.indicators" {
            continue;
        }
        let (Some(target), Some(args)) = (
            r.data["target"].as_str(),
            r.data["state"]["args"].as_object(),
        ) else {
            continue;
        };
        latest.insert(target.to_string(), args.clone());
    }
    latest.into_values().collect()
}

impl Session {
    /// Holds the items that lift containment while indicators remain,
    /// unless `accept` (`--accept-indicators`). Returns the one line the
    /// plan shows, when there is something to say.
    pub async fn hold_over_indicators(
        &self,
        items: &mut [RecoverItem],
        accept: bool,
    ) -> Result<Option<String>, EngineError> {
        let lifts = |i: &RecoverItem| {
            i.status == ItemStatus::Restore && LIFTS_CONTAINMENT.contains(&i.action.as_str())
        };
        if !items.iter().any(lifts) {
            return Ok(None);
        }
        let trail = self
            .incident()
            .audit
            .trail_bytes()
            .map_err(EngineError::from)?;
        let mut remaining = Vec::new();
        let history = self.incident().journal.snapshot();
        for args in identify_args(&trail) {
            let cx = self.step_context(&args, &history, "recover");
            let step_err = |source: ActionError| EngineError::Step {
                step: "recover".into(),
                action: "lambda.indicators".into(),
                source,
            };
            let parsed: IndicatorArgs = serde_json::from_value(Value::Object(args.clone()))
                .map_err(|e| {
                    step_err(ActionError::input(
                        format!("the identify step's recorded arguments cannot be read: {e}"),
                        "the audit trail was written by another version of firebreak; re-run the identify phase",
                    ))
                })?;
            let a = indicators::assess(&cx, &parsed).await.map_err(step_err)?;
            remaining.extend(a.blocking().into_iter().map(|i| i.line()));
        }
        if remaining.is_empty() {
            return Ok(None);
        }
        let named = remaining.join("; ");
        let line = if accept {
            format!(
                "containment is lifted although {} indicator(s) of compromise remain (--accept-indicators): {named}",
                remaining.len()
            )
        } else {
            format!(
                "containment stays: {} indicator(s) of compromise remain ({named}); remove them, or pass --accept-indicators to lift it anyway",
                remaining.len()
            )
        };
        for i in items.iter_mut().filter(|i| lifts(i)) {
            if accept {
                let reason = i.reason.take();
                i.reason = Some(match reason {
                    Some(r) => format!("{r}; lifted although indicators of compromise remain (--accept-indicators)"),
                    None => "lifted although indicators of compromise remain (--accept-indicators)".into(),
                });
            } else {
                i.status = ItemStatus::Held;
                i.reason = Some(format!(
                    "held back: it lifts containment while {} indicator(s) of compromise remain; pass --accept-indicators to restore it anyway",
                    remaining.len()
                ));
            }
            self.audit(
                AuditEvent::RecoverPlanned,
                None,
                json!({"id": i.id, "status": i.status, "change": i.change, "reason": i.reason, "indicators": remaining}),
            )?;
        }
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_latest_identify_arguments_per_function_are_read_from_the_trail() {
        let rec = |seq: u64, event: &str, data: Value| {
            let mut v = serde_json::to_vec(&json!({
                "seq": seq, "time": "t", "incident": "i", "run": "r", "caller": null,
                "event": event, "step": "indicators", "data": data, "prev": "p",
            }))
            .unwrap();
            v.push(b'\n');
            v
        };
        let mut trail = Vec::new();
        trail.extend(rec(1, "observation", json!({"action": "lambda.indicators", "target": "arn:f", "state": {"args": {"function": "f", "window_hours": 1}}})));
        trail.extend(rec(
            2,
            "observation",
            json!({"action": "lambda.describe", "target": "arn:f", "state": {}}),
        ));
        trail.extend(rec(3, "observation", json!({"action": "lambda.indicators", "target": "arn:f", "state": {"args": {"function": "f", "window_hours": 2}}})));
        trail.extend(b"{torn".to_vec());
        let got = identify_args(&trail);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["window_hours"], 2);
    }
}
