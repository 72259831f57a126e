//! Discovery reads the role's policies like IAM: an unconditional `Deny`
//! takes a secret away, a conditional one does not (it cannot be known to
//! apply), `NotAction` grants what it does not exclude; and the deny-all
//! this incident's quarantine puts on the role does not hide what the
//! function could read before it.

use std::collections::BTreeSet;

use aws_sdk_ssm::types::ParameterType;
use serde_json::Value;

use crate::common::TestContext;
use crate::secrets_rotation::{parameter, playbook, secret, set, step, with_params};

#[tokio::test]
async fn denies_not_action_and_the_quarantine_shape_what_discovery_finds() {
    let cx = TestContext::new().await;
    let f = cx.unique("policies");
    let a = &cx.account;
    let s_a = secret(&cx, &format!("{f}/a"), "seeded-a-0c1d").await;
    let s_b = secret(&cx, &format!("{f}/b"), "seeded-b-2e3f").await;
    let s_c = secret(&cx, &format!("{f}/c"), "seeded-c-4a5b").await;
    let s_d = secret(&cx, &format!("{f}-elsewhere/d"), "seeded-d-6c7d").await;
    parameter(&cx, &format!("/{f}/p1"), "seeded-p1-8e9f").await;
    parameter(&cx, &format!("/{f}/p2"), "seeded-p2-a0b1").await;
    cx.ssm()
        .await
        .put_parameter()
        .name(format!("/{f}/conf"))
        .value("orders-table")
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("plain parameter");

    let role = format!("{f}-role");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role_arn = cx
        .iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("role")
        .role()
        .expect("role")
        .arn()
        .to_string();
    let inline = [
        // Everything but IAM: every secret and parameter of the account.
        (
            "broad",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#.to_string(),
        ),
        (
            "deny-b",
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:{a}:secret:{f}/b-*"}}]}}"#
            ),
        ),
        // Only outside a VPC endpoint: it may not apply to the function.
        (
            "deny-c-off-vpc",
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:{a}:secret:{f}/c-*","Condition":{{"StringNotEquals":{{"aws:SourceVpce":"vpce-0123"}}}}}}]}}"#
            ),
        ),
    ];
    for (name, doc) in inline {
        cx.iam
            .put_role_policy()
            .role_name(&role)
            .policy_name(name)
            .policy_document(doc)
            .send()
            .await
            .expect("inline policy");
    }
    // p2 by name and every path read: no way left to read it.
    let deny_p2 = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Deny","Action":"ssm:GetParameter*","Resource":"arn:aws:ssm:us-east-1:{a}:parameter/{f}/p2"}},
        {{"Effect":"Deny","Action":"ssm:GetParametersByPath","Resource":"*"}}]}}"#
    );
    let managed = cx
        .iam
        .create_policy()
        .policy_name(format!("{f}-deny-p2"))
        .policy_document(deny_p2)
        .send()
        .await
        .expect("policy")
        .policy()
        .and_then(|p| p.arn())
        .expect("arn")
        .to_string();
    cx.iam
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(&managed)
        .send()
        .await
        .expect("attach");
    cx.create_function_full(&f, &role_arn, &[]).await;

    let mut params = vec![format!("function={f}"), "generate_secrets=false".into()];
    params.extend(cx.evidence_params().await);
    let pb = playbook();
    let inc = "INC-SDP";
    let expected_secrets: BTreeSet<String> = [s_a.clone(), s_c, s_d].into_iter().collect();
    let expected_parameters: BTreeSet<String> = [format!("/{f}/p1")].into_iter().collect();
    let discovered = |plan: &Value| {
        let found = step(plan, "find-secrets");
        let plain: BTreeSet<String> = found["observed"]["plain_parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        (
            set(&found["outputs"]["secrets"]),
            set(&found["outputs"]["parameters"]),
            plain,
            found["observed"]["secrets"].clone(),
        )
    };

    let before = cx.run(&with_params(
        &["--output", "json", "plan", &pb, "--incident", inc],
        &params,
    ));
    let (secrets, parameters, plain, observed) = discovered(&before.json());
    assert_eq!(secrets, expected_secrets, "b denied, c kept (conditional)");
    assert!(!secrets.contains(&s_b));
    assert_eq!(parameters, expected_parameters, "p2 denied every way");
    assert_eq!(plain, [format!("/{f}/conf")].into_iter().collect());
    let from_a = observed
        .as_array()
        .and_then(|l| l.iter().find(|s| s["arn"] == s_a.as_str()))
        .map(|s| s["from"].clone())
        .expect("a is listed");
    assert_eq!(from_a, serde_json::json!(["policy broad (inline)"]));

    // Contain: the quarantine puts its deny-all on the role and takes the
    // policies off. A new plan of the incident still finds what the
    // function could read before.
    cx.run(&with_params(
        &["--output", "json", "run", &pb, "--incident", inc, "--yes"],
        &params,
    ))
    .expect_code(0);
    let (attached, inline_now) = cx.role_snapshot(&role).await;
    assert!(attached.is_empty(), "{attached:?}");
    assert!(
        inline_now.contains_key("firebreak-quarantine"),
        "{inline_now:?}"
    );
    assert!(!inline_now.contains_key("broad"), "{inline_now:?}");
    let after = cx.run(&with_params(
        &["--output", "json", "plan", &pb, "--incident", inc],
        &params,
    ));
    let (secrets, parameters, plain, _) = discovered(&after.json());
    assert_eq!(
        secrets, expected_secrets,
        "the quarantine's deny is not the function's"
    );
    assert_eq!(parameters, expected_parameters);
    assert_eq!(plain, [format!("/{f}/conf")].into_iter().collect());
}
