//! Where LocalStack answers otherwise than AWS, the proxy makes the answer
//! AWS's, so that a client's calls through it are the ones it makes on AWS.
//!
//! GetFunction: AWS includes `Concurrency` whenever a reserved concurrency
//! is set, a 0 included; LocalStack leaves a 0 out. A client that must
//! tell "0" from "none" (firebreak verifying a throttle) then has to ask
//! GetFunctionConcurrency, a control-plane call it would not make on AWS.
//! The proxy asks upstream itself, outside every quota and count, as AWS
//! answers from its own state.

use bytes::Bytes;
use serde_json::Value;

/// GetFunctionConcurrency's path for the function GetFunction named at
/// `path` (`/2015-03-31/functions/NAME`), when the answer may lack the
/// setting: a 200 of an unqualified GetFunction without `Concurrency`.
pub fn concurrency_path(
    api: &str,
    path: &str,
    query: Option<&str>,
    status: u16,
    body: &[u8],
) -> Option<String> {
    if api != "lambda:GetFunction" || status != 200 {
        return None;
    }
    // The setting is the function's: a qualified GetFunction does not
    // carry it on AWS either.
    if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("Qualifier="))) {
        return None;
    }
    let name = path.strip_prefix("/2015-03-31/functions/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let answer: Value = serde_json::from_slice(body).ok()?;
    if answer.get("Concurrency").is_some() {
        return None;
    }
    Some(format!("/2019-09-30/functions/{name}/concurrency"))
}

/// `body` with the setting GetFunctionConcurrency answered, if it has one.
pub fn with_concurrency(body: &[u8], concurrency: &[u8]) -> Option<Bytes> {
    let mut answer: Value = serde_json::from_slice(body).ok()?;
    let setting: Value = serde_json::from_slice(concurrency).ok()?;
    let n = setting.get("ReservedConcurrentExecutions")?.as_i64()?;
    answer.as_object_mut()?.insert(
        "Concurrency".into(),
        serde_json::json!({"ReservedConcurrentExecutions": n}),
    );
    serde_json::to_vec(&answer).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unqualified_answer_without_the_setting_is_completed() {
        let bare = br#"{"Configuration":{"FunctionName":"f"}}"#;
        let path = "/2015-03-31/functions/f";
        assert_eq!(
            concurrency_path("lambda:GetFunction", path, None, 200, bare).as_deref(),
            Some("/2019-09-30/functions/f/concurrency")
        );
        let set = br#"{"Concurrency":{"ReservedConcurrentExecutions":5}}"#;
        assert_eq!(
            concurrency_path("lambda:GetFunction", path, None, 200, set),
            None
        );
        assert_eq!(
            concurrency_path(
                "lambda:GetFunction",
                path,
                Some("Qualifier=live"),
                200,
                bare
            ),
            None
        );
        assert_eq!(
            concurrency_path("lambda:GetFunction", path, None, 404, bare),
            None
        );
        assert_eq!(
            concurrency_path("lambda:GetPolicy", path, None, 200, bare),
            None
        );
    }

    #[test]
    fn a_zero_is_added_and_none_adds_nothing() {
        let bare = br#"{"Configuration":{"FunctionName":"f"}}"#;
        let out = with_concurrency(bare, br#"{"ReservedConcurrentExecutions":0}"#).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Concurrency"]["ReservedConcurrentExecutions"], 0);
        assert_eq!(v["Configuration"]["FunctionName"], "f");
        assert!(with_concurrency(bare, b"{}").is_none());
    }
}
