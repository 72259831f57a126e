//! `setup`: the world before the attack, created in the run's own account
//! with the run's suffix on every name. Everything created is recorded in
//! `World::created` so `cleanup` can remove it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, FunctionUrlAuthType, Runtime};

use super::lab::Lab;
use super::model::{Drill, EnvValue};
use super::names::Namespace;
use super::DrillError;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Something the drill created (victim account unless `attacker`).
#[derive(Debug, Clone)]
pub enum Created {
    Function(String),
    Role(String),
    Policy(String),
    Secret(String),
    Parameter(String),
    Queue(String),
    User(String),
    Topic(String),
    Alarm(String),
    LogGroup(String),
    Bucket(String),
    Mapping(String),
    Rule(String),
    AttackerQueue(String),
    AttackerLayer(String),
}

#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub arn: String,
    pub role: String,
    pub alias: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AlarmWiring {
    pub alarm: String,
    pub topic_arn: String,
    pub queue_url: String,
}

/// Physical names of what setup created, by logical name.
#[derive(Debug, Default)]
pub struct World {
    pub functions: BTreeMap<String, FunctionInfo>,
    /// logical → physical role name.
    pub roles: BTreeMap<String, String>,
    /// logical → (name, ARN, version id at setup).
    pub secrets: BTreeMap<String, (String, String, String)>,
    /// logical → (name, version at setup).
    pub parameters: BTreeMap<String, (String, i64)>,
    /// logical → (url, ARN).
    pub queues: BTreeMap<String, (String, String)>,
    pub users: BTreeMap<String, String>,
    /// logical role → managed policy ARNs attached at setup.
    pub managed: BTreeMap<String, Vec<String>>,
    pub alarm: Option<AlarmWiring>,
    pub bucket: String,
    pub created: Vec<Created>,
}

impl World {
    pub fn function(&self, logical: &str) -> Option<&FunctionInfo> {
        self.functions.get(logical)
    }
}

fn err(what: impl Into<String>) -> impl FnOnce(String) -> DrillError {
    let what = what.into();
    move |e| DrillError::aws("setup", what, e)
}

/// A zip with one stored (uncompressed) file: what the function runs, and
/// its bytes stay searchable in the evidence.
pub fn zip_stored(name: &str, data: &[u8]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let crc = crc32(data);
    let (n, len) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    let le16 = |z: &mut Vec<u8>, v: u16| z.extend_from_slice(&v.to_le_bytes());
    let le32 = |z: &mut Vec<u8>, v: u32| z.extend_from_slice(&v.to_le_bytes());
    le32(&mut z, 0x0403_4b50);
    for v in [20u16, 0, 0, 0, 0x21] {
        le16(&mut z, v);
    }
    le32(&mut z, crc);
    le32(&mut z, len);
    le32(&mut z, len);
    le16(&mut z, n);
    le16(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    le32(&mut z, 0x0201_4b50);
    for v in [20u16, 20, 0, 0, 0, 0x21] {
        le16(&mut z, v);
    }
    le32(&mut z, crc);
    le32(&mut z, len);
    le32(&mut z, len);
    for v in [n, 0, 0, 0, 0] {
        le16(&mut z, v);
    }
    le32(&mut z, 0);
    le32(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central;
    le32(&mut z, 0x0605_4b50);
    for v in [0u16, 0, 1, 1] {
        le16(&mut z, v);
    }
    le32(&mut z, central_len);
    le32(&mut z, central);
    le16(&mut z, 0);
    z
}

fn allow_doc(actions: &[String]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
    })
    .to_string()
}

/// A value nobody will ever print: random hex, only ever sent to AWS.
fn secret_value() -> String {
    let mut buf = [0u8; 24];
    let _ = getrandom::fill(&mut buf);
    hex::encode(buf)
}

/// Waits until a function is Active and its last update finished.
pub async fn wait_ready(lab: &Lab, name: &str) -> Result<(), DrillError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = lab
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| {
                DrillError::aws(
                    "setup",
                    format!("GetFunctionConfiguration {name}"),
                    aws_sdk_lambda::error::DisplayErrorContext(e),
                )
            })?;
        let active = c.state().is_some_and(|s| s.as_str() == "Active");
        let updated = c
            .last_update_status()
            .is_none_or(|s| s.as_str() != "InProgress");
        if active && updated {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DrillError::aws(
                "setup",
                format!("function {name}"),
                "not Active after 60 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn create_function(
    lab: &Lab,
    name: &str,
    role_arn: &str,
    code: &str,
    env: Option<Environment>,
) -> Result<String, DrillError> {
    let out = lab
        .lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .role(role_arn)
        .handler("handler.handler")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip_stored("handler.py", code.as_bytes())))
                .build(),
        )
        .set_environment(env)
        .send()
        .await
        .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
        .map_err(err(format!("CreateFunction {name}")))?;
    wait_ready(lab, name).await?;
    Ok(out.function_arn().unwrap_or_default().to_string())
}

