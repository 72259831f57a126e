//! `firebreak recover --to-baseline`: a baselined function attacked by
//! each technique of issue 13, recovered, and read back equal to its
//! baseline (as JSON); a second recovery plans nothing.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::FunctionUrlAuthType;
use serde_json::Value;

use crate::baseline::{events, files, take, victim, Victim, SECRET_VALUE};
use crate::common::{zip_one_file, TestContext, REGION};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

const STORE: &str = "baselines";
const FOREIGN: &str = "999999999999";

struct Scene {
    cx: TestContext,
    v: Victim,
    bucket: String,
    baseline: Value,
}

async fn scene() -> Scene {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let bucket = ev[0].trim_start_matches("forensic_bucket=").to_string();
    let v = victim(&cx).await;
    let baseline = take(&cx, &v, STORE);
    Scene {
        cx,
        v,
        bucket,
        baseline,
    }
}

/// A client of another account (the attacker's).
fn foreign_lambda(cx: &TestContext) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new(REGION))
            .endpoint_url(&cx.endpoint)
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                FOREIGN, "test", None, None, "tests",
            ))
            .build(),
    )
}

mod attack {
    use super::*;

    pub async fn policy_backdoors(s: &Scene) {
        s.cx.lambda
            .add_permission()
            .function_name(&s.v.name)
            .statement_id("backdoor-anyone")
            .action("lambda:InvokeFunction")
            .principal("*")
            .send()
            .await
            .expect("wildcard");
        s.cx.lambda
            .add_permission()
            .function_name(&s.v.name)
            .qualifier("live")
            .statement_id("backdoor-foreign")
            .action("lambda:InvokeFunction")
            .principal(FOREIGN)
            .send()
            .await
            .expect("foreign");
    }

    pub async fn foreign_layer(s: &Scene) {
        let foreign = foreign_lambda(&s.cx);
        let layer = foreign
            .publish_layer_version()
            .layer_name(format!("{}-tools", s.v.name))
            .content(
                aws_sdk_lambda::types::LayerVersionContentInput::builder()
                    .zip_file(Blob::new(zip_one_file("python/evil.py", b"x = 1\n")))
                    .build(),
            )
            .send()
            .await
            .expect("layer");
        let arn = layer.layer_version_arn().expect("arn").to_string();
        foreign
            .add_layer_version_permission()
            .layer_name(format!("{}-tools", s.v.name))
            .version_number(layer.version())
            .statement_id("everyone")
            .action("lambda:GetLayerVersion")
            .principal("*")
            .send()
            .await
            .expect("layer permission");
        s.cx.wait_updated(&s.v.name).await;
        s.cx.lambda
            .update_function_configuration()
            .function_name(&s.v.name)
            .layers(arn)
            .send()
            .await
            .expect("attach layer");
        s.cx.wait_updated(&s.v.name).await;
    }

    pub async fn code_and_alias(s: &Scene) {
        s.cx.wait_updated(&s.v.name).await;
        s.cx.lambda
            .update_function_code()
            .function_name(&s.v.name)
            .zip_file(Blob::new(zip_one_file(
                "handler.py",
                b"import os\ndef handler(e, c):\n    return os.environ\n",
            )))
            .send()
            .await
            .expect("overwrite code");
        s.cx.wait_updated(&s.v.name).await;
        let v2 =
            s.cx.lambda
                .publish_version()
                .function_name(&s.v.name)
                .send()
                .await
                .expect("publish")
                .version()
                .expect("version")
                .to_string();
        s.cx.lambda
            .update_alias()
            .function_name(&s.v.name)
            .name("live")
            .function_version(v2)
            .send()
            .await
            .expect("repoint alias");
    }

    /// After `code_and_alias`: the baseline's version, no longer aliased,
    /// deleted so that nothing holds the known-good code.
    pub async fn delete_baseline_version(s: &Scene) {
        s.cx.lambda
            .delete_function()
            .function_name(&s.v.name)
            .qualifier("1")
            .send()
            .await
            .expect("delete version 1");
    }

