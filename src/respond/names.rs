//! What an AWS name may look like. Every check is ASCII-only on purpose:
//! a Cyrillic `а` in a function name from an event must not match, glob or
//! look like an allowed `a`.

/// The partitions an ARN may name.
const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

pub fn is_partition(s: &str) -> bool {
    PARTITIONS.contains(&s)
}

pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `us-gov-west-1`, `ap-southeast-3`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A Lambda function name (not an ARN, no qualifier).
pub fn is_function_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn is_route_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn is_role_arn_in(arn: &str, account: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(),
        ["arn", p, "iam", "", a, res]
            if is_partition(p) && *a == account
                && res.strip_prefix("role/").is_some_and(|n| !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))))
}

/// The partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// An ARN's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

pub fn parse_arn(s: &str) -> Option<Arn<'_>> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, service, region, account, resource]
            if !partition.is_empty() && !service.is_empty() =>
        {
            Some(Arn {
                partition,
                service,
                region,
                account,
                resource,
            })
        }
        _ => None,
    }
}

/// Why a function named by an event cannot be a target, if it cannot:
/// a plain name, or an unqualified function ARN in the expected partition,
/// account and region. Returns the bare name.
pub fn function_from_event(value: &str, account: &str, region: &str) -> Result<String, String> {
    if is_function_name(value) {
        return Ok(value.to_string());
    }
    if value.bytes().any(|b| !b.is_ascii() || b.is_ascii_control()) {
        return Err(
            "it contains characters outside ASCII letters and digits (a look-alike name?)".into(),
        );
    }
    if value.contains(['*', '?', '[', ']']) {
        return Err("it contains a wildcard; an event names exactly one function".into());
    }
    let Some(arn) = parse_arn(value) else {
        return Err(
            if value.contains('/') || value.contains('\\') || value.contains("..") {
                "it contains a path separator".into()
            } else {
                "it is neither a function name nor a function ARN".into()
            },
        );
    };
    let partition = partition_of(region);
    if arn.partition != partition {
        return Err(format!(
            "the ARN is in partition `{}`, not `{partition}` where {region} is",
            arn.partition
        ));
    }
    if arn.service != "lambda" {
        return Err(format!(
            "the ARN names a `{}` resource, not a Lambda function",
            arn.service
        ));
    }
    if arn.account != account {
        return Err(format!(
            "the ARN is in account {}, not the event's account {account}",
            arn.account
        ));
    }
    if arn.region != region {
        return Err(format!(
            "the ARN is in {}, not the event's region {region}",
            arn.region
        ));
    }
    let rest = arn.resource.strip_prefix("function:").unwrap_or("");
    let (name, qualifier) = match rest.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (rest, None),
    };
    if !is_function_name(name) {
        return Err("the ARN does not end in a function name".into());
    }
    if let Some(q) = qualifier {
        // A version or alias is fine: containment covers every qualifier
        // of the function anyway. Anything else is not a qualifier.
        let ok = q == "$LATEST"
            || (!q.is_empty()
                && q.len() <= 128
                && q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !ok {
            return Err(format!("`{q}` is not a function qualifier"));
        }
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_account("123456789012"));
        assert!(!is_account("12345678901"));
        assert!(!is_account("１２３４５６７８９０１２"));
        assert!(is_region("us-east-1") && is_region("us-gov-west-1"));
        assert!(!is_region("us-east") && !is_region("US-EAST-1") && !is_region("*"));
        assert!(is_function_name("orders-api_2"));
        assert!(!is_function_name("orders-аpi"), "Cyrillic a");
        assert!(is_role_arn_in(
            "arn:aws:iam::123456789012:role/ir/responder",
            "123456789012"
        ));
        assert!(!is_role_arn_in(
            "arn:aws:iam::123456789012:user/x",
            "123456789012"
        ));
        assert!(!is_role_arn_in(
            "arn:aws:iam::999999999999:role/x",
            "123456789012"
        ));
    }

    #[test]
    fn functions_from_events() {
        let f = |v| function_from_event(v, "123456789012", "us-east-1");
        assert_eq!(f("orders-api").as_deref(), Ok("orders-api"));
        assert_eq!(
            f("arn:aws:lambda:us-east-1:123456789012:function:orders-api:prod").as_deref(),
            Ok("orders-api")
        );
        for bad in [
            "orders-*",
            "orders/../x",
            "orders-аpi",
            "arn:aws:lambda:us-east-1:999999999999:function:orders-api",
            "arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
            "arn:evil:lambda:us-east-1:123456789012:function:orders-api",
            "arn:aws:iam::123456789012:role/orders-api",
            "arn:aws:lambda:us-east-1:123456789012:function:orders-api:a/b",
            "arn:aws-cn:lambda:us-east-1:123456789012:function:orders-api",
            "",
        ] {
            assert!(f(bad).is_err(), "{bad} refused");
        }
    }
}
