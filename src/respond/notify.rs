//! The incident summary a route may publish to an SNS topic: who was
//! contained, what is pending, where the evidence is. Best effort: a
//! failed notification is reported, never a reason to fail containment.

use super::responder::Responded;
use crate::aws::error::classify;
use crate::aws::Aws;

pub async fn send(aws: &Aws, topic: &str, r: &Responded) -> String {
    let subject = format!(
        "firebreak: {} {} ({})",
        r.function,
        status_word(r),
        r.incident
    );
    let subject: String = subject.chars().take(99).collect();
    let body = serde_json::json!({
        "incident": r.incident,
        "function": r.function,
        "account": r.account,
        "region": r.region,
        "route": r.route,
        "playbook": r.playbook,
        "status": r.status,
        "summary": r.summary,
        "decisions_pending": r.decisions,
        "failures": r.failures,
        "next": format!("firebreak report --incident {}", r.incident),
    });
    let sent = aws
        .sns
        .publish()
        .topic_arn(topic)
        .subject(subject)
        .message(body.to_string())
        .send()
        .await;
    match sent {
        Ok(out) => format!(
            "sent to {topic} (message {})",
            out.message_id().unwrap_or("?")
        ),
        Err(e) => {
            let e = classify("Publish", "sns:Publish", topic, e);
            tracing::warn!(error = %e, "incident notification failed");
            format!("not sent: {e}")
        }
    }
}

fn status_word(r: &Responded) -> &'static str {
    use crate::engine::RunStatus::*;
    match r.status {
        Ok => "contained",
        DecisionPending => "contained, decision pending",
        Incomplete => "contained, incomplete",
        VerificationFailed => "NOT verified",
        Failed => "containment FAILED",
        Refused => "refused",
    }
}
