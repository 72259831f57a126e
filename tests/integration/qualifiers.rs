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
    for step in v["targets"][0]["steps"].as_array().expect("steps") {
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

mod replayed {
    //! What LocalStack cannot produce, replayed with recorded responses:
    //! a read refused at verify time, an alias added after the plan.

    use std::sync::Arc;

    use aws_sdk_lambda::error::ErrorMetadata;
    use aws_sdk_lambda::operation::get_policy::{GetPolicyError, GetPolicyOutput};
    use aws_sdk_lambda::operation::list_aliases::ListAliasesOutput;
    use aws_sdk_lambda::operation::list_function_url_configs::ListFunctionUrlConfigsOutput;
    use aws_sdk_lambda::operation::list_versions_by_function::ListVersionsByFunctionOutput;
    use aws_sdk_lambda::operation::remove_permission::RemovePermissionOutput;
    use aws_sdk_lambda::types::{AliasConfiguration, FunctionConfiguration};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use firebreak::aws::{Aws, CallRecorder, Guard};
    use firebreak::engine::{RunReport, Session};
    use firebreak::playbook::{self, Phase};
    use firebreak::state::{Incident, IncidentId};
    use serde_json::json;

    const ME: &str = "444455556666";

    fn alias(name: &str) -> AliasConfiguration {
        AliasConfiguration::builder()
            .name(name)
            .function_version("1")
            .build()
    }

    fn versions() -> Rule {
        mock!(aws_sdk_lambda::Client::list_versions_by_function).then_output(|| {
            ListVersionsByFunctionOutput::builder()
                .versions(FunctionConfiguration::builder().version("$LATEST").build())
                .versions(FunctionConfiguration::builder().version("1").build())
                .build()
        })
    }

    fn no_urls() -> Rule {
        mock!(aws_sdk_lambda::Client::list_function_url_configs).then_output(|| {
            ListFunctionUrlConfigsOutput::builder()
                .set_function_url_configs(Some(vec![]))
                .build()
                .expect("empty listing")
        })
    }

    fn public_policy(q: &str) -> GetPolicyOutput {
        let arn = format!("arn:aws:lambda:us-east-1:{ME}:function:victim:{q}");
        let doc = json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "anyone", "Effect": "Allow", "Principal": "*",
            "Action": "lambda:InvokeFunction", "Resource": arn}]});
        GetPolicyOutput::builder().policy(doc.to_string()).build()
    }

    fn no_policy() -> Rule {
        mock!(aws_sdk_lambda::Client::get_policy).then_error(|| {
            GetPolicyError::generic(
                ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .message("The resource you requested does not exist.")
                    .build(),
            )
        })
    }

    fn remove_on(q: &'static str) -> Rule {
        mock!(aws_sdk_lambda::Client::remove_permission)
            .match_requests(move |r| r.qualifier() == Some(q) && r.statement_id() == Some("anyone"))
            .then_output(|| RemovePermissionOutput::builder().build())
    }

    /// Plans and runs `lambda.remove_public_access` on `victim`.
    async fn run(rules: &[&Rule]) -> (Vec<firebreak::plan::Change>, RunReport) {
        let guard = Guard {
            dry_run: false,
            recorder: Arc::new(CallRecorder::default()),
        };
        let g = guard.clone();
        let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, rules, move |b| b
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .interceptor(g.clone()));
        let sts_rule = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
                .account(ME)
                .arn(format!("arn:aws:iam::{ME}:user/oncall"))
                .build()
        });
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&sts_rule]);
        let no_iam: [&Rule; 0] = [];
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, &no_iam);
        let aws = Aws::from_clients(lambda.clone(), lambda, sts, iam, "us-east-1", &guard);
        let dir = tempfile::tempdir().expect("tempdir");
        let incident = Incident::open(
            dir.path(),
            &IncidentId::parse("INC-REPLAY").expect("id"),
            "run-r",
            "test",
        )
        .expect("incident");
        let caller = firebreak::aws::Caller {
            account: ME.into(),
            arn: format!("arn:aws:iam::{ME}:user/oncall"),
        };
        let s = Session::new(aws, caller, incident);
        let pb = playbook::load::parse(
            std::path::Path::new("replay.yaml"),
            "apiVersion: firebreak/v1\nkind: Playbook\nname: replay\nphases:\n  contain:\n    - id: close\n      action: lambda.remove_public_access\n      with: {function: victim}\n".to_string(),
        )
        .expect("valid playbook");
        let plan = s
            .build_plan(&pb, &serde_json::Map::new(), &[Phase::Contain])
            .await
            .expect("plan");
        let report = s.apply_plan(&plan, &pb).await.expect("run");
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        (plan.steps[0].changes.clone(), report)
    }

    fn check<'r>(report: &'r RunReport, name: &str) -> &'r firebreak::action::Check {
        &report
            .checks
            .iter()
            .find(|c| c.check.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {:?}", report.checks))
            .check
    }

    /// GetPolicy on alias `live` answers twice (the plan, and the
    /// re-observation before the change), then AccessDenied when
    /// verification reads it again: the check fails and says why.
    #[tokio::test]
    async fn a_qualifier_whose_policy_cannot_be_read_fails_verification() {
        let aliases = mock!(aws_sdk_lambda::Client::list_aliases)
            .then_output(|| ListAliasesOutput::builder().aliases(alias("live")).build());
        let live_policy = mock!(aws_sdk_lambda::Client::get_policy)
            .match_requests(|r| r.qualifier() == Some("live"))
            .sequence()
            .output(|| public_policy("live"))
            .times(2)
            .error(|| {
                GetPolicyError::generic(
                    ErrorMetadata::builder()
                        .code("AccessDeniedException")
                        .message("not authorized to perform: lambda:GetPolicy")
                        .build(),
                )
            })
            .repeatedly()
            .build();
        let remove = remove_on("live");
        let (changes, report) = run(&[
            &aliases,
            &versions(),
            &no_urls(),
            &live_policy,
            &no_policy(),
            &remove,
        ])
        .await;
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].attribute, "policy_statement:live:anyone");
        assert_eq!(remove.num_calls(), 1);
        let statements = check(&report, "no public statement");
        assert!(!statements.passed, "{statements:?}");
        assert!(
            statements
                .detail
                .starts_with("could not read the policy of live: GetPolicy")
                && statements.detail.contains("AccessDenied"),
            "{}",
            statements.detail
        );
        let url = check(&report, "no function URL");
        assert!(url.passed);
        assert_eq!(url.detail, "no function URL on $LATEST, live, 1");
    }

    /// An alias created (with a public statement) after the plan was made
    /// is read by verification, which fails naming it.
    #[tokio::test]
    async fn an_alias_added_after_the_plan_is_verified_too() {
        let aliases = mock!(aws_sdk_lambda::Client::list_aliases)
            .sequence()
            .output(|| ListAliasesOutput::builder().aliases(alias("live")).build())
            .times(2)
            .output(|| {
                ListAliasesOutput::builder()
                    .aliases(alias("live"))
                    .aliases(alias("backdoor"))
                    .build()
            })
            .repeatedly()
            .build();
        let live_policy = mock!(aws_sdk_lambda::Client::get_policy)
            .match_requests(|r| r.qualifier() == Some("live"))
            .sequence()
            .output(|| public_policy("live"))
            .times(2)
            .error(|| {
                GetPolicyError::generic(
                    ErrorMetadata::builder()
                        .code("ResourceNotFoundException")
                        .message("The resource you requested does not exist.")
                        .build(),
                )
            })
            .repeatedly()
            .build();
        let backdoor = mock!(aws_sdk_lambda::Client::get_policy)
            .match_requests(|r| r.qualifier() == Some("backdoor"))
            .then_output(|| public_policy("backdoor"));
        let (_, report) = run(&[
            &aliases,
            &versions(),
            &no_urls(),
            &live_policy,
            &backdoor,
            &no_policy(),
            &remove_on("live"),
        ])
        .await;
        let statements = check(&report, "no public statement");
        assert!(!statements.passed);
        assert_eq!(statements.detail, "still present: backdoor:anyone");
        assert_eq!(
            check(&report, "no function URL").detail,
            "no function URL on $LATEST, backdoor, live, 1"
        );
    }
}