    pub async fn inline_admin(s: &Scene) {
        s.cx.iam
            .put_role_policy()
            .role_name(&s.v.role)
            .policy_name("ops-admin")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .expect("inline admin");
    }

    pub async fn public_url(s: &Scene) {
        s.cx.lambda
            .create_function_url_config()
            .function_name(&s.v.name)
            .auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .expect("url");
        s.cx.lambda
            .add_permission()
            .function_name(&s.v.name)
            .statement_id("FunctionURLAllowPublicAccess")
            .action("lambda:InvokeFunctionUrl")
            .principal("*")
            .function_url_auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .expect("url permission");
    }

    pub async fn foreign_queue(s: &Scene) {
        let queue = format!("arn:aws:sqs:{REGION}:{FOREIGN}:{}-exfil", s.v.name);
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new(REGION))
                .endpoint_url(&s.cx.endpoint)
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    FOREIGN, "test", None, None, "tests",
                ))
                .build(),
        );
        sqs.create_queue()
            .queue_name(format!("{}-exfil", s.v.name))
            .send()
            .await
            .expect("foreign queue");
        let uuid =
            s.cx.lambda
                .create_event_source_mapping()
                .function_name(&s.v.name)
                .event_source_arn(queue)
                .enabled(true)
                .send()
                .await
                .expect("foreign mapping")
                .uuid()
                .expect("uuid")
                .to_string();
        s.cx.wait_mapping_state(&uuid, "Enabled").await;
    }

    pub async fn exec_wrapper(s: &Scene) {
        s.cx.wait_updated(&s.v.name).await;
        s.cx.lambda
            .update_function_configuration()
            .function_name(&s.v.name)
            .environment(
                aws_sdk_lambda::types::Environment::builder()
                    .variables("DB_PASSWORD", SECRET_VALUE)
                    .variables("MODE", "production")
                    .variables("AWS_LAMBDA_EXEC_WRAPPER", "/opt/wrapper")
                    .variables("WRAPPER_URL", "https://attacker.example/c2")
                    .build(),
            )
            .send()
            .await
            .expect("exec wrapper");
        s.cx.wait_updated(&s.v.name).await;
    }

    pub async fn deploy_key(s: &Scene) {
        s.cx.iam
            .create_access_key()
            .user_name(&s.v.user)
            .send()
            .await
            .expect("attacker key");
    }

    pub async fn rogue_function(s: &Scene) -> String {
        let miner = format!("{}-miner", s.v.name);
        let arn = s.cx.create_function_full(&miner, &s.v.role_arn, &[]).await;
        let ev = events(&s.cx).await;
        let rule = format!("{}-every-minute", s.v.name);
        ev.put_rule()
            .name(&rule)
            .schedule_expression("rate(1 minute)")
            .send()
            .await
            .expect("rule");
        ev.put_targets()
            .rule(&rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("miner")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("target");
        miner
    }
}

/// The incident: the throttle (a containment to lift last).
fn throttle(s: &Scene, incident: &str) {
    let pb = TestContext::throttle_playbook().display().to_string();
    s.cx.run(&[
        "run",
        &pb,
        "--incident",
        incident,
        "-p",
        &format!("function={}", s.v.name),
        "--yes",
    ])
    .expect_code(0);
}

fn recover(s: &Scene, incident: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "--output",
        "json",
        "recover",
        "--incident",
        incident,
        "--to-baseline",
        "--store",
        STORE,
        "--forensic-bucket",
        &s.bucket,
    ];
    args.extend_from_slice(extra);
    let run = s.cx.run(&args);
    assert!(
        !run.stdout.contains(SECRET_VALUE) && !run.stderr.contains(SECRET_VALUE),
        "a value leaked"
    );
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, v)
}