macro_rules! call {
    ($what:expr, $fut:expr) => {
        $fut.await
            .map_err(|e| {
                format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(e)
                )
            })
            .map_err(err($what))?
    };
}
pub(crate) use call;

pub async fn setup(lab: &Lab, ns: &Namespace, drill: &Drill) -> Result<World, DrillError> {
    let s = &drill.setup;
    let mut w = World::default();
    for r in &s.roles {
        let name = ns.name(&r.name);
        call!(
            format!("CreateRole {name}"),
            lab.iam
                .create_role()
                .role_name(&name)
                .assume_role_policy_document(TRUST)
                .send()
        );
        w.created.push(Created::Role(name.clone()));
        let mut attached = Vec::new();
        for (policy, actions) in &r.managed {
            let pname = ns.name(policy);
            let out = call!(
                format!("CreatePolicy {pname}"),
                lab.iam
                    .create_policy()
                    .policy_name(&pname)
                    .policy_document(allow_doc(actions))
                    .send()
            );
            let arn = out
                .policy()
                .and_then(|p| p.arn())
                .unwrap_or_default()
                .to_string();
            w.created.push(Created::Policy(arn.clone()));
            call!(
                format!("AttachRolePolicy {pname}"),
                lab.iam
                    .attach_role_policy()
                    .role_name(&name)
                    .policy_arn(&arn)
                    .send()
            );
            attached.push(arn);
        }
        w.managed.insert(r.name.clone(), attached);
        for (policy, actions) in &r.inline {
            call!(
                format!("PutRolePolicy {policy}"),
                lab.iam
                    .put_role_policy()
                    .role_name(&name)
                    .policy_name(policy)
                    .policy_document(allow_doc(actions))
                    .send()
            );
        }
        w.roles.insert(r.name.clone(), name);
    }
    for logical in &s.secrets {
        let name = ns.name(logical);
        let out = call!(
            format!("CreateSecret {name}"),
            lab.secrets
                .create_secret()
                .name(&name)
                .secret_string(secret_value())
                .send()
        );
        w.created.push(Created::Secret(name.clone()));
        w.secrets.insert(
            logical.clone(),
            (
                name,
                out.arn().unwrap_or_default().to_string(),
                out.version_id().unwrap_or_default().to_string(),
            ),
        );
    }
    for logical in &s.parameters {
        let name = ns.parameter(logical);
        let out = call!(
            format!("PutParameter {name}"),
            lab.ssm
                .put_parameter()
                .name(&name)
                .value(secret_value())
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
        );
        w.created.push(Created::Parameter(name.clone()));
        w.parameters.insert(logical.clone(), (name, out.version()));
    }
    for logical in &s.queues {
        let name = ns.name(logical);
        let url = call!(
            format!("CreateQueue {name}"),
            lab.sqs.create_queue().queue_name(&name).send()
        )
        .queue_url()
        .unwrap_or_default()
        .to_string();
        w.created.push(Created::Queue(url.clone()));
        let arn = format!("arn:aws:sqs:{}:{}:{name}", ns.region, ns.account);
        w.queues.insert(logical.clone(), (url, arn));
    }
    for logical in &s.users {
        let name = ns.name(logical);
        call!(
            format!("CreateUser {name}"),
            lab.iam.create_user().user_name(&name).send()
        );
        w.created.push(Created::User(name.clone()));
        // The deploy user's own key; its secret half is dropped unread.
        call!(
            format!("CreateAccessKey {name}"),
            lab.iam.create_access_key().user_name(&name).send()
        );
        w.users.insert(logical.clone(), name);
    }
    for f in &s.functions {
        let name = ns.name(&f.name);
        let role = w.roles.get(&f.role).cloned().unwrap_or_default();
        let mut vars = std::collections::HashMap::new();
        for (k, v) in &f.env {
            let value = match v {
                EnvValue::Plain(p) => p.clone(),
                EnvValue::Secret(s) => w.secrets.get(s).map(|x| x.1.clone()).unwrap_or_default(),
                EnvValue::Parameter(p) => {
                    w.parameters.get(p).map(|x| x.0.clone()).unwrap_or_default()
                }
            };
            vars.insert(k.clone(), value);
        }
        let env =
            (!vars.is_empty()).then(|| Environment::builder().set_variables(Some(vars)).build());
        let arn = create_function(lab, &name, &ns.role_arn(&role), &f.code, env).await?;
        w.created.push(Created::Function(name.clone()));
        let mut last_version = None;
        for _ in 0..f.versions {
            let v = call!(
                format!("PublishVersion {name}"),
                lab.lambda.publish_version().function_name(&name).send()
            );
            last_version = v.version().map(str::to_string);
        }
        if let (Some(alias), Some(version)) = (&f.alias, &last_version) {
            call!(
                format!("CreateAlias {alias}"),
                lab.lambda
                    .create_alias()
                    .function_name(&name)
                    .name(alias)
                    .function_version(version)
                    .send()
            );
        }
        if f.url {
            call!(
                format!("CreateFunctionUrlConfig {name}"),
                lab.lambda
                    .create_function_url_config()
                    .function_name(&name)
                    .auth_type(FunctionUrlAuthType::AwsIam)
                    .send()
            );
        }
        let group = format!("/aws/lambda/{name}");
        call!(
            format!("CreateLogGroup {group}"),
            lab.logs.create_log_group().log_group_name(&group).send()
        );
        w.created.push(Created::LogGroup(group.clone()));
        if !f.logs.is_empty() {
            put_lines(lab, &group, "2026/setup", &f.logs).await?;
        }
        if let Some(q) = &f.queue {
            let qarn = w.queues.get(q).map(|x| x.1.clone()).unwrap_or_default();
            let m = call!(
                format!("CreateEventSourceMapping {name}"),
                lab.lambda
                    .create_event_source_mapping()
                    .function_name(&name)
                    .event_source_arn(qarn)
                    .batch_size(1)
                    .send()
            );
            w.created
                .push(Created::Mapping(m.uuid().unwrap_or_default().to_string()));
        }
        w.functions.insert(
            f.name.clone(),
            FunctionInfo {
                name,
                arn,
                role: f.role.clone(),
                alias: f.alias.clone(),
            },
        );
    }
    if let Some(target) = &s.alarm {
        w.alarm = Some(wire_alarm(lab, ns, &mut w, target).await?);
    }
    let bucket = format!("drill-evidence-{}-{}", ns.suffix, ns.account);
    call!(
        format!("CreateBucket {bucket}"),
        lab.s3.create_bucket().bucket(&bucket).send()
    );
    w.created.push(Created::Bucket(bucket.clone()));
    w.bucket = bucket;
    Ok(w)
}

