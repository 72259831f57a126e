//! A validated drill scenario: every name resolved to something `setup`
//! creates, every technique and check typed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::playbook::source::Source;
use crate::playbook::Playbook;

#[derive(Debug)]
pub struct Drill {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub source: Arc<Source>,
    pub setup: Setup,
    pub attack: Vec<Technique>,
    pub respond: Respond,
    pub contained: Vec<Check>,
    pub recovered: Vec<Check>,
    pub targets: Targets,
}

/// What exists before the attack. Names are logical: each run adds its own
/// suffix (see `names::Namespace`).
#[derive(Debug, Default)]
pub struct Setup {
    pub roles: Vec<Role>,
    pub functions: Vec<Function>,
    pub secrets: Vec<String>,
    pub parameters: Vec<String>,
    pub queues: Vec<String>,
    pub users: Vec<String>,
    /// The function the alarm watches (its errors), wired to SNS and SQS.
    pub alarm: Option<String>,
}

#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub managed: Vec<(String, Vec<String>)>,
    pub inline: Vec<(String, Vec<String>)>,
}

#[derive(Debug)]
pub struct Function {
    pub name: String,
    pub role: String,
    pub code: String,
    pub env: Vec<(String, EnvValue)>,
    pub versions: u32,
    pub alias: Option<String>,
    pub url: bool,
    pub logs: Vec<String>,
    pub queue: Option<String>,
}

#[derive(Debug, Clone)]
pub enum EnvValue {
    Plain(String),
    /// The ARN of a setup secret.
    Secret(String),
    /// The name of a setup SSM parameter.
    Parameter(String),
}

/// One attacker step, executed for real against LocalStack.
#[derive(Debug, Clone)]
pub enum Technique {
    ResourcePolicyBackdoor {
        function: String,
    },
    MaliciousLayer {
        function: String,
    },
    CodeOverwrite {
        function: String,
    },
    InlineAdminPolicy {
        role: String,
    },
    PublicFunctionUrl {
        function: String,
    },
    ForeignEventSource {
        function: String,
    },
    ExecWrapper {
        function: String,
    },
    NewAccessKey {
        user: String,
    },
    RogueFunction {
        role: String,
        name: String,
    },
    TelltaleLogs {
        function: String,
        lines: Vec<String>,
    },
    InvokeFlood {
        function: String,
        count: u32,
    },
    SetAlarm,
}

/// What a technique is, and where it is described publicly.
pub struct TechniqueInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub source: &'static str,
    pub url: &'static str,
}

pub const TECHNIQUES: &[TechniqueInfo] = &[
    TechniqueInfo { id: "resource_policy_backdoor", title: "resource-policy backdoor: another account may invoke the function", source: "Stratus Red Team aws.persistence.lambda-backdoor-function", url: "https://stratus-red-team.cloud/attack-techniques/AWS/aws.persistence.lambda-backdoor-function/" },
    TechniqueInfo { id: "malicious_layer", title: "malicious layer from another account added to the function", source: "Stratus Red Team aws.persistence.lambda-layer-extension", url: "https://stratus-red-team.cloud/attack-techniques/AWS/aws.persistence.lambda-layer-extension/" },
    TechniqueInfo { id: "code_overwrite", title: "code overwritten, a version published and the alias repointed to it", source: "Stratus Red Team aws.persistence.lambda-overwrite-code", url: "https://stratus-red-team.cloud/attack-techniques/AWS/aws.persistence.lambda-overwrite-code/" },
    TechniqueInfo { id: "inline_admin_policy", title: "inline admin policy put on the execution role", source: "MITRE ATT&CK T1098.003 Additional Cloud Roles", url: "https://attack.mitre.org/techniques/T1098/003/" },
    TechniqueInfo { id: "public_function_url", title: "public function URL (AuthType NONE) on the alias", source: "MITRE ATT&CK T1648 Serverless Execution", url: "https://attack.mitre.org/techniques/T1648/" },
    TechniqueInfo { id: "foreign_event_source", title: "event source mapping from a queue the attacker controls", source: "MITRE ATT&CK T1546 Event Triggered Execution", url: "https://attack.mitre.org/techniques/T1546/" },
    TechniqueInfo { id: "exec_wrapper", title: "AWS_LAMBDA_EXEC_WRAPPER set to the attacker's wrapper", source: "MITRE ATT&CK T1574 Hijack Execution Flow", url: "https://attack.mitre.org/techniques/T1574/" },
    TechniqueInfo { id: "new_access_key", title: "new access key on a deploy user", source: "Stratus Red Team aws.persistence.iam-backdoor-user", url: "https://stratus-red-team.cloud/attack-techniques/AWS/aws.persistence.iam-backdoor-user/" },
    TechniqueInfo { id: "rogue_function", title: "new function on the victim's role, run by an EventBridge schedule", source: "MITRE ATT&CK T1648 Serverless Execution", url: "https://attack.mitre.org/techniques/T1648/" },
    TechniqueInfo { id: "telltale_logs", title: "the attacker's activity in the function's logs", source: "MITRE ATT&CK T1059.009 Cloud API", url: "https://attack.mitre.org/techniques/T1059/009/" },
    TechniqueInfo { id: "invoke_flood", title: "runaway invocations (cost abuse)", source: "MITRE ATT&CK T1496 Resource Hijacking", url: "https://attack.mitre.org/techniques/T1496/" },
    TechniqueInfo { id: "set_alarm", title: "the alarm goes to ALARM (what monitoring would do)", source: "AWS CloudWatch SetAlarmState", url: "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html" },
];

