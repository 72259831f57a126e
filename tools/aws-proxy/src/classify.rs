//! Which AWS API a request is: service, operation, account and region, read
//! the way AWS's front ends read them (the SigV4 credential scope, then the
//! protocol's own operation marker).

/// How a service's errors are shaped on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Lambda and other REST services answering JSON (`x-amzn-ErrorType`).
    RestJson,
    /// `X-Amz-Target` services (SQS, CloudWatch Logs, Secrets Manager, SSM…).
    AwsJson,
    /// `Action=` form posts answered in XML (IAM, STS, SNS, CloudWatch).
    Query,
    /// S3's REST-XML.
    RestXml,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// The SigV4 signing name: `lambda`, `iam`, `sqs`, …
    pub service: String,
    /// AWS's operation name, or `METHOD /path-shape` when it is not known.
    pub operation: String,
    /// LocalStack takes the access key id as the account.
    pub account: String,
    pub region: String,
    pub protocol: Protocol,
}

impl Api {
    pub fn name(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

/// `Credential=AKID/DATE/REGION/SERVICE/aws4_request` of an Authorization
/// header: (access key id, region, service).
pub fn credential_scope(authorization: &str) -> Option<(String, String, String)> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    let mut parts = scope.split('/');
    let key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some((key, region, service))
}

/// Classifies one request. `body` is the request body (a query protocol's
/// `Action` is in it); `target` the `X-Amz-Target` header.
pub fn classify(
    authorization: Option<&str>,
    target: Option<&str>,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Api {
    let (account, region, service) = authorization
        .and_then(credential_scope)
        .unwrap_or_else(|| ("anonymous".into(), "us-east-1".into(), "unknown".into()));
    let (protocol, operation) = if let Some(t) = target {
        // `AmazonSQS.ReceiveMessage`, `Logs_20140328.FilterLogEvents`.
        let op = t.rsplit('.').next().unwrap_or(t).to_string();
        (Protocol::AwsJson, op)
    } else if let Some(action) = form_value(query.unwrap_or(""), "Action")
        .or_else(|| form_value(std::str::from_utf8(body).unwrap_or(""), "Action"))
    {
        (Protocol::Query, action)
    } else if service == "lambda" {
        (Protocol::RestJson, lambda_operation(method, path))
    } else if service == "s3" {
        (Protocol::RestXml, format!("{method} {}", s3_shape(path)))
    } else {
        (Protocol::RestJson, format!("{method} {}", shape(path)))
    };
    Api {
        service,
        operation,
        account,
        region,
        protocol,
    }
}

fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key && !v.is_empty()).then(|| v.to_string())
    })
}

/// A REST path with its resource names replaced, for operations we do not
/// name: AWS's REST paths alternate a collection and a name after the API
/// version (`/2015-03-31/functions/{}/policy/{}`).
fn shape(path: &str) -> String {
    let shaped: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, p)| if i == 0 || i % 2 == 1 { p } else { "{}" })
        .collect();
    format!("/{}", shaped.join("/"))
}

/// S3's path-style addresses: the service, a bucket, or an object.
fn s3_shape(path: &str) -> &'static str {
    match path.trim_start_matches('/').split_once('/') {
        _ if path.trim_matches('/').is_empty() => "/",
        None | Some((_, "")) => "/{bucket}",
        Some(_) => "/{bucket}/{key}",
    }
}

