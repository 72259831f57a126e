//! Stage one: a drill scenario exactly as written, with a position on
//! every value, so validation can point at the exact place of a problem.
//! Techniques and checks are raw structs with a spanned name (serde loses
//! spans inside tagged enums); validation picks the typed variant.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::playbook::raw::SpannedMap;

pub type Names = Vec<Spanned<String>>;
pub type PolicyMap = IndexMap<Spanned<String>, Spanned<Names>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    #[serde(rename = "apiVersion")]
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    pub setup: Spanned<RawSetup>,
    pub attack: Spanned<Vec<RawAttack>>,
    pub respond: Spanned<RawRespond>,
    pub expect: Spanned<RawExpect>,
    #[serde(default)]
    pub targets: Option<Spanned<RawTargets>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSetup {
    #[serde(default)]
    pub roles: Vec<RawRole>,
    pub functions: Spanned<Vec<RawFunction>>,
    #[serde(default)]
    pub secrets: Names,
    #[serde(default)]
    pub parameters: Names,
    #[serde(default)]
    pub queues: Names,
    #[serde(default)]
    pub users: Names,
    #[serde(default)]
    pub alarm: Option<Spanned<RawAlarm>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub name: Spanned<String>,
    /// Customer-managed policies: name → allowed actions.
    #[serde(default)]
    pub managed: Option<Spanned<PolicyMap>>,
    /// Inline policies: name → allowed actions.
    #[serde(default)]
    pub inline: Option<Spanned<PolicyMap>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFunction {
    pub name: Spanned<String>,
    pub role: Spanned<String>,
    /// Python source of `handler.py`.
    #[serde(default)]
    pub code: Option<Spanned<String>>,
    /// Values `secret:NAME` and `parameter:NAME` name setup resources.
    #[serde(default)]
    pub env: Option<Spanned<IndexMap<Spanned<String>, Spanned<String>>>>,
    #[serde(default)]
    pub versions: Option<Spanned<u32>>,
    #[serde(default)]
    pub alias: Option<Spanned<String>>,
    /// A function URL with IAM auth (the legitimate kind).
    #[serde(default)]
    pub url: Option<Spanned<bool>>,
    /// Events written to the function's log group.
    #[serde(default)]
    pub logs: Names,
    /// A setup queue feeding the function (an event source mapping).
    #[serde(default)]
    pub queue: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlarm {
    pub function: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttack {
    pub technique: Spanned<String>,
    #[serde(default)]
    pub function: Option<Spanned<String>>,
    #[serde(default)]
    pub role: Option<Spanned<String>>,
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// A new function's name (rogue_function).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Lines written to the logs (telltale_logs).
    #[serde(default)]
    pub lines: Names,
    /// How many invocations (invoke_flood).
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRespond {
    /// `alarm` (SetAlarmState → SNS → SQS → the responder) or `direct`.
    #[serde(default)]
    pub via: Option<Spanned<String>>,
    pub playbook: Spanned<String>,
    pub function: Spanned<String>,
    #[serde(default)]
    pub params: Option<Spanned<SpannedMap>>,
    /// Setup users passed to the playbook's `users` param.
    #[serde(default)]
    pub users: Names,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    #[serde(default)]
    pub contained: Vec<RawCheck>,
    #[serde(default)]
    pub recovered: Vec<RawCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub check: Spanned<String>,
    #[serde(default)]
    pub function: Option<Spanned<String>>,
    #[serde(default)]
    pub role: Option<Spanned<String>>,
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    #[serde(default)]
    pub parameter: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargets {
    #[serde(default)]
    pub detect_s: Option<Spanned<u32>>,
    #[serde(default)]
    pub contain_s: Option<Spanned<u32>>,
    #[serde(default)]
    pub evidence_s: Option<Spanned<u32>>,
    #[serde(default)]
    pub recover_s: Option<Spanned<u32>>,
}
