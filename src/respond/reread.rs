//! The source of truth, read back before anything is done: an event can
//! be forged by whoever may send to the queue, the topic or the bus, but
//! it cannot make CloudWatch hold an alarm in ALARM or GuardDuty hold an
//! active finding. What the responder acts on is what it re-read here.

use aws_sdk_cloudwatch::types::{HistoryItemType, StateValue};
use aws_sdk_securityhub::types::{
    AwsSecurityFindingFilters, RecordState, StringFilter, StringFilterComparison, WorkflowStatus,
};

use super::event::{AlarmChange, Event, EventKind, Finding, Refusal};
use crate::aws::error::classify;
use crate::aws::{Aws, AwsError};

/// Why the re-read did not confirm the event.
#[derive(Debug, thiserror::Error)]
pub enum RereadError {
    /// AWS answered, and its answer contradicts the event.
    #[error(transparent)]
    Refused(Refusal),
    /// AWS could not be asked; the event may be true, so it is not dropped.
    #[error(transparent)]
    Failed(AwsError),
}

fn refuse(code: &'static str, reason: impl Into<String>) -> RereadError {
    RereadError::Refused(Refusal::new(code, reason))
}

/// The event as AWS holds it now. Only read calls are made.
pub async fn reread(aws: &Aws, event: &Event) -> Result<Event, RereadError> {
    let kind = match &event.kind {
        EventKind::Alarm(a) => EventKind::Alarm(alarm(aws, a).await?),
        EventKind::GuardDuty(f) => EventKind::GuardDuty(guardduty(aws, f).await?),
        EventKind::SecurityHub(f) => EventKind::SecurityHub(securityhub(aws, f).await?),
    };
    Ok(Event {
        hops: event.hops.clone(),
        kind,
    })
}

async fn alarm(aws: &Aws, a: &AlarmChange) -> Result<AlarmChange, RereadError> {
    let out = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&a.name)
        .send()
        .await
        .map_err(|e| {
            RereadError::Failed(classify(
                "DescribeAlarms",
                "cloudwatch:DescribeAlarms",
                &a.arn,
                e,
            ))
        })?;
    let Some(found) = out
        .metric_alarms()
        .iter()
        .find(|m| m.alarm_name() == Some(&a.name))
    else {
        return Err(refuse(
            "unknown_alarm",
            format!(
                "CloudWatch has no alarm {} in account {} {}",
                a.name, a.account, a.region
            ),
        ));
    };
    if found.alarm_arn() != Some(a.arn.as_str()) {
        return Err(refuse(
            "reread_mismatch",
            format!(
                "alarm {} has ARN {}, not the event's {}",
                a.name,
                found.alarm_arn().unwrap_or("(none)"),
                a.arn
            ),
        ));
    }
    let mut dimensions: Vec<(String, String)> = Vec::new();
    let stats = found
        .metrics()
        .iter()
        .filter_map(|m| m.metric_stat().and_then(|s| s.metric()))
        .flat_map(|m| m.dimensions());
    for d in found.dimensions().iter().chain(stats) {
        let pair = (
            d.name().unwrap_or_default().to_string(),
            d.value().unwrap_or_default().to_string(),
        );
        if !dimensions.contains(&pair) {
            dimensions.push(pair);
        }
    }
    let (mut mine, mut theirs) = (dimensions.clone(), a.dimensions.clone());
    mine.sort();
    theirs.sort();
    if mine != theirs {
        return Err(refuse(
            "reread_mismatch",
            format!(
                "alarm {}'s dimensions are not the ones the event claims",
                a.name
            ),
        ));
    }
    // An alarm forced into ALARM, or one whose errors stopped because the
    // function was throttled, may be back to OK by the time we look: its
    // history still proves the transition the event reports.
    if found.state_value() != Some(&StateValue::Alarm) && !went_to_alarm_at(aws, a).await? {
        return Err(refuse(
            "not_in_alarm",
            format!(
                "alarm {} is {} now and its history shows no change to ALARM at {}",
                a.name,
                found.state_value().map_or("(no state)", |s| s.as_str()),
                a.changed_at
            ),
        ));
    }
    Ok(AlarmChange {
        dimensions,
        state: "ALARM".into(),
        ..a.clone()
    })
}

/// How far the history's timestamp of a state change may be from the one
/// in the notification (they are taken at slightly different moments).
const HISTORY_SLACK_SECS: i64 = 5;

