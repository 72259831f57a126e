//! A small in-memory Secrets Manager and SSM, served through recorded
//! responses (`aws-smithy-mocks`), for the conditions LocalStack cannot
//! produce: rotation Lambdas that fail or never finish, and KMS keys the
//! caller cannot use. Errors carry the codes and messages AWS sends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_secretsmanager::error::ErrorMetadata as SmMeta;
use aws_sdk_secretsmanager::operation::describe_secret::{
    DescribeSecretError, DescribeSecretOutput,
};
use aws_sdk_secretsmanager::operation::get_secret_value::{
    GetSecretValueError, GetSecretValueOutput,
};
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueOutput;
use aws_sdk_secretsmanager::operation::rotate_secret::{RotateSecretError, RotateSecretOutput};
use aws_sdk_ssm::error::ErrorMetadata as SsmMeta;
use aws_sdk_ssm::operation::describe_parameters::DescribeParametersOutput;
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
use aws_sdk_ssm::types::{Parameter, ParameterHistory, ParameterMetadata, ParameterType};
use aws_smithy_mocks::{mock, mock_client, MockResponse, RuleMode};
use firebreak::aws::Guard;

/// The version id every seeded secret starts with.
pub const FIRST_VERSION: &str = "00000000-0000-0000-0000-0000000000aa";
const SM_ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:";
const SSM_ARN: &str = "arn:aws:ssm:us-east-1:111122223333:parameter";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/0b9c7d8e-0000-4000-8000-00000000dead";

/// What a secret's rotation Lambda does when Secrets Manager starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaBehaviour {
    /// Promotes the new version to AWSCURRENT at once.
    Finishes,
    /// Leaves the new version AWSPENDING (it failed, or is still at work).
    NeverFinishes,
    /// Secrets Manager cannot invoke it: RotateSecret is refused.
    CannotBeInvoked,
}

struct Secret {
    name: String,
    lambda: Option<LambdaBehaviour>,
    /// Version id → staging labels.
    versions: BTreeMap<String, Vec<String>>,
    /// Its KMS key is disabled (or the caller may not use it).
    key_unusable: bool,
}

struct Param {
    versions: Vec<Option<String>>,
    key_unusable: bool,
}

#[derive(Default)]
struct State {
    /// By ARN.
    secrets: BTreeMap<String, Secret>,
    /// By name.
    parameters: BTreeMap<String, Param>,
    rotations: usize,
    writes: usize,
}

#[derive(Clone, Default)]
pub struct Fake(Arc<Mutex<State>>);

fn stage_of(s: &Secret, label: &str) -> Option<String> {
    s.versions
        .iter()
        .find(|(_, st)| st.iter().any(|l| l == label))
        .map(|(id, _)| id.clone())
}