/// Writes log lines into a new stream of `group`.
pub async fn put_lines(
    lab: &Lab,
    group: &str,
    stream: &str,
    lines: &[String],
) -> Result<(), DrillError> {
    call!(
        format!("CreateLogStream {stream}"),
        lab.logs
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
    );
    let now = chrono::Utc::now().timestamp_millis();
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(l)
                .build()
        })
        .collect::<Result<_, _>>()
        .map_err(|e| DrillError::aws("setup", "log event", e))?;
    call!(
        format!("PutLogEvents {group}"),
        lab.logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
    );
    Ok(())
}

/// An alarm on the function's errors → an SNS topic → an SQS queue the
/// responder consumes: the real path an alarm takes.
async fn wire_alarm(
    lab: &Lab,
    ns: &Namespace,
    w: &mut World,
    target: &str,
) -> Result<AlarmWiring, DrillError> {
    let function = w
        .functions
        .get(target)
        .map(|f| f.name.clone())
        .unwrap_or_default();
    let topic = ns.name("lambda-alarms");
    let topic_arn = call!(
        format!("CreateTopic {topic}"),
        lab.sns.create_topic().name(&topic).send()
    )
    .topic_arn()
    .unwrap_or_default()
    .to_string();
    w.created.push(Created::Topic(topic_arn.clone()));
    let qname = ns.name("firebreak-alarms");
    let queue_url = call!(
        format!("CreateQueue {qname}"),
        lab.sqs.create_queue().queue_name(&qname).send()
    )
    .queue_url()
    .unwrap_or_default()
    .to_string();
    w.created.push(Created::Queue(queue_url.clone()));
    let qarn = format!("arn:aws:sqs:{}:{}:{qname}", ns.region, ns.account);
    call!(
        "Subscribe",
        lab.sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&qarn)
            .send()
    );
    let alarm = format!("{function}-errors");
    call!(
        format!("PutMetricAlarm {alarm}"),
        lab.cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm)
            .namespace("AWS/Lambda")
            .metric_name("Errors")
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("FunctionName")
                    .value(&function)
                    .build()
            )
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold
            )
            .alarm_actions(&topic_arn)
            .send()
    );
    w.created.push(Created::Alarm(alarm.clone()));
    Ok(AlarmWiring {
        alarm,
        topic_arn,
        queue_url,
    })
}