/// A baseline as compared: without its time and mapping UUIDs, without
/// versions published since the baseline (kept as evidence), and each
/// alias as what its version holds (a version re-published under a new
/// number holds the baseline's).
fn comparable(mut b: Value, baseline: &Value) -> Value {
    b["taken_at"] = Value::Null;
    let versions = b["versions"].clone();
    if let Some(a) = b["aliases"].as_object_mut() {
        for v in a.values_mut() {
            let number = v.as_str().unwrap_or_default().to_string();
            *v = versions.get(&number).cloned().unwrap_or(Value::Null);
        }
    }
    if let Some(m) = b["mappings"].as_object_mut() {
        for v in m.values_mut() {
            v["uuid"] = Value::Null;
        }
    }
    if let Some(vs) = b["versions"].as_object_mut() {
        vs.retain(|k, _| baseline["versions"].get(k).is_some());
    }
    b
}

fn item_ids(v: &Value) -> Vec<String> {
    v["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["items"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["status"] != "kept")
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Recover, then read AWS back and compare with the baseline; a second
/// recovery plans nothing.
async fn recover_and_check(s: &Scene, incident: &str, expect: &[&str]) -> Value {
    recover_and_check_without(s, incident, expect, &[]).await
}

/// `recover_and_check`, for a baseline some of whose versions the
/// attacker deleted (numbers are never re-used).
async fn recover_and_check_without(
    s: &Scene,
    incident: &str,
    expect: &[&str],
    deleted: &[&str],
) -> Value {
    let (code, dry) = recover(s, incident, &["--dry-run"]);
    assert_eq!(code, 2, "{dry}");
    // The dry run sent no mutating request (the guard refuses them).
    assert_eq!(dry["api_calls"]["mutating"], 0, "{dry:#}");
    let planned = item_ids(&dry);
    for e in expect {
        assert!(
            planned.iter().any(|p| p.starts_with(e)),
            "{e} not planned: {planned:?}"
        );
    }
    let (code, done) = recover(s, incident, &["--yes"]);
    assert_eq!(code, 0, "{done:#}");
    assert_eq!(done["summary"]["failed"], 0, "{done:#}");
    assert_eq!(done["remaining"], serde_json::json!([]), "{done:#}");

    // AWS read back equals the baseline.
    let now = take(&s.cx, &s.v, STORE);
    let mut expected = comparable(s.baseline.clone(), &s.baseline);
    for v in deleted {
        if let Some(vs) = expected["versions"].as_object_mut() {
            vs.remove(*v);
        }
    }
    assert_eq!(comparable(now, &s.baseline), expected);
    assert_eq!(s.cx.concurrency(&s.v.name).await, None, "throttle lifted");

    // A second recovery plans nothing.
    let (code, again) = recover(s, incident, &["--dry-run"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["summary"]["changes"], 0, "{again:#}");
    assert!(item_ids(&again).is_empty(), "{again:#}");
    done
}

fn evidence_keys(done: &Value) -> String {
    done["outcomes"].to_string()
}

#[tokio::test]
async fn recover_baseline_removes_policy_backdoors() {
    let s = scene().await;
    attack::policy_backdoors(&s).await;
    throttle(&s, "INC-RB-POLICY");
    let done = recover_and_check(
        &s,
        "INC-RB-POLICY",
        &[
            "statement:$LATEST:backdoor-anyone",
            "statement:live:backdoor-foreign",
        ],
    )
    .await;
    assert!(
        evidence_keys(&done).contains("removed/statement-_LATEST-backdoor-anyone.json"),
        "{done:#}"
    );
}

#[tokio::test]
async fn recover_baseline_removes_a_foreign_layer() {
    let s = scene().await;
    attack::foreign_layer(&s).await;
    throttle(&s, "INC-RB-LAYER");
    recover_and_check(&s, "INC-RB-LAYER", &["configuration:"]).await;
}

#[tokio::test]
async fn recover_baseline_rolls_code_and_alias_back() {
    let s = scene().await;
    attack::code_and_alias(&s).await;
    throttle(&s, "INC-RB-CODE");
    recover_and_check(&s, "INC-RB-CODE", &["configuration:", "alias:"]).await;
    // The malicious version stays, unaliased, as evidence.
    let versions =
        s.cx.lambda
            .list_versions_by_function()
            .function_name(&s.v.name)
            .send()
            .await
            .expect("versions");
    assert!(versions.versions().iter().any(|v| v.version() == Some("2")));
}

/// The package the baseline kept of its `$LATEST` code, in the store.
fn kept_package(s: &Scene) -> std::path::PathBuf {
    let code = s.baseline["configuration"]["code_sha256"]
        .as_str()
        .expect("code hash");
    let file = s.baseline["packages"][code]
        .as_str()
        .unwrap_or_else(|| panic!("no package kept: {:#}", s.baseline));
    s.cx.path(STORE)
        .join(&s.cx.account)
        .join(REGION)
        .join(&s.v.name)
        .join("packages")
        .join(file)
}

async fn version_numbers(s: &Scene) -> Vec<String> {
    let mut out: Vec<String> =
        s.cx.lambda
            .list_versions_by_function()
            .function_name(&s.v.name)
            .send()
            .await
            .expect("versions")
            .versions()
            .iter()
            .filter_map(|v| v.version().map(str::to_string))
            .filter(|v| v != "$LATEST")
            .collect();
    out.sort();
    out
}

#[tokio::test]
async fn recover_baseline_republishes_a_deleted_version_from_its_kept_package() {
    let s = scene().await;
    let package = kept_package(&s);
    let bytes = std::fs::read(&package).expect("the package is in the store");
    let hex = package
        .file_stem()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    assert_eq!(sha256_hex(&bytes), hex, "named by its hash");
    // A second baseline keeps nothing new: the package is not fetched again.
    let again = take(&s.cx, &s.v, STORE);
    assert_eq!(again["packages"], s.baseline["packages"]);

    attack::code_and_alias(&s).await;
    attack::delete_baseline_version(&s).await;
    assert_eq!(version_numbers(&s).await, ["2"]);
    throttle(&s, "INC-RB-DELETED");
    // Crash right after the version is published: the resumed run finds
    // it instead of publishing a second one.
    let args = [
        "recover",
        "--incident",
        "INC-RB-DELETED",
        "--to-baseline",
        "--store",
        STORE,
        "--forensic-bucket",
        &s.bucket,
        "--yes",
    ];
    crate::crash::kill_at(&s.cx, &args, "after_publish:recover-baseline");
    assert_eq!(version_numbers(&s).await, ["2", "3"]);
    // The code was deployed before the crash: only the alias is left.
    recover_and_check_without(&s, "INC-RB-DELETED", &["alias:"], &["1"]).await;
    assert_eq!(version_numbers(&s).await, ["2", "3"], "published once");
    let live =
        s.cx.lambda
            .get_alias()
            .function_name(&s.v.name)
            .name("live")
            .send()
            .await
            .expect("alias");
    assert_eq!(live.function_version(), Some("3"));
    let v3 =
        s.cx.lambda
            .get_function_configuration()
            .function_name(&s.v.name)
            .qualifier("3")
            .send()
            .await
            .expect("version 3");
    assert_eq!(
        v3.code_sha256(),
        s.baseline["configuration"]["code_sha256"].as_str()
    );
}

#[tokio::test]
async fn recover_baseline_refuses_a_package_altered_in_the_store() {
    let s = scene().await;
    attack::code_and_alias(&s).await;
    attack::delete_baseline_version(&s).await;
    let evil =
        s.cx.lambda
            .get_function_configuration()
            .function_name(&s.v.name)
            .send()
            .await
            .expect("config")
            .code_sha256()
            .map(str::to_string);
    // Someone with write access to the store swaps the package.
    std::fs::write(
        kept_package(&s),
        zip_one_file("handler.py", b"def handler(e, c):\n    return 'pwned'\n"),
    )
    .expect("tamper");
    throttle(&s, "INC-RB-TAMPER");
    let (code, done) = recover(&s, "INC-RB-TAMPER", &["--yes"]);
    assert_eq!(code, 1, "a failed item: {done:#}");
    let outcome = done["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["id"] == "configuration:{}:code_sha256".replace("{}", &s.v.name))
        .unwrap_or_else(|| panic!("no outcome for the code: {done:#}"));
    assert_eq!(outcome["ok"], false, "{done:#}");
    assert!(
        outcome["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("altered"),
        "{outcome:#}"
    );
    // Nothing of it was deployed or published, and the throttle stays.
    let now =
        s.cx.lambda
            .get_function_configuration()
            .function_name(&s.v.name)
            .send()
            .await
            .expect("config");
    assert_eq!(now.code_sha256().map(str::to_string), evil);
    assert_eq!(version_numbers(&s).await, ["2"]);
    assert_eq!(s.cx.concurrency(&s.v.name).await, Some(0));
    assert!(
        done["lift"]["withheld"]
            .as_str()
            .unwrap_or_default()
            .contains("drift"),
        "{done:#}"
    );
}

#[tokio::test]
async fn recover_baseline_removes_an_inline_admin_policy() {
    let s = scene().await;
    attack::inline_admin(&s).await;
    throttle(&s, "INC-RB-INLINE");
    let done = recover_and_check(&s, "INC-RB-INLINE", &["role_inline:"]).await;
    assert!(evidence_keys(&done).contains("ops-admin"), "{done:#}");
}

#[tokio::test]
async fn recover_baseline_removes_a_public_url() {
    let s = scene().await;
    attack::public_url(&s).await;
    throttle(&s, "INC-RB-URL");
    recover_and_check(
        &s,
        "INC-RB-URL",
        &[
            "url:$LATEST",
            "statement:$LATEST:FunctionURLAllowPublicAccess",
        ],
    )
    .await;
}

#[tokio::test]
async fn recover_baseline_removes_a_foreign_mapping() {
    let s = scene().await;
    attack::foreign_queue(&s).await;
    throttle(&s, "INC-RB-ESM");
    recover_and_check(&s, "INC-RB-ESM", &["mapping:arn:aws:sqs"]).await;
}

#[tokio::test]
async fn recover_baseline_restores_the_environment_from_the_version() {
    let s = scene().await;
    attack::exec_wrapper(&s).await;
    throttle(&s, "INC-RB-ENV");
    recover_and_check(&s, "INC-RB-ENV", &["configuration:"]).await;
    let c =
        s.cx.lambda
            .get_function_configuration()
            .function_name(&s.v.name)
            .send()
            .await
            .expect("config");
    let vars = c
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        vars.get("DB_PASSWORD").map(String::as_str),
        Some(SECRET_VALUE)
    );
    assert!(!vars.contains_key("AWS_LAMBDA_EXEC_WRAPPER"));
}

#[tokio::test]
async fn recover_baseline_deletes_an_attacker_access_key() {
    let s = scene().await;
    attack::deploy_key(&s).await;
    throttle(&s, "INC-RB-KEY");
    let done = recover_and_check(&s, "INC-RB-KEY", &["access_key:"]).await;
    assert!(evidence_keys(&done).contains("access-key-"), "{done:#}");
}

#[tokio::test]
async fn recover_baseline_deletes_a_rogue_function_and_its_rule() {
    let s = scene().await;
    let miner = attack::rogue_function(&s).await;
    throttle(&s, "INC-RB-ROGUE");
    let done = recover_and_check(&s, "INC-RB-ROGUE", &["rule:", "role_function:"]).await;
    let outcomes = evidence_keys(&done);
    assert!(
        outcomes.contains(&format!("function-{miner}.zip")),
        "{done:#}"
    );
    assert!(s
        .cx
        .lambda
        .get_function()
        .function_name(&miner)
        .send()
        .await
        .is_err());
    let _ = files(&s.cx, STORE, &s.v.name);
}

/// Every technique at once, contained by the shipped playbook (throttle,
/// public access closed, event sources stopped, role quarantined, deploy
/// keys deactivated, tag): recovery restores the baseline, removes what
/// the attacker added, and lifts the throttle and the quarantine last.
#[tokio::test]
async fn recover_baseline_undoes_every_technique_at_once_after_containment() {
    let s = scene().await;
    attack::policy_backdoors(&s).await;
    attack::foreign_layer(&s).await;
    attack::code_and_alias(&s).await;
    attack::delete_baseline_version(&s).await;
    attack::inline_admin(&s).await;
    attack::public_url(&s).await;
    attack::foreign_queue(&s).await;
    attack::exec_wrapper(&s).await;
    attack::deploy_key(&s).await;
    let miner = attack::rogue_function(&s).await;

    let pb = crate::common::crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string();
    let ev = s.cx.evidence_params().await;
    let incident = "INC-RB-ALL";
    let contained = s.cx.run(&[
        "run",
        &pb,
        "--incident",
        incident,
        "-p",
        &format!("function={}", s.v.name),
        "-p",
        &ev[0],
        "-p",
        &ev[1],
        "-p",
        &ev[2],
        "-p",
        "scope=role",
        "-p",
        &format!("users={}", s.v.user),
        "--yes",
    ]);
    assert!(
        contained.code == 0 || contained.code == 6,
        "{}\n{}",
        contained.stdout,
        contained.stderr
    );
    assert_eq!(s.cx.concurrency(&s.v.name).await, Some(0));

    // The plan: the quarantine is not drift; it is lifted last.
    let (code, dry) = recover(&s, incident, &["--dry-run"]);
    assert_eq!(code, 2, "{dry:#}");
    let planned = item_ids(&dry);
    assert!(
        !planned.iter().any(|p| p.contains("firebreak-quarantine")),
        "{planned:?}"
    );
    let lift: Vec<&str> = dry["lift"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"] == "restore")
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(
        lift.iter().any(|i| i.starts_with("reserved_concurrency")),
        "{lift:?}"
    );
    assert!(
        lift.iter().any(|i| i.contains("firebreak-quarantine")),
        "{lift:?}"
    );

    // Nothing holds the baseline's code but the package kept with it.
    let done = recover_and_check_without(
        &s,
        incident,
        &[
            "rule:",
            "role_function:",
            "access_key:",
            "mapping:",
            "configuration:",
            "alias:",
        ],
        &["1"],
    )
    .await;
    let republished = |op: &str| {
        done["functions"][0]["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["op"]["op"] == op)
    };
    assert!(
        republished("package") && republished("republish"),
        "{done:#}"
    );
    // The lift came after every restore, and each restore passed.
    assert!(done["lift"]["withheld"].is_null(), "{done:#}");
    assert!(
        done["lift"]["outcomes"]
            .as_array()
            .is_some_and(|o| !o.is_empty() && o.iter().all(|x| x["ok"] == true)),
        "{done:#}"
    );
    let outcomes = evidence_keys(&done);
    assert!(
        outcomes.contains(&format!("function-{miner}.zip")),
        "{done:#}"
    );
    // The attacker's admin policy, taken off by the quarantine, is not put
    // back when the quarantine is lifted.
    let (_, inline) = s.cx.role_snapshot(&s.v.role).await;
    assert_eq!(inline.keys().collect::<Vec<_>>(), ["write-logs"]);
}

/// Killed right after its first change (before the journal records the
/// outcome), recovery run again finishes the work without repeating that
/// change; the audit trail still verifies.
#[tokio::test]
async fn recover_baseline_resumes_after_a_crash_without_repeating_a_change() {
    let s = scene().await;
    attack::policy_backdoors(&s).await;
    attack::inline_admin(&s).await;
    let incident = "INC-RB-CRASH";
    throttle(&s, incident);
    let args = [
        "recover",
        "--incident",
        incident,
        "--to-baseline",
        "--store",
        STORE,
        "--forensic-bucket",
        &s.bucket,
        "--yes",
    ];
    crate::crash::kill_at(&s.cx, &args, "after_apply:recover-baseline");
    recover_and_check(&s, incident, &["role_inline:"]).await;
    let audit = s.cx.audit(incident);
    let applying: Vec<&Value> = TestContext::audit_events(&audit, "applying", "recover-baseline");
    let mut ids: Vec<&str> = applying
        .iter()
        .filter_map(|r| r["data"]["id"].as_str())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(n, ids.len(), "a change was applied twice: {applying:?}");
    s.cx.run(&[
        "audit",
        "verify",
        &format!(".firebreak/incidents/{incident}"),
    ])
    .expect_code(0);
}

/// The AWSCURRENT version id of a secret, and how many versions it has.
async fn secret_versions(cx: &TestContext, arn: &str) -> (String, usize) {
    let sm = cx.secretsmanager().await;
    let current = sm
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .expect("value")
        .version_id()
        .unwrap_or_default()
        .to_string();
    let ids = sm
        .list_secret_version_ids()
        .secret_id(arn)
        .send()
        .await
        .expect("versions")
        .versions()
        .len();
    (current, ids)
}

#[tokio::test]
async fn recover_baseline_rotates_what_the_function_could_read_once() {
    let cx = TestContext::new().await;
    let ev = cx.evidence_params().await;
    let bucket = ev[0].trim_start_matches("forensic_bucket=").to_string();
    let v = victim(&cx).await;
    // Known-good: the role may read one secret.
    let arn = crate::secrets_rotation::secret(
        &cx,
        &format!("{}/api-token", v.name),
        "seeded-rb-token-31c9e0",
    )
    .await;
    cx.iam
        .put_role_policy()
        .role_name(&v.role)
        .policy_name("read-token")
        .policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"{arn}"}}]}}"#
        ))
        .send()
        .await
        .expect("inline");
    let baseline = take(&cx, &v, STORE);
    let s = Scene {
        cx,
        v,
        bucket,
        baseline,
    };
    attack::foreign_layer(&s).await;
    throttle(&s, "INC-RB-SECRET");
    let (before, count) = secret_versions(&s.cx, &arn).await;

    let (code, dry) = recover(&s, "INC-RB-SECRET", &["--dry-run", "--generate-secrets"]);
    assert_eq!(code, 2, "{dry:#}");
    assert_eq!(dry["summary"]["rotate"], 1, "{dry:#}");
    assert_eq!(
        dry["functions"][0]["rotations"]["items"][0]["change"]["target"],
        arn.as_str(),
        "the plan lists the rotation: {dry:#}"
    );
    assert_eq!(
        secret_versions(&s.cx, &arn).await.0,
        before,
        "a dry run rotates nothing"
    );

    let (code, done) = recover(&s, "INC-RB-SECRET", &["--yes", "--generate-secrets"]);
    assert_eq!(code, 0, "{done:#}");
    assert_eq!(done["summary"]["failed"], 0, "{done:#}");
    let (after, n) = secret_versions(&s.cx, &arn).await;
    assert_ne!(after, before, "rotated");
    assert_eq!(n, count + 1, "exactly one new version");

    // A second recovery plans nothing and rotates nothing more.
    let (code, again) = recover(&s, "INC-RB-SECRET", &["--yes", "--generate-secrets"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["summary"]["changes"], 0, "{again:#}");
    assert_eq!(secret_versions(&s.cx, &arn).await, (after, n));
}
