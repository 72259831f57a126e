//! Policy documents: decoding what IAM returns, and judging what a document
//! grants when recovery would put it back.

use serde_json::{json, Value};

/// IAM returns policy documents URL-encoded (RFC 3986); LocalStack returns
/// them as plain JSON. Both decode to the same value.
pub fn decode(text: &str) -> Value {
    let plain = if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        percent_decode(text)
    };
    serde_json::from_str(&plain).unwrap_or(Value::String(plain))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

/// Whether a document allows every action (or every action of a service)
/// on every resource: putting it back re-grants what an attacker could use.
pub fn broad_grant(doc: &Value) -> Option<String> {
    for st in as_list(&doc["Statement"]) {
        if st["Effect"] != "Allow" {
            continue;
        }
        let actions = as_list(&st["Action"]);
        let resources = as_list(&st["Resource"]);
        let any_action = actions
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| *a == "*" || a.ends_with(":*"));
        let any_resource = resources.iter().any(|r| r.as_str() == Some("*"));
        if let (Some(action), true) = (any_action, any_resource) {
            return Some(format!("grants broad permissions (Allow {action} on *)"));
        }
    }
    None
}

/// The explicit deny-all (optionally only for one function's sessions).
pub fn deny_all(source_function: Option<&str>) -> Value {
    let mut st =
        json!({"Sid": "FirebreakQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"});
    if let Some(f) = source_function {
        st["Condition"] = json!({"ArnEquals": {"lambda:SourceFunctionArn": f}});
    }
    json!({"Version": "2012-10-17", "Statement": [st]})
}

/// IAM's "revoke active sessions": deny everything to credentials issued
/// before `time` (the incident's start, so every run plans the same value).
pub fn revoke_sessions(time: &str, source_function: Option<&str>) -> Value {
    let mut cond = json!({"DateLessThan": {"aws:TokenIssueTime": time}});
    if let Some(f) = source_function {
        cond["ArnEquals"] = json!({"lambda:SourceFunctionArn": f});
    }
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "FirebreakRevokeOlderSessions", "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": cond}
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_url_encoded_and_plain_documents_alike() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        assert_eq!(decode(plain), decode(encoded));
    }

    #[test]
    fn broad_grants_are_recognised() {
        let admin = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        assert!(broad_grant(&admin).is_some());
        let s3 = json!({"Statement": {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}});
        assert!(broad_grant(&s3).is_some());
        let narrow = json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
        assert_eq!(broad_grant(&narrow), None);
        assert_eq!(broad_grant(&deny_all(None)), None);
    }
}
