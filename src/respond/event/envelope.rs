//! Unwrapping the envelopes an event travels in: an SQS message (or the
//! Lambda SQS event around it), an SNS notification, an EventBridge event.
//! Each envelope is matched field by field, and the sender each one claims
//! is checked against the payload it carries.

use serde_json::{Map, Value};

use super::time::shorten;
use super::{alarm, finding, limits, Event, Hop, Refusal};

/// At most SQS → SNS → EventBridge: a deeper wrapping is not a delivery
/// path AWS has.
const MAX_HOPS: usize = 3;

/// Parses one event as the responder received it: an EventBridge event,
/// an SNS notification, or a Lambda SQS event with one record. A Security
/// Hub event may carry several findings, hence several events.
pub fn parse(bytes: &[u8], trusted_topics: &[String]) -> Result<Vec<Event>, Refusal> {
    let text = limits::check(bytes)?;
    let value = json(text, "the event")?;
    let obj = object(&value, "the event")?;
    if let Some(records) = obj.get("Records") {
        only_keys(obj, &["Records"], "a Lambda SQS event")?;
        let records = records
            .as_array()
            .ok_or_else(|| Refusal::new("unknown_shape", "`Records` is not a list"))?;
        let [record] = records.as_slice() else {
            return Err(Refusal::new(
                "unknown_shape",
                format!(
                    "the SQS event holds {} records; give one event at a time",
                    records.len()
                ),
            ));
        };
        let record = object(record, "the SQS record")?;
        if record.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
            return Err(Refusal::new(
                "unknown_shape",
                "the record is not from SQS (`eventSource` is not `aws:sqs`)",
            ));
        }
        let body = str_field(record, "body", "the SQS record")?;
        let id = record
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_string);
        return parse_body(body.as_bytes(), id, trusted_topics);
    }
    unwrap(&value, Vec::new(), trusted_topics)
}

/// Parses the body of one SQS message (what `watch` and the Lambda handler
/// receive per message).
pub fn parse_body(
    body: &[u8],
    message_id: Option<String>,
    trusted_topics: &[String],
) -> Result<Vec<Event>, Refusal> {
    let text = limits::check(body)?;
    let value = json(text, "the SQS message body")?;
    unwrap(&value, vec![Hop::Sqs { message_id }], trusted_topics)
}

fn json(text: &str, what: &str) -> Result<Value, Refusal> {
    serde_json::from_str(text)
        .map_err(|e| Refusal::new("not_json", format!("{what} is not JSON ({e})")))
}

pub(super) fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Refusal> {
    v.as_object()
        .ok_or_else(|| Refusal::new("unknown_shape", format!("{what} is not a JSON object")))
}

pub(super) fn str_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a str, Refusal> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Refusal::new(
            "bad_field",
            format!("`{key}` of {what} is not a string"),
        )),
        None => Err(Refusal::new(
            "missing_field",
            format!("{what} has no `{key}`"),
        )),
    }
}

/// Fields outside what AWS sends are refused: nothing in an event may
/// pass parameters, choose a playbook or smuggle anything else.
pub(super) fn only_keys(
    obj: &Map<String, Value>,
    allowed: &[&str],
    what: &str,
) -> Result<(), Refusal> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Refusal::new(
            "unexpected_field",
            format!(
                "{what} has a field `{}` that AWS does not send; events cannot carry parameters",
                shorten(k)
            ),
        )),
        None => Ok(()),
    }
}

const SNS_KEYS: &[&str] = &[
    "Type",
    "MessageId",
    "TopicArn",
    "Subject",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "SigningCertUrl",
    "UnsubscribeURL",
    "UnsubscribeUrl",
    "MessageAttributes",
];

const EVENTBRIDGE_KEYS: &[&str] = &[
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "replay-name",
];

fn unwrap(value: &Value, mut hops: Vec<Hop>, topics: &[String]) -> Result<Vec<Event>, Refusal> {
    if hops.len() >= MAX_HOPS {
        return Err(Refusal::new(
            "unknown_shape",
            "the event is wrapped more deeply than any AWS delivery path",
        ));
    }
    let obj = object(value, "the event")?;
    if obj.contains_key("Type") && obj.contains_key("TopicArn") {
        return sns(obj, hops, topics);
    }
    if obj.contains_key("detail-type") {
        return eventbridge(obj, hops);
    }
    if obj.contains_key("AlarmName") {
        hops.clear();
        return Err(Refusal::new(
            "untrusted_topic",
            "an alarm message without its SNS envelope: its topic cannot be checked (turn off raw message delivery on the subscription)",
        ));
    }
    Err(Refusal::new(
        "unknown_shape",
        "not a CloudWatch alarm, GuardDuty finding or Security Hub finding event",
    ))
}