/// `token` becomes AWSCURRENT, the old current AWSPREVIOUS.
fn promote(s: &mut Secret, token: &str) {
    for stages in s.versions.values_mut() {
        stages.retain(|l| l != "AWSPREVIOUS");
        if stages.iter().any(|l| l == "AWSCURRENT") {
            stages.retain(|l| l != "AWSCURRENT");
            stages.push("AWSPREVIOUS".into());
        }
    }
    s.versions.retain(|_, st| !st.is_empty());
    s.versions
        .insert(token.to_string(), vec!["AWSCURRENT".into()]);
}

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seeds a secret; returns its ARN.
    pub fn secret(
        &self,
        name: &str,
        lambda: Option<LambdaBehaviour>,
        key_unusable: bool,
    ) -> String {
        let arn = format!("{SM_ARN}{name}-AbCdEf");
        self.state().secrets.insert(
            arn.clone(),
            Secret {
                name: name.into(),
                lambda,
                versions: [(FIRST_VERSION.to_string(), vec!["AWSCURRENT".to_string()])]
                    .into_iter()
                    .collect(),
                key_unusable,
            },
        );
        arn
    }

    /// Seeds a SecureString parameter at version 1; returns its ARN.
    pub fn parameter(&self, name: &str, key_unusable: bool) -> String {
        self.state().parameters.insert(
            name.into(),
            Param {
                versions: vec![None],
                key_unusable,
            },
        );
        format!("{SSM_ARN}{name}")
    }

    pub fn current(&self, arn: &str) -> Option<String> {
        self.state()
            .secrets
            .get(arn)
            .and_then(|s| stage_of(s, "AWSCURRENT"))
    }

    pub fn previous(&self, arn: &str) -> Option<String> {
        self.state()
            .secrets
            .get(arn)
            .and_then(|s| stage_of(s, "AWSPREVIOUS"))
    }

    pub fn pending(&self, arn: &str) -> Option<String> {
        self.state()
            .secrets
            .get(arn)
            .and_then(|s| stage_of(s, "AWSPENDING"))
    }

    /// The rotation Lambda finishes late: AWSPENDING becomes AWSCURRENT.
    pub fn finish_pending(&self, arn: &str) {
        let mut st = self.state();
        let s = st.secrets.get_mut(arn).expect("seeded");
        let token = stage_of(s, "AWSPENDING").expect("a rotation in progress");
        s.versions.remove(&token);
        promote(s, &token);
    }

    pub fn parameter_version(&self, arn: &str) -> usize {
        let name = arn.trim_start_matches(SSM_ARN);
        self.state().parameters[name].versions.len()
    }

    /// RotateSecret requests, refused ones included.
    pub fn rotations(&self) -> usize {
        self.state().rotations
    }

    /// PutSecretValue and PutParameter requests.
    pub fn writes(&self) -> usize {
        self.state().writes
    }

    fn find(st: &State, id: &str) -> Option<String> {
        st.secrets
            .iter()
            .find(|(arn, s)| *arn == id || s.name == id)
            .map(|(arn, _)| arn.clone())
    }

    pub fn secretsmanager(&self, guard: &Guard) -> aws_sdk_secretsmanager::Client {
        let me = self.clone();
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .then_compute_response(move |r| {
                let st = me.state();
                let Some(arn) = Self::find(&st, r.secret_id().unwrap_or_default()) else {
                    return MockResponse::Error(DescribeSecretError::generic(
                        SmMeta::builder()
                            .code("ResourceNotFoundException")
                            .message("Secrets Manager can't find the specified secret.")
                            .build(),
                    ));
                };
                let s = &st.secrets[&arn];
                let mut b = DescribeSecretOutput::builder()
                    .arn(&arn)
                    .name(&s.name)
                    .kms_key_id(KEY)
                    .set_version_ids_to_stages(Some(s.versions.clone().into_iter().collect()));
                if s.lambda.is_some() {
                    b = b.rotation_enabled(true).rotation_lambda_arn(
                        "arn:aws:lambda:us-east-1:111122223333:function:rotator",
                    );
                }
                MockResponse::Output(b.build())
            });
        let me = self.clone();
        let get = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_compute_response(
            move |r| {
                let st = me.state();
                let arn = Self::find(&st, r.secret_id().unwrap_or_default()).expect("seeded");
                if st.secrets[&arn].key_unusable {
                    // What AWS answers when the secret's KMS key is disabled
                    // or its key policy does not let the caller decrypt.
                    return MockResponse::Error(GetSecretValueError::generic(
                        SmMeta::builder()
                            .code("DecryptionFailure")
                            .message(format!("Secrets Manager can't decrypt the protected secret text using the provided KMS key: {KEY} is disabled."))
                            .build(),
                    ));
                }
                MockResponse::Output(
                    GetSecretValueOutput::builder()
                        .arn(&arn)
                        .secret_string("recorded-old-value-5e1d")
                        .build(),
                )
            },
        );
        let me = self.clone();
        let put =
            mock!(aws_sdk_secretsmanager::Client::put_secret_value).then_compute_output(move |r| {
                let mut st = me.state();
                st.writes += 1;
                let arn = Self::find(&st, r.secret_id().unwrap_or_default()).expect("seeded");
                let token = r.client_request_token().expect("token").to_string();
                promote(st.secrets.get_mut(&arn).expect("seeded"), &token);
                PutSecretValueOutput::builder()
                    .arn(arn)
                    .version_id(token)
                    .build()
            });
        let me = self.clone();
        let rotate = mock!(aws_sdk_secretsmanager::Client::rotate_secret).then_compute_response(
            move |r| {
                let mut st = me.state();
                st.rotations += 1;
                let arn = Self::find(&st, r.secret_id().unwrap_or_default()).expect("seeded");
                let token = r.client_request_token().expect("token").to_string();
                let s = st.secrets.get_mut(&arn).expect("seeded");
                match s.lambda {
                    Some(LambdaBehaviour::CannotBeInvoked) | None => {
                        MockResponse::Error(RotateSecretError::generic(
                            SmMeta::builder()
                                .code("AccessDeniedException")
                                .message("Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.")
                                .build(),
                        ))
                    }
                    Some(LambdaBehaviour::NeverFinishes) => {
                        s.versions.insert(token.clone(), vec!["AWSPENDING".into()]);
                        MockResponse::Output(RotateSecretOutput::builder().arn(arn).version_id(token).build())
                    }
                    Some(LambdaBehaviour::Finishes) => {
                        promote(s, &token);
                        MockResponse::Output(RotateSecretOutput::builder().arn(arn).version_id(token).build())
                    }
                }
            },
        );
        let g = guard.clone();
        mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            &[&describe, &get, &put, &rotate],
            move |b| b.interceptor(g.clone())
        )
    }

    pub fn ssm(&self, guard: &Guard) -> aws_sdk_ssm::Client {
        let me = self.clone();
        let get = mock!(aws_sdk_ssm::Client::get_parameter).then_compute_response(move |r| {
            let st = me.state();
            let name = r.name().unwrap_or_default();
            let p = &st.parameters[name];
            if r.with_decryption() == Some(true) && p.key_unusable {
                // SSM's answer for a disabled key, or one the caller may not use.
                return MockResponse::Error(GetParameterError::generic(
                    SsmMeta::builder()
                        .code("InvalidKeyId")
                        .message(format!(
                            "{KEY} is disabled. (Service: AWSKMS; Error Code: DisabledException)"
                        ))
                        .build(),
                ));
            }
            let mut b = Parameter::builder()
                .name(name)
                .arn(format!("{SSM_ARN}{name}"))
                .r#type(ParameterType::SecureString)
                .version(p.versions.len() as i64);
            if r.with_decryption() == Some(true) {
                b = b.value("recorded-old-param-93c1");
            }
            MockResponse::Output(GetParameterOutput::builder().parameter(b.build()).build())
        });
        let me = self.clone();
        let history =
            mock!(aws_sdk_ssm::Client::get_parameter_history).then_compute_output(move |r| {
                let st = me.state();
                let p = &st.parameters[r.name().unwrap_or_default()];
                let mut b = GetParameterHistoryOutput::builder();
                for (i, d) in p.versions.iter().enumerate() {
                    b = b.parameters(
                        ParameterHistory::builder()
                            .version(i as i64 + 1)
                            .set_description(d.clone())
                            .build(),
                    );
                }
                b.build()
            });
        let me = self.clone();
        let describe =
            mock!(aws_sdk_ssm::Client::describe_parameters).then_compute_output(move |r| {
                let st = me.state();
                let mut b = DescribeParametersOutput::builder();
                for f in r.parameter_filters() {
                    for name in f.values() {
                        if let Some(p) = st.parameters.get(name) {
                            b = b.parameters(
                                ParameterMetadata::builder()
                                    .name(name)
                                    .r#type(ParameterType::SecureString)
                                    .key_id(KEY)
                                    .version(p.versions.len() as i64)
                                    .build(),
                            );
                        }
                    }
                }
                b.build()
            });
        let me = self.clone();
        let put = mock!(aws_sdk_ssm::Client::put_parameter).then_compute_output(move |r| {
            let mut st = me.state();
            st.writes += 1;
            let p = st
                .parameters
                .get_mut(r.name().unwrap_or_default())
                .expect("seeded");
            p.versions.push(r.description().map(str::to_string));
            PutParameterOutput::builder()
                .version(p.versions.len() as i64)
                .build()
        });
        let g = guard.clone();
        mock_client!(
            aws_sdk_ssm,
            RuleMode::MatchAny,
            &[&get, &history, &describe, &put],
            move |b| b.interceptor(g.clone())
        )
    }
}
