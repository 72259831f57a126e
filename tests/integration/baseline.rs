//! `firebreak baseline`: a function's known-good state recorded read-only,
//! dated per function, in a directory or S3; environment values never
//! stored, only their keyed hashes. The victim built here is shared with
//! recover_baseline.rs.

use std::time::Duration;

use serde_json::Value;

use crate::common::{TestContext, REGION};

/// Environment values that must never appear in a baseline or any output.
pub const SECRET_VALUE: &str = "hunter2-correct-horse-battery";

/// A function as teams deploy it: a role with a managed and an inline
/// policy, secrets in its environment, version 1 behind alias `live`, a
/// legitimate statement, an SQS mapping, a tag, a deploy user with a key
/// and a nightly EventBridge rule.
pub struct Victim {
    pub name: String,
    pub arn: String,
    pub role: String,
    #[allow(dead_code)]
    pub role_arn: String,
    pub user: String,
    pub rule: String,
    pub mapping: String,
}

pub async fn events(cx: &TestContext) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&cx.sdk_config().await)
}

pub async fn victim(cx: &TestContext) -> Victim {
    let name = cx.unique("orders");
    let role = format!("{name}-role");
    let role_arn = cx
        .lambda_role(
            &role,
            &[(
                "write-logs",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}"#,
            )],
        )
        .await;
    let managed = cx
        .iam
        .create_policy()
        .policy_name(format!("{name}-read-orders"))
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/*"}]}"#)
        .send()
        .await
        .expect("policy");
    cx.iam
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(managed.policy().and_then(|p| p.arn()).expect("arn"))
        .send()
        .await
        .expect("attach");
    let arn = cx
        .create_function_full(
            &name,
            &role_arn,
            &[("DB_PASSWORD", SECRET_VALUE), ("MODE", "production")],
        )
        .await;
    let v1 = cx.publish_version(&name, "release 1").await;
    cx.lambda
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version(&v1)
        .send()
        .await
        .expect("alias");
    cx.lambda
        .add_permission()
        .function_name(&name)
        .statement_id("s3-orders-bucket")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn("arn:aws:s3:::orders")
        .source_account(&cx.account)
        .send()
        .await
        .expect("legit statement");
    let mapping = cx.create_sqs_mapping(&name).await;
    cx.lambda
        .tag_resource()
        .resource(&arn)
        .tags("team", "orders")
        .send()
        .await
        .expect("tag");
    let user = format!("{name}-deployer");
    cx.iam
        .create_user()
        .user_name(&user)
        .send()
        .await
        .expect("user");
    cx.iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .expect("key");
    let rule = format!("{name}-nightly");
    cx.schedule_rule(&rule, "rate(1 day)", &arn).await;
    Victim {
        name,
        arn,
        role,
        role_arn,
        user,
        rule,
        mapping,
    }
}

/// Every baseline file of `function` in a directory store, oldest first.
pub fn files(cx: &TestContext, store: &str, function: &str) -> Vec<std::path::PathBuf> {
    let dir = cx.path(store).join(&cx.account).join(REGION).join(function);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn take(cx: &TestContext, v: &Victim, store: &str) -> Value {
    let run = cx.run(&[
        "--output",
        "json",
        "baseline",
        "--target",
        &v.name,
        "--store",
        store,
        "--deploy-user",
        &v.user,
    ]);
    run.expect_code(0);
    assert!(!run.stdout.contains(SECRET_VALUE) && !run.stderr.contains(SECRET_VALUE));
    let path = files(cx, store, &v.name).pop().expect("a baseline file");
    let text = std::fs::read_to_string(path).expect("read");
    assert!(
        !text.contains(SECRET_VALUE),
        "an environment value was stored"
    );
    serde_json::from_str(&text).expect("baseline JSON")
}

#[tokio::test]
async fn baseline_records_the_function_without_environment_values() {
    let cx = TestContext::new().await;
    let v = victim(&cx).await;
    let b = take(&cx, &v, "baselines");

    assert_eq!(b["function"], v.name.as_str());
    assert_eq!(b["account"], cx.account.as_str());
    let env = &b["configuration"]["environment"];
    assert_eq!(
        env.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["DB_PASSWORD".to_string(), "MODE".to_string()])
    );
    assert_eq!(
        env["DB_PASSWORD"].as_str().map(str::len),
        Some(64),
        "a keyed hash"
    );
    assert!(!b.to_string().contains("production"));
    assert_eq!(b["aliases"]["live"], "1");
    assert_eq!(
        b["versions"]["1"]["code_sha256"],
        b["configuration"]["code_sha256"]
    );
    assert_eq!(
        b["versions"]["1"]["environment"], b["configuration"]["environment"],
        "the version holds the same values: the hashes match"
    );
    assert!(b["policies"]["$LATEST"]["s3-orders-bucket"].is_object());
    let mappings = b["mappings"].as_object().expect("mappings");
    assert_eq!(mappings.len(), 1);
    assert_eq!(
        mappings.values().next().map(|m| m["uuid"].clone()),
        Some(Value::from(v.mapping.as_str()))
    );
    assert_eq!(b["tags"]["team"], "orders");
    assert_eq!(b["role"]["name"], v.role.as_str());
    assert!(b["role"]["inline"]["write-logs"].is_object());
    assert_eq!(b["role"]["attached"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        b["role"]["trust"]["Statement"][0]["Action"],
        "sts:AssumeRole"
    );
    assert_eq!(b["deploy_users"][&v.user].as_array().map(Vec::len), Some(1));
    assert_eq!(b["role_functions"], serde_json::json!([v.name]));
    assert_eq!(b["rules"][&v.rule]["targets"]["1"], v.arn.as_str());

    // The hashing key: created once, private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cx.path("baselines/baseline.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Dated per function: a second capture is a second file, the same
    // state hashes the same way, and neither is overwritten.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = take(&cx, &v, "baselines");
    assert_eq!(files(&cx, "baselines", &v.name).len(), 2);
    assert_ne!(again["taken_at"], b["taken_at"]);
    let strip = |mut x: Value| {
        x["taken_at"] = Value::Null;
        x
    };
    assert_eq!(strip(again), strip(b), "the same state, the same baseline");
}

#[tokio::test]
async fn baseline_goes_to_s3_and_needs_a_key_there() {
    let cx = TestContext::new().await;
    let name = cx.unique("plain");
    cx.create_function_with_env(&name, &[("TOKEN", SECRET_VALUE)])
        .await;
    let bucket = format!("fb-baselines-{}", cx.account);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&cx.endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &cx.account,
            "test",
            None,
            None,
            "tests",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let store = format!("s3://{bucket}/prod");

    // Without a key an S3 store is refused before any AWS call.
    let run = cx.run(&["baseline", "--target", &name, "--store", &store]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("FIREBREAK_BASELINE_KEY"),
        "{}",
        run.stderr
    );

    let out = cx
        .firebreak()
        .env("FIREBREAK_BASELINE_KEY", "a-long-random-test-key")
        .args([
            "--output", "json", "baseline", "--target", &name, "--store", &store,
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("prod/{}/{REGION}/{name}/", cx.account))
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    // The baseline, and the code package it may be re-published from.
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].ends_with("Z.json"), "{keys:?}");
    let package = keys[1]
        .rsplit_once("/packages/")
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| panic!("{keys:?}"));
    let zip = s3
        .get_object()
        .bucket(&bucket)
        .key(keys[1])
        .send()
        .await
        .expect("get package")
        .body
        .collect()
        .await
        .expect("package body")
        .into_bytes();
    {
        use sha2::Digest;
        assert_eq!(
            format!("{}.zip", hex::encode(sha2::Sha256::digest(&zip))),
            package,
            "named by its hash"
        );
    }
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key(keys[0])
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains(SECRET_VALUE));
    let b: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        b["configuration"]["environment"]["TOKEN"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    let code = b["configuration"]["code_sha256"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(b["packages"][code].as_str(), Some(package.as_str()));
}

#[tokio::test]
async fn baseline_refuses_an_unknown_function_with_a_hint() {
    let cx = TestContext::new().await;
    let run = cx.run(&["baseline", "--target", "no-such-fn", "--store", "b"]);
    run.expect_code(1);
    assert!(run.stderr.contains("no-such-fn"), "{}", run.stderr);
    assert!(run.stderr.to_lowercase().contains("hint"), "{}", run.stderr);
}
