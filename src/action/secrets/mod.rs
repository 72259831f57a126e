//! Secrets a compromised function could read, and their rotation.
//!
//! An attacker with code execution reads the function's environment and
//! everything its role can fetch, so those secrets must be assumed stolen.
//! `secrets.discover` finds them (read-only), `secrets.rotate` and
//! `ssm.rotate_parameter` give them new values. No secret value ever
//! leaves `value::SecretValue`: changes, observations, outputs and errors
//! carry names, ARNs and version ids only.
//!
//! Idempotence per incident: every rotation is tagged with a token derived
//! from the incident id and the resource (Secrets Manager's
//! `ClientRequestToken`, which becomes the new version id; an SSM
//! parameter version's description). A re-run, a resume, or a crash between
//! the call and the journal record finds that version and rotates nothing.

pub mod discover;
pub mod rotate;
pub mod ssm;
pub mod value;

use sha2::{Digest, Sha256};

use crate::action::spec::{ParamDef, ValueType};

/// Why a resource cannot be rotated: one per secret, so one bad secret
/// never stops the others.
pub const BLOCKED_PREFIX: &str = "cannot rotate: ";

/// The rotation token of `resource` for `incident`: UUID-shaped (Secrets
/// Manager accepts 32-64 characters), the same on every run of the incident.
pub fn rotation_token(incident: &str, resource: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"firebreak-rotation\0");
    h.update(incident.as_bytes());
    h.update(b"\0");
    h.update(resource.as_bytes());
    let hex = hex::encode(h.finalize());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// IAM's wildcard match for ARNs: `*` any run of characters (`/` too),
/// `?` one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The arguments the secrets actions read, typed once (each action's spec
/// declares which of them it takes; the others stay at their defaults).
#[derive(Debug, Default, serde::Deserialize)]
pub struct SecretArgs {
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub parameters: Vec<String>,
    #[serde(default)]
    pub generate: bool,
    /// The JSON keys a generated value replaces (default `password`).
    pub keys: Option<Vec<String>>,
}

impl SecretArgs {
    pub fn keys(&self) -> Vec<String> {
        self.keys
            .clone()
            .unwrap_or_else(|| vec!["password".to_string()])
    }
}

/// The parameters both rotating actions share: whether to generate a value
/// where nothing else can rotate it, and how.
pub const GENERATE_PARAMS: [ParamDef; 4] = [
    ParamDef::new(
        "generate",
        ValueType::Boolean,
        "put a newly generated value where no rotation Lambda exists (only for values that are themselves the credential: a shared token, an HMAC key); default false: such secrets are listed as \"rotate at the source\"",
    )
    .optional(),
    ParamDef::new(
        "length",
        ValueType::Integer,
        "length of a generated value (default 32)",
    )
    .optional()
    .range(8, 4096),
    ParamDef::new(
        "characters",
        ValueType::List,
        "character classes of a generated value, each used at least once: lowercase, uppercase, digits, punctuation (default the first three)",
    )
    .optional()
    .check(value::check_classes),
    ParamDef::new(
        "keys",
        ValueType::List,
        "for JSON values: only these keys get a new value (default [password]); other values are replaced whole",
    )
    .optional(),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_incident_and_resource() {
        let a = rotation_token("INC-1", "arn:s1");
        assert_eq!(a, rotation_token("INC-1", "arn:s1"));
        assert_ne!(a, rotation_token("INC-2", "arn:s1"));
        assert_ne!(a, rotation_token("INC-1", "arn:s2"));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn wildcards_match_like_iam() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf";
        assert!(wildcard_match(
            "arn:aws:secretsmanager:*:*:secret:app/*",
            arn
        ));
        assert!(wildcard_match("*", arn));
        assert!(wildcard_match(
            "arn:aws:secretsmanager:us-east-1:1:secret:app/db-??????",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:secretsmanager:*:*:secret:other/*",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:secretsmanager:us-east-1:1:secret:app/db",
            arn
        ));
    }
}