impl Technique {
    pub fn id(&self) -> &'static str {
        match self {
            Technique::ResourcePolicyBackdoor { .. } => "resource_policy_backdoor",
            Technique::MaliciousLayer { .. } => "malicious_layer",
            Technique::CodeOverwrite { .. } => "code_overwrite",
            Technique::InlineAdminPolicy { .. } => "inline_admin_policy",
            Technique::PublicFunctionUrl { .. } => "public_function_url",
            Technique::ForeignEventSource { .. } => "foreign_event_source",
            Technique::ExecWrapper { .. } => "exec_wrapper",
            Technique::NewAccessKey { .. } => "new_access_key",
            Technique::RogueFunction { .. } => "rogue_function",
            Technique::TelltaleLogs { .. } => "telltale_logs",
            Technique::InvokeFlood { .. } => "invoke_flood",
            Technique::SetAlarm => "set_alarm",
        }
    }

    pub fn info(&self) -> &'static TechniqueInfo {
        info(self.id()).unwrap_or(&TECHNIQUES[0])
    }
}

pub fn info(id: &str) -> Option<&'static TechniqueInfo> {
    TECHNIQUES.iter().find(|t| t.id == id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// SetAlarmState → SNS → SQS → the responder (`watch`), in-process.
    Alarm,
    /// The engine directly, as `firebreak run` would.
    Direct,
}

#[derive(Debug)]
pub struct Respond {
    pub via: Via,
    pub playbook: Playbook,
    pub playbook_path: PathBuf,
    pub function: String,
    pub params: Map<String, Value>,
    pub users: Vec<String>,
}

/// One check of the end state, read back from AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    FunctionThrottled(String),
    PublicAccessClosed(String),
    RoleQuarantined(String),
    KeysDeactivated(String),
    EventSourcesDisabled(String),
    SecretRotated(String),
    ParameterRotated(String),
    ArtifactsContained,
    ArtifactsInEvidence,
    EvidenceVerified,
    AuditVerified,
    FunctionInvocable(String),
    RoleRestored(String),
    ArtifactsStayRemoved,
    /// Issue 13: baselines.
    RecoveredToBaseline(String),
    /// Issue 13: indicators of compromise contained.
    RogueFunctionsThrottled,
    RogueRulesDisabled,
}

/// Check names and what each needs: `(name, argument)`.
pub const CHECKS: &[(&str, Option<&str>)] = &[
    ("function_throttled", Some("function")),
    ("public_access_closed", Some("function")),
    ("role_quarantined", Some("role")),
    ("keys_deactivated", Some("user")),
    ("event_sources_disabled", Some("function")),
    ("secret_rotated", Some("secret")),
    ("parameter_rotated", Some("parameter")),
    ("artifacts_contained", None),
    ("artifacts_in_evidence", None),
    ("evidence_verified", None),
    ("audit_verified", None),
    ("function_invocable", Some("function")),
    ("role_restored", Some("role")),
    ("artifacts_stay_removed", None),
    ("recovered_to_baseline", Some("function")),
    ("rogue_functions_throttled", None),
    ("rogue_rules_disabled", None),
];

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::FunctionThrottled(_) => "function_throttled",
            Check::PublicAccessClosed(_) => "public_access_closed",
            Check::RoleQuarantined(_) => "role_quarantined",
            Check::KeysDeactivated(_) => "keys_deactivated",
            Check::EventSourcesDisabled(_) => "event_sources_disabled",
            Check::SecretRotated(_) => "secret_rotated",
            Check::ParameterRotated(_) => "parameter_rotated",
            Check::ArtifactsContained => "artifacts_contained",
            Check::ArtifactsInEvidence => "artifacts_in_evidence",
            Check::EvidenceVerified => "evidence_verified",
            Check::AuditVerified => "audit_verified",
            Check::FunctionInvocable(_) => "function_invocable",
            Check::RoleRestored(_) => "role_restored",
            Check::ArtifactsStayRemoved => "artifacts_stay_removed",
            Check::RecoveredToBaseline(_) => "recovered_to_baseline",
            Check::RogueFunctionsThrottled => "rogue_functions_throttled",
            Check::RogueRulesDisabled => "rogue_rules_disabled",
        }
    }

    /// The logical name the check is about, if any.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Check::FunctionThrottled(s)
            | Check::PublicAccessClosed(s)
            | Check::RoleQuarantined(s)
            | Check::KeysDeactivated(s)
            | Check::EventSourcesDisabled(s)
            | Check::SecretRotated(s)
            | Check::ParameterRotated(s)
            | Check::FunctionInvocable(s)
            | Check::RoleRestored(s)
            | Check::RecoveredToBaseline(s) => Some(s),
            _ => None,
        }
    }
}

/// Targets for the timings, set by the scenario.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Targets {
    pub detect: Duration,
    pub contain: Duration,
    pub evidence: Duration,
    pub recover: Duration,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            detect: Duration::from_secs(60),
            contain: Duration::from_secs(60),
            evidence: Duration::from_secs(120),
            recover: Duration::from_secs(60),
        }
    }
}
