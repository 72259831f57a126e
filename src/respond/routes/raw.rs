//! Stage one: a routes file exactly as written, with a position on every
//! value, so that validation can point at the exact place of each problem.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::playbook::raw::SpannedMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoutes {
    #[serde(rename = "apiVersion")]
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub allow: Spanned<RawAllow>,
    pub routes: Spanned<Vec<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    pub accounts: Spanned<Vec<Spanned<String>>>,
    pub regions: Spanned<Vec<Spanned<String>>>,
    pub functions: Spanned<Vec<Spanned<String>>>,
    /// SNS topics whose notifications are read at all.
    #[serde(default)]
    pub sns_topics: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Spanned<String>,
    #[serde(rename = "match")]
    pub matches: Spanned<RawMatch>,
    pub playbook: Spanned<String>,
    pub target: Spanned<RawTarget>,
    #[serde(default)]
    pub params: Option<Spanned<SpannedMap>>,
    #[serde(default)]
    pub phases: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub max_targets: Option<Spanned<Value>>,
    /// Account id → the role to assume there.
    #[serde(default)]
    pub assume_role: Option<Spanned<IndexMap<Spanned<String>, Spanned<String>>>>,
    #[serde(default)]
    pub notify: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub source: Spanned<String>,
    #[serde(default)]
    pub alarm: Option<Spanned<String>>,
    #[serde(default)]
    pub finding_type: Option<Spanned<String>>,
    #[serde(default)]
    pub min_severity: Option<Spanned<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub function: Spanned<String>,
}
