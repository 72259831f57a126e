//! Evidence actions: they only ever add objects to the forensic bucket,
//! never change the function, and are never undone by `recover`.

pub mod config_documents;
pub mod snapshot_config;

use serde_json::Value;

/// S3 bucket naming rules, checked before any call.
pub fn check_bucket(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Ok(()); // the type check reports it
    };
    if s.contains("${") {
        return Ok(()); // a reference: checked when resolved
    }
    let ok_len = (3..=63).contains(&s.len());
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_ends && !s.contains("..") {
        Ok(())
    } else {
        Err(format!("`{s}` is not a valid S3 bucket name (3-63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit)"))
    }
}

pub fn check_retention_mode(v: &Value) -> Result<(), String> {
    match v.as_str() {
        None | Some("compliance" | "governance") => Ok(()),
        Some(s) if s.contains("${") => Ok(()),
        Some(s) => Err(format!(
            "`{s}` is not a retention mode: use `compliance` or `governance`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["forensics", "acme-ir.evidence-1", "abc"] {
            assert!(check_bucket(&json!(good)).is_ok(), "{good}");
        }
        for bad in ["ab", "Forensics", "-x-", "a..b", "a_b", "x/y"] {
            assert!(check_bucket(&json!(bad)).is_err(), "{bad}");
        }
        assert!(check_retention_mode(&json!("legal")).is_err());
    }
}
