//! Reserved concurrency: read, write, and the Invoke probe that proves a
//! throttle holds. Shared by `set_concurrency` and `restore_concurrency`.

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::function::FunctionRef;
use crate::action::spec::ActionSpec;
use crate::action::{state_of, ActionError, Check, Observation, StepContext};
use crate::aws::error::classify;
use crate::aws::{Aws, AwsErrorKind};
use crate::plan::Change;

pub const ATTRIBUTE: &str = "reserved_concurrency";

/// The function's reserved concurrency; `None` when none is set. Read with
/// GetFunctionConcurrency, because GetFunction omits a value of 0 (seen in
/// LocalStack).
pub async fn read(aws: &Aws, f: &FunctionRef) -> Result<Option<i32>, ActionError> {
    let out = aws
        .lambda
        .get_function_concurrency()
        .function_name(&f.name)
        .send()
        .await
        .map_err(|e| {
            not_found_is_clear(
                classify(
                    "GetFunctionConcurrency",
                    "lambda:GetFunctionConcurrency",
                    &f.arn,
                    e,
                ),
                f,
            )
        })?;
    Ok(out.reserved_concurrent_executions())
}

/// What `set_concurrency` and `restore_concurrency` observe: `{"reserved_concurrency": N|null}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ConcurrencyState {
    /// `None`: no reserved concurrency set.
    reserved_concurrency: Option<i32>,
}

/// The function as GetFunction reads it, shared with every other planning
/// read of this run (describe, the throttle's plan, the evidence): GetFunction
/// has its own quota (100/s), so planning spends none of the control plane's
/// 15 requests a second that the throttles themselves need.
pub async fn get_planned(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<GetFunctionOutput, ActionError> {
    let key = format!("GetFunction {}", f.arn);
    let aws = cx.aws;
    // Boxed: the SDK's send future is large, and describe, the throttle and
    // the evidence all nest this one in theirs.
    Box::pin(cx.shared_read(key, async move {
        aws.lambda
            .get_function()
            .function_name(&f.name)
            .send()
            .await
            .map_err(|e| {
                let mut e = classify("GetFunction", "lambda:GetFunction", &f.arn, e);
                if e.kind == AwsErrorKind::NotFound {
                    e.message = format!(
                        "function `{}` does not exist in account {} region {}",
                        f.name, cx.caller.account, aws.region
                    );
                }
                ActionError::from(e)
            })
    }))
    .await
}

/// The reserved concurrency for planning, from GetFunction.
///
/// AWS omits `Concurrency` from GetFunction only when none is set, but
/// LocalStack omits a 0 as well. A 0 this incident set must read as 0 (a
/// re-run plans nothing), so where the journal shows this incident changed
/// the setting, a silence is confirmed with GetFunctionConcurrency. A 0 set
/// by someone else reads as none on LocalStack only; see
/// docs/performance.md.
pub async fn read_planned(
    cx: &StepContext<'_>,
    f: &FunctionRef,
) -> Result<Option<i32>, ActionError> {
    let out = Box::pin(get_planned(cx, f)).await?;
    if let Some(n) = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions())
    {
        return Ok(Some(n));
    }
    if !changed_here(cx.history, &f.arn) {
        return Ok(None);
    }
    let key = format!("GetFunctionConcurrency {}", f.arn);
    Box::pin(cx.shared_read(key, read(cx.aws, f))).await
}

/// Whether this incident's journal has a change to the function's setting.
fn changed_here(history: &crate::state::History, arn: &str) -> bool {
    history
        .iter()
        .any(|r| r.change.target == arn && r.change.attribute == ATTRIBUTE)
}

pub async fn observe(
    cx: &StepContext<'_>,
    spec: &ActionSpec,
    f: &FunctionRef,
) -> Result<Observation, ActionError> {
    let reserved_concurrency = read_planned(cx, f).await?;
    Ok(Observation {
        target: f.arn.clone(),
        state: state_of(
            spec,
            &ConcurrencyState {
                reserved_concurrency,
            },
        )?,
    })
}

/// The observed setting as a change's value (null when none is set).
pub fn current(
    cx: &StepContext<'_>,
    spec: &ActionSpec,
    observed: &Observation,
) -> Result<Value, ActionError> {
    let state: ConcurrencyState = cx.state_as(spec, observed)?;
    Ok(json!(state.reserved_concurrency))
}

