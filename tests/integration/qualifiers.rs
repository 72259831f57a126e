//! Issue 10, point 3: doors on aliases and versions. A URL and a wildcard
//! statement on alias `live`, a foreign-account statement on version 1 and a
//! mapping on `live` are closed by `run`, every check names the qualifiers
//! it read, and `recover` puts each back on its own qualifier. The end state
//! is read back with the test's own clients. Against LocalStack.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode};
use serde_json::{json, Value};

use crate::common::TestContext;

const FOREIGN: &str = "111122223333";
const QUALIFIERS: [Option<&str>; 4] = [None, Some("live"), Some("1"), Some("2")];

fn pb() -> String {
    crate::common::crate_root()
        .join("tests/playbooks/close-every-qualifier.yaml")
        .display()
        .to_string()
}

type Snapshot = BTreeMap<String, (Option<Value>, BTreeMap<String, Value>)>;

/// Every qualifier's URL and statements, keyed `$LATEST`, `live`, `1`, `2`.
async fn snapshot(cx: &TestContext, f: &str) -> Snapshot {
    let mut out = BTreeMap::new();
    for q in QUALIFIERS {
        out.insert(
            q.unwrap_or("$LATEST").to_string(),
            cx.qualifier_snapshot(f, q).await,
        );
    }
    out
}

/// Versions 1 and 2, alias `live` → 2; URLs on `$LATEST` (IAM) and `live`
/// (NONE, with CORS and response streaming); `Principal: *` statements on
/// `live`, a foreign account on version 1, a legitimate S3 statement on
/// `$LATEST`; an SQS mapping on `live`. Returns the mapping's UUID.
async fn seed(cx: &TestContext, f: &str) -> String {
    cx.create_function(f).await;
    assert_eq!(cx.publish_version(f, "one").await, "1");
    assert_eq!(cx.publish_version(f, "two").await, "2");
    cx.lambda
        .create_alias()
        .function_name(f)
        .name("live")
        .function_version("2")
        .send()
        .await
        .expect("alias");
    cx.lambda
        .create_function_url_config()
        .function_name(f)
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .expect("url on $LATEST");
    cx.lambda
        .create_function_url_config()
        .function_name(f)
        .qualifier("live")
        .auth_type(FunctionUrlAuthType::None)
        .invoke_mode(InvokeMode::ResponseStream)
        .cors(
            Cors::builder()
                .allow_origins("https://shop.example")
                .allow_methods("GET")
                .max_age(300)
                .build(),
        )
        .send()
        .await
        .expect("url on live");
    let add = |sid: &str, q: Option<&str>, principal: &str, action: &str| {
        cx.lambda
            .add_permission()
            .function_name(f)
            .set_qualifier(q.map(str::to_string))
            .statement_id(sid)
            .principal(principal)
            .action(action)
    };
    add(
        "FunctionURLAllowPublicAccess",
        Some("live"),
        "*",
        "lambda:InvokeFunctionUrl",
    )
    .function_url_auth_type(FunctionUrlAuthType::None)
    .send()
    .await
    .expect("url statement on live");
    add("anyone", Some("live"), "*", "lambda:InvokeFunction")
        .send()
        .await
        .expect("wildcard on live");
    add("partner", Some("1"), FOREIGN, "lambda:InvokeFunction")
        .send()
        .await
        .expect("foreign account on 1");
    add(
        "s3-orders",
        None,
        "s3.amazonaws.com",
        "lambda:InvokeFunction",
    )
    .source_arn("arn:aws:s3:::orders")
    .source_account(&cx.account)
    .send()
    .await
    .expect("legitimate on $LATEST");
    cx.create_sqs_mapping(&format!("{f}:live")).await
}

