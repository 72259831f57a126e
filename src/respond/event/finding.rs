//! GuardDuty (`GuardDuty Finding`) and Security Hub (`Security Hub
//! Findings - Imported`) events about Lambda functions.

use serde_json::{Map, Value};

use super::envelope::{object, only_keys, str_field};
use super::time::shorten;
use super::{Finding, Refusal};

const GUARDDUTY_KEYS: &[&str] = &[
    "schemaVersion",
    "accountId",
    "region",
    "partition",
    "id",
    "arn",
    "type",
    "resource",
    "service",
    "severity",
    "createdAt",
    "updatedAt",
    "title",
    "description",
];

pub fn guardduty(d: &Map<String, Value>) -> Result<Finding, Refusal> {
    let what = "the GuardDuty finding";
    only_keys(d, GUARDDUTY_KEYS, what)?;
    let resource = object(
        d.get("resource")
            .ok_or_else(|| Refusal::new("missing_field", "the finding has no `resource`"))?,
        "`resource`",
    )?;
    if resource.get("resourceType").and_then(Value::as_str) != Some("Lambda") {
        return Err(Refusal::new(
            "not_lambda",
            "the GuardDuty finding is not about a Lambda function (`resource.resourceType`)",
        ));
    }
    let lambda = object(
        resource.get("lambdaDetails").ok_or_else(|| {
            Refusal::new(
                "missing_field",
                "the finding has no `resource.lambdaDetails`",
            )
        })?,
        "`lambdaDetails`",
    )?;
    let function_arn = lambda
        .get("functionArn")
        .and_then(Value::as_str)
        .map(str::to_string);
    let function = match (
        &function_arn,
        lambda.get("functionName").and_then(Value::as_str),
    ) {
        (Some(arn), _) => arn.clone(),
        (None, Some(name)) => name.to_string(),
        (None, None) => {
            return Err(Refusal::new(
                "missing_field",
                "`lambdaDetails` names no function",
            ))
        }
    };
    let severity = d
        .get("severity")
        .and_then(Value::as_f64)
        .ok_or_else(|| Refusal::new("bad_field", "the finding's `severity` is not a number"))?;
    Ok(Finding {
        id: str_field(d, "id", what)?.to_string(),
        arn: str_field(d, "arn", what)?.to_string(),
        account: str_field(d, "accountId", what)?.to_string(),
        region: str_field(d, "region", what)?.to_string(),
        types: vec![str_field(d, "type", what)?.to_string()],
        severity,
        function,
        function_arn,
    })
}

pub fn securityhub(d: &Map<String, Value>) -> Result<Vec<Finding>, Refusal> {
    only_keys(d, &["findings"], "the Security Hub event's `detail`")?;
    let findings = d
        .get("findings")
        .and_then(Value::as_array)
        .ok_or_else(|| Refusal::new("missing_field", "`detail.findings` is not a list"))?;
    if findings.is_empty() {
        return Err(Refusal::new("missing_field", "`detail.findings` is empty"));
    }
    let mut out = Vec::new();
    for f in findings {
        let f = object(f, "a finding")?;
        let what = "the Security Hub finding";
        let types: Vec<String> = match f.get("Types") {
            Some(Value::Array(t)) => t
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => {
                return Err(Refusal::new(
                    "bad_field",
                    "the finding's `Types` is not a list",
                ))
            }
        };
        let severity = match f.get("Severity") {
            Some(Value::Object(s)) => match (
                s.get("Normalized").and_then(Value::as_f64),
                s.get("Label").and_then(Value::as_str),
            ) {
                (Some(n), _) => n,
                (None, Some(label)) => label_severity(label)?,
                (None, None) => {
                    return Err(Refusal::new(
                        "bad_field",
                        "the finding's `Severity` has no `Normalized` or `Label`",
                    ))
                }
            },
            _ => {
                return Err(Refusal::new(
                    "missing_field",
                    "the finding has no `Severity`",
                ))
            }
        };
        let resources = f
            .get("Resources")
            .and_then(Value::as_array)
            .ok_or_else(|| Refusal::new("missing_field", "the finding has no `Resources` list"))?;
        let before = out.len();
        for r in resources {
            let r = object(r, "a resource")?;
            if r.get("Type").and_then(Value::as_str) != Some("AwsLambdaFunction") {
                continue;
            }
            let arn = str_field(r, "Id", "the resource")?;
            out.push(Finding {
                id: str_field(f, "Id", what)?.to_string(),
                arn: str_field(f, "ProductArn", what)?.to_string(),
                account: str_field(f, "AwsAccountId", what)?.to_string(),
                region: str_field(f, "Region", what)?.to_string(),
                types: types.clone(),
                severity,
                function: arn.to_string(),
                function_arn: Some(arn.to_string()),
            });
        }
        if out.len() == before {
            return Err(Refusal::new(
                "not_lambda",
                "the Security Hub finding names no `AwsLambdaFunction` resource",
            ));
        }
    }
    Ok(out)
}

fn label_severity(label: &str) -> Result<f64, Refusal> {
    Ok(match label {
        "INFORMATIONAL" => 0.0,
        "LOW" => 1.0,
        "MEDIUM" => 40.0,
        "HIGH" => 70.0,
        "CRITICAL" => 90.0,
        other => {
            return Err(Refusal::new(
                "bad_field",
                format!("unknown severity label {:?}", shorten(other)),
            ))
        }
    })
}
