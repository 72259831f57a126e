//! Which resource-policy statements open a function to the outside. The
//! same rules hold on every qualifier: a statement on alias `live` or on
//! version `1` lets its principal invoke that code exactly as one on the
//! function itself does.

use serde_json::Value;

/// Looks a condition key up whatever its operator and letter case.
pub fn condition(st: &Value, key: &str) -> Option<String> {
    st["Condition"].as_object()?.values().find_map(|ops| {
        ops.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    })
}

/// Why a statement opens the function to the outside; `None` when it does not.
pub fn public_reason(st: &Value, account: &str) -> Option<String> {
    let p = &st["Principal"];
    if p == "*" || p["AWS"] == "*" {
        return Some("its principal is `*` (anyone)".into());
    }
    if let Some(aws) = p["AWS"].as_str() {
        let owner = aws
            .strip_prefix("arn:")
            .and_then(|r| r.split(':').nth(3))
            .unwrap_or(aws);
        if owner != account {
            return Some(format!("it lets in another account ({owner})"));
        }
    }
    if let Some(service) = p["Service"].as_str() {
        if condition(st, "AWS:SourceArn").is_none() && condition(st, "AWS:SourceAccount").is_none()
        {
            return Some(format!("it lets {service} invoke on behalf of any account (no SourceArn or SourceAccount condition)"));
        }
    }
    None
}

pub fn sid(st: &Value) -> String {
    st["Sid"].as_str().unwrap_or("(no sid)").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_statements_are_recognised() {
        let me = "111122223333";
        assert!(public_reason(&json!({"Principal": "*"}), me).is_some());
        assert!(public_reason(
            &json!({"Principal": {"AWS": "arn:aws:iam::444455556666:root"}}),
            me
        )
        .is_some());
        assert!(public_reason(
            &json!({"Principal": {"AWS": "arn:aws:iam::111122223333:root"}}),
            me
        )
        .is_none());
        assert!(
            public_reason(&json!({"Principal": {"Service": "s3.amazonaws.com"}}), me).is_some()
        );
        let scoped = json!({"Principal": {"Service": "s3.amazonaws.com"}, "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}}});
        assert!(public_reason(&scoped, me).is_none());
    }

    #[test]
    fn a_function_url_statement_on_an_alias_is_public() {
        // As Lambda writes it for `AddPermission --qualifier live
        // --principal * --function-url-auth-type NONE`.
        let st = json!({
            "Sid": "FunctionURLAllowPublicAccess",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": "arn:aws:lambda:us-east-1:111122223333:function:demo:live",
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
        });
        assert_eq!(
            public_reason(&st, "111122223333").as_deref(),
            Some("its principal is `*` (anyone)")
        );
        assert_eq!(sid(&st), "FunctionURLAllowPublicAccess");
        assert_eq!(sid(&json!({})), "(no sid)");
    }
}
