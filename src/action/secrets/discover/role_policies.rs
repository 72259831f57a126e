//! The execution role's policy documents as they were before this
//! incident contained it.
//!
//! Discovery may run after the quarantine changed the role (a run resumed
//! after it, a second run of the incident). What the function could read
//! *before* containment is what must be rotated, so the policies this
//! incident's quarantine removed still count (the journal holds each one's
//! prior state), and the denies it put on the role do not: they stop the
//! function now, but did not stop what it read before.

use serde_json::Value;

use crate::action::iam::role::{self, RoleRef};
use crate::action::{ActionError, StepContext};
use crate::state::{JournalEvent, JournalRecord};

const QUARANTINE: &str = "iam.quarantine_role";
const INLINE: &str = "inline_policy:";
const ATTACHED: &str = "attached_policy:";

/// This incident's quarantine records on `role_arn` (intents: a change
/// left in doubt counts, its call may have landed).
fn quarantine_intents<'a>(
    history: &'a crate::state::History,
    role_arn: &'a str,
) -> impl Iterator<Item = &'a JournalRecord> {
    history.iter().map(|r| &**r).filter(move |r| {
        r.event == JournalEvent::Intent && r.action == QUARANTINE && r.change.target == role_arn
    })
}

/// Inline policies this incident's quarantine wrote (its deny-all and
/// session revocation).
fn written_by_quarantine(history: &crate::state::History, role_arn: &str) -> Vec<String> {
    quarantine_intents(history, role_arn)
        .filter(|r| !r.change.after.is_null())
        .filter_map(|r| r.change.attribute.strip_prefix(INLINE).map(str::to_string))
        .collect()
}

/// `(where it comes from, document)` for every policy that let the
/// function act before this incident's containment.
pub async fn documents(
    cx: &StepContext<'_>,
    role_arn: &str,
) -> Result<Vec<(String, Value)>, ActionError> {
    let r: RoleRef = role::from_arn(role_arn);
    let ours = written_by_quarantine(cx.history, &r.arn);
    let mut docs = Vec::new();
    for p in role::attached(cx.aws, &r).await? {
        let doc = role::managed_document(cx.aws, &p).await?;
        docs.push((p, doc));
    }
    for (name, doc) in role::inline(cx.aws, &r).await? {
        if !ours.contains(&name) {
            docs.push((format!("{name} (inline)"), doc));
        }
    }
    for rec in quarantine_intents(cx.history, &r.arn)
        .filter(|rec| rec.change.after.is_null() && !rec.change.before.is_null())
    {
        let attribute = &rec.change.attribute;
        if let Some(policy) = attribute.strip_prefix(ATTACHED) {
            if !docs.iter().any(|(p, _)| p == policy) {
                let doc = role::managed_document(cx.aws, policy).await?;
                docs.push((format!("{policy} (detached by this incident)"), doc));
            }
        } else if let Some(name) = attribute.strip_prefix(INLINE) {
            let label = format!("{name} (inline)");
            if !docs.iter().any(|(p, _)| *p == label) {
                docs.push((
                    format!("{name} (inline, deleted by this incident)"),
                    rec.change.before.clone(),
                ));
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;
    use serde_json::json;
    use std::sync::Arc;

    fn shared(history: Vec<JournalRecord>) -> Vec<Arc<JournalRecord>> {
        history.into_iter().map(Arc::new).collect()
    }

    fn intent(attribute: &str, before: Value, after: Value) -> JournalRecord {
        JournalRecord {
            seq: 1,
            time: "t".into(),
            run: "r".into(),
            event: JournalEvent::Intent,
            step: "quarantine-role".into(),
            action: QUARANTINE.into(),
            change: Change::new("arn:aws:iam::1:role/fn", attribute, before, after, "why"),
            confirmed_by_observation: false,
            error: None,
        }
    }

    #[test]
    fn only_the_denies_this_incident_wrote_are_set_aside() {
        let history = vec![
            intent(
                "inline_policy:firebreak-quarantine",
                Value::Null,
                json!({"Statement": []}),
            ),
            intent(
                "inline_policy:firebreak-revoke-sessions",
                Value::Null,
                json!({"Statement": []}),
            ),
            intent(
                "inline_policy:read-secrets",
                json!({"Statement": []}),
                Value::Null,
            ),
            intent(
                "attached_policy:arn:aws:iam::1:policy/p",
                json!(true),
                Value::Null,
            ),
        ];
        assert_eq!(
            written_by_quarantine(&shared(history.clone()), "arn:aws:iam::1:role/fn"),
            vec!["firebreak-quarantine", "firebreak-revoke-sessions"]
        );
        assert!(written_by_quarantine(&shared(history), "arn:aws:iam::1:role/other").is_empty());
    }
}
