//! Issue 13: indicators of compromise. A function attacked by each
//! technique (one test each, and one with all at once): `run` names the
//! change in identify, preserves the attacker's artifact in the evidence
//! bucket before containment removes or disables it, and contains it;
//! plain `recover` refuses to lift the throttle while the attacker's code,
//! layer, variables or function are still live. Against LocalStack; the
//! CloudTrail attribution with recorded LookupEvents answers (LocalStack
//! community has no CloudTrail).

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionUrlAuthType, LayerVersionContentInput};
use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::common::{zip_one_file, Run, TestContext, REGION};

fn pb() -> String {
    crate::common::crate_root()
        .join("playbooks/lambda-compromise.yaml")
        .display()
        .to_string()
}

/// A victim with a clean history before `since`: its role (one narrow
/// inline policy), version 1 behind alias `live`, a secret-looking
/// variable, and a deploy user with an old key. Everything the attack
/// does comes after `since`.
struct Lab {
    cx: TestContext,
    f: String,
    role: String,
    role_arn: String,
    user: String,
    since: String,
    ev: Vec<String>,
    /// Another LocalStack account: the attacker's.
    attacker: String,
}

const SECRET: &str = "hunter2-never-shown";

impl Lab {
    async fn new() -> Self {
        let cx = TestContext::new().await;
        let ev = cx.evidence_params().await;
        let f = cx.unique("victim");
        let role = format!("{f}-role");
        let role_arn = cx
            .lambda_role(
                &role,
                &[(
                    "write-logs",
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}"#,
                )],
            )
            .await;
        cx.create_function_full(&f, &role_arn, &[("DB_PASSWORD", SECRET)])
            .await;
        let v1 = cx.publish_version(&f, "v1").await;
        cx.lambda
            .create_alias()
            .function_name(&f)
            .name("live")
            .function_version(&v1)
            .send()
            .await
            .expect("alias");
        let user = format!("{f}-deploy");
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
            .expect("old key");
        let since = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let attacker = format!("8{}", &cx.account[1..]);
        Self {
            cx,
            f,
            role,
            role_arn,
            user,
            since,
            ev,
            attacker,
        }
    }

    async fn attacker_config(&self) -> aws_types::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new(REGION))
            .endpoint_url(&self.cx.endpoint)
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                &self.attacker,
                "test",
                None,
                None,
                "attacker",
            ))
            .load()
            .await
    }

    fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{}:function:{}",
            self.cx.account, self.f
        )
    }

    // ------------------------------------------------------ the techniques

    /// Resource-policy backdoors for `*` and for the attacker's account
    /// (the latter on alias `live`).
    async fn backdoor_statements(&self) {
        let l = &self.cx.lambda;
        l.add_permission()
            .function_name(&self.f)
            .statement_id("backdoor-anyone")
            .action("lambda:InvokeFunction")
            .principal("*")
            .send()
            .await
            .expect("wildcard");
        l.add_permission()
            .function_name(&self.f)
            .qualifier("live")
            .statement_id("backdoor-foreign")
            .action("lambda:InvokeFunction")
            .principal(&self.attacker)
            .send()
            .await
            .expect("foreign");
    }

    /// A layer published in the attacker's account, attached to $LATEST.
    async fn malicious_layer(&self) -> String {
        let evil = aws_sdk_lambda::Client::new(&self.attacker_config().await);
        let l = evil
            .publish_layer_version()
            .layer_name("evil")
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(zip_one_file(
                        "python/sitecustomize.py",
                        b"import os\n",
                    )))
                    .build(),
            )
            .send()
            .await
            .expect("attacker's layer");
        let arn = l.layer_version_arn().expect("layer arn").to_string();
        evil.add_layer_version_permission()
            .layer_name("evil")
            .version_number(l.version())
            .statement_id("anyone")
            .action("lambda:GetLayerVersion")
            .principal("*")
            .send()
            .await
            .expect("layer permission");
        self.cx
            .lambda
            .update_function_configuration()
            .function_name(&self.f)
            .layers(&arn)
            .send()
            .await
            .expect("attach layer");
        self.cx.wait_updated(&self.f).await;
        arn
    }

    /// New code on $LATEST, published as version 2, `live` repointed.
    async fn overwrite_code(&self) -> String {
        self.cx
            .lambda
            .update_function_code()
            .function_name(&self.f)
            .zip_file(Blob::new(zip_one_file(
                "handler.py",
                b"def handler(e, c):\n    return 'pwned'\n",
            )))
            .send()
            .await
            .expect("update code");
        self.cx.wait_updated(&self.f).await;
        let v2 = self.cx.publish_version(&self.f, "v2").await;
        self.cx
            .lambda
            .update_alias()
            .function_name(&self.f)
            .name("live")
            .function_version(&v2)
            .send()
            .await
            .expect("repoint alias");
        v2
    }

    async fn admin_inline_policy(&self) {
        self.cx
            .iam
            .put_role_policy()
            .role_name(&self.role)
            .policy_name("backdoor-admin")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .expect("admin policy");
    }

    async fn public_url(&self) {
        self.cx
            .lambda
            .create_function_url_config()
            .function_name(&self.f)
            .auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .expect("url");
    }

    /// A queue in the attacker's account feeding the function.
    async fn foreign_queue(&self) -> (String, String) {
        let sqs = aws_sdk_sqs::Client::new(&self.attacker_config().await);
        let url = sqs
            .create_queue()
            .queue_name(format!("{}-evil", self.f))
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attrs");
        let queue = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("arn")
            .clone();
        let uuid = self
            .cx
            .lambda
            .create_event_source_mapping()
            .function_name(&self.f)
            .event_source_arn(&queue)
            .enabled(true)
            .send()
            .await
            .expect("mapping")
            .uuid()
            .expect("uuid")
            .to_string();
        self.cx.wait_mapping_state(&uuid, "Enabled").await;
        (uuid, queue)
    }

    /// A wrapper script and an SDK endpoint pointing outside (the secret
    /// variable stays).
    async fn exec_wrapper(&self) {
        self.cx
            .lambda
            .update_function_configuration()
            .function_name(&self.f)
            .environment(
                Environment::builder()
                    .variables("DB_PASSWORD", SECRET)
                    .variables("AWS_LAMBDA_EXEC_WRAPPER", "/opt/wrapper.sh")
                    .variables("S3_ENDPOINT", "https://collector.attacker.example")
                    .build(),
            )
            .send()
            .await
            .expect("variables");
        self.cx.wait_updated(&self.f).await;
    }

    async fn new_access_key(&self) -> String {
        self.cx
            .iam
            .create_access_key()
            .user_name(&self.user)
            .send()
            .await
            .expect("key")
            .access_key()
            .expect("key")
            .access_key_id()
            .to_string()
    }

    /// A second function on the victim's role, fired every minute by an
    /// EventBridge rule.
    async fn rogue_function(&self) -> (String, String) {
        let helper = format!("{}-helper", self.f);
        let arn = self
            .cx
            .create_function_with_role(&helper, &self.role_arn)
            .await;
        let rule = format!("{}-tick", self.f);
        self.cx.schedule_rule(&rule, "rate(1 minute)", &arn).await;
        (helper, rule)
    }

    // --------------------------------------------------------- the response

    fn run(&self, incident: &str) -> Value {
        self.run_with(incident, &[])
    }

    /// A baseline of the victim (its deploy user's keys included) in the
    /// test's directory `baselines`.
    fn take_baseline(&self) {
        let r = self.cx.run(&[
            "--output",
            "json",
            "baseline",
            "--target",
            &self.f,
            "--store",
            "baselines",
            "--deploy-user",
            &self.user,
        ]);
        r.expect_code(0);
        assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET));
    }

    /// `run` with more playbook parameters (`NAME=VALUE`).
    fn run_with(&self, incident: &str, extra: &[&str]) -> Value {
        let (f, since, users) = (
            format!("function={}", self.f),
            format!("since={}", self.since),
            format!("users={}", self.user),
        );
        let pb = pb();
        let mut args = vec![
            "--output",
            "json",
            "run",
            &pb,
            "--incident",
            incident,
            "-p",
            &f,
            "-p",
            &since,
            "-p",
            &users,
            "-p",
            &self.ev[0],
            "-p",
            &self.ev[1],
            "-p",
            &self.ev[2],
            "--yes",
        ];
        for p in extra {
            args.extend(["-p", p]);
        }
        let run = self.cx.run(&args);
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "a variable's value leaked"
        );
        run.expect_code(0);
        run.json()
    }

    fn recover(&self, incident: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "--output",
            "json",
            "recover",
            "--incident",
            incident,
            "--yes",
        ];
        args.extend_from_slice(extra);
        self.cx.run(&args)
    }

    /// The objects under `indicators/` of this incident, parsed.
    async fn evidence(&self, incident: &str) -> Vec<(String, Value)> {
        let bucket = self.ev[0].trim_start_matches("forensic_bucket=");
        let prefix = format!(
            "{incident}/{}/{REGION}/{}/indicators/",
            self.cx.account, self.f
        );
        self.cx
            .bucket_objects(bucket)
            .await
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, b)| {
                assert!(
                    !String::from_utf8_lossy(&b).contains(SECRET),
                    "{k} holds a value"
                );
                (
                    k.trim_start_matches(&prefix).to_string(),
                    serde_json::from_slice(&b).expect("json"),
                )
            })
            .collect()
    }
}

