//! deploy/: the checked-in template is what deploy/render.sh makes of its
//! source, its role holds exactly what `firebreak permissions` prints, and
//! a rendered template (with a package from deploy/package.sh) deploys on
//! LocalStack's CloudFormation with every resource in place.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use serde_json::Value;

use crate::common::{crate_root, TestContext, REGION};

fn firebreak_bin() -> &'static str {
    env!("CARGO_BIN_EXE_firebreak")
}

/// Runs a deploy/ script from the crate root with FIREBREAK set.
fn script(name: &str, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(crate_root().join("deploy").join(name))
        .args(args)
        .current_dir(crate_root())
        .env("FIREBREAK", firebreak_bin())
        .output()
        .expect("run the script")
}

fn permissions(args: &[&str]) -> Value {
    let out = Command::new(firebreak_bin())
        .arg("permissions")
        .args(args)
        .current_dir(crate_root())
        .output()
        .expect("run firebreak permissions");
    assert!(
        out.status.success(),
        "permissions failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the policy is JSON")
}

/// The role policy between the markers render.sh writes.
fn embedded_policy(template: &str) -> Value {
    let start = template
        .find("# BEGIN firebreak permissions")
        .expect("begin marker");
    let end = template
        .find("# END firebreak permissions")
        .expect("end marker");
    let block = &template[start..end];
    let json_start = block.find('\n').expect("line") + 1;
    serde_json::from_str(&block[json_start..]).expect("the embedded policy is JSON")
}

/// `Key: "value"` under the template's Metadata.
fn metadata(template: &str, key: &str) -> String {
    let prefix = format!("    {key}: \"");
    template
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no Metadata.Firebreak.{key}"))
        .to_string()
}