fn sns(
    obj: &Map<String, Value>,
    mut hops: Vec<Hop>,
    topics: &[String],
) -> Result<Vec<Event>, Refusal> {
    only_keys(obj, SNS_KEYS, "the SNS notification")?;
    let kind = str_field(obj, "Type", "the SNS notification")?;
    if kind != "Notification" {
        return Err(Refusal::new(
            "unknown_shape",
            format!("an SNS `{}` message is not a notification", shorten(kind)),
        ));
    }
    let topic = str_field(obj, "TopicArn", "the SNS notification")?;
    if !topics.iter().any(|t| t == topic) {
        return Err(Refusal::new(
            "untrusted_topic",
            format!(
                "SNS topic {} is not in the routes' `allow.sns_topics`",
                shorten(topic)
            ),
        ));
    }
    let message_id = str_field(obj, "MessageId", "the SNS notification")?.to_string();
    let message = str_field(obj, "Message", "the SNS notification")?;
    let text = limits::check(message.as_bytes())?;
    let inner = json(text, "the SNS message")?;
    hops.push(Hop::Sns {
        topic_arn: topic.to_string(),
        message_id,
    });
    let inner_obj = object(&inner, "the SNS message")?;
    let events = if inner_obj.contains_key("detail-type") {
        eventbridge(inner_obj, hops)?
    } else if inner_obj.contains_key("AlarmName") {
        vec![Event {
            hops,
            kind: super::EventKind::Alarm(alarm::from_sns(inner_obj)?),
        }]
    } else {
        return Err(Refusal::new(
            "unknown_shape",
            "the SNS message is not a CloudWatch alarm or an EventBridge event",
        ));
    };
    // A topic only carries its own account's and region's alarms.
    let arn = crate::respond::names::parse_arn(topic)
        .ok_or_else(|| Refusal::new("bad_field", "the SNS topic is not an ARN"))?;
    for e in &events {
        if e.account() != arn.account || e.region() != arn.region {
            return Err(Refusal::new(
                "account_mismatch",
                format!(
                    "the event is about account {} in {} but came through a topic of account {} in {}",
                    e.account(),
                    e.region(),
                    arn.account,
                    arn.region
                ),
            ));
        }
    }
    Ok(events)
}

fn eventbridge(obj: &Map<String, Value>, mut hops: Vec<Hop>) -> Result<Vec<Event>, Refusal> {
    only_keys(obj, EVENTBRIDGE_KEYS, "the EventBridge event")?;
    let what = "the EventBridge event";
    let source = str_field(obj, "source", what)?;
    let detail_type = str_field(obj, "detail-type", what)?;
    let account = str_field(obj, "account", what)?;
    let region = str_field(obj, "region", what)?;
    let id = str_field(obj, "id", what)?;
    let detail = object(
        obj.get("detail").ok_or_else(|| {
            Refusal::new("missing_field", "the EventBridge event has no `detail`")
        })?,
        "`detail`",
    )?;
    let resources: Vec<&str> = match obj.get("resources") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(Refusal::new("bad_field", "`resources` is not a list")),
    };
    let expected = match detail_type {
        "CloudWatch Alarm State Change" => "aws.cloudwatch",
        "GuardDuty Finding" => "aws.guardduty",
        "Security Hub Findings - Imported" => "aws.securityhub",
        other => {
            return Err(Refusal::new(
                "unknown_shape",
                format!(
                    "EventBridge events of type {:?} are not handled",
                    shorten(other)
                ),
            ))
        }
    };
    if source != expected {
        return Err(Refusal::new(
            "forged_source",
            format!(
                "a {detail_type:?} event must come from `{expected}`, this one says `{}`",
                shorten(source)
            ),
        ));
    }
    hops.push(Hop::EventBridge {
        id: id.to_string(),
        source: source.to_string(),
    });
    let kinds = match expected {
        "aws.cloudwatch" => {
            let a = alarm::from_eventbridge(detail, &resources, account, region)?;
            vec![super::EventKind::Alarm(a)]
        }
        "aws.guardduty" => vec![super::EventKind::GuardDuty(finding::guardduty(detail)?)],
        _ => finding::securityhub(detail)?
            .into_iter()
            .map(super::EventKind::SecurityHub)
            .collect(),
    };
    let mut events = Vec::new();
    for kind in kinds {
        let e = Event {
            hops: hops.clone(),
            kind,
        };
        if e.account() != account || e.region() != region {
            return Err(Refusal::new(
                "account_mismatch",
                format!(
                    "the event says account {account} in {region} but its payload is about account {} in {}",
                    e.account(),
                    e.region()
                ),
            ));
        }
        events.push(e);
    }
    Ok(events)
}
