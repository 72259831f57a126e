use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::*;
use crate::action::registry;
use crate::playbook::model::{OnError, Step, DEFAULT_STEP_TIMEOUT};
use crate::playbook::source::Pos;
use crate::respond::routes;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn playbook(rel: &str) -> Playbook {
    crate::playbook::load(&root().join(rel)).expect("shipped playbook")
}

fn example_routes() -> Routes {
    routes::load(&root().join("routes/example.yaml")).expect("example routes")
}

/// A routes file in a temporary directory, naming a shipped playbook.
fn routes_with(dir: &Path, playbook: &str, route: &str) -> Routes {
    let text = format!(
        r#"apiVersion: firebreak/v1
kind: Routes
allow:
  accounts: ["111122223333"]
  regions: [eu-west-1]
  functions: ["orders-*"]
routes:
  - name: r1
    match: {{source: cloudwatch-alarm, alarm: "*-errors"}}
    playbook: {}
    target: {{function: "${{alarm.dimensions.FunctionName}}"}}
{route}"#,
        root().join(playbook).display()
    );
    let path = dir.join("routes.yaml");
    std::fs::write(&path, &text).expect("write routes");
    routes::load(&path).unwrap_or_else(|e| panic!("routes: {e}"))
}

fn none() -> Map<String, Value> {
    Map::new()
}

#[test]
fn the_responder_policy_for_the_shipped_playbook_and_example_routes() {
    let pb = playbook("playbooks/lambda-compromise.yaml");
    let routes = example_routes();
    let p = policy(&Request {
        playbooks: vec![Whole {
            playbook: &pb,
            params: none(),
        }],
        routes: Some(&routes),
        ..Request::default()
    });
    let doc = p.to_json();
    check_document(&doc).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    assert!(
        p.size() <= MAX_INLINE_ROLE_POLICY,
        "{} characters: over IAM's inline role policy limit",
        p.size()
    );
    insta::assert_snapshot!(
        "lambda_compromise_example_routes",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    );

    // Scoped where the routes allow it.
    let f = "arn:aws:lambda:us-east-1:123456789012:function:";
    assert!(p.allows("lambda:PutFunctionConcurrency", &format!("{f}orders-*")));
    assert!(p.allows("lambda:PutFunctionConcurrency", &format!("{f}payments-api")));
    assert!(p.allows(
        "lambda:PutFunctionConcurrency",
        &format!("{f}payments-api:*")
    ));
    assert!(p.allows("s3:PutObject", "arn:aws:s3:::acme-ir-evidence/*"));
    assert!(p.allows("s3:ListBucket", "arn:aws:s3:::acme-ir-evidence"));
    assert!(p.allows(
        "sns:Publish",
        "arn:aws:sns:us-east-1:123456789012:ir-oncall"
    ));
    assert!(p.allows(
        "cloudwatch:DescribeAlarms",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*-errors"
    ));
    assert!(p.allows(
        "securityhub:GetFindings",
        "arn:aws:securityhub:us-east-1:123456789012:hub/default"
    ));
    assert!(p.allows(
        "logs:FilterLogEvents",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/orders-*:*"
    ));
    for action in [
        "sts:GetCallerIdentity",
        "guardduty:ListDetectors",
        "guardduty:GetFindings",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    ] {
        assert!(p.actions().contains(action), "{action} missing");
    }
    // Nothing on every bucket, nothing unplaced, no role to assume (no
    // route assumes one, no evidence step writes through one), no users
    // (the routes give none), and no state without --state.
    let all = doc.to_string();
    assert!(!all.contains("arn:aws:s3:::*"), "{all}");
    assert!(p.statement(UNSCOPED).is_none());
    assert!(!p.actions().contains("sts:AssumeRole"));
    assert!(!p.actions().contains("iam:UpdateAccessKey"));
    assert!(p.statement("StateObjects").is_none());
}

#[test]
fn every_iam_action_of_every_routed_step_is_in_the_policy() {
    let routes = example_routes();
    let p = policy(&Request {
        routes: Some(&routes),
        ..Request::default()
    });
    let have = p.actions();
    for route in &routes.routes {
        for step in route.playbook.steps_in(&route.phases) {
            for action in step.action.spec().iam_actions {
                // Key rotation through KMS, assumed forensic roles and
                // access keys depend on params these routes do not set.
                if [
                    "sts:AssumeRole",
                    "iam:ListAccessKeys",
                    "iam:UpdateAccessKey",
                ]
                .contains(action)
                {
                    continue;
                }
                assert!(
                    have.contains(action),
                    "{action} of step {} is missing",
                    step.id
                );
            }
        }
    }
}

#[test]
fn every_declared_iam_action_is_placed_on_resources() {
    let scope = Scope::anywhere(Some("us-east-1"));
    let known = none();
    for action in registry::all() {
        let step = Step {
            id: "s".into(),
            phase: Phase::Contain,
            action: *action,
            with: Vec::new(),
            when: None,
            on_error: OnError::Abort,
            retries: 0,
            timeout: DEFAULT_STEP_TIMEOUT,
            pos: Pos::default(),
        };
        let a = args::StepArgs {
            step: &step,
            known: &known,
            scope: &scope,
        };
        let spec = action.spec();
        for iam in spec.iam_actions {
            for g in grants::for_action(iam, spec, &a) {
                assert_ne!(
                    g.sid, UNSCOPED,
                    "{}: {iam} has no rule in src/permissions/grants.rs",
                    spec.name
                );
            }
        }
    }
}

