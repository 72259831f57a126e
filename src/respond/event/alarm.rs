//! CloudWatch alarm state changes: the SNS message CloudWatch publishes
//! and the EventBridge `CloudWatch Alarm State Change` event.

use serde_json::{Map, Value};

use super::envelope::{object, only_keys, str_field};
use super::time::{normalise, shorten};
use super::{AlarmChange, Refusal};
use crate::respond::names::{parse_arn, partition_of};

const SNS_ALARM_KEYS: &[&str] = &[
    "AWSAccountId",
    "OldStateValue",
    "AlarmName",
    "AlarmDescription",
    "AlarmConfigurationUpdatedTimestamp",
    "NewStateValue",
    "NewStateReason",
    "StateChangeTime",
    "Region",
    "AlarmArn",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "Trigger",
];

const DETAIL_KEYS: &[&str] = &[
    "alarmName",
    "state",
    "previousState",
    "configuration",
    "operation",
];

/// The alarm message CloudWatch publishes to SNS.
pub fn from_sns(m: &Map<String, Value>) -> Result<AlarmChange, Refusal> {
    let what = "the alarm message";
    only_keys(m, SNS_ALARM_KEYS, what)?;
    let name = str_field(m, "AlarmName", what)?;
    let arn = str_field(m, "AlarmArn", what)?;
    let (account, region) = alarm_arn(arn, name)?;
    let claimed = str_field(m, "AWSAccountId", what)?;
    if claimed != account {
        return Err(Refusal::new(
            "account_mismatch",
            format!(
                "the alarm message says account {} but the alarm's ARN is in {account}",
                shorten(claimed)
            ),
        ));
    }
    let region_text = str_field(m, "Region", what)?;
    if !same_region(region_text, &region) {
        return Err(Refusal::new(
            "region_mismatch",
            format!(
                "the alarm message says region {:?} but the alarm's ARN is in {region}",
                shorten(region_text)
            ),
        ));
    }
    let trigger = object(
        m.get("Trigger")
            .ok_or_else(|| Refusal::new("missing_field", "the alarm message has no `Trigger`"))?,
        "`Trigger`",
    )?;
    let mut dimensions = Vec::new();
    sns_dimensions(trigger.get("Dimensions"), &mut dimensions)?;
    for metric in trigger
        .get("Metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dims = metric
            .pointer("/MetricStat/Metric/Dimensions")
            .or_else(|| metric.pointer("/metricStat/metric/dimensions"));
        sns_dimensions(dims, &mut dimensions)?;
    }
    Ok(AlarmChange {
        arn: arn.to_string(),
        name: name.to_string(),
        account,
        region,
        state: str_field(m, "NewStateValue", what)?.to_string(),
        changed_at: normalise("StateChangeTime", str_field(m, "StateChangeTime", what)?)?,
        dimensions,
    })
}

