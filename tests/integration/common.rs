//! `TestContext`: one LocalStack account per test, unique names, a scratch
//! working directory, and the firebreak binary wired to all of it.
//!
//! LocalStack turns a 12-digit access key id into the account id and keeps
//! accounts apart, so tests run in parallel against one LocalStack without
//! seeing each other. A missing LocalStack fails the test loudly: the
//! README's test command (`scripts/test.sh`) starts it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::Value;

pub const REGION: &str = "us-east-1";

pub fn endpoint() -> String {
    std::env::var("FIREBREAK_TEST_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

fn unique_account() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let seed = (u64::from(std::process::id()) << 24) ^ (nanos << 4) ^ n;
    // Leading 9 keeps clear of LocalStack's default account 000000000000.
    format!("9{:011}", seed % 100_000_000_000)
}

pub struct TestContext {
    pub account: String,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    counter: AtomicU64,
    /// Held for the whole test: shared by ordinary tests, exclusive for one
    /// that seeds a hundred functions (see `new_exclusive`).
    _turn: Turn,
}

/// Creating a hundred functions keeps host-mode LocalStack busy enough to
/// stall other tests' requests past their timeouts (before our plugin
/// started versions' threads lazily, it also kept two threads per version).
/// Such a test runs alone; the others share LocalStack.
static LOCALSTACK: std::sync::RwLock<()> = std::sync::RwLock::new(());

enum Turn {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
}

impl TestContext {
    pub async fn new() -> Self {
        // A test that panicked while holding its turn poisons the lock; the
        // lock guards no data, so the turn is still good.
        let turn = Turn::Shared(LOCALSTACK.read().unwrap_or_else(|e| e.into_inner()));
        Self::with_turn(turn).await
    }

    /// For a test that loads LocalStack heavily: it waits for the others
    /// and runs alone.
    pub async fn new_exclusive() -> Self {
        let turn = Turn::Exclusive(LOCALSTACK.write().unwrap_or_else(|e| e.into_inner()));
        Self::with_turn(turn).await
    }

    async fn with_turn(turn: Turn) -> Self {
        let endpoint = endpoint();
        let health = format!("{endpoint}/_localstack/health");
        let addr = endpoint
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| {
                panic!("FIREBREAK_TEST_ENDPOINT `{endpoint}` must be http://IP:PORT")
            });
        // A LocalStack busy creating another test's fleet can let its
        // accept queue fill for a moment; one that is down stays down.
        let deadline = Instant::now() + Duration::from_secs(30);
        let up = loop {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(_) => break true,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await
                }
                Err(_) => break false,
            }
        };
        assert!(
            up,
            "LocalStack is not reachable at {endpoint} ({health}) after 30 s; run the tests with scripts/test.sh, which installs and starts it"
        );
        let account = unique_account();
        let creds = Credentials::new(&account, "test", None, None, "firebreak-tests");
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(creds.clone())
            .build();
        let iam_conf = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(creds)
            .build();
        Self {
            account,
            endpoint,
            dir: tempfile::tempdir().expect("tempdir"),
            lambda: aws_sdk_lambda::Client::from_conf(conf),
            iam: aws_sdk_iam::Client::from_conf(iam_conf),
            counter: AtomicU64::new(0),
            _turn: turn,
        }
    }

    pub fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::SeqCst))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The firebreak binary, working in this test's directory and account.
    pub fn firebreak(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_firebreak"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.account)
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.firebreak().args(args).output().expect("run firebreak");
        Run::from(out)
    }

    pub fn throttle_playbook() -> PathBuf {
        crate_root().join("playbooks/throttle-function.yaml")
    }

    /// Creates a function (and waits until it is Active).
    pub async fn create_function(&self, name: &str) -> String {
        self.create_function_with_env(name, &[]).await
    }

    pub async fn create_function_with_env(&self, name: &str, env: &[(&str, &str)]) -> String {
        let role = format!("arn:aws:iam::{}:role/{name}-role", self.account);
        self.create_function_full(name, &role, env).await
    }

    /// Creates many functions at once (LocalStack handles them in parallel).
    pub async fn create_functions(&self, names: &[String]) {
        let mut set = tokio::task::JoinSet::new();
        for chunk in names.chunks(10) {
            let (lambda, account, chunk) =
                (self.lambda.clone(), self.account.clone(), chunk.to_vec());
            set.spawn(async move {
                for name in chunk {
                    lambda
                        .create_function()
                        .function_name(&name)
                        .runtime(Runtime::Python312)
                        .role(format!("arn:aws:iam::{account}:role/fleet-role"))
                        .handler("handler.handler")
                        .code(
                            FunctionCode::builder()
                                .zip_file(Blob::new(zip_one_file(
                                    "handler.py",
                                    b"def handler(e, c):\n    return 1\n",
                                )))
                                .build(),
                        )
                        .send()
                        .await
                        .expect("create function");
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("creator task");
        }
        for name in names {
            let deadline = Instant::now() + Duration::from_secs(60);
            while self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .expect("config")
                .state()
                .map(|s| s.as_str())
                != Some("Active")
            {
                assert!(Instant::now() < deadline, "{name} never became Active");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Deletes the functions a test seeded in bulk, once it has read back
    /// what it checks. Host-mode LocalStack keeps threads and memory for
    /// every function version until it is deleted: a suite that left its
    /// fleets behind ended with ~700 functions and ~1,500 threads in one
    /// process, the load at which LocalStack has stopped answering.
    pub async fn delete_functions(&self, names: &[String]) {
        let mut set = tokio::task::JoinSet::new();
        for chunk in names.chunks(25) {
            let (lambda, chunk) = (self.lambda.clone(), chunk.to_vec());
            set.spawn(async move {
                for name in chunk {
                    if let Err(e) = lambda.delete_function().function_name(&name).send().await {
                        // Cleanup only: the test's result is already decided.
                        eprintln!("cleanup: could not delete {name}: {e}");
                    }
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("deleter task");
        }
    }

    pub async fn create_function_with_role(&self, name: &str, role_arn: &str) -> String {
        self.create_function_full(name, role_arn, &[]).await
    }

    /// A role Lambda can assume, with these inline policies (name,
    /// document). Returns its ARN.
    pub async fn lambda_role(&self, name: &str, inline: &[(&str, &str)]) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let arn = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .send()
            .await
            .expect("create role")
            .role()
            .expect("role")
            .arn()
            .to_string();
        for (policy, doc) in inline {
            self.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(*policy)
                .policy_document(*doc)
                .send()
                .await
                .expect("inline policy");
        }
        arn
    }

    /// A role with two managed policies (one of them broad: `Allow * on *`)
    /// and two inline policies, the way a real execution role accretes them.
    /// A `Principal: *` statement (`anyone`) on the function itself.
    pub async fn open_to_anyone(&self, name: &str) {
        self.lambda
            .add_permission()
            .function_name(name)
            .statement_id("anyone")
            .action("lambda:InvokeFunction")
            .principal("*")
            .send()
            .await
            .expect("public statement");
    }

    pub async fn seed_role(&self, name: &str) -> String {
        let arn = self.lambda_role(name, &[]).await;
        for (policy, doc) in [
            (
                format!("{name}-read-bucket"),
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/*"}]}"#,
            ),
            (
                format!("{name}-admin"),
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            ),
        ] {
            let p = self
                .iam
                .create_policy()
                .policy_name(&policy)
                .policy_document(doc)
                .send()
                .await
                .expect("create policy");
            let parn = p
                .policy()
                .and_then(|p| p.arn())
                .expect("policy arn")
                .to_string();
            self.iam
                .attach_role_policy()
                .role_name(name)
                .policy_arn(parn)
                .send()
                .await
                .expect("attach");
        }
        for (policy, doc) in [
            (
                "write-logs",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:us-east-1:*:log-group:/aws/lambda/*"}]}"#,
            ),
            (
                "read-table",
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"Orders","Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:us-east-1:*:table/orders"}]}"#,
            ),
        ] {
            self.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(doc)
                .send()
                .await
                .expect("put inline");
        }
        arn
    }

    /// A function URL with AuthType NONE (and the statement that opens it),
    /// a wildcard statement, and a legitimate one (S3 with SourceArn and
    /// SourceAccount).
    pub async fn seed_public_access(&self, name: &str) {
        use aws_sdk_lambda::types::FunctionUrlAuthType;
        self.lambda
            .create_function_url_config()
            .function_name(name)
            .auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .expect("create url");
        self.lambda
            .add_permission()
            .function_name(name)
            .statement_id("FunctionURLAllowPublicAccess")
            .action("lambda:InvokeFunctionUrl")
            .principal("*")
            .function_url_auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .expect("url permission");
        self.open_to_anyone(name).await;
        self.lambda
            .add_permission()
            .function_name(name)
            .statement_id("s3-orders-bucket")
            .action("lambda:InvokeFunction")
            .principal("s3.amazonaws.com")
            .source_arn("arn:aws:s3:::orders")
            .source_account(&self.account)
            .send()
            .await
            .expect("legit");
    }

    /// The URL configuration (address left out) and the statements by Sid.
    pub async fn public_snapshot(
        &self,
        name: &str,
    ) -> (Option<Value>, std::collections::BTreeMap<String, Value>) {
        let url = self
            .lambda
            .get_function_url_config()
            .function_name(name)
            .send()
            .await
            .ok()
            .map(|c| serde_json::json!({"AuthType": c.auth_type().as_str()}));
        let mut statements = std::collections::BTreeMap::new();
        if let Ok(p) = self.lambda.get_policy().function_name(name).send().await {
            let doc: Value = serde_json::from_str(p.policy().unwrap_or("{}")).unwrap_or_default();
            for st in doc["Statement"].as_array().into_iter().flatten() {
                statements.insert(
                    st["Sid"].as_str().unwrap_or_default().to_string(),
                    st.clone(),
                );
            }
        }
        (url, statements)
    }

    /// Attached policy ARNs and inline documents (as JSON values) of a role.
    pub async fn role_snapshot(
        &self,
        name: &str,
    ) -> (Vec<String>, std::collections::BTreeMap<String, Value>) {
        let mut attached: Vec<String> = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("list attached")
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect();
        attached.sort();
        let mut inline = std::collections::BTreeMap::new();
        for p in self
            .iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("list inline")
            .policy_names()
        {
            let doc = self
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(p)
                .send()
                .await
                .expect("get inline");
            inline.insert(
                p.clone(),
                firebreak::action::iam::policy::decode(doc.policy_document()),
            );
        }
        (attached, inline)
    }

    pub async fn create_function_full(
        &self,
        name: &str,
        role: &str,
        env: &[(&str, &str)],
    ) -> String {
        let mut vars = aws_sdk_lambda::types::Environment::builder();
        for (k, v) in env {
            vars = vars.variables(*k, *v);
        }
        let out = self
            .lambda
            .create_function()
            .environment(vars.build())
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(role)
            .handler("handler.handler")
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(zip_one_file(
                        "handler.py",
                        b"def handler(e, c):\n    return 1\n",
                    )))
                    .build(),
            )
            .send()
            .await
            .expect("create function");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let c = self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .expect("get config");
            if c.state().map(|s| s.as_str()) == Some("Active") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "function {name} never became Active: {c:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        out.function_arn().expect("arn").to_string()
    }

    pub async fn concurrency(&self, name: &str) -> Option<i32> {
        self.lambda
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .expect("get concurrency")
            .reserved_concurrent_executions()
    }

    pub async fn set_concurrency(&self, name: &str, n: i32) {
        self.lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(n)
            .send()
            .await
            .expect("put concurrency");
    }

    pub fn incident_dir(&self, id: &str) -> PathBuf {
        self.path(&format!(".firebreak/incidents/{id}"))
    }

    /// Audit records of this incident, parsed.
    pub fn audit(&self, id: &str) -> Vec<Value> {
        std::fs::read_to_string(self.incident_dir(id).join("audit.jsonl"))
            .expect("audit trail")
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    pub fn audit_events<'a>(records: &'a [Value], event: &str, step: &str) -> Vec<&'a Value> {
        records
            .iter()
            .filter(|r| r["event"] == event && r["step"] == step)
            .collect()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A zip archive holding one stored (uncompressed) file: enough for Lambda,
/// without pulling a zip crate into the build.
pub fn zip_one_file(name: &str, data: &[u8]) -> Vec<u8> {
    // One stored file: the same builder the drills use for their code.
    firebreak::drill::setup::zip_stored(name, data)
}

/// The crate's directory, read when the test runs: `env!` would bake in the
/// path of whatever checkout first compiled a shared target directory, and
/// cargo does not rebuild when only the checkout moves, so a clean clone
/// would silently test another checkout's playbooks.
pub fn crate_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

impl TestContext {
    /// A forensic bucket for this test's account (created once), and the
    /// params `playbooks/lambda-compromise.yaml` needs to write evidence
    /// there. Logs and CloudTrail are off: a fresh test function has no log
    /// group and LocalStack has no CloudTrail API; tests/integration/logs.rs
    /// and cloudtrail.rs cover those steps.
    pub async fn evidence_params(&self) -> Vec<String> {
        let name = format!("fb-ev-{}", self.account);
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(&self.account, "test", None, None, "tests"))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        if s3.head_bucket().bucket(&name).send().await.is_err() {
            s3.create_bucket()
                .bucket(&name)
                .send()
                .await
                .expect("create the forensic bucket");
        }
        vec![
            format!("forensic_bucket={name}"),
            "collect_logs=false".into(),
            "collect_cloudtrail=false".into(),
        ]
    }
}

/// The forensic bucket named by `evidence_params`.
pub fn evidence_bucket(ev: &[String]) -> &str {
    ev[0].trim_start_matches("forensic_bucket=")
}

/// The JSON document under `<incident>/.../<function>/...SUFFIX` among a
/// bucket's `objects` (`bucket_objects`).
pub fn evidence_doc(
    objects: &[(String, Vec<u8>)],
    incident: &str,
    function: &str,
    suffix: &str,
) -> Value {
    let (_, body) = objects
        .iter()
        .find(|(k, _)| {
            k.starts_with(&format!("{incident}/"))
                && k.contains(&format!("/{function}/"))
                && k.ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no {suffix} for {function} in the bucket"));
    serde_json::from_slice(body).expect("an evidence document is JSON")
}

/// Versions, aliases, qualified URLs and policies, and event source
/// mappings (issue 10: doors on aliases and versions).
impl TestContext {
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    &self.account,
                    "test",
                    None,
                    None,
                    "tests",
                ))
                .build(),
        )
    }

    /// Waits until the function's last configuration update is no longer
    /// in progress (at most 30 s).
    pub async fn wait_updated(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let c = self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .expect("get config");
            let status = c.last_update_status().map(|s| s.as_str().to_string());
            if status.as_deref() != Some("InProgress") {
                break;
            }
            assert!(Instant::now() < deadline, "{name} never finished updating");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Publishes `$LATEST` as a new version. Lambda does not publish an
    /// unchanged function twice, so the description changes first.
    pub async fn publish_version(&self, name: &str, description: &str) -> String {
        self.lambda
            .update_function_configuration()
            .function_name(name)
            .description(description)
            .send()
            .await
            .expect("update configuration");
        self.wait_updated(name).await;
        self.lambda
            .publish_version()
            .function_name(name)
            .description(description)
            .send()
            .await
            .expect("publish version")
            .version()
            .expect("version")
            .to_string()
    }

    /// An SQS queue of this account mapped (enabled) to `function`: a name
    /// or `NAME:QUALIFIER`. Returns the mapping's UUID once it is Enabled.
    pub async fn create_sqs_mapping(&self, function: &str) -> String {
        let sqs = self.sqs();
        let url = sqs
            .create_queue()
            .queue_name(format!("{}-jobs", function.replace(':', "-")))
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
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("arn")
            .clone();
        let uuid = self
            .lambda
            .create_event_source_mapping()
            .function_name(function)
            .event_source_arn(arn)
            .enabled(true)
            .send()
            .await
            .expect("mapping")
            .uuid()
            .expect("uuid")
            .to_string();
        self.wait_mapping_state(&uuid, "Enabled").await;
        uuid
    }

    pub async fn wait_mapping_state(&self, uuid: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self
                .lambda
                .get_event_source_mapping()
                .uuid(uuid)
                .send()
                .await
                .expect("get mapping");
            if m.state() == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mapping {uuid} never became {want}: {:?}",
                m.state()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One qualifier's URL configuration (AuthType, InvokeMode, Cors; the
    /// address left out) and its statements by Sid, read with this test's
    /// own client. `None` is the function itself.
    pub async fn qualifier_snapshot(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> (Option<Value>, std::collections::BTreeMap<String, Value>) {
        use serde_json::json;
        let url = self
            .lambda
            .get_function_url_config()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .ok()
            .map(|c| {
                json!({
                    "AuthType": c.auth_type().as_str(),
                    "InvokeMode": c.invoke_mode().map(|m| m.as_str()),
                    "Cors": c.cors().map(|c| json!({
                        "AllowCredentials": c.allow_credentials(),
                        "AllowHeaders": c.allow_headers(),
                        "AllowMethods": c.allow_methods(),
                        "AllowOrigins": c.allow_origins(),
                        "ExposeHeaders": c.expose_headers(),
                        "MaxAge": c.max_age(),
                    })),
                })
            });
        let mut statements = std::collections::BTreeMap::new();
        if let Ok(p) = self
            .lambda
            .get_policy()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
        {
            let doc: Value = serde_json::from_str(p.policy().unwrap_or("{}")).unwrap_or_default();
            for st in doc["Statement"].as_array().into_iter().flatten() {
                statements.insert(
                    st["Sid"].as_str().unwrap_or_default().to_string(),
                    st.clone(),
                );
            }
        }
        (url, statements)
    }
}

/// Secrets Manager and SSM seeding, and reading back every object of a
/// bucket (issue 11: secrets rotation and the leak scan).
impl TestContext {
    pub async fn sdk_config(&self) -> aws_types::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(&self.account, "test", None, None, "tests"))
            .load()
            .await
    }

    /// An EventBridge rule `rule` on `schedule` (e.g. `rate(1 hour)`) that
    /// fires the function `function_arn`: the attacker's persistence.
    pub async fn schedule_rule(&self, rule: &str, schedule: &str, function_arn: &str) {
        let ev = aws_sdk_eventbridge::Client::new(&self.sdk_config().await);
        ev.put_rule()
            .name(rule)
            .schedule_expression(schedule)
            .send()
            .await
            .expect("rule");
        ev.put_targets()
            .rule(rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("1")
                    .arn(function_arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("targets");
    }

    pub async fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    pub async fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk_config().await)
    }

    /// Every object in `bucket` (all versions' current keys), as bytes.
    pub async fn bucket_objects(&self, bucket: &str) -> Vec<(String, Vec<u8>)> {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
                .force_path_style(true)
                .build(),
        );
        let mut out = Vec::new();
        let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            for o in page.expect("list objects").contents() {
                let key = o.key().expect("key").to_string();
                let body = s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .expect("get object")
                    .body
                    .collect()
                    .await
                    .expect("body")
                    .into_bytes()
                    .to_vec();
                out.push((key, body));
            }
        }
        out
    }
}
