//! Bounds checked on the raw bytes, before any parser allocates for them.

use super::Refusal;

/// SQS's own message limit: no genuine alarm or finding is larger.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Real events nest about a dozen levels (a Security Hub finding's
/// resource details); anything deeper is built to hurt a parser.
pub const MAX_EVENT_DEPTH: usize = 32;

/// Size, UTF-8 and nesting depth, counted outside strings.
pub fn check(bytes: &[u8]) -> Result<&str, Refusal> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(Refusal::new(
            "too_large",
            format!(
                "the event is {} bytes; events are limited to {MAX_EVENT_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Refusal::new("not_json", "the event is not UTF-8 text"))?;
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
                if max > MAX_EVENT_DEPTH {
                    return Err(Refusal::new(
                        "too_deep",
                        format!("the event nests deeper than {MAX_EVENT_DEPTH} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(check(br#"{"a":[1,{"b":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]}"#).is_ok());
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(check(deep.as_bytes()).map_err(|r| r.code), Err("too_deep"));
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(check(&big).map_err(|r| r.code), Err("too_large"));
        assert_eq!(check(&[0xff, 0xfe]).map_err(|r| r.code), Err("not_json"));
    }
}