/// `detail` of an EventBridge `CloudWatch Alarm State Change`; the alarm's
/// ARN is the event's one resource.
pub fn from_eventbridge(
    detail: &Map<String, Value>,
    resources: &[&str],
    account: &str,
    region: &str,
) -> Result<AlarmChange, Refusal> {
    only_keys(detail, DETAIL_KEYS, "the alarm event's `detail`")?;
    let name = str_field(detail, "alarmName", "`detail`")?;
    let [arn] = resources else {
        return Err(Refusal::new(
            "bad_field",
            "an alarm event names exactly one resource, its alarm",
        ));
    };
    let (arn_account, arn_region) = alarm_arn(arn, name)?;
    if arn_account != account || arn_region != region {
        return Err(Refusal::new(
            "account_mismatch",
            format!("the event says account {account} in {region} but its alarm is in account {arn_account} in {arn_region}"),
        ));
    }
    let state = object(
        detail
            .get("state")
            .ok_or_else(|| Refusal::new("missing_field", "`detail` has no `state`"))?,
        "`detail.state`",
    )?;
    let mut dimensions = Vec::new();
    let metrics = detail
        .get("configuration")
        .and_then(|c| c.get("metrics"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for metric in metrics {
        match metric.pointer("/metricStat/metric/dimensions") {
            None => {}
            Some(Value::Object(d)) => {
                for (k, v) in d {
                    let v = v.as_str().ok_or_else(|| {
                        Refusal::new(
                            "bad_field",
                            format!("dimension `{}` is not a string", shorten(k)),
                        )
                    })?;
                    add(&mut dimensions, k, v)?;
                }
            }
            Some(_) => return Err(Refusal::new("bad_field", "`dimensions` is not an object")),
        }
    }
    Ok(AlarmChange {
        arn: arn.to_string(),
        name: name.to_string(),
        account: arn_account,
        region: arn_region,
        state: str_field(state, "value", "`detail.state`")?.to_string(),
        changed_at: normalise(
            "state.timestamp",
            str_field(state, "timestamp", "`detail.state`")?,
        )?,
        dimensions,
    })
}

/// The alarm's account and region, from an ARN that must name it.
fn alarm_arn(arn: &str, name: &str) -> Result<(String, String), Refusal> {
    let bad = |why: String| Refusal::new("bad_arn", why);
    let a = parse_arn(arn).ok_or_else(|| bad(format!("{:?} is not an alarm ARN", shorten(arn))))?;
    if a.service != "cloudwatch" || a.resource.strip_prefix("alarm:") != Some(name) {
        return Err(bad(format!(
            "{:?} is not the ARN of alarm {:?}",
            shorten(arn),
            shorten(name)
        )));
    }
    if !crate::respond::names::is_account(a.account) || !crate::respond::names::is_region(a.region)
    {
        return Err(bad(format!(
            "{:?} names no valid account and region",
            shorten(arn)
        )));
    }
    if a.partition != partition_of(a.region) {
        return Err(bad(format!(
            "the alarm ARN's partition `{}` is not the partition of {}",
            shorten(a.partition),
            a.region
        )));
    }
    Ok((a.account.to_string(), a.region.to_string()))
}

fn sns_dimensions(v: Option<&Value>, out: &mut Vec<(String, String)>) -> Result<(), Refusal> {
    let Some(v) = v else { return Ok(()) };
    let items = v
        .as_array()
        .ok_or_else(|| Refusal::new("bad_field", "`Dimensions` is not a list"))?;
    for item in items {
        let o = object(item, "a dimension")?;
        let get = |a: &str, b: &str| o.get(a).or_else(|| o.get(b)).and_then(Value::as_str);
        match (get("name", "Name"), get("value", "Value")) {
            (Some(n), Some(v)) => add(out, n, v)?,
            _ => {
                return Err(Refusal::new(
                    "bad_field",
                    "a dimension lacks a string `name` or `value`",
                ))
            }
        }
    }
    Ok(())
}

/// One value per dimension name: two metrics that disagree on which
/// function they watch cannot name one target.
fn add(out: &mut Vec<(String, String)>, name: &str, value: &str) -> Result<(), Refusal> {
    match out.iter().find(|(n, _)| n == name) {
        Some((_, v)) if v != value => Err(Refusal::new(
            "ambiguous_target",
            format!(
                "the alarm's metrics disagree on dimension `{}`",
                shorten(name)
            ),
        )),
        Some(_) => Ok(()),
        None => {
            out.push((name.to_string(), value.to_string()));
            Ok(())
        }
    }
}

/// CloudWatch's SNS message names the region in words ("US East (N.
/// Virginia)"); LocalStack writes "Us east 1". Either must mean the ARN's.
fn same_region(text: &str, code: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    if squash(text) == squash(code) {
        return true;
    }
    REGION_NAMES
        .iter()
        .any(|(c, n)| *c == code && n.eq_ignore_ascii_case(text.trim()))
}

const REGION_NAMES: &[(&str, &str)] = &[
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-south-2", "Asia Pacific (Hyderabad)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)"),
    ("ap-southeast-4", "Asia Pacific (Melbourne)"),
    ("ca-central-1", "Canada (Central)"),
    ("ca-west-1", "Canada West (Calgary)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("eu-central-2", "EU (Zurich)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-west-2", "EU (London)"),
    ("eu-west-3", "EU (Paris)"),
    ("eu-north-1", "EU (Stockholm)"),
    ("eu-south-1", "EU (Milan)"),
    ("eu-south-2", "EU (Spain)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-central-1", "Middle East (UAE)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-gov-east-1", "AWS GovCloud (US-East)"),
    ("us-gov-west-1", "AWS GovCloud (US-West)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_in_words() {
        assert!(same_region("US East (N. Virginia)", "us-east-1"));
        assert!(same_region("Us east 1", "us-east-1"));
        assert!(same_region("us-east-1", "us-east-1"));
        assert!(!same_region("EU (Ireland)", "us-east-1"));
        assert!(!same_region("Us east 2", "us-east-1"));
    }
}
