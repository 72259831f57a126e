//! Environment variables that look like a secret kept in plain text. Only
//! the variable's name and the reason ever leave this module: the value is
//! judged in place and never stored.

use std::collections::BTreeMap;

/// Why an environment variable looks like a plaintext secret, if it does.
pub fn reason(name: &str, value: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let key_id = v.len() == 20
        && (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if key_id {
        return Some("value has the shape of an AWS access key id");
    }
    if [
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "SECRET",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
    ]
    .iter()
    .any(|p| upper.contains(p))
    {
        return Some("name suggests a secret");
    }
    if v.len() >= 20
        && !v.contains(char::is_whitespace)
        && !v.starts_with("arn:")
        && entropy(v) >= 4.0
    {
        return Some("value has high entropy");
    }
    None
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_secrets_are_recognised_by_name_or_shape() {
        assert!(reason("DB_PASSWORD", "x").is_some());
        assert!(reason("stripe_api_key", "x").is_some());
        assert!(reason("KEY_ID", "AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(reason("SIGNING", "q8Zr2LmX0vT9kPw4YbN7cHs1").is_some());
        assert!(reason("STAGE", "prod").is_none());
        assert!(reason("TABLE", "orders-table-production").is_none());
        assert!(reason("PASSWORD", "").is_none());
    }
}