/// Sets (`after` is a number) or removes (`after` is null) the setting.
pub async fn write(aws: &Aws, f: &FunctionRef, change: &Change) -> Result<(), ActionError> {
    match change.after.as_i64() {
        Some(n) => {
            let n = i32::try_from(n).map_err(|_| {
                ActionError::input(
                    format!("concurrency {n} is out of range"),
                    "use a value from 0 to 1000000",
                )
            })?;
            aws.lambda
                .put_function_concurrency()
                .function_name(&f.name)
                .reserved_concurrent_executions(n)
                .send()
                .await
                .map_err(|e| {
                    not_found_is_clear(
                        classify(
                            "PutFunctionConcurrency",
                            "lambda:PutFunctionConcurrency",
                            &f.arn,
                            e,
                        ),
                        f,
                    )
                })?;
        }
        None => {
            aws.lambda
                .delete_function_concurrency()
                .function_name(&f.name)
                .send()
                .await
                .map_err(|e| {
                    not_found_is_clear(
                        classify(
                            "DeleteFunctionConcurrency",
                            "lambda:DeleteFunctionConcurrency",
                            &f.arn,
                            e,
                        ),
                        f,
                    )
                })?;
        }
    }
    Ok(())
}

fn not_found_is_clear(mut e: crate::aws::AwsError, f: &FunctionRef) -> ActionError {
    if e.kind == AwsErrorKind::NotFound {
        e.message = format!("function `{}` does not exist ({})", f.name, e.message);
        e.hint = "check the function name, --region and the account of the credentials; if it was deleted mid-run, the journal records what was done before".into();
    }
    ActionError::from(e)
}

/// Checks that the reserved concurrency reads back as `expected`, and for 0
/// that Invoke is actually refused as throttled.
///
/// The probe is a real Invoke: if the throttle did *not* hold, the function
/// runs once with the payload `{"firebreak":"containment-probe"}`. It is only
/// sent after the setting reads back as 0, so that happens only when AWS
/// accepted the throttle but did not enforce it, which is the very case the
/// check exists to catch.
pub async fn verify(
    aws: &Aws,
    f: &FunctionRef,
    expected: Option<i64>,
) -> Result<Vec<Check>, ActionError> {
    let now = Box::pin(read_back(aws, f)).await?.map(i64::from);
    let mut checks = vec![Check {
        name: "reserved concurrency".into(),
        target: f.arn.clone(),
        passed: now == expected,
        detail: format!(
            "expected {}, reads {}",
            expected.map_or("none".into(), |n| n.to_string()),
            now.map_or("none".into(), |n| n.to_string())
        ),
    }];
    if expected == Some(0) && now == Some(0) {
        checks.push(probe(aws, f).await?);
    }
    Ok(checks)
}

/// The setting as it is now, from GetFunction (its own quota) where that
/// answers: a value it shows is exact. Its silence means none on AWS but
/// may hide a 0 on LocalStack, so it is confirmed with
/// GetFunctionConcurrency.
async fn read_back(aws: &Aws, f: &FunctionRef) -> Result<Option<i32>, ActionError> {
    let out = aws
        .lambda
        .get_function()
        .function_name(&f.name)
        .send()
        .await
        .map_err(|e| {
            not_found_is_clear(classify("GetFunction", "lambda:GetFunction", &f.arn, e), f)
        })?;
    match out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions())
    {
        Some(n) => Ok(Some(n)),
        None => Box::pin(read(aws, f)).await,
    }
}

/// How often the probe is sent when the connection, not Lambda, failed.
const PROBE_SENDS: u32 = 3;

async fn probe(aws: &Aws, f: &FunctionRef) -> Result<Check, ActionError> {
    // The probe client has no SDK retries (a 429 must be seen once, not
    // retried into a success), so a dropped connection under load would
    // fail the check without Lambda having answered: send it again.
    let mut sends = 1;
    let result = loop {
        let r = aws
            .lambda_probe
            .invoke()
            .function_name(&f.name)
            .payload(Blob::new(br#"{"firebreak":"containment-probe"}"#.to_vec()))
            .send()
            .await;
        match &r {
            Err(SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))
                if sends < PROBE_SENDS =>
            {
                sends += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            _ => break r,
        }
    };
    let (passed, detail) = match result {
        Err(e) => match e.as_service_error() {
            // Only the function's own reserved-concurrency limit proves the
            // throttle; an account-wide limit could hide one that does not hold.
            Some(InvokeError::TooManyRequestsException(t)) => match t.reason().map(|r| r.as_str()) {
                Some("ReservedFunctionConcurrentInvocationLimitExceeded") | None => (
                    true,
                    format!(
                        "Invoke answered TooManyRequestsException ({})",
                        t.reason().map_or("no reason given", |r| r.as_str())
                    ),
                ),
                Some(other) => (
                    false,
                    format!("Invoke was throttled for another reason ({other}): the function's own throttle is not proven"),
                ),
            },
            _ => return Err(ActionError::from(classify("Invoke", "lambda:InvokeFunction", &f.arn, e))),
        },
        Ok(out) => (
            false,
            format!(
                "Invoke ran the function (status {}): the throttle is NOT in effect",
                out.status_code()
            ),
        ),
    };
    Ok(Check {
        name: "invoke is throttled".into(),
        target: f.arn.clone(),
        passed,
        detail,
    })
}
