//! Stage one: the playbook exactly as written, with a position on every value.
//!
//! Everything that users commonly get wrong in a *value* (types, ranges,
//! references) is kept as a spanned `serde_json::Value` here and checked in
//! `validate`, so that all such problems are reported at once. Only the shape
//! of the document (unknown keys, a list where a map belongs) fails here, one
//! problem at a time, because that is where serde stops.
//!
//! Steps are a plain struct rather than a serde-tagged enum on `action`: serde
//! buffers tagged and untagged enums, which loses every span inside them.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

pub type SpannedMap = IndexMap<Spanned<String>, Spanned<Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlaybook {
    #[serde(rename = "apiVersion")]
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    #[serde(default)]
    pub max_targets: Option<Spanned<Value>>,
    #[serde(default)]
    pub params: IndexMap<Spanned<String>, Spanned<RawParam>>,
    pub phases: Spanned<IndexMap<Spanned<String>, Spanned<Vec<RawStep>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    #[serde(default)]
    pub required: Option<Spanned<Value>>,
    #[serde(default)]
    pub default: Option<Spanned<Value>>,
    #[serde(default)]
    pub description: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub id: Spanned<String>,
    pub action: Spanned<String>,
    #[serde(default)]
    pub with: Option<Spanned<SpannedMap>>,
    #[serde(default)]
    pub when: Option<Spanned<Value>>,
    #[serde(default)]
    pub on_error: Option<Spanned<Value>>,
    #[serde(default)]
    pub retries: Option<Spanned<Value>>,
    #[serde(default)]
    pub timeout: Option<Spanned<Value>>,
}