/// Lambda's REST operations, from its API reference's request syntax.
fn lambda_operation(method: &str, path: &str) -> String {
    let parts: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let op = match (method, parts.as_slice()) {
        ("GET", [_, "functions"]) => "ListFunctions",
        ("POST", [_, "functions"]) => "CreateFunction",
        ("GET", [_, "functions", _]) => "GetFunction",
        ("DELETE", [_, "functions", _]) => "DeleteFunction",
        ("GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", [_, "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", [_, "functions", _, "code"]) => "UpdateFunctionCode",
        ("PUT", [_, "functions", _, "concurrency"]) => "PutFunctionConcurrency",
        ("GET", [_, "functions", _, "concurrency"]) => "GetFunctionConcurrency",
        ("DELETE", [_, "functions", _, "concurrency"]) => "DeleteFunctionConcurrency",
        ("GET", [_, "functions", _, "policy"]) => "GetPolicy",
        ("POST", [_, "functions", _, "policy"]) => "AddPermission",
        ("DELETE", [_, "functions", _, "policy", _]) => "RemovePermission",
        ("GET", [_, "functions", _, "aliases"]) => "ListAliases",
        ("POST", [_, "functions", _, "aliases"]) => "CreateAlias",
        ("GET", [_, "functions", _, "aliases", _]) => "GetAlias",
        ("PUT", [_, "functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", [_, "functions", _, "aliases", _]) => "DeleteAlias",
        ("GET", [_, "functions", _, "versions"]) => "ListVersionsByFunction",
        ("POST", [_, "functions", _, "versions"]) => "PublishVersion",
        ("GET", [_, "functions", _, "urls"]) => "ListFunctionUrlConfigs",
        ("GET", [_, "functions", _, "url"]) => "GetFunctionUrlConfig",
        ("POST", [_, "functions", _, "url"]) => "CreateFunctionUrlConfig",
        ("PUT", [_, "functions", _, "url"]) => "UpdateFunctionUrlConfig",
        ("DELETE", [_, "functions", _, "url"]) => "DeleteFunctionUrlConfig",
        ("POST", [_, "functions", _, "invocations"]) => "Invoke",
        ("POST", [_, "functions", _, "invoke-async"]) => "InvokeAsync",
        ("GET", [_, "event-source-mappings"]) => "ListEventSourceMappings",
        ("POST", [_, "event-source-mappings"]) => "CreateEventSourceMapping",
        ("GET", [_, "event-source-mappings", _]) => "GetEventSourceMapping",
        ("PUT", [_, "event-source-mappings", _]) => "UpdateEventSourceMapping",
        ("DELETE", [_, "event-source-mappings", _]) => "DeleteEventSourceMapping",
        ("GET", [_, "tags", ..]) => "ListTags",
        ("POST", [_, "tags", ..]) => "TagResource",
        ("DELETE", [_, "tags", ..]) => "UntagResource",
        ("GET", [_, "layers", ..]) => "GetLayerVersion",
        ("GET", [_, "account-settings"]) => "GetAccountSettings",
        _ => return format!("{method} {}", shape(path)),
    };
    op.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=111122223333/20261202/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn lambda_rest_operations_are_named_from_method_and_path() {
        let cases = [
            (
                "PUT",
                "/2017-10-31/functions/f/concurrency",
                "PutFunctionConcurrency",
            ),
            (
                "GET",
                "/2019-09-30/functions/f/concurrency",
                "GetFunctionConcurrency",
            ),
            ("GET", "/2015-03-31/functions/", "ListFunctions"),
            ("GET", "/2015-03-31/functions/f", "GetFunction"),
            (
                "DELETE",
                "/2015-03-31/functions/f/policy/sid-1",
                "RemovePermission",
            ),
            ("POST", "/2015-03-31/functions/f/invocations", "Invoke"),
            ("GET", "/2016-08-19/account-settings", "GetAccountSettings"),
            (
                "GET",
                "/2021-10-31/functions/f/urls",
                "ListFunctionUrlConfigs",
            ),
            (
                "PATCH",
                "/2015-03-31/functions/f/x/y",
                "PATCH /2015-03-31/functions/{}/x/{}",
            ),
        ];
        for (method, path, want) in cases {
            let api = classify(Some(AUTH), None, method, path, None, b"");
            assert_eq!(api.operation, want, "{method} {path}");
            assert_eq!(api.protocol, Protocol::RestJson);
            assert_eq!(
                (
                    api.service.as_str(),
                    api.account.as_str(),
                    api.region.as_str()
                ),
                ("lambda", "111122223333", "us-east-1")
            );
        }
    }

    #[test]
    fn query_and_json_protocols_name_their_operation() {
        let iam = AUTH.replace("us-east-1/lambda", "us-east-1/iam");
        let api = classify(
            Some(&iam),
            None,
            "POST",
            "/",
            None,
            b"Action=PutRolePolicy&Version=2010-05-08&RoleName=r",
        );
        assert_eq!(
            (api.operation.as_str(), api.protocol),
            ("PutRolePolicy", Protocol::Query)
        );
        let sqs = AUTH.replace("us-east-1/lambda", "us-east-1/sqs");
        let api = classify(
            Some(&sqs),
            Some("AmazonSQS.ReceiveMessage"),
            "POST",
            "/",
            None,
            b"{}",
        );
        assert_eq!(
            (api.operation.as_str(), api.protocol),
            ("ReceiveMessage", Protocol::AwsJson)
        );
    }

    #[test]
    fn s3_requests_are_named_by_what_they_address() {
        let s3 = AUTH.replace("us-east-1/lambda", "us-east-1/s3");
        for (path, want) in [
            ("/", "GET /"),
            ("/b", "GET /{bucket}"),
            ("/b/", "GET /{bucket}"),
            ("/b/k/e/y", "GET /{bucket}/{key}"),
        ] {
            let api = classify(Some(&s3), None, "GET", path, None, b"");
            assert_eq!(
                (api.operation.as_str(), api.protocol),
                (want, Protocol::RestXml),
                "{path}"
            );
        }
    }

    #[test]
    fn an_unsigned_request_is_anonymous() {
        let api = classify(None, None, "GET", "/bucket/key", None, b"");
        assert_eq!(
            (api.account.as_str(), api.service.as_str()),
            ("anonymous", "unknown")
        );
    }
}
