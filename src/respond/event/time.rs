//! Event timestamps come as RFC 3339 (`...Z`, EventBridge) or with a
//! `+0000` offset (SNS alarm messages); one instant must give one text,
//! since the incident id is derived from it.

use chrono::{DateTime, SecondsFormat, Utc};

use super::Refusal;

pub fn normalise(field: &str, text: &str) -> Result<String, Refusal> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map_err(|_| {
            Refusal::new(
                "bad_field",
                format!("`{field}` is not a timestamp: {:?}", shorten(text)),
            )
        })?;
    Ok(parsed
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Echoing attacker text back is fine in a refusal, but only a little of it.
pub fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instant_one_text() {
        let a = normalise("t", "2026-12-02T08:36:06.265Z").expect("z");
        let b = normalise("t", "2026-12-02T08:36:06.265+0000").expect("offset");
        let c = normalise("t", "2026-12-02T09:36:06.265+01:00").expect("rfc");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(normalise("t", "yesterday").is_err());
    }
}
