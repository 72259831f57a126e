//! A baseline as data: everything recovery needs about one function, taken
//! read-only at one time. Maps are sorted (`BTreeMap`) so that the same
//! state always serializes to the same JSON, and two baselines compare as
//! JSON. Environment values are never kept: only their keyed hashes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format of a stored baseline file.
pub const FORMAT: u32 = 1;

/// One function's known-good state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub format: u32,
    /// When it was taken (RFC 3339, UTC, milliseconds).
    pub taken_at: String,
    pub account: String,
    pub region: String,
    pub function: String,
    pub function_arn: String,
    /// Which key hashed the environment values (a fingerprint of the key,
    /// never the key): hashes compare only under the same key.
    pub env_key_id: String,
    /// `$LATEST`'s configuration.
    pub configuration: Configuration,
    /// Published versions (not `$LATEST`) and their code.
    pub versions: BTreeMap<String, Version>,
    /// Alias name → the version it points to.
    pub aliases: BTreeMap<String, String>,
    /// Resource-policy statements by qualifier (`$LATEST` for the
    /// unqualified policy, an alias name or a version number), each by Sid.
    pub policies: BTreeMap<String, BTreeMap<String, Value>>,
    /// Function URL configurations by qualifier.
    pub urls: BTreeMap<String, UrlConfig>,
    /// Event source mappings by `SOURCE_ARN -> QUALIFIER`.
    pub mappings: BTreeMap<String, Mapping>,
    pub tags: BTreeMap<String, String>,
    /// The execution role, when firebreak could read it.
    pub role: Option<Role>,
    /// Named deploy users → the ids of their access keys (never a secret).
    pub deploy_users: BTreeMap<String, Vec<String>>,
    /// Other functions of the region on the same execution role.
    pub role_functions: Vec<String>,
    /// EventBridge rules that target the function or a function on its
    /// role, by rule name.
    pub rules: BTreeMap<String, Rule>,
    /// Code packages kept in the store next to the baseline files, by the
    /// base64 SHA-256 Lambda reports → the file name under the function's
    /// `packages/` (its hex SHA-256). What re-publishes a version the
    /// attacker deleted; not the function's state, so never drift.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub packages: BTreeMap<String, String>,
}

impl Baseline {
    /// `$LATEST`'s code and configuration as a version holds them: what a
    /// version published from the restored `$LATEST` would be.
    pub fn latest_content(&self) -> Version {
        Version {
            code_sha256: self.configuration.code_sha256.clone(),
            layers: self.configuration.layers.clone(),
            environment: self.configuration.environment.clone(),
        }
    }

    /// The code hashes a recovery may need a package for: `$LATEST`'s
    /// and every aliased version's, each once, with a qualifier that
    /// holds it (`None`: `$LATEST`).
    pub fn code_to_keep(&self) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        for v in self.aliases.values() {
            if let Some(version) = self.versions.get(v) {
                out.entry(version.code_sha256.clone())
                    .or_insert_with(|| Some(v.clone()));
            }
        }
        if !self.configuration.code_sha256.is_empty() {
            out.insert(self.configuration.code_sha256.clone(), None);
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: String,
    pub timeout: Option<i32>,
    pub memory_size: Option<i32>,
    pub description: String,
    /// Layer version ARNs, in order.
    pub layers: Vec<String>,
    /// Variable name → HMAC-SHA256 of its value (hex).
    pub environment: BTreeMap<String, String>,
    /// Base64 SHA-256 of the code package, as Lambda reports it.
    pub code_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub code_sha256: String,
    pub layers: Vec<String>,
    /// Variable name → keyed hash: tells whether this version's
    /// configuration holds the baseline's values.
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlConfig {
    pub auth_type: String,
    /// The CORS configuration as Lambda returns it (`null` when none).
    pub cors: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// Not compared: a mapping re-created from the baseline gets a new one.
    pub uuid: String,
    pub source_arn: String,
    /// `$LATEST`, an alias name or a version number.
    pub qualifier: String,
    pub enabled: bool,
    pub batch_size: Option<i32>,
}

impl Mapping {
    pub fn key(source_arn: &str, qualifier: &str) -> String {
        format!("{source_arn} -> {qualifier}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub arn: String,
    pub trust: Value,
    /// Inline policy name → document.
    pub inline: BTreeMap<String, Value>,
    /// Attached managed policy ARNs, sorted.
    pub attached: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub arn: String,
    pub schedule: Option<String>,
    pub event_pattern: Option<String>,
    pub enabled: bool,
    /// Target id → target ARN.
    pub targets: BTreeMap<String, String>,
}

/// The qualifier label of the unqualified function.
pub const LATEST: &str = "$LATEST";