async fn went_to_alarm_at(aws: &Aws, a: &AlarmChange) -> Result<bool, RereadError> {
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(&a.changed_at) else {
        return Ok(false);
    };
    let at = at.timestamp();
    // Newest first; filtered here rather than with StartDate/EndDate,
    // which LocalStack cannot compare (naive vs aware datetimes).
    let out = aws
        .cloudwatch
        .describe_alarm_history()
        .alarm_name(&a.name)
        .history_item_type(HistoryItemType::StateUpdate)
        .max_records(100)
        .send()
        .await
        .map_err(|e| {
            RereadError::Failed(classify(
                "DescribeAlarmHistory",
                "cloudwatch:DescribeAlarmHistory",
                &a.arn,
                e,
            ))
        })?;
    Ok(out.alarm_history_items().iter().any(|item| {
        let near = item
            .timestamp()
            .is_some_and(|t| (t.secs() - at).abs() <= HISTORY_SLACK_SECS);
        near && item
            .history_data()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .is_some_and(|d| {
                d.pointer("/newState/stateValue").and_then(|v| v.as_str()) == Some("ALARM")
            })
    }))
}

async fn guardduty(aws: &Aws, f: &Finding) -> Result<Finding, RereadError> {
    let detectors = aws.guardduty.list_detectors().send().await.map_err(|e| {
        RereadError::Failed(classify(
            "ListDetectors",
            "guardduty:ListDetectors",
            &f.arn,
            e,
        ))
    })?;
    let Some(detector) = detectors.detector_ids().first() else {
        return Err(refuse(
            "unknown_finding",
            format!(
                "GuardDuty has no detector in account {} {}, so it reported no finding",
                f.account, f.region
            ),
        ));
    };
    let out = aws
        .guardduty
        .get_findings()
        .detector_id(detector)
        .finding_ids(&f.id)
        .send()
        .await
        .map_err(|e| {
            RereadError::Failed(classify("GetFindings", "guardduty:GetFindings", &f.arn, e))
        })?;
    let Some(found) = out
        .findings()
        .iter()
        .find(|x| x.id() == Some(f.id.as_str()))
    else {
        return Err(refuse(
            "unknown_finding",
            format!("GuardDuty has no finding {}", f.id),
        ));
    };
    if found.service().and_then(|s| s.archived()) == Some(true) {
        return Err(refuse(
            "finding_inactive",
            format!("GuardDuty finding {} is archived", f.id),
        ));
    }
    let lambda = found.resource().and_then(|r| r.lambda_details());
    let names = [
        lambda.and_then(|l| l.function_arn()),
        lambda.and_then(|l| l.function_name()),
    ];
    if !names.contains(&Some(f.function.as_str())) {
        return Err(refuse(
            "reread_mismatch",
            format!(
                "GuardDuty finding {} is not about the function the event names",
                f.id
            ),
        ));
    }
    Ok(Finding {
        types: found
            .r#type()
            .map(|t| vec![t.to_string()])
            .unwrap_or_default(),
        severity: found.severity().unwrap_or(f.severity),
        ..f.clone()
    })
}

async fn securityhub(aws: &Aws, f: &Finding) -> Result<Finding, RereadError> {
    let filters = AwsSecurityFindingFilters::builder()
        .id(StringFilter::builder()
            .value(&f.id)
            .comparison(StringFilterComparison::Equals)
            .build())
        .build();
    let out = aws
        .securityhub
        .get_findings()
        .filters(filters)
        .send()
        .await
        .map_err(|e| {
            RereadError::Failed(classify("GetFindings", "securityhub:GetFindings", &f.id, e))
        })?;
    let Some(found) = out
        .findings()
        .iter()
        .find(|x| x.id() == Some(f.id.as_str()))
    else {
        return Err(refuse(
            "unknown_finding",
            format!("Security Hub has no finding {}", f.id),
        ));
    };
    if found.record_state() != Some(&RecordState::Active) {
        return Err(refuse(
            "finding_inactive",
            format!("Security Hub finding {} is archived", f.id),
        ));
    }
    if let Some(s @ (WorkflowStatus::Resolved | WorkflowStatus::Suppressed)) =
        found.workflow().and_then(|w| w.status())
    {
        return Err(refuse(
            "finding_inactive",
            format!("Security Hub finding {} is {}", f.id, s.as_str()),
        ));
    }
    let named = found
        .resources()
        .iter()
        .any(|r| r.r#type() == Some("AwsLambdaFunction") && r.id() == f.function_arn.as_deref());
    if !named {
        return Err(refuse(
            "reread_mismatch",
            format!(
                "Security Hub finding {} is not about the function the event names",
                f.id
            ),
        ));
    }
    let severity = found
        .severity()
        .and_then(|s| s.normalized())
        .map_or(f.severity, f64::from);
    Ok(Finding {
        types: found.types().to_vec(),
        severity,
        ..f.clone()
    })
}