#[test]
fn a_playbook_run_by_hand_is_covered_whole_and_narrowed_by_its_params() {
    let pb = playbook("playbooks/lambda-compromise.yaml");
    let anywhere = policy(&Request {
        playbooks: vec![Whole {
            playbook: &pb,
            params: none(),
        }],
        ..Request::default()
    });
    assert!(anywhere.allows(
        "lambda:PutFunctionConcurrency",
        "arn:aws:lambda:*:*:function:*"
    ));
    assert!(anywhere.allows("s3:PutObject", "arn:aws:s3:::*/*"));
    // `users` may be given at run time: keys can be deactivated.
    assert!(anywhere.allows("iam:UpdateAccessKey", "arn:aws:iam::*:user/*"));
    // Not a responder: no queue, no re-read.
    assert!(!anywhere.actions().contains("sqs:ReceiveMessage"));
    assert!(!anywhere.actions().contains("cloudwatch:DescribeAlarms"));

    let given = json!({"function": "orders-api", "forensic_bucket": "acme-ir", "users": ["deploy"], "collect_logs": false});
    let narrowed = policy(&Request {
        playbooks: vec![Whole {
            playbook: &pb,
            params: given.as_object().cloned().unwrap_or_default(),
        }],
        region: Some("eu-west-1"),
        ..Request::default()
    });
    let f = "arn:aws:lambda:eu-west-1:*:function:orders-api";
    assert!(narrowed.allows("lambda:PutFunctionConcurrency", f));
    assert!(narrowed.allows("lambda:PutFunctionConcurrency", &format!("{f}:*")));
    assert!(narrowed.allows("s3:PutObject", "arn:aws:s3:::acme-ir/*"));
    assert!(narrowed.allows("iam:UpdateAccessKey", "arn:aws:iam::*:user/deploy"));
    assert!(
        !narrowed.actions().contains("logs:FilterLogEvents"),
        "collect_logs=false: the log step never runs"
    );
    assert!(check_document(&narrowed.to_json()).is_ok());
}

#[test]
fn a_route_covers_only_its_phases_and_its_params() {
    let dir = tempfile::tempdir().expect("tempdir");
    let identify_only = routes_with(
        dir.path(),
        "playbooks/throttle-function.yaml",
        "    phases: [identify]\n",
    );
    let p = policy(&Request {
        routes: Some(&identify_only),
        ..Request::default()
    });
    assert!(p.allows(
        "lambda:GetFunction",
        "arn:aws:lambda:eu-west-1:111122223333:function:orders-*"
    ));
    assert!(
        !p.actions().contains("lambda:PutFunctionConcurrency"),
        "contain is not a phase of this route"
    );

    let with_users = routes_with(
        dir.path(),
        "playbooks/lambda-compromise.yaml",
        "    params: {forensic_bucket: ev, users: [deploy], collect_logs: false}\n    assume_role: {\"111122223333\": \"arn:aws:iam::111122223333:role/ir-responder\"}\n",
    );
    let p = policy(&Request {
        routes: Some(&with_users),
        ..Request::default()
    });
    assert!(p.allows(
        "iam:UpdateAccessKey",
        "arn:aws:iam::111122223333:user/deploy"
    ));
    assert!(p.allows(
        "iam:UpdateAccessKey",
        "arn:aws:iam::111122223333:user/*/deploy"
    ));
    assert!(!p.allows("iam:UpdateAccessKey", "arn:aws:iam::111122223333:user/*"));
    assert!(!p.actions().contains("logs:FilterLogEvents"));
    assert!(p.allows(
        "sts:AssumeRole",
        "arn:aws:iam::111122223333:role/ir-responder"
    ));
    assert!(p.allows("kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/*"));
    let kms = p.statement("KmsViaSecretsManager").expect("kms statement");
    assert_eq!(
        kms.condition.as_ref().map(|c| json!(c)),
        Some(json!({"StringLike": {"kms:ViaService": ["secretsmanager.eu-west-1.amazonaws.com"]}}))
    );
}

#[test]
fn state_queue_and_region_are_scoped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = routes_with(dir.path(), "playbooks/throttle-function.yaml", "");
    let state = S3Location::parse("s3://ir-state/firebreak/prod").expect("location");
    let p = policy(&Request {
        routes: Some(&routes),
        state: Some(&state),
        queue: Some("firebreak-events"),
        ..Request::default()
    });
    assert!(p.allows("s3:PutObject", "arn:aws:s3:::ir-state/firebreak/prod/*"));
    assert!(p.allows("s3:GetObject", "arn:aws:s3:::ir-state/firebreak/prod/*"));
    assert!(!p.actions().contains("s3:DeleteObject"));
    let list = p.statement("StateBucket").expect("list statement");
    assert_eq!(
        list.resources.iter().collect::<Vec<_>>(),
        ["arn:aws:s3:::ir-state"]
    );
    assert_eq!(
        list.condition.as_ref().map(|c| json!(c)),
        Some(json!({"StringLike": {"s3:prefix": ["firebreak/prod/*"]}}))
    );
    assert!(p.allows(
        "sqs:ReceiveMessage",
        "arn:aws:sqs:eu-west-1:111122223333:firebreak-events"
    ));
    let arn = "arn:aws:sqs:us-east-1:999999999999:central";
    let p = policy(&Request {
        routes: Some(&routes),
        queue: Some(arn),
        ..Request::default()
    });
    assert!(p.allows("sqs:DeleteMessage", arn));
    assert!(check_document(&p.to_json()).is_ok());
}

#[test]
fn the_policy_is_deterministic() {
    let routes = example_routes();
    let pb = playbook("playbooks/lambda-compromise.yaml");
    let make = || {
        policy(&Request {
            playbooks: vec![Whole {
                playbook: &pb,
                params: none(),
            }],
            routes: Some(&routes),
            ..Request::default()
        })
        .to_json()
        .to_string()
    };
    assert_eq!(make(), make());
}
