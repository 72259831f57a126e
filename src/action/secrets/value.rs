//! Secret values: the one type that holds one, and how new ones are made.
//!
//! A `SecretValue` never prints (`Debug` and `Display` say `[redacted]`), is
//! not `Serialize`, and is wiped from memory when dropped, so a value read
//! to rewrite a JSON secret or generated for a rotation cannot reach a log
//! line, the journal, the audit trail, a plan or a report by accident.

use std::fmt;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::action::ActionError;

/// A secret value: redacted when shown, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The value, for the one place that sends it to AWS.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Character classes a generated value draws from.
pub const CLASSES: [&str; 4] = ["lowercase", "uppercase", "digits", "punctuation"];

fn class_chars(class: &str) -> &'static str {
    match class {
        "lowercase" => "abcdefghijklmnopqrstuvwxyz",
        "uppercase" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "digits" => "0123456789",
        // Without quotes, backslash and `/@` that break connection strings
        // and shell quoting (as Secrets Manager's own generator suggests).
        _ => "!#$%&()*+,-.:;<=>?[]^_{|}~",
    }
}

/// How new values are made: length and classes (each used at least once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    pub length: usize,
    pub classes: Vec<String>,
}

impl Default for Generator {
    fn default() -> Self {
        Self {
            length: 32,
            classes: CLASSES[..3].iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Param check for `characters`: known class names, at least one.
pub fn check_classes(v: &Value) -> Result<(), String> {
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return Err(format!("name at least one of {}", CLASSES.join(", ")));
    }
    for c in items.iter().filter_map(Value::as_str) {
        if !c.contains("${") && !CLASSES.contains(&c) {
            return Err(format!(
                "`{c}` is not a character class (one of {})",
                CLASSES.join(", ")
            ));
        }
    }
    Ok(())
}

impl Generator {
    /// From a step's `length` and `characters` arguments (defaults when absent).
    pub fn from_args(args: &serde_json::Map<String, Value>) -> Self {
        let mut g = Self::default();
        if let Some(n) = args.get("length").and_then(Value::as_u64) {
            g.length = usize::try_from(n).unwrap_or(g.length);
        }
        if let Some(list) = args.get("characters").and_then(Value::as_array) {
            let classes: Vec<String> = list
                .iter()
                .filter_map(Value::as_str)
                .filter(|c| CLASSES.contains(c))
                .map(str::to_string)
                .collect();
            if !classes.is_empty() {
                g.classes = classes;
            }
        }
        g
    }

    /// A new value from the operating system's generator.
    pub fn generate(&self) -> Result<SecretValue, ActionError> {
        let sets: Vec<&[u8]> = self
            .classes
            .iter()
            .map(|c| class_chars(c).as_bytes())
            .collect();
        let alphabet: Vec<u8> = sets.concat();
        if alphabet.is_empty() || self.length < sets.len() {
            return Err(ActionError::input(
                "cannot generate a value: no character class, or fewer characters than classes",
                "set `characters` to at least one class and `length` to at least their number",
            ));
        }
        // Rejection sampling keeps every character equally likely; a value
        // missing a class is drawn again (rare for any useful length).
        let limit = 256 - (256 % alphabet.len());
        for _ in 0..64 {
            let mut out = Zeroizing::new(String::with_capacity(self.length));
            while out.len() < self.length {
                let mut buf = Zeroizing::new([0u8; 64]);
                getrandom::fill(buf.as_mut()).map_err(|e| {
                    ActionError::input(
                        format!("the operating system's random generator failed: {e}"),
                        "retry; if it persists, the host's entropy source is broken",
                    )
                })?;
                for b in buf.iter().filter(|b| usize::from(**b) < limit) {
                    if out.len() == self.length {
                        break;
                    }
                    out.push(char::from(alphabet[usize::from(*b) % alphabet.len()]));
                }
            }
            if sets.iter().all(|set| out.bytes().any(|c| set.contains(&c))) {
                return Ok(SecretValue(out));
            }
        }
        Err(ActionError::input(
            "could not generate a value holding every character class",
            "raise `length`",
        ))
    }
}

/// The new value of a secret: the whole value, or for a JSON object only
/// the named `keys` (a database secret's `password`, leaving host and user).
/// Errors name keys, never values.
pub fn replace(
    current: &SecretValue,
    keys: &[String],
    generator: &Generator,
) -> Result<SecretValue, ActionError> {
    match serde_json::from_str::<serde_json::Map<String, Value>>(current.expose()) {
        Ok(mut obj) if !keys.is_empty() => {
            let present: Vec<&String> = keys.iter().filter(|k| obj.contains_key(*k)).collect();
            if present.is_empty() {
                return Err(ActionError::input(
                    format!(
                        "the JSON secret has none of the keys {} (its keys: {})",
                        keys.join(", "),
                        obj.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    "name the key that holds the credential in `keys`",
                ));
            }
            for k in present {
                let v = generator.generate()?;
                obj.insert(k.clone(), Value::String(v.expose().to_string()));
            }
            let text = serde_json::to_string(&obj).map_err(|e| {
                ActionError::input(format!("cannot write the JSON secret: {e}"), "report it")
            })?;
            // The map's strings are plain `String`s: wipe them before they go.
            wipe(Value::Object(obj));
            Ok(SecretValue::new(text))
        }
        Ok(obj) => {
            wipe(Value::Object(obj));
            generator.generate()
        }
        Err(_) => generator.generate(),
    }
}

fn wipe(v: Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(mut s) => s.zeroize(),
        Value::Array(a) => a.into_iter().for_each(wipe),
        Value::Object(o) => o.into_iter().for_each(|(_, v)| wipe(v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_print() {
        let v = SecretValue::new("hunter2".into());
        assert_eq!(format!("{v}"), "[redacted]");
        assert!(!format!("{v:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&v)).contains("hunter2"));
    }

    #[test]
    fn generated_values_have_the_length_and_every_class() {
        let g = Generator {
            length: 40,
            classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        };
        let a = g.generate().unwrap();
        let b = g.generate().unwrap();
        assert_eq!(a.expose().len(), 40);
        assert_ne!(a, b);
        for class in CLASSES {
            assert!(a.expose().chars().any(|c| class_chars(class).contains(c)));
        }
        let digits = Generator {
            length: 8,
            classes: vec!["digits".into()],
        };
        assert!(digits
            .generate()
            .unwrap()
            .expose()
            .chars()
            .all(|c| c.is_ascii_digit()));
        let bad = Generator {
            length: 1,
            classes: vec!["digits".into(), "lowercase".into()],
        };
        assert!(bad.generate().is_err());
    }

    #[test]
    fn json_secrets_change_only_the_named_keys() {
        let cur = SecretValue::new(r#"{"username":"app","password":"old-pw","host":"db"}"#.into());
        let new = replace(&cur, &["password".into()], &Generator::default()).unwrap();
        let v: Value = serde_json::from_str(new.expose()).unwrap();
        assert_eq!(v["username"], "app");
        assert_eq!(v["host"], "db");
        assert_ne!(v["password"], "old-pw");
        let err = replace(&cur, &["token".into()], &Generator::default()).unwrap_err();
        assert!(err.to_string().contains("username"), "{err}");
        assert!(!err.to_string().contains("old-pw"), "{err}");
        // Not JSON: the whole value is new.
        let plain = SecretValue::new("old-token".into());
        let new = replace(&plain, &["password".into()], &Generator::default()).unwrap();
        assert_eq!(new.expose().len(), 32);
    }

    #[test]
    fn class_names_are_checked() {
        assert!(check_classes(&serde_json::json!(["digits"])).is_ok());
        assert!(check_classes(&serde_json::json!([])).is_err());
        assert!(check_classes(&serde_json::json!(["emoji"])).is_err());
    }
}