fn checks(v: &Value) -> Vec<(String, bool, String)> {
    v["verification"]
        .as_array()
        .expect("verification")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["passed"] == true,
                c["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn items(v: &Value, status: &str) -> Vec<String> {
    let mut out: Vec<String> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["status"] == status)
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn every_qualifier_is_closed_and_recover_restores_each_exactly() {
    let cx = TestContext::new().await;
    let f = cx.unique("qualified");
    let uuid = seed(&cx, &f).await;
    let before = snapshot(&cx, &f).await;
    assert_eq!(before["live"].1.len(), 2, "{before:?}");
    let live_url = before["live"].0.clone().expect("URL on live");
    assert_eq!(live_url["AuthType"], "NONE");
    assert_eq!(live_url["InvokeMode"], "RESPONSE_STREAM");
    assert_eq!(
        live_url["Cors"]["AllowOrigins"],
        json!(["https://shop.example"])
    );
    assert_eq!(before["1"].1.keys().collect::<Vec<_>>(), ["partner"]);
    assert!(before["$LATEST"].0.is_some());

    let args = ["--output", "json", "run", &pb(), "--incident", "INC-Q"];
    let run = cx.run(&[&args[..], &["-p", &format!("function={f}"), "--yes"]].concat());
    run.expect_code(0);
    let v = run.json();
    let checks = checks(&v);
    assert_eq!(checks.len(), 3, "{checks:?}");
    for (name, passed, detail) in &checks {
        assert!(passed, "{name}: {detail}");
        assert!(
            detail.ends_with(" on $LATEST, live, 1, 2"),
            "{name}: {detail}"
        );
    }

    // Read back with our own clients, not firebreak's word.
    let after = snapshot(&cx, &f).await;
    for (q, (url, statements)) in &after {
        assert!(url.is_none(), "URL left on {q}");
        let sids: Vec<&String> = statements.keys().collect();
        let want: Vec<&str> = if q == "$LATEST" {
            vec!["s3-orders"]
        } else {
            vec![]
        };
        assert_eq!(sids, want, "statements on {q}");
    }
    cx.wait_mapping_state(&uuid, "Disabled").await;

    let again = cx.run(&[&args[..], &["-p", &format!("function={f}"), "--yes"]].concat());
    again.expect_code(0);
    assert_eq!(again.json()["summary"]["changes"], 0, "{}", again.stdout);

    // Plain recover: the IAM URL and the same-account mapping come back;
    // everything that re-opens access stays closed.
    let rec = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-Q",
        "--yes",
    ]);
    rec.expect_code(0);
    let r = rec.json();
    assert_eq!(
        items(&r, "held"),
        [
            format!("function_url:live@{f}"),
            format!("policy_statement:1:partner@{f}"),
            format!("policy_statement:live:FunctionURLAllowPublicAccess@{f}"),
            format!("policy_statement:live:anyone@{f}"),
        ],
        "{r}"
    );
    assert_eq!(
        items(&r, "restore"),
        [
            format!("event_source_mapping:live:{uuid}@{f}"),
            format!("function_url@{f}"),
        ],
        "{r}"
    );
    let partial = snapshot(&cx, &f).await;
    assert_eq!(partial["$LATEST"].0, before["$LATEST"].0);
    assert!(partial["live"].0.is_none() && partial["live"].1.is_empty());
    assert!(partial["1"].1.is_empty());
    cx.wait_mapping_state(&uuid, "Enabled").await;

    cx.run(&["recover", "--incident", "INC-Q", "--yes", "--include-risky"])
        .expect_code(0);
    assert_eq!(
        snapshot(&cx, &f).await,
        before,
        "each qualifier exactly as seeded"
    );
    let last = cx.run(&[
        "--output",
        "json",
        "recover",
        "--incident",
        "INC-Q",
        "--yes",
        "--include-risky",
    ]);
    assert_eq!(last.json()["summary"]["changes"], 0, "{}", last.stdout);
}

#[tokio::test]
async fn an_alias_arn_contains_the_whole_function_and_says_so() {
    let cx = TestContext::new().await;
    let f = cx.unique("by-alias");
    let arn = cx.create_function(&f).await;
    cx.publish_version(&f, "one").await;
    cx.lambda
        .create_alias()
        .function_name(&f)
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("alias");
    for q in [None, Some("live"), Some("1")] {
        cx.lambda
            .add_permission()
            .function_name(&f)
            .set_qualifier(q.map(str::to_string))
            .statement_id("anyone")
            .principal("*")
            .action("lambda:InvokeFunction")
            .send()
            .await
            .expect("wildcard");
    }
    let uuid = cx.create_sqs_mapping(&f).await;

    let live = format!("{arn}:live");
    let run = cx.run(&[
        "--output",
        "json",
        "run",
        &pb(),
        "--incident",
        "INC-ALIAS",
        "-p",
        &format!("function={live}"),
        "--yes",
    ]);
    run.expect_code(0);
    let v = run.json();
    for step in v["steps"].as_array().expect("steps") {
        let note = step["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("names alias live") && note.contains(&format!("whole function {arn}")),
            "{step}"
        );
        assert_eq!(step["target"], json!(arn), "the target is the function");
    }
    for q in [None, Some("live"), Some("1")] {
        assert!(cx.qualifier_snapshot(&f, q).await.1.is_empty(), "{q:?}");
    }
    // The mapping feeds the function itself, not the alias named.
    cx.wait_mapping_state(&uuid, "Disabled").await;
    assert!(checks(&v).iter().all(|c| c.1), "{:?}", checks(&v));
}