#[test]
fn the_checked_in_template_is_rendered_from_its_source_with_the_printed_policy() {
    let checked_in =
        std::fs::read_to_string(crate_root().join("deploy/firebreak.yaml")).expect("template");
    let (routes, state, queue) = (
        metadata(&checked_in, "Routes"),
        metadata(&checked_in, "State"),
        metadata(&checked_in, "Queue"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("firebreak.yaml");
    let r = script(
        "render.sh",
        &[
            "--routes",
            &routes,
            "--state",
            &state,
            "--queue",
            &queue,
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert!(
        r.status.success(),
        "render.sh: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let rendered = std::fs::read_to_string(&out).expect("rendered");
    assert!(
        rendered == checked_in,
        "deploy/firebreak.yaml is stale: run deploy/render.sh --routes {routes} --state {state} --queue {queue}"
    );
    let printed = permissions(&["--routes", &routes, "--state", &state, "--queue", &queue]);
    let embedded = embedded_policy(&checked_in);
    assert_eq!(
        embedded, printed,
        "the role's policy is what permissions prints"
    );
    firebreak::permissions::check_document(&embedded).unwrap_or_else(|p| panic!("{p:?}"));
    // What the responder needs of its own resources is in it.
    let text = embedded.to_string();
    assert!(text.contains(&format!("\"{queue}\"")), "the queue");
    assert!(text.contains("sqs:ReceiveMessage") && text.contains("s3:PutObject"));
    assert!(!text.contains("\"arn:aws:s3:::*"), "no bucket left open");

    // Bad inputs are refused before anything is written.
    let bad = script(
        "render.sh",
        &[
            "--routes",
            &routes,
            "--state",
            "/tmp/state",
            "--queue",
            &queue,
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("s3://BUCKET/PREFIX"));
}

#[test]
fn permissions_refuses_what_it_cannot_scope() {
    let out = Command::new(firebreak_bin())
        .args([
            "permissions",
            "playbooks/lambda-compromise.yaml",
            "-p",
            "nope=1",
        ])
        .current_dir(crate_root())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PLAYBOOK given has a param `nope`"));
    let out = Command::new(firebreak_bin())
        .args([
            "permissions",
            "--routes",
            "routes/example.yaml",
            "--queue",
            "arn:aws:sns:us-east-1:123456789012:t",
        ])
        .current_dir(crate_root())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an SQS queue"));
    let out = Command::new(firebreak_bin())
        .args(["permissions"])
        .current_dir(crate_root())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(64),
        "a playbook or --routes is needed"
    );
}

async fn wait_for_stack(cfn: &aws_sdk_cloudformation::Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .expect("describe stack");
        let status = out.stacks().first().and_then(|s| s.stack_status()).cloned();
        match status {
            Some(StackStatus::CreateComplete) => return,
            Some(StackStatus::CreateInProgress) | None => {}
            Some(other) => {
                let events = cfn
                    .describe_stack_events()
                    .stack_name(name)
                    .send()
                    .await
                    .map(|e| {
                        e.stack_events()
                            .iter()
                            .filter_map(|e| {
                                e.resource_status_reason().map(|r| {
                                    format!("{}: {r}", e.logical_resource_id().unwrap_or("?"))
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                panic!("stack {name} is {other:?}: {events:#?}");
            }
        }
        assert!(Instant::now() < deadline, "stack {name} never completed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn the_rendered_template_deploys_on_localstack_with_every_resource() {
    let cx = TestContext::new().await;
    // A routes file and its playbook laid out as in the package.
    let pbdir = cx.path("playbooks");
    std::fs::create_dir_all(&pbdir).expect("dir");
    std::fs::copy(
        TestContext::throttle_playbook(),
        pbdir.join("throttle-function.yaml"),
    )
    .expect("copy playbook");
    std::fs::create_dir_all(cx.path("routes")).expect("dir");
    let routes = cx.path("routes/routes.yaml");
    std::fs::write(
        &routes,
        format!(
            r#"apiVersion: firebreak/v1
kind: Routes
allow:
  accounts: ["{account}"]
  regions: [{REGION}]
  functions: ["orders-*"]
routes:
  - name: lambda-errors
    match: {{source: cloudwatch-alarm, alarm: "*-errors"}}
    playbook: ../playbooks/throttle-function.yaml
    target: {{function: "${{alarm.dimensions.FunctionName}}"}}
"#,
            account = cx.account
        ),
    )
    .expect("routes");
    let routes_arg = routes.to_str().expect("utf8");
    let state = format!("s3://fb-cfn-state-{}/incidents", cx.account);
    let queue = format!("arn:aws:sqs:{REGION}:{}:fb-events", cx.account);
    let template = cx.path("stack.yaml");
    let r = script(
        "render.sh",
        &[
            "--routes",
            routes_arg,
            "--state",
            &state,
            "--queue",
            &queue,
            "--out",
            template.to_str().expect("utf8"),
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    // The package: any small bootstrap will do, LocalStack never runs it.
    let fake = cx.path("bootstrap");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").expect("bootstrap");
    let zip = cx.path("firebreak-lambda.zip");
    let r = script(
        "package.sh",
        &[
            "--routes",
            routes_arg,
            "--playbooks",
            pbdir.to_str().expect("utf8"),
            "--binary",
            fake.to_str().expect("utf8"),
            "--out",
            zip.to_str().expect("utf8"),
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    let sdk = cx.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let code_bucket = format!("fb-code-{}", cx.account);
    s3.create_bucket()
        .bucket(&code_bucket)
        .send()
        .await
        .expect("code bucket");
    s3.put_object()
        .bucket(&code_bucket)
        .key("firebreak-lambda.zip")
        .body(std::fs::read(&zip).expect("zip").into())
        .send()
        .await
        .expect("upload the package");

    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let stack = cx.unique("firebreak");
    let param = |k: &str, v: &str| {
        Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    };
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(std::fs::read_to_string(&template).expect("template"))
        .parameters(param("CodeBucket", &code_bucket))
        .parameters(param("CodeKey", "firebreak-lambda.zip"))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .expect("create stack");
    wait_for_stack(&cfn, &stack).await;

    let resources = cfn
        .describe_stack_resources()
        .stack_name(&stack)
        .send()
        .await
        .expect("resources");
    let physical = |logical: &str| -> String {
        let r = resources
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(logical))
            .unwrap_or_else(|| panic!("no {logical} in the stack"));
        assert_eq!(
            r.resource_status().map(|s| s.as_str()),
            Some("CREATE_COMPLETE"),
            "{logical}"
        );
        r.physical_resource_id().unwrap_or_default().to_string()
    };
    for rule in ["AlarmRule", "GuardDutyRule"] {
        physical(rule);
        let ty = resources
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(rule))
            .and_then(|r| r.resource_type());
        assert_eq!(ty, Some("AWS::Events::Rule"));
    }
    physical("EventQueuePolicy");

    // The queue, with its dead-letter queue and its policy.
    let sqs = cx.sqs();
    let url = sqs
        .get_queue_url()
        .queue_name("fb-events")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes");
    let attr = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attrs
            .attributes()
            .and_then(|a| a.get(&name))
            .cloned()
            .unwrap_or_default()
    };
    let redrive: Value =
        serde_json::from_str(&attr(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
            .expect("redrive policy");
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":fb-events-dlq")),
        "{redrive}"
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    assert_eq!(
        attr(aws_sdk_sqs::types::QueueAttributeName::QueueArn),
        queue,
        "the queue the policy names"
    );
    let policy = attr(aws_sdk_sqs::types::QueueAttributeName::Policy);
    assert!(
        policy.contains("events.amazonaws.com") && policy.contains("sns.amazonaws.com"),
        "{policy}"
    );

    // The role, with exactly the printed policy inline.
    let role = physical("ResponderRole");
    let role_name = role.rsplit('/').next().unwrap_or(&role).to_string();
    let doc = cx
        .iam
        .get_role_policy()
        .role_name(&role_name)
        .policy_name("firebreak-responder")
        .send()
        .await
        .expect("inline policy");
    let inline = firebreak::action::iam::policy::decode(doc.policy_document());
    let printed = permissions(&["--routes", routes_arg, "--state", &state, "--queue", &queue]);
    assert_eq!(inline, printed, "the role holds what permissions prints");

    // The function, from the S3 package, configured by environment.
    let f = cx
        .lambda
        .get_function_configuration()
        .function_name("firebreak-responder")
        .send()
        .await
        .expect("function");
    assert_eq!(f.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    let vars = f
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(vars.get("FIREBREAK_STATE"), Some(&state));
    assert_eq!(
        vars.get("FIREBREAK_ROUTES").map(String::as_str),
        Some("routes/routes.yaml")
    );
    assert!(f.role().is_some_and(|r| r.ends_with(&role_name)));

    // The mapping from the queue, reporting partial batch failures.
    let mappings = cx
        .lambda
        .list_event_source_mappings()
        .function_name("firebreak-responder")
        .send()
        .await
        .expect("mappings");
    let m = mappings
        .event_source_mappings()
        .first()
        .expect("one mapping");
    assert_eq!(m.event_source_arn(), Some(queue.as_str()));
    assert!(
        m.function_response_types()
            .iter()
            .any(|t| t.as_str() == "ReportBatchItemFailures"),
        "{m:?}"
    );

    // The state bucket, versioned.
    let bucket = state
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .unwrap_or_default();
    let versioning = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    assert!(Path::new(&zip).exists());
}