fn step<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["targets"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn findings(v: &Value) -> Vec<String> {
    step(v, "indicators")["outputs"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect()
}

fn suspicious(v: &Value, kind: &str) -> Vec<String> {
    findings(v)
        .into_iter()
        .filter(|f| f.starts_with(&format!("SUSPICIOUS {kind} ")))
        .collect()
}

/// The evidence record of the first suspicious indicator of `kind`.
fn record<'a>(ev: &'a [(String, Value)], kind: &str) -> &'a Value {
    &ev.iter()
        .find(|(k, _)| k.ends_with(&format!("-{kind}.json")))
        .unwrap_or_else(|| {
            panic!(
                "no {kind} record in {:?}",
                ev.iter().map(|e| &e.0).collect::<Vec<_>>()
            )
        })
        .1
}

fn item<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id} in {v}"))
}

/// Recover lifts containment: the throttle is restored.
#[track_caller]
fn lifts(lab: &Lab, incident: &str) {
    let r = lab.recover(incident, &[]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(
        item(&v, &format!("reserved_concurrency@{}", lab.f))["status"],
        "restore",
        "{v}"
    );
    assert!(v["indicators"].is_null(), "{v}");
}

/// Recover refuses to lift the throttle, naming `kind`; the function stays
/// throttled.
async fn refuses(lab: &Lab, incident: &str, kind: &str) -> Value {
    let r = lab.recover(incident, &[]);
    r.expect_code(5);
    let v = r.json();
    let throttle = item(&v, &format!("reserved_concurrency@{}", lab.f));
    assert_eq!(throttle["status"], "held", "{v}");
    assert!(
        throttle["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("--accept-indicators"),
        "{throttle}"
    );
    let line = v["indicators"]
        .as_str()
        .expect("the plan says why in one line");
    assert!(
        line.starts_with("containment stays:") && line.contains(kind),
        "{line}"
    );
    assert_eq!(lab.cx.concurrency(&lab.f).await, Some(0));
    v
}

// ------------------------------------------------------------ baseline

/// The indicators of `findings.json` in the evidence bucket.
fn preserved(ev: &[(String, Value)]) -> Vec<Value> {
    ev.iter()
        .find(|(k, _)| k == "findings.json")
        .map(|(_, v)| v["indicators"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// A statement for a partner account, there before the baseline: known
/// good, though the heuristics flag any foreign statement.
async fn partner_statement(lab: &Lab) {
    lab.cx
        .lambda
        .add_permission()
        .function_name(&lab.f)
        .statement_id("partner")
        .action("lambda:InvokeFunction")
        .principal(&lab.attacker)
        .send()
        .await
        .expect("partner statement");
}

#[tokio::test]
async fn with_a_baseline_each_drift_item_is_an_indicator_and_what_it_had_is_not() {
    let lab = Lab::new().await;
    partner_statement(&lab).await;
    lab.take_baseline();
    let layer = lab.malicious_layer().await;
    lab.exec_wrapper().await;
    lab.backdoor_statements().await;
    let v = lab.run_with("INC-IOC-BASE", &["baseline_store=baselines"]);
    let all = findings(&v);
    let drift = |kind: &str, what: &str| {
        assert!(
            suspicious(&v, kind)
                .iter()
                .any(|f| f.contains(what) && f.contains("not in the baseline taken at")),
            "{kind} {what} not reported as drift: {all:#?}"
        );
    };
    drift("foreign_layer", &layer);
    drift("exec_wrapper", "AWS_LAMBDA_EXEC_WRAPPER");
    drift("endpoint_variable", "S3_ENDPOINT");
    drift("public_statement", "`backdoor-anyone` on $LATEST");
    drift("foreign_statement", "`backdoor-foreign` on live");
    // The partner's statement was in the baseline: listed, expected.
    let partner: Vec<&String> = all.iter().filter(|f| f.contains("`partner`")).collect();
    assert!(
        !partner.is_empty()
            && partner
                .iter()
                .all(|f| f.starts_with("expected ") && f.contains("already had it")),
        "{partner:#?}"
    );
    let ev = lab.evidence("INC-IOC-BASE").await;
    let kept = preserved(&ev);
    for kind in [
        "foreign_layer",
        "exec_wrapper",
        "endpoint_variable",
        "public_statement",
        "foreign_statement",
    ] {
        assert!(
            kept.iter()
                .any(|i| i["kind"] == kind && i["source"] == "baseline" && i["suspicious"] == true),
            "{kind}: {kept:#?}"
        );
    }
    assert!(
        kept.iter()
            .filter(|i| i["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("`partner`"))
            .all(|i| i["source"] == "heuristic" && i["suspicious"] == false),
        "{kept:#?}"
    );
    // The incident report lists them, suspicious or expected, with their
    // source; never a value.
    let json = lab
        .cx
        .run(&["report", "--incident", "INC-IOC-BASE", "--format", "json"]);
    json.expect_code(0);
    let listed = &json.json()["report"]["indicators"][0];
    assert_eq!(listed["function"], lab.arn().as_str(), "{listed}");
    assert!(
        listed["baseline"]
            .as_str()
            .unwrap_or_default()
            .contains("taken at"),
        "{listed}"
    );
    let entries = listed["indicators"].as_array().expect("indicators");
    assert!(
        entries.iter().any(|i| i["kind"] == "foreign_layer"
            && i["subject"] == lab.arn().as_str()
            && i["suspicious"] == true
            && i["source"] == "baseline"),
        "{entries:#?}"
    );
    assert!(
        entries
            .iter()
            .any(|i| i["kind"] == "foreign_statement" && i["suspicious"] == false),
        "{entries:#?}"
    );
    let md = lab
        .cx
        .run(&["report", "--incident", "INC-IOC-BASE", "--format", "md"]);
    md.expect_code(0);
    assert!(
        md.stdout.contains("## Indicators of compromise"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .lines()
            .any(|l| l.starts_with("| **SUSPICIOUS** | endpoint_variable |")
                && l.contains("S3_ENDPOINT")
                && l.ends_with("| baseline |")),
        "{}",
        md.stdout
    );
    let html = lab
        .cx
        .run(&["report", "--incident", "INC-IOC-BASE", "--format", "html"]);
    html.expect_code(0);
    assert!(html.stdout.contains("id=\"indicators\""));
    for text in [&json.stdout, &md.stdout, &html.stdout] {
        assert!(!text.contains(SECRET), "a value is in the report");
    }
    // Judged alike by recover: the layer and the variables still block.
    refuses(&lab, "INC-IOC-BASE", "foreign_layer").await;
}

#[tokio::test]
async fn the_same_changes_made_before_the_baseline_are_not_drift() {
    let lab = Lab::new().await;
    let layer = lab.malicious_layer().await;
    lab.exec_wrapper().await;
    lab.backdoor_statements().await;
    lab.take_baseline();
    let v = lab.run_with("INC-IOC-BASE-OLD", &["baseline_store=baselines"]);
    let all = findings(&v);
    assert!(
        all.iter().any(|f| f.contains(&layer)),
        "still listed: {all:#?}"
    );
    assert!(
        all.iter()
            .all(|f| !f.starts_with("SUSPICIOUS") && !f.contains("not in the baseline")),
        "{all:#?}"
    );
    assert!(
        step(&v, "indicators")["outputs"]["suspicious"] == 0,
        "{}",
        step(&v, "indicators")
    );
}

// ------------------------------------------------------------ one each

#[tokio::test]
async fn resource_policy_backdoors_are_named_preserved_and_removed() {
    let lab = Lab::new().await;
    lab.backdoor_statements().await;
    let v = lab.run("INC-IOC-POL");
    let public = suspicious(&v, "public_statement");
    assert!(
        public
            .iter()
            .any(|f| f.contains("`backdoor-anyone` on $LATEST")),
        "{public:?}"
    );
    let foreign = suspicious(&v, "foreign_statement");
    assert!(
        foreign
            .iter()
            .any(|f| f.contains("`backdoor-foreign` on live") && f.contains(&lab.attacker)),
        "{foreign:?}"
    );
    let ev = lab.evidence("INC-IOC-POL").await;
    assert_eq!(
        record(&ev, "public_statement")["artifact"]["statement"]["Sid"],
        "backdoor-anyone"
    );
    assert_eq!(
        record(&ev, "foreign_statement")["artifact"]["qualifier"],
        "live"
    );
    let (_, latest) = lab.cx.qualifier_snapshot(&lab.f, None).await;
    let (_, live) = lab.cx.qualifier_snapshot(&lab.f, Some("live")).await;
    assert!(!latest.contains_key("backdoor-anyone") && !live.contains_key("backdoor-foreign"));
    // Containment removed them: nothing keeps the throttle.
    lifts(&lab, "INC-IOC-POL");
}

#[tokio::test]
async fn a_layer_from_another_account_is_named_and_keeps_the_throttle() {
    let lab = Lab::new().await;
    let layer = lab.malicious_layer().await;
    let v = lab.run("INC-IOC-LAYER");
    let got = suspicious(&v, "foreign_layer");
    assert!(
        got.iter()
            .any(|f| f.contains(&layer) && f.contains(&lab.attacker)),
        "{got:?}"
    );
    let ev = lab.evidence("INC-IOC-LAYER").await;
    assert_eq!(
        record(&ev, "foreign_layer")["artifact"]["layer_arn"],
        layer.as_str()
    );
    assert_eq!(lab.cx.concurrency(&lab.f).await, Some(0));
    refuses(&lab, "INC-IOC-LAYER", "foreign_layer").await;
}

#[tokio::test]
async fn overwritten_code_and_the_repointed_alias_keep_the_throttle_until_accepted() {
    let lab = Lab::new().await;
    let v2 = lab.overwrite_code().await;
    let v = lab.run("INC-IOC-CODE");
    let code = suspicious(&v, "code_changed");
    assert!(
        code.iter()
            .any(|f| f.contains(&format!("version {v2} has code sha256"))),
        "{code:?}"
    );
    let alias = suspicious(&v, "alias_repointed");
    assert!(
        alias
            .iter()
            .any(|f| f.contains(&format!("alias live points at version {v2}"))),
        "{alias:?}"
    );
    let ev = lab.evidence("INC-IOC-CODE").await;
    let rec = &ev
        .iter()
        .find(|(_, r)| r["artifact"]["version"] == v2.as_str())
        .expect("version record")
        .1;
    let live = lab
        .cx
        .lambda
        .get_function_configuration()
        .function_name(&lab.f)
        .qualifier(&v2)
        .send()
        .await
        .expect("v2");
    assert_eq!(
        rec["artifact"]["code_sha256"],
        live.code_sha256().unwrap_or_default()
    );
    assert_eq!(
        rec["artifact"]["version_arn"],
        format!("{}:{v2}", lab.arn())
    );

    let refused = refuses(&lab, "INC-IOC-CODE", "code_changed").await;
    assert!(refused["indicators"]
        .as_str()
        .unwrap()
        .contains("alias_repointed"));
    // The override lifts it, and says so.
    let r = lab.recover("INC-IOC-CODE", &["--accept-indicators"]);
    r.expect_code(0);
    let v = r.json();
    assert!(
        v["indicators"]
            .as_str()
            .unwrap_or_default()
            .starts_with("containment is lifted although"),
        "{v}"
    );
    assert_eq!(lab.cx.concurrency(&lab.f).await, None);
}

#[tokio::test]
async fn an_admin_inline_policy_on_the_role_is_named_preserved_and_deleted() {
    let lab = Lab::new().await;
    lab.admin_inline_policy().await;
    let v = lab.run("INC-IOC-IAM");
    let got = suspicious(&v, "admin_inline_policy");
    assert!(
        got.iter()
            .any(|f| f.contains("inline policy `backdoor-admin`") && f.contains(&lab.role_arn)),
        "{got:?}"
    );
    assert!(!findings(&v).iter().any(|f| f.contains("write-logs")));
    let ev = lab.evidence("INC-IOC-IAM").await;
    assert_eq!(
        record(&ev, "admin_inline_policy")["artifact"]["document"]["Statement"][0]["Action"],
        "*"
    );
    let names = lab
        .cx
        .iam
        .list_role_policies()
        .role_name(&lab.role)
        .send()
        .await
        .expect("list");
    assert!(
        !names.policy_names().iter().any(|n| n == "backdoor-admin"),
        "{names:?}"
    );
    lifts(&lab, "INC-IOC-IAM");
}

#[tokio::test]
async fn a_public_function_url_is_named_preserved_and_deleted() {
    let lab = Lab::new().await;
    lab.public_url().await;
    let v = lab.run("INC-IOC-URL");
    assert_eq!(suspicious(&v, "public_url").len(), 1, "{:?}", findings(&v));
    let ev = lab.evidence("INC-IOC-URL").await;
    assert_eq!(
        record(&ev, "public_url")["artifact"]["url"]["AuthType"],
        "NONE"
    );
    let (url, _) = lab.cx.qualifier_snapshot(&lab.f, None).await;
    assert!(url.is_none(), "{url:?}");
    lifts(&lab, "INC-IOC-URL");
}

#[tokio::test]
async fn a_mapping_from_a_foreign_queue_is_named_preserved_and_disabled() {
    let lab = Lab::new().await;
    let (uuid, queue) = lab.foreign_queue().await;
    let v = lab.run("INC-IOC-ESM");
    let got = suspicious(&v, "foreign_event_source");
    assert!(
        got.iter().any(|f| f.contains(&uuid) && f.contains(&queue)),
        "{got:?}"
    );
    let ev = lab.evidence("INC-IOC-ESM").await;
    let rec = record(&ev, "foreign_event_source");
    assert_eq!(
        (
            rec["artifact"]["uuid"].as_str(),
            rec["artifact"]["event_source_arn"].as_str()
        ),
        (Some(uuid.as_str()), Some(queue.as_str()))
    );
    let m = lab
        .cx
        .lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect("mapping");
    assert!(
        matches!(m.state(), Some("Disabled" | "Disabling")),
        "{:?}",
        m.state()
    );
    // Disabled, so no longer in effect: the throttle may be lifted (the
    // mapping itself stays held back as risky).
    lifts(&lab, "INC-IOC-ESM");
}

#[tokio::test]
async fn exec_wrapper_and_endpoint_variables_name_the_endpoint_never_a_value() {
    let lab = Lab::new().await;
    lab.exec_wrapper().await;
    let v = lab.run("INC-IOC-ENV");
    assert_eq!(
        suspicious(&v, "exec_wrapper").len(),
        1,
        "{:?}",
        findings(&v)
    );
    let ep = suspicious(&v, "endpoint_variable");
    assert!(
        ep.iter()
            .any(|f| f.contains("S3_ENDPOINT points to https://collector.attacker.example")),
        "{ep:?}"
    );
    let ev = lab.evidence("INC-IOC-ENV").await;
    assert_eq!(
        record(&ev, "endpoint_variable")["artifact"]["endpoint"],
        "https://collector.attacker.example"
    );
    let names = &ev
        .iter()
        .find(|(k, _)| k == "findings.json")
        .expect("findings.json")
        .1["facts"]["environment_variable_names"];
    assert!(names.as_array().unwrap().iter().any(|n| n == "DB_PASSWORD"));
    refuses(&lab, "INC-IOC-ENV", "exec_wrapper").await;
}

#[tokio::test]
async fn a_new_access_key_for_the_deploy_user_is_named_preserved_and_deactivated() {
    let lab = Lab::new().await;
    let key = lab.new_access_key().await;
    let v = lab.run("INC-IOC-KEY");
    let got = suspicious(&v, "access_key");
    assert_eq!(
        got.len(),
        1,
        "only the key created in the window: {:?}",
        findings(&v)
    );
    assert!(got[0].contains(&key), "{got:?}");
    let ev = lab.evidence("INC-IOC-KEY").await;
    assert_eq!(
        record(&ev, "access_key")["artifact"]["access_key_id"],
        key.as_str()
    );
    let keys = lab
        .cx
        .iam
        .list_access_keys()
        .user_name(&lab.user)
        .send()
        .await
        .expect("keys");
    let status = keys
        .access_key_metadata()
        .iter()
        .find(|k| k.access_key_id() == Some(key.as_str()))
        .and_then(|k| k.status())
        .map(|s| s.as_str().to_string());
    assert_eq!(status.as_deref(), Some("Inactive"));
    lifts(&lab, "INC-IOC-KEY");
}

#[tokio::test]
async fn a_rogue_function_on_the_role_is_throttled_its_rule_disabled_and_the_role_quarantined_without_asking(
) {
    let lab = Lab::new().await;
    let (helper, rule) = lab.rogue_function().await;
    let v = lab.run("INC-IOC-ROGUE");
    let got = suspicious(&v, "rogue_function");
    assert!(
        got.iter()
            .any(|f| f.contains(&format!("function {helper} uses the same execution role"))),
        "{got:?}"
    );
    assert!(
        suspicious(&v, "rogue_rule")
            .iter()
            .any(|f| f.contains(&rule)),
        "{:?}",
        findings(&v)
    );
    // A role shared only with the attacker's function needs no decision.
    let q = step(&v, "quarantine-role");
    assert_eq!(q["status"], "changes", "{q}");
    assert!(
        q["note"]
            .as_str()
            .unwrap_or_default()
            .contains("marks as the attacker's"),
        "{q}"
    );
    let contain = step(&v, "contain-rogue-functions");
    let reasons: Vec<&str> = contain["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap_or_default())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("throttle the attacker's function")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("never deleted")),
        "{reasons:?}"
    );
    assert_eq!(lab.cx.concurrency(&helper).await, Some(0));
    let ev = aws_sdk_eventbridge::Client::new(&lab.cx.sdk_config().await);
    let r = ev
        .describe_rule()
        .name(&rule)
        .send()
        .await
        .expect("the rule is kept");
    assert_eq!(r.state().map(|s| s.as_str()), Some("DISABLED"));
    let targets = ev
        .list_targets_by_rule()
        .rule(&rule)
        .send()
        .await
        .expect("targets");
    assert_eq!(targets.targets().len(), 1, "its targets are kept too");
    let evidence = lab.evidence("INC-IOC-ROGUE").await;
    assert_eq!(
        record(&evidence, "rogue_rule")["artifact"]["rule"],
        rule.as_str()
    );
    assert!(
        record(&evidence, "rogue_function")["artifact"]["function_arn"]
            .as_str()
            .unwrap()
            .ends_with(&helper)
    );
    refuses(&lab, "INC-IOC-ROGUE", "rogue_function").await;
    assert_eq!(lab.cx.concurrency(&helper).await, Some(0));
}

// ------------------------------------------------------------ all at once

#[tokio::test]
async fn every_technique_at_once_is_named_preserved_before_removal_and_contained() {
    let lab = Lab::new().await;
    lab.backdoor_statements().await;
    let layer = lab.malicious_layer().await;
    lab.exec_wrapper().await;
    let v2 = lab.overwrite_code().await;
    lab.admin_inline_policy().await;
    lab.public_url().await;
    let (uuid, _) = lab.foreign_queue().await;
    let key = lab.new_access_key().await;
    let (helper, rule) = lab.rogue_function().await;
    let v = lab.run("INC-IOC-ALL");
    for kind in [
        "public_statement",
        "foreign_statement",
        "public_url",
        "foreign_layer",
        "exec_wrapper",
        "endpoint_variable",
        "code_changed",
        "alias_repointed",
        "admin_inline_policy",
        "foreign_event_source",
        "rogue_function",
        "rogue_rule",
        "access_key",
    ] {
        assert!(
            !suspicious(&v, kind).is_empty(),
            "{kind} not named: {:#?}",
            findings(&v)
        );
    }
    assert_eq!(step(&v, "quarantine-role")["status"], "changes");

    // Every record is in the bucket, written before the first removal.
    let ev = lab.evidence("INC-IOC-ALL").await;
    assert!(
        ev.len() >= 14,
        "{:?}",
        ev.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let trail = lab.cx.audit("INC-IOC-ALL");
    let first = |step: &str| {
        trail
            .iter()
            .position(|r| r["event"] == "applied" && r["step"] == step)
            .unwrap_or_else(|| panic!("{step} applied nothing"))
    };
    let preserved = trail
        .iter()
        .rposition(|r| r["event"] == "applied" && r["step"] == "preserve-indicators")
        .expect("preserved");
    // The throttle and the role's deny remove nothing the evidence keeps:
    // under `run --yes` they go first
    // (runner::the_throttle_and_the_deny_go_ahead_of_the_evidence_...).
    for removing in [
        "close-public-access",
        "stop-event-sources",
        "deactivate-keys",
        "contain-rogue-functions",
    ] {
        assert!(
            preserved < first(removing),
            "{removing} ran before the evidence was written"
        );
    }
    // The quarantine's removals (detach, delete) wait for pass 2.
    let removed = trail
        .iter()
        .position(|r| {
            r["event"] == "applied"
                && r["step"] == "quarantine-role"
                && r["data"]["attribute"] != "inline_policy:firebreak-quarantine"
        })
        .expect("the quarantine detached or deleted something");
    assert!(
        preserved < removed,
        "the role was stripped before the evidence was written"
    );

    // Read back from AWS: contained.
    assert_eq!(lab.cx.concurrency(&lab.f).await, Some(0));
    assert_eq!(lab.cx.concurrency(&helper).await, Some(0));
    let (url, st) = lab.cx.qualifier_snapshot(&lab.f, None).await;
    assert!(url.is_none() && !st.contains_key("backdoor-anyone"));
    let m = lab
        .cx
        .lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect("mapping");
    assert!(matches!(m.state(), Some("Disabled" | "Disabling")));
    let ev_client = aws_sdk_eventbridge::Client::new(&lab.cx.sdk_config().await);
    let r = ev_client
        .describe_rule()
        .name(&rule)
        .send()
        .await
        .expect("rule");
    assert_eq!(r.state().map(|s| s.as_str()), Some("DISABLED"));
    let keys = lab
        .cx
        .iam
        .list_access_keys()
        .user_name(&lab.user)
        .send()
        .await
        .expect("keys");
    assert!(
        keys.access_key_metadata()
            .iter()
            .all(|k| k.status().map(|s| s.as_str()) == Some("Inactive")),
        "{key}"
    );

    // The malicious code, layer and variables are still live: recover
    // refuses to lift the throttle, naming them.
    let refused = refuses(&lab, "INC-IOC-ALL", "code_changed").await;
    let line = refused["indicators"].as_str().unwrap();
    assert!(
        line.contains(&layer)
            && line.contains("exec_wrapper")
            && line.contains(&format!("version {v2}")),
        "{line}"
    );
    assert_eq!(
        item(&refused, &format!("reserved_concurrency@{}", lab.f))["status"],
        "held"
    );
}

// ------------------------------------------- CloudTrail, recorded answers

mod attribution {
    use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput;
    use aws_sdk_cloudtrail::types::{Event, Resource};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use firebreak::aws::{Aws, AwsSettings, CallPath, Guard, Quotas};
    use firebreak::engine::Session;
    use firebreak::playbook::{self, Phase};
    use firebreak::state::{Incident, IncidentId};
    use serde_json::{json, Map};

    use super::{Lab, REGION};

    fn event(id: &str, name: &str, resource: &str, who: &str) -> Event {
        let at = chrono::Utc::now() - chrono::Duration::seconds(5);
        Event::builder()
            .event_id(id)
            .event_name(name)
            .event_time(aws_smithy_types::DateTime::from_secs(at.timestamp()))
            .username(who.rsplit('/').next().unwrap_or(who))
            .resources(Resource::builder().resource_name(resource).build())
            .cloud_trail_event(
                json!({"eventID": id, "eventName": name, "userIdentity": {"arn": who}}).to_string(),
            )
            .build()
    }

    /// The layer, the backdoor statement and the key, each made by someone:
    /// the statement and the key by an intruder, the layer by the CI
    /// deployer (listed in `deployers`, so expected).
    #[tokio::test]
    async fn each_indicator_names_who_made_the_change_and_deployers_are_expected() {
        let lab = Lab::new().await;
        lab.backdoor_statements().await;
        lab.malicious_layer().await;
        let key = lab.new_access_key().await;
        let acct = lab.cx.account.clone();
        let mallory = format!("arn:aws:iam::{acct}:user/mallory");
        let ci = format!("arn:aws:sts::{acct}:assumed-role/ci-deployer/build-17");
        let (f, user) = (lab.f.clone(), lab.user.clone());
        let (m2, ci2) = (mallory.clone(), ci.clone());
        let answer = move || {
            LookupEventsOutput::builder()
                .set_events(Some(vec![
                    event("e1", "AddPermission20150331v2", &f, &m2),
                    event("e2", "UpdateFunctionConfiguration20150331v2", &f, &ci2),
                    event("e3", "CreateAccessKey", &user, &m2),
                ]))
                .build()
        };
        let lookup = mock!(aws_sdk_cloudtrail::Client::lookup_events).then_output(answer);

        let sdk = lab.cx.sdk_config().await;
        let mut aws = Aws::from_sdk_config(&sdk, REGION.into(), &AwsSettings::default());
        let guard = Guard {
            dry_run: true,
            recorder: aws.calls.clone(),
        };
        let path = CallPath::new(Quotas::default(), guard.recorder.clone());
        let http = path.http_client(aws_smithy_mocks::create_mock_http_client());
        let stamp = path.stamp();
        aws.cloudtrail = mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::MatchAny,
            &[&lookup],
            move |b| b
                .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
                .http_client(http.clone())
                .interceptor(guard.clone())
                .interceptor(stamp.clone())
        );
        let caller = aws.caller().await.expect("caller");
        let id = IncidentId::parse("INC-IOC-CT").expect("id");
        let incident =
            Incident::open(&lab.cx.path(".firebreak"), &id, "run-1", "test").expect("incident");
        let session = Session::new(aws, caller, incident);
        let text = format!(
            "apiVersion: firebreak/v1\nkind: Playbook\nname: ioc\nphases:\n  identify:\n    - id: indicators\n      action: lambda.indicators\n      with:\n        function: {}\n        since: \"{}\"\n        users: [{}]\n        deployers: [ci-deployer]\n",
            lab.f, lab.since, lab.user
        );
        let pb = playbook::load::parse(std::path::Path::new("ioc.yaml"), text).expect("playbook");
        let plan = session
            .build_plan(&pb, &Map::new(), &[Phase::Identify])
            .await
            .expect("plan");
        let step = &plan.steps[0];
        let findings: Vec<String> = step.outputs["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| f.as_str().unwrap_or_default().to_string())
            .collect();
        let line = |kind: &str| {
            findings
                .iter()
                .find(|f| f.contains(&format!(" {kind} ")))
                .unwrap_or_else(|| panic!("no {kind} in {findings:#?}"))
                .clone()
        };
        let st = line("public_statement");
        assert!(
            st.starts_with("SUSPICIOUS") && st.contains(&format!("[by {mallory} at ")),
            "{st}"
        );
        assert!(
            st.contains("AddPermission20150331v2 by") && st.contains("not a listed deployer"),
            "{st}"
        );
        let layer = line("foreign_layer");
        assert!(
            layer.starts_with("expected") && layer.contains(&format!("[by {ci} at ")),
            "{layer}"
        );
        let k = line("access_key");
        assert!(
            k.contains(&key) && k.contains(&format!("[by {mallory}")),
            "{k}"
        );
        assert!(
            step.note
                .as_deref()
                .unwrap_or_default()
                .contains("LookupEvents read: "),
            "{:?}",
            step.note
        );
        assert!(lookup.num_calls() >= 1);
    }
}
