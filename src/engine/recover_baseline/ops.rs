//! Drift to operations (pure), and each operation's AWS calls. What the
//! attacker added is written to the forensic bucket before it is deleted.

use std::collections::BTreeMap;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use serde::Serialize;
use serde_json::{json, Value};

use super::{BaselineItem, BaselineItemStatus};
use crate::action::evidence::evidence_err;
use crate::action::lambda::public_access::policy::condition;
use crate::action::ActionError;
use crate::aws::error::classify;
use crate::aws::{Aws, AwsErrorKind};
use crate::baseline::capture::{param, version_of};
use crate::baseline::model::{Baseline, Mapping, Rule, UrlConfig, Version};
use crate::baseline::BaselineStore;
use crate::baseline::{Drift, DriftKind, EnvKey};
use crate::evidence::store::{artifact_key, ForensicStore};

/// What one item does. Values are what the baseline holds (documents,
/// ARNs, hashes), never an environment value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    DeleteRule {
        name: String,
        rule: Rule,
    },
    RestoreRule {
        name: String,
        rule: Rule,
    },
    DeleteFunction {
        name: String,
    },
    DeleteAccessKey {
        user: String,
        id: String,
    },
    RemoveStatement {
        qualifier: String,
        sid: String,
        statement: Value,
    },
    AddStatement {
        qualifier: String,
        sid: String,
        statement: Value,
    },
    ReplaceStatement {
        qualifier: String,
        sid: String,
        old: Value,
        new: Value,
    },
    DeleteUrl {
        qualifier: String,
        url: UrlConfig,
    },
    PutUrl {
        qualifier: String,
        url: UrlConfig,
        exists: bool,
    },
    DeleteMapping {
        mapping: Mapping,
    },
    CreateMapping {
        mapping: Mapping,
    },
    UpdateMapping {
        uuid: String,
        enabled: bool,
        batch_size: Option<i32>,
    },
    DeleteInline {
        role: String,
        name: String,
        document: Value,
    },
    PutInline {
        role: String,
        name: String,
        document: Value,
    },
    Detach {
        role: String,
        arn: String,
    },
    Attach {
        role: String,
        arn: String,
    },
    UpdateTrust {
        role: String,
        document: Value,
    },
    /// `$LATEST`'s code from a version that holds the baseline's package.
    Code {
        version: String,
    },
    /// `$LATEST`'s code from the package kept with the baseline (no
    /// version holds it any more), checked against its hash.
    Package {
        code_sha256: String,
    },
    /// `$LATEST`'s settings (layers, handler, ...) as the baseline has them.
    Settings {
        fields: BTreeMap<String, Value>,
    },
    /// `$LATEST`'s environment: the values of a version whose hashes are
    /// the baseline's (read from AWS when applied, never stored).
    Environment {
        version: String,
    },
    DeleteAlias {
        name: String,
        version: String,
    },
    PutAlias {
        name: String,
        version: String,
        exists: bool,
    },
    /// The alias's baseline `version` was deleted: point the alias at a
    /// version holding the same code and configuration, published from
    /// the restored `$LATEST` unless one exists (numbers are never
    /// re-used, so a resumed run finds it instead of publishing twice).
    Republish {
        name: String,
        version: String,
        exists: bool,
    },
    Tag {
        key: String,
        value: String,
    },
    Untag {
        key: String,
    },
    /// Nothing to do (kept or held: see the item's reason).
    None,
}

impl Op {
    /// Deletes something that must be preserved as evidence first.
    pub fn preserves_evidence(&self) -> bool {
        matches!(
            self,
            Op::DeleteRule { .. }
                | Op::DeleteFunction { .. }
                | Op::DeleteAccessKey { .. }
                | Op::RemoveStatement { .. }
                | Op::ReplaceStatement { .. }
                | Op::DeleteUrl { .. }
                | Op::DeleteMapping { .. }
                | Op::DeleteInline { .. }
                | Op::DeleteAlias { .. }
        )
    }

    /// The order items are applied in: what lets the attacker in or runs
    /// their code first; the function's own code and settings, then what
    /// points at them.
    fn rank(&self) -> u8 {
        match self {
            Op::DeleteRule { .. } | Op::RestoreRule { .. } => 0,
            Op::DeleteFunction { .. } => 1,
            Op::DeleteAccessKey { .. } => 2,
            Op::RemoveStatement { .. }
            | Op::AddStatement { .. }
            | Op::ReplaceStatement { .. }
            | Op::DeleteUrl { .. }
            | Op::PutUrl { .. } => 3,
            Op::DeleteMapping { .. } | Op::CreateMapping { .. } | Op::UpdateMapping { .. } => 4,
            Op::DeleteInline { .. }
            | Op::PutInline { .. }
            | Op::Detach { .. }
            | Op::Attach { .. }
            | Op::UpdateTrust { .. } => 5,
            Op::Code { .. } | Op::Package { .. } => 6,
            Op::Settings { .. } => 7,
            Op::Environment { .. } => 8,
            Op::DeleteAlias { .. } | Op::PutAlias { .. } | Op::Republish { .. } => 9,
            Op::Tag { .. } | Op::Untag { .. } => 10,
            Op::None => 11,
        }
    }
}

/// A version that exists now and holds what `pick` wants, a baseline
/// alias's first: the attacker may have deleted the baseline's own.
fn existing(b: &Baseline, now: &Baseline, pick: impl Fn(&Version) -> bool) -> Option<String> {
    let by_alias = b
        .aliases
        .values()
        .find(|v| now.versions.get(*v).is_some_and(&pick));
    by_alias.cloned().or_else(|| {
        now.versions
            .iter()
            .rev()
            .find(|(_, v)| pick(v))
            .map(|(n, _)| n.clone())
    })
}

/// Whether `$LATEST` will hold the baseline's code after the restore:
/// it does, a version holds it, or the store kept its package.
fn code_restorable(b: &Baseline, now: &Baseline) -> bool {
    let code = &b.configuration.code_sha256;
    now.configuration.code_sha256 == *code
        || existing(b, now, |v| v.code_sha256 == *code).is_some()
        || b.packages.contains_key(code)
}

/// A deleted baseline version that an alias needs can be re-published
/// from the restored `$LATEST` when it held the same.
fn republishable(b: &Baseline, now: &Baseline, version: &Version) -> bool {
    *version == b.latest_content() && code_restorable(b, now)
}

/// A version number the function no longer has.
fn is_deleted_version(qualifier: &str, now: &Baseline) -> bool {
    qualifier.bytes().all(|c| c.is_ascii_digit()) && !now.versions.contains_key(qualifier)
}

fn item(
    f: &str,
    d: Drift,
    status: BaselineItemStatus,
    op: Op,
    reason: Option<String>,
) -> BaselineItem {
    BaselineItem {
        id: d.id(),
        function: f.to_string(),
        status,
        drift: d,
        op,
        reason,
    }
}

fn held(f: &str, d: Drift, why: &str) -> BaselineItem {
    item(
        f,
        d,
        BaselineItemStatus::Held,
        Op::None,
        Some(why.to_string()),
    )
}

/// One item per drift (environment variables and settings grouped into
/// one item each), in the order they are applied.
pub fn plan(b: &Baseline, now: &Baseline, drifts: Vec<Drift>) -> Vec<BaselineItem> {
    use BaselineItemStatus::{Kept, Remove, Restore};
    let f = b.function.as_str();
    let role = b.role.as_ref().map(|r| r.name.clone()).unwrap_or_default();
    let mut out = Vec::new();
    let mut settings = (BTreeMap::new(), BTreeMap::new());
    let mut env = false;
    for d in drifts {
        let (absent_before, absent_now) = (d.baseline.is_null(), d.current.is_null());
        let it = match d.kind {
            DriftKind::Configuration if d.field.starts_with("environment.") => {
                env = true;
                continue;
            }
            DriftKind::Configuration if d.field == "code_sha256" => {
                let code = &b.configuration.code_sha256;
                match existing(b, now, |v| v.code_sha256 == *code) {
                    Some(version) => item(f, d, Restore, Op::Code { version }, None),
                    None if b.packages.contains_key(code) => {
                        let op = Op::Package { code_sha256: code.clone() };
                        item(f, d, Restore, op, Some("no version holds it any more: from the package kept with the baseline, checked against its hash".into()))
                    }
                    None => held(f, d, "no published version holds the baseline's code and the store kept no package of it (a container image, or a baseline taken before packages were kept); deploy it by hand (the package is in the incident's evidence if it was snapshotted)"),
                }
            }
            DriftKind::Configuration => {
                settings.0.insert(d.field.clone(), d.baseline.clone());
                settings.1.insert(d.field.clone(), d.current.clone());
                continue;
            }
            DriftKind::Version if absent_before => {
                let same = now.versions.get(&d.field).is_some_and(|v| b.versions.values().any(|bv| bv == v));
                let why = if same {
                    "holds a baseline version's code and configuration (re-published under a new number)"
                } else {
                    "published since the baseline: kept, unaliased, as evidence"
                };
                item(f, d, Kept, Op::None, Some(why.into()))
            }
            DriftKind::Version => {
                let number = d.field.clone();
                let content = b.versions.get(&number).cloned();
                let twin = content.as_ref().and_then(|c| existing(b, now, |v| v == c));
                let aliased = b.aliases.values().any(|v| *v == number);
                match (twin, content) {
                    (Some(twin), _) if absent_now => item(f, d, Kept, Op::None, Some(format!("deleted since the baseline; version {twin} holds the same code and configuration"))),
                    (None, Some(c)) if absent_now && aliased && republishable(b, now, &c) => item(f, d, Kept, Op::None, Some("deleted since the baseline; re-published under a new number for its alias (numbers are never re-used)".into())),
                    _ => held(f, d, "a baseline version was deleted and its code and configuration cannot be re-published from $LATEST's baseline; re-point aliases by hand"),
                }
            }
            DriftKind::Alias => {
                let name = d.field.clone();
                match (absent_before, absent_now) {
                    (true, _) => {
                        let version = d.current.as_str().unwrap_or_default().to_string();
                        item(f, d, Remove, Op::DeleteAlias { name, version }, None)
                    }
                    (_, gone) => {
                        let exists = !gone;
                        let version = d.baseline.as_str().unwrap_or_default().to_string();
                        let content = b.versions.get(&version).cloned();
                        match content {
                            Some(c) if !now.versions.contains_key(&version) => {
                                match existing(b, now, |v| *v == c) {
                                    Some(twin) => item(f, d, Restore, Op::PutAlias { name, version: twin, exists }, Some(format!("version {version} was deleted; {version}'s code and configuration are also in this one"))),
                                    None if republishable(b, now, &c) => item(f, d, Restore, Op::Republish { name, version, exists }, Some("its version was deleted: re-published from the restored $LATEST".into())),
                                    None => held(f, d, "the alias's version was deleted and held other code or configuration than $LATEST's baseline; publish it by hand and point the alias at it"),
                                }
                            }
                            _ => item(f, d, Restore, Op::PutAlias { name, version, exists }, None),
                        }
                    }
                }
            }
            DriftKind::Statement => {
                let (qualifier, sid) = (d.resource.clone(), d.field.clone());
                match (absent_before, absent_now) {
                    (true, _) => {
                        let statement = d.current.clone();
                        item(f, d, Remove, Op::RemoveStatement { qualifier, sid, statement }, None)
                    }
                    (_, true) if is_deleted_version(&qualifier, now) => held(f, d, "its version was deleted: a statement cannot be put on it; grant it on the re-published version by hand if it is still needed"),
                    (_, true) => {
                        let statement = d.baseline.clone();
                        item(f, d, Restore, Op::AddStatement { qualifier, sid, statement }, None)
                    }
                    _ => {
                        let (old, new) = (d.current.clone(), d.baseline.clone());
                        item(f, d, Restore, Op::ReplaceStatement { qualifier, sid, old, new }, None)
                    }
                }
            }
            DriftKind::Url => {
                let qualifier = d.resource.clone();
                if absent_before {
                    match now.urls.get(&qualifier).cloned() {
                        Some(url) => item(f, d, Remove, Op::DeleteUrl { qualifier, url }, None),
                        None => continue,
                    }
                } else {
                    match b.urls.get(&qualifier).cloned() {
                        Some(url) => item(f, d, Restore, Op::PutUrl { qualifier, url, exists: !absent_now }, None),
                        None => continue,
                    }
                }
            }
            DriftKind::Mapping => {
                let key = d.resource.clone();
                match (b.mappings.get(&key), now.mappings.get(&key)) {
                    (None, Some(m)) => {
                        let mapping = m.clone();
                        item(f, d, Remove, Op::DeleteMapping { mapping }, None)
                    }
                    (Some(m), None) => {
                        let mapping = m.clone();
                        item(f, d, Restore, Op::CreateMapping { mapping }, None)
                    }
                    (Some(m), Some(cur)) => {
                        let op = Op::UpdateMapping { uuid: cur.uuid.clone(), enabled: m.enabled, batch_size: m.batch_size };
                        item(f, d, Restore, op, None)
                    }
                    (None, None) => continue,
                }
            }
            DriftKind::Tag => {
                let key = d.field.clone();
                match d.baseline.as_str() {
                    Some(v) => {
                        let value = v.to_string();
                        item(f, d, Restore, Op::Tag { key, value }, None)
                    }
                    None => item(f, d, Remove, Op::Untag { key }, None),
                }
            }
            DriftKind::RoleTrust if d.field == "readable" => held(f, d, "the execution role cannot be read (deleted?); re-create it from the baseline by hand"),
            DriftKind::RoleTrust => {
                let document = d.baseline.clone();
                item(f, d, Restore, Op::UpdateTrust { role: role.clone(), document }, None)
            }
            DriftKind::RoleInline => {
                let name = d.field.clone();
                if absent_before {
                    let document = d.current.clone();
                    item(f, d, Remove, Op::DeleteInline { role: role.clone(), name, document }, None)
                } else {
                    let document = d.baseline.clone();
                    item(f, d, Restore, Op::PutInline { role: role.clone(), name, document }, None)
                }
            }
            DriftKind::RoleAttached => {
                let arn = d.field.clone();
                if absent_before {
                    item(f, d, Remove, Op::Detach { role: role.clone(), arn }, None)
                } else {
                    item(f, d, Restore, Op::Attach { role: role.clone(), arn }, None)
                }
            }
            DriftKind::AccessKey if absent_before => {
                let (user, id) = (d.resource.clone(), d.field.clone());
                item(f, d, Remove, Op::DeleteAccessKey { user, id }, None)
            }
            DriftKind::AccessKey => item(f, d, Kept, Op::None, Some("deleted since the baseline; an access key cannot be re-created: issue a new one if the user still needs it".into())),
            DriftKind::RoleFunction if absent_before => {
                let name = d.resource.clone();
                item(f, d, Remove, Op::DeleteFunction { name }, None)
            }
            DriftKind::RoleFunction => held(f, d, "a function on this role in the baseline is gone; re-deploy it by hand"),
            DriftKind::Rule => {
                let name = d.resource.clone();
                match (b.rules.get(&name), now.rules.get(&name)) {
                    (None, Some(r)) => {
                        let rule = r.clone();
                        item(f, d, Remove, Op::DeleteRule { name, rule }, None)
                    }
                    (Some(r), _) => {
                        let rule = r.clone();
                        item(f, d, Restore, Op::RestoreRule { name, rule }, None)
                    }
                    (None, None) => continue,
                }
            }
        };
        out.push(it);
    }
    if !settings.0.is_empty() {
        let d = Drift {
            kind: DriftKind::Configuration,
            resource: f.to_string(),
            field: "settings".into(),
            baseline: json!(settings.0),
            current: json!(settings.1),
        };
        out.push(item(
            f,
            d,
            Restore,
            Op::Settings { fields: settings.0 },
            None,
        ));
    }
    if env {
        let d = Drift {
            kind: DriftKind::Configuration,
            resource: f.to_string(),
            field: "environment".into(),
            baseline: json!(b.configuration.environment),
            current: json!(now.configuration.environment),
        };
        match existing(b, now, |v| v.environment == b.configuration.environment) {
            Some(version) => out.push(item(f, d, Restore, Op::Environment { version }, Some("values read from that version's configuration, never from a log".into()))),
            None => out.push(held(f, d, "no published version holds the baseline's environment values; set them by hand (names and hashes are in the baseline)")),
        }
    }
    out.sort_by_key(|i| i.op.rank());
    out
}

/// What an operation needs.
pub struct Cx<'a> {
    pub aws: &'a Aws,
    pub baseline: &'a Baseline,
    pub evidence: Option<&'a ForensicStore>,
    pub incident: &'a str,
    pub account: &'a str,
    pub key: &'a EnvKey,
    /// Where the baseline's packages are kept.
    pub store: &'a BaselineStore,
}

fn aws_err<E>(
    op: &'static str,
    action: &str,
    target: &str,
    e: SdkError<E, HttpResponse>,
) -> ActionError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    ActionError::from(classify(op, action, target, e))
}

/// A delete whose target is already gone has done its work.
fn deleted<T, E>(
    r: Result<T, SdkError<E, HttpResponse>>,
    op: &'static str,
    action: &str,
    target: &str,
) -> Result<(), ActionError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = classify(op, action, target, e);
            if e.kind == AwsErrorKind::NotFound {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Cx<'_> {
    fn f(&self) -> &str {
        &self.baseline.function
    }

    /// Writes a removed artifact under `<incident>/<account>/<region>/<function>/removed/`.
    async fn preserve(&self, name: &str, bytes: Vec<u8>) -> Result<String, ActionError> {
        let store = self.evidence.ok_or_else(|| {
            ActionError::input(
                "no forensic bucket to preserve the artifact in before removing it",
                "run the containment playbook for this incident first (it records the bucket)",
            )
        })?;
        let key = artifact_key(&[
            self.incident,
            self.account,
            &self.aws.region,
            self.f(),
            "removed",
            &safe_name(name),
        ])
        .map_err(evidence_err)?;
        let stored = store.put(&key, bytes).await.map_err(evidence_err)?;
        Ok(format!("s3://{}/{}", store.facts().bucket, stored.key))
    }

    async fn preserve_json(&self, name: &str, v: &Value) -> Result<String, ActionError> {
        let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
        bytes.push(b'\n');
        self.preserve(&format!("{name}.json"), bytes).await
    }

    /// Waits until no update of `$LATEST` is in progress.
    async fn ready(&self, name: &str) -> Result<(), ActionError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let c = self
                .aws
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|e| {
                    aws_err(
                        "GetFunctionConfiguration",
                        "lambda:GetFunctionConfiguration",
                        name,
                        e,
                    )
                })?;
            let busy = c.last_update_status().map(|s| s.as_str()) == Some("InProgress")
                || c.state().map(|s| s.as_str()) == Some("Pending");
            if !busy {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(ActionError::input(
                    format!("function `{name}` is still updating after 60 s"),
                    "run the command again once the update has finished",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The code package of `name` (at `qualifier`), downloaded and checked.
    async fn package(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(Vec<u8>, String), ActionError> {
        let got = self
            .aws
            .lambda
            .get_function()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| aws_err("GetFunction", "lambda:GetFunction", name, e))?;
        let url = got.code().and_then(|c| c.location()).ok_or_else(|| {
            ActionError::input(
                format!("GetFunction gave no code location for `{name}`"),
                "a container-image function cannot be restored this way; deploy its image by hand",
            )
        })?;
        let tmp = tempfile::NamedTempFile::new().map_err(|e| {
            ActionError::input(
                format!("no temporary file: {e}"),
                "check the temporary directory",
            )
        })?;
        let fetched = crate::evidence::download::fetch_to_file(url, tmp.path())
            .await
            .map_err(|e| {
                ActionError::input(e.to_string(), "try again: the code location is short-lived")
            })?;
        let bytes = std::fs::read(tmp.path()).map_err(|e| {
            ActionError::input(
                format!("reading the package: {e}"),
                "check the temporary directory",
            )
        })?;
        Ok((bytes, fetched.sha256_b64))
    }

    /// A version holding baseline `version`'s code and configuration:
    /// one that exists (re-published by an earlier, interrupted run), or
    /// one published now from `$LATEST` once it holds them.
    async fn republished(&self, version: &str) -> Result<String, ActionError> {
        let f = self.f();
        let want = self.baseline.versions.get(version).ok_or_else(|| {
            ActionError::input(
                format!("the baseline has no version {version}"),
                "re-plan: run the command again",
            )
        })?;
        let mut pages = self
            .aws
            .lambda
            .list_versions_by_function()
            .function_name(f)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                aws_err(
                    "ListVersionsByFunction",
                    "lambda:ListVersionsByFunction",
                    f,
                    e,
                )
            })?;
            for v in page.versions() {
                let number = v.version().unwrap_or(crate::baseline::model::LATEST);
                if number != crate::baseline::model::LATEST && version_of(self.key, v) == *want {
                    return Ok(number.to_string());
                }
            }
        }
        self.ready(f).await?;
        let got = self
            .aws
            .lambda
            .get_function()
            .function_name(f)
            .send()
            .await
            .map_err(|e| aws_err("GetFunction", "lambda:GetFunction", f, e))?;
        let latest = got
            .configuration()
            .cloned()
            .unwrap_or_else(|| aws_sdk_lambda::types::FunctionConfiguration::builder().build());
        if version_of(self.key, &latest) != *want {
            return Err(ActionError::input(
                format!("`{f}`'s $LATEST does not hold baseline version {version}'s code and configuration yet, so it is not published"),
                "restore the items this one waits for (code, settings, environment), then run the command again",
            ));
        }
        let published = self
            .aws
            .lambda
            .publish_version()
            .function_name(f)
            // Lambda refuses to publish if `$LATEST` changed since it was
            // read: never a version of someone else's code.
            .code_sha256(&want.code_sha256)
            .set_revision_id(latest.revision_id().map(str::to_string))
            .description(format!(
                "firebreak: baseline version {version} re-published (incident {})",
                self.incident
            ))
            .send()
            .await
            .map_err(|e| aws_err("PublishVersion", "lambda:PublishVersion", f, e))?;
        crate::hooks::pause_point("after_publish", super::STEP);
        published.version().map(str::to_string).ok_or_else(|| {
            ActionError::input(
                format!("PublishVersion gave `{f}` no version number"),
                "run the command again: it finds the published version",
            )
        })
    }

    async fn remove_permission(&self, qualifier: &str, sid: &str) -> Result<(), ActionError> {
        match self
            .aws
            .lambda
            .remove_permission()
            .function_name(self.f())
            .statement_id(sid)
            .set_qualifier(param(qualifier))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("RemovePermission", "lambda:RemovePermission", self.f(), e);
                if e.kind == AwsErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e.into())
                }
            }
        }
    }

    async fn add_permission(
        &self,
        qualifier: &str,
        sid: &str,
        st: &Value,
    ) -> Result<(), ActionError> {
        let p = &st["Principal"];
        let principal = p
            .as_str()
            .or_else(|| p["Service"].as_str())
            .or_else(|| p["AWS"].as_str())
            .ok_or_else(|| {
                ActionError::input(
                    format!("statement `{sid}` has a principal firebreak cannot re-create: {p}"),
                    "add it back by hand from the baseline",
                )
            })?;
        let action = st["Action"].as_str().unwrap_or("lambda:InvokeFunction");
        let mut req = self
            .aws
            .lambda
            .add_permission()
            .function_name(self.f())
            .statement_id(sid)
            .action(action)
            .principal(principal)
            .set_qualifier(param(qualifier))
            .set_source_arn(condition(st, "AWS:SourceArn"))
            .set_source_account(condition(st, "AWS:SourceAccount"))
            .set_principal_org_id(condition(st, "aws:PrincipalOrgID"))
            .set_event_source_token(condition(st, "lambda:EventSourceToken"));
        if let Some(t) = condition(st, "lambda:FunctionUrlAuthType") {
            req = req.function_url_auth_type(t.as_str().into());
        }
        req.send()
            .await
            .map_err(|e| aws_err("AddPermission", "lambda:AddPermission", self.f(), e))?;
        Ok(())
    }
}

fn cors(v: &Value) -> Option<aws_sdk_lambda::types::Cors> {
    if v.is_null() {
        return None;
    }
    let list = |k: &str| -> Option<Vec<String>> {
        v[k].as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    };
    Some(
        aws_sdk_lambda::types::Cors::builder()
            .set_allow_credentials(v["AllowCredentials"].as_bool())
            .set_allow_headers(list("AllowHeaders"))
            .set_allow_methods(list("AllowMethods"))
            .set_allow_origins(list("AllowOrigins"))
            .set_expose_headers(list("ExposeHeaders"))
            .set_max_age(v["MaxAge"].as_i64().and_then(|n| i32::try_from(n).ok()))
            .build(),
    )
}

/// UpdateFunctionCode takes a zip of at most 50 MB in the request; a larger
/// package has to come from S3, which firebreak does not stage.
const MAX_DIRECT_UPLOAD: usize = 50 * 1024 * 1024;

fn direct_upload(f: &str, size: usize) -> Result<(), ActionError> {
    if size > MAX_DIRECT_UPLOAD {
        return Err(ActionError::input(
            format!(
                "`{f}`'s baseline package is {} MB: UpdateFunctionCode takes at most 50 MB in the request",
                size / (1024 * 1024)
            ),
            "upload the package (kept in the baseline store, hash-checked) to S3 and deploy it with UpdateFunctionCode --s3-bucket/--s3-key by hand, then run recover again",
        ));
    }
    Ok(())
}

async fn put_alias(
    aws: &Aws,
    f: &str,
    name: &str,
    version: &str,
    exists: bool,
) -> Result<(), ActionError> {
    if exists {
        aws.lambda
            .update_alias()
            .function_name(f)
            .name(name)
            .function_version(version)
            .send()
            .await
            .map_err(|e| aws_err("UpdateAlias", "lambda:UpdateAlias", f, e))?;
    } else {
        aws.lambda
            .create_alias()
            .function_name(f)
            .name(name)
            .function_version(version)
            .send()
            .await
            .map_err(|e| aws_err("CreateAlias", "lambda:CreateAlias", f, e))?;
    }
    Ok(())
}

/// Applies one operation; returns where evidence was written first.
pub async fn apply(cx: &Cx<'_>, op: &Op) -> Result<Vec<String>, ActionError> {
    let aws = cx.aws;
    let f = cx.f().to_string();
    let mut written = Vec::new();
    match op {
        Op::None => {}
        Op::DeleteRule { name, rule } => {
            written.push(
                cx.preserve_json(&format!("rule-{name}"), &json!(rule))
                    .await?,
            );
            let targets = aws
                .events
                .list_targets_by_rule()
                .rule(name)
                .send()
                .await
                .map_err(|e| aws_err("ListTargetsByRule", "events:ListTargetsByRule", name, e))?;
            let ids: Vec<String> = targets
                .targets()
                .iter()
                .map(|t| t.id().to_string())
                .collect();
            if !ids.is_empty() {
                aws.events
                    .remove_targets()
                    .rule(name)
                    .set_ids(Some(ids))
                    .send()
                    .await
                    .map_err(|e| aws_err("RemoveTargets", "events:RemoveTargets", name, e))?;
            }
            aws.events
                .delete_rule()
                .name(name)
                .send()
                .await
                .map_err(|e| aws_err("DeleteRule", "events:DeleteRule", name, e))?;
        }
        Op::RestoreRule { name, rule } => {
            let state = if rule.enabled { "ENABLED" } else { "DISABLED" };
            aws.events
                .put_rule()
                .name(name)
                .set_schedule_expression(rule.schedule.clone())
                .set_event_pattern(rule.event_pattern.clone())
                .state(state.into())
                .send()
                .await
                .map_err(|e| aws_err("PutRule", "events:PutRule", name, e))?;
            let now = aws
                .events
                .list_targets_by_rule()
                .rule(name)
                .send()
                .await
                .map_err(|e| aws_err("ListTargetsByRule", "events:ListTargetsByRule", name, e))?;
            let extra: Vec<String> = now
                .targets()
                .iter()
                .filter(|t| rule.targets.get(t.id()).map(String::as_str) != Some(t.arn()))
                .map(|t| t.id().to_string())
                .collect();
            if !extra.is_empty() {
                written.push(
                    cx.preserve_json(
                        &format!("rule-{name}-targets"),
                        &json!(now
                            .targets()
                            .iter()
                            .map(|t| json!({"Id": t.id(), "Arn": t.arn()}))
                            .collect::<Vec<_>>()),
                    )
                    .await?,
                );
                aws.events
                    .remove_targets()
                    .rule(name)
                    .set_ids(Some(extra))
                    .send()
                    .await
                    .map_err(|e| aws_err("RemoveTargets", "events:RemoveTargets", name, e))?;
            }
            let mut targets = Vec::new();
            for (id, arn) in &rule.targets {
                targets.push(
                    aws_sdk_eventbridge::types::Target::builder()
                        .id(id)
                        .arn(arn)
                        .build()
                        .map_err(|e| {
                            ActionError::input(
                                format!("rule target {id}: {e}"),
                                "restore it by hand",
                            )
                        })?,
                );
            }
            if !targets.is_empty() {
                aws.events
                    .put_targets()
                    .rule(name)
                    .set_targets(Some(targets))
                    .send()
                    .await
                    .map_err(|e| aws_err("PutTargets", "events:PutTargets", name, e))?;
            }
        }
        Op::DeleteFunction { name } => {
            let got = aws
                .lambda
                .get_function()
                .function_name(name)
                .send()
                .await
                .map_err(|e| aws_err("GetFunction", "lambda:GetFunction", name, e))?;
            let c = got.configuration();
            // Names and keyed hashes of its variables: values never go to
            // evidence (they may be credentials).
            let env: BTreeMap<String, String> = c
                .and_then(|c| c.environment())
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, x)| (k.clone(), cx.key.hash(x))).collect())
                .unwrap_or_default();
            let config = json!({
                "FunctionName": c.and_then(|c| c.function_name()),
                "FunctionArn": c.and_then(|c| c.function_arn()),
                "Role": c.and_then(|c| c.role()),
                "Runtime": c.and_then(|c| c.runtime()).map(|r| r.as_str()),
                "Handler": c.and_then(|c| c.handler()),
                "CodeSha256": c.and_then(|c| c.code_sha256()),
                "LastModified": c.and_then(|c| c.last_modified()),
                "Layers": c.map(|c| c.layers().iter().filter_map(|l| l.arn()).collect::<Vec<_>>()),
                "EnvironmentHashes": env,
                "Tags": got.tags(),
            });
            written.push(
                cx.preserve_json(&format!("function-{name}"), &config)
                    .await?,
            );
            let (zip, _) = cx.package(name, None).await?;
            written.push(cx.preserve(&format!("function-{name}.zip"), zip).await?);
            aws.lambda
                .delete_function()
                .function_name(name)
                .send()
                .await
                .map_err(|e| aws_err("DeleteFunction", "lambda:DeleteFunction", name, e))?;
        }
        Op::DeleteAccessKey { user, id } => {
            written.push(cx.preserve_json(&format!("access-key-{user}-{id}"), &json!({"UserName": user, "AccessKeyId": id, "removed_at": crate::time::now_rfc3339()})).await?);
            deleted(
                aws.iam
                    .delete_access_key()
                    .user_name(user)
                    .access_key_id(id)
                    .send()
                    .await,
                "DeleteAccessKey",
                "iam:DeleteAccessKey",
                user,
            )?;
        }
        Op::RemoveStatement {
            qualifier,
            sid,
            statement,
        } => {
            written.push(
                cx.preserve_json(&format!("statement-{qualifier}-{sid}"), statement)
                    .await?,
            );
            cx.remove_permission(qualifier, sid).await?;
        }
        Op::AddStatement {
            qualifier,
            sid,
            statement,
        } => {
            cx.add_permission(qualifier, sid, statement).await?;
        }
        Op::ReplaceStatement {
            qualifier,
            sid,
            old,
            new,
        } => {
            written.push(
                cx.preserve_json(&format!("statement-{qualifier}-{sid}"), old)
                    .await?,
            );
            cx.remove_permission(qualifier, sid).await?;
            cx.add_permission(qualifier, sid, new).await?;
        }
        Op::DeleteUrl { qualifier, url } => {
            written.push(
                cx.preserve_json(&format!("url-{qualifier}"), &json!(url))
                    .await?,
            );
            deleted(
                aws.lambda
                    .delete_function_url_config()
                    .function_name(&f)
                    .set_qualifier(param(qualifier))
                    .send()
                    .await,
                "DeleteFunctionUrlConfig",
                "lambda:DeleteFunctionUrlConfig",
                &f,
            )?;
        }
        Op::PutUrl {
            qualifier,
            url,
            exists,
        } => {
            if *exists {
                aws.lambda
                    .update_function_url_config()
                    .function_name(&f)
                    .set_qualifier(param(qualifier))
                    .auth_type(url.auth_type.as_str().into())
                    .set_cors(cors(&url.cors))
                    .send()
                    .await
                    .map_err(|e| {
                        aws_err(
                            "UpdateFunctionUrlConfig",
                            "lambda:UpdateFunctionUrlConfig",
                            &f,
                            e,
                        )
                    })?;
            } else {
                aws.lambda
                    .create_function_url_config()
                    .function_name(&f)
                    .set_qualifier(param(qualifier))
                    .auth_type(url.auth_type.as_str().into())
                    .set_cors(cors(&url.cors))
                    .send()
                    .await
                    .map_err(|e| {
                        aws_err(
                            "CreateFunctionUrlConfig",
                            "lambda:CreateFunctionUrlConfig",
                            &f,
                            e,
                        )
                    })?;
            }
        }
        Op::DeleteMapping { mapping } => {
            written.push(
                cx.preserve_json(&format!("mapping-{}", mapping.uuid), &json!(mapping))
                    .await?,
            );
            deleted(
                aws.lambda
                    .delete_event_source_mapping()
                    .uuid(&mapping.uuid)
                    .send()
                    .await,
                "DeleteEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
                &mapping.uuid,
            )?;
        }
        Op::CreateMapping { mapping } => {
            let target = match param(&mapping.qualifier) {
                Some(q) => format!("{f}:{q}"),
                None => f.clone(),
            };
            aws.lambda
                .create_event_source_mapping()
                .function_name(&target)
                .event_source_arn(&mapping.source_arn)
                .enabled(mapping.enabled)
                .set_batch_size(mapping.batch_size)
                .send()
                .await
                .map_err(|e| {
                    aws_err(
                        "CreateEventSourceMapping",
                        "lambda:CreateEventSourceMapping",
                        &target,
                        e,
                    )
                })?;
        }
        Op::UpdateMapping {
            uuid,
            enabled,
            batch_size,
        } => {
            aws.lambda
                .update_event_source_mapping()
                .uuid(uuid)
                .enabled(*enabled)
                .set_batch_size(*batch_size)
                .send()
                .await
                .map_err(|e| {
                    aws_err(
                        "UpdateEventSourceMapping",
                        "lambda:UpdateEventSourceMapping",
                        uuid,
                        e,
                    )
                })?;
        }
        Op::DeleteInline {
            role,
            name,
            document,
        } => {
            written.push(
                cx.preserve_json(&format!("role-{role}-inline-{name}"), document)
                    .await?,
            );
            deleted(
                aws.iam
                    .delete_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await,
                "DeleteRolePolicy",
                "iam:DeleteRolePolicy",
                role,
            )?;
        }
        Op::PutInline {
            role,
            name,
            document,
        } => {
            aws.iam
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(document.to_string())
                .send()
                .await
                .map_err(|e| aws_err("PutRolePolicy", "iam:PutRolePolicy", role, e))?;
        }
        Op::Detach { role, arn } => {
            deleted(
                aws.iam
                    .detach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
                    .await,
                "DetachRolePolicy",
                "iam:DetachRolePolicy",
                role,
            )?;
        }
        Op::Attach { role, arn } => {
            aws.iam
                .attach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| aws_err("AttachRolePolicy", "iam:AttachRolePolicy", role, e))?;
        }
        Op::UpdateTrust { role, document } => {
            aws.iam
                .update_assume_role_policy()
                .role_name(role)
                .policy_document(document.to_string())
                .send()
                .await
                .map_err(|e| {
                    aws_err(
                        "UpdateAssumeRolePolicy",
                        "iam:UpdateAssumeRolePolicy",
                        role,
                        e,
                    )
                })?;
        }
        Op::Code { version } => {
            let (zip, sha) = cx.package(&f, Some(version)).await?;
            if sha != cx.baseline.configuration.code_sha256 {
                return Err(ActionError::input(
                    format!(
                        "version {version}'s package hashes to {sha}, not the baseline's {}",
                        cx.baseline.configuration.code_sha256
                    ),
                    "deploy the baseline's code by hand",
                ));
            }
            direct_upload(&f, zip.len())?;
            cx.ready(&f).await?;
            aws.lambda
                .update_function_code()
                .function_name(&f)
                .zip_file(Blob::new(zip))
                .send()
                .await
                .map_err(|e| aws_err("UpdateFunctionCode", "lambda:UpdateFunctionCode", &f, e))?;
            cx.ready(&f).await?;
        }
        Op::Package { code_sha256 } => {
            let zip = cx
                .store
                .package(aws, cx.baseline, code_sha256)
                .await
                .map_err(|e| ActionError::input(e.to_string(), e.hint().to_string()))?;
            direct_upload(&f, zip.len())?;
            cx.ready(&f).await?;
            let out = aws
                .lambda
                .update_function_code()
                .function_name(&f)
                .zip_file(Blob::new(zip))
                .send()
                .await
                .map_err(|e| aws_err("UpdateFunctionCode", "lambda:UpdateFunctionCode", &f, e))?;
            if out.code_sha256() != Some(code_sha256.as_str()) {
                return Err(ActionError::input(
                    format!(
                        "Lambda reports code {} for `{f}` after deploying the baseline's package {code_sha256}",
                        out.code_sha256().unwrap_or("(none)")
                    ),
                    "read the function back before trusting it; deploy the baseline's code by hand",
                ));
            }
            cx.ready(&f).await?;
        }
        Op::Settings { fields } => {
            cx.ready(&f).await?;
            let mut req = aws.lambda.update_function_configuration().function_name(&f);
            for (k, v) in fields {
                req = match k.as_str() {
                    "layers" => req.set_layers(Some(
                        v.as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    )),
                    "runtime" => req.set_runtime(v.as_str().map(Into::into)),
                    "handler" => req.set_handler(v.as_str().map(str::to_string)),
                    "role" => req.set_role(v.as_str().map(str::to_string)),
                    "timeout" => req.set_timeout(v.as_i64().and_then(|n| i32::try_from(n).ok())),
                    "memory_size" => {
                        req.set_memory_size(v.as_i64().and_then(|n| i32::try_from(n).ok()))
                    }
                    "description" => req.description(v.as_str().unwrap_or_default()),
                    _ => req,
                };
            }
            req.send().await.map_err(|e| {
                aws_err(
                    "UpdateFunctionConfiguration",
                    "lambda:UpdateFunctionConfiguration",
                    &f,
                    e,
                )
            })?;
            cx.ready(&f).await?;
        }
        Op::Environment { version } => {
            let c = aws
                .lambda
                .get_function_configuration()
                .function_name(&f)
                .qualifier(version)
                .send()
                .await
                .map_err(|e| {
                    aws_err(
                        "GetFunctionConfiguration",
                        "lambda:GetFunctionConfiguration",
                        &f,
                        e,
                    )
                })?;
            let vars: std::collections::HashMap<String, String> = c
                .environment()
                .and_then(|e| e.variables())
                .cloned()
                .unwrap_or_default();
            let hashes: BTreeMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.clone(), cx.key.hash(v)))
                .collect();
            if hashes != cx.baseline.configuration.environment {
                return Err(ActionError::input(
                    format!("version {version}'s environment no longer hashes to the baseline's"),
                    "set the variables by hand (names and hashes are in the baseline)",
                ));
            }
            cx.ready(&f).await?;
            aws.lambda
                .update_function_configuration()
                .function_name(&f)
                .environment(
                    aws_sdk_lambda::types::Environment::builder()
                        .set_variables(Some(vars))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    aws_err(
                        "UpdateFunctionConfiguration",
                        "lambda:UpdateFunctionConfiguration",
                        &f,
                        e,
                    )
                })?;
            cx.ready(&f).await?;
        }
        Op::DeleteAlias { name, version } => {
            written.push(
                cx.preserve_json(
                    &format!("alias-{name}"),
                    &json!({"Name": name, "FunctionVersion": version}),
                )
                .await?,
            );
            aws.lambda
                .delete_alias()
                .function_name(&f)
                .name(name)
                .send()
                .await
                .map_err(|e| aws_err("DeleteAlias", "lambda:DeleteAlias", &f, e))?;
        }
        Op::PutAlias {
            name,
            version,
            exists,
        } => put_alias(aws, &f, name, version, *exists).await?,
        Op::Republish {
            name,
            version,
            exists,
        } => {
            let target = cx.republished(version).await?;
            put_alias(aws, &f, name, &target, *exists).await?;
        }
        Op::Tag { key, value } => {
            aws.lambda
                .tag_resource()
                .resource(&cx.baseline.function_arn)
                .tags(key, value)
                .send()
                .await
                .map_err(|e| aws_err("TagResource", "lambda:TagResource", &f, e))?;
        }
        Op::Untag { key } => {
            aws.lambda
                .untag_resource()
                .resource(&cx.baseline.function_arn)
                .tag_keys(key)
                .send()
                .await
                .map_err(|e| aws_err("UntagResource", "lambda:UntagResource", &f, e))?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::drift;
    use crate::baseline::drift::tests::sample;
    use crate::baseline::model::{Rule, Version};

    fn ops_of(b: &Baseline, n: &Baseline) -> Vec<(String, BaselineItemStatus, Op)> {
        plan(b, n, drift(b, n))
            .into_iter()
            .map(|i| (i.id, i.status, i.op))
            .collect()
    }

    #[test]
    fn each_drift_becomes_one_operation_in_harm_first_order() {
        let mut b = sample();
        b.versions.get_mut("1").unwrap().environment = b.configuration.environment.clone();
        let mut n = b.clone();
        n.configuration.code_sha256 = "evil".into();
        n.configuration.layers = vec!["arn:aws:lambda:us-east-1:999999999999:layer:x:1".into()];
        n.configuration
            .environment
            .insert("AWS_LAMBDA_EXEC_WRAPPER".into(), "h9".into());
        n.versions.insert(
            "2".into(),
            Version {
                code_sha256: "evil".into(),
                layers: vec![],
                environment: Default::default(),
            },
        );
        n.aliases.insert("live".into(), "2".into());
        n.policies.entry("$LATEST".into()).or_default().insert(
            "backdoor".into(),
            json!({"Sid": "backdoor", "Principal": "*"}),
        );
        n.deploy_users
            .get_mut("deployer")
            .unwrap()
            .push("AKIA2".into());
        n.role_functions.push("miner".into());
        n.rules.insert(
            "every-minute".into(),
            Rule {
                arn: "arn".into(),
                schedule: Some("rate(1 minute)".into()),
                event_pattern: None,
                enabled: true,
                targets: Default::default(),
            },
        );
        let ops = ops_of(&b, &n);
        let ids: Vec<&str> = ops.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "rule:every-minute",
                "role_function:miner",
                "access_key:deployer:AKIA2",
                "statement:$LATEST:backdoor",
                "configuration:orders:code_sha256",
                "configuration:orders:settings",
                "configuration:orders:environment",
                "alias:orders:live",
                "version:orders:2",
            ]
        );
        assert_eq!(
            ops[4].2,
            Op::Code {
                version: "1".into()
            }
        );
        assert_eq!(
            ops[6].2,
            Op::Environment {
                version: "1".into()
            },
            "the version whose hashes are the baseline's"
        );
        assert_eq!(
            ops[7].2,
            Op::PutAlias {
                name: "live".into(),
                version: "1".into(),
                exists: true
            }
        );
        assert_eq!(ops[8].1, BaselineItemStatus::Kept);
        assert!(ops[..4]
            .iter()
            .all(|(_, s, op)| *s == BaselineItemStatus::Remove && op.preserves_evidence()));
    }

    #[test]
    fn a_deleted_baseline_version_is_republished_from_the_kept_package() {
        let mut b = sample();
        *b.versions.get_mut("1").unwrap() = b.latest_content();
        b.packages.insert("c1".into(), "p.zip".into());
        // Code overwritten and published as 2, the alias moved, 1 deleted.
        let mut n = b.clone();
        n.packages.clear();
        n.configuration.code_sha256 = "evil".into();
        n.versions.clear();
        n.versions.insert(
            "2".into(),
            Version {
                code_sha256: "evil".into(),
                ..b.latest_content()
            },
        );
        n.aliases.insert("live".into(), "2".into());
        let ops = ops_of(&b, &n);
        assert_eq!(
            ops,
            [
                (
                    "configuration:orders:code_sha256".to_string(),
                    BaselineItemStatus::Restore,
                    Op::Package {
                        code_sha256: "c1".into()
                    }
                ),
                (
                    "alias:orders:live".to_string(),
                    BaselineItemStatus::Restore,
                    Op::Republish {
                        name: "live".into(),
                        version: "1".into(),
                        exists: true
                    }
                ),
                (
                    "version:orders:1".to_string(),
                    BaselineItemStatus::Kept,
                    Op::None
                ),
                (
                    "version:orders:2".to_string(),
                    BaselineItemStatus::Kept,
                    Op::None
                ),
            ]
        );

        // Once re-published as 3, nothing is left to do.
        let mut after = n.clone();
        after.configuration.code_sha256 = "c1".into();
        after.versions.insert("3".into(), b.latest_content());
        after.aliases.insert("live".into(), "3".into());
        assert!(ops_of(&b, &after)
            .iter()
            .all(|(_, s, _)| *s == BaselineItemStatus::Kept));

        // Without the package nothing can be re-published: held for a human.
        b.packages.clear();
        let held: Vec<String> = ops_of(&b, &n)
            .into_iter()
            .filter(|(_, s, _)| *s == BaselineItemStatus::Held)
            .map(|(id, _, _)| id)
            .collect();
        assert_eq!(
            held,
            [
                "configuration:orders:code_sha256",
                "version:orders:1",
                "alias:orders:live"
            ]
        );
    }

    #[test]
    fn a_statement_on_a_deleted_version_is_held_not_put_back() {
        let mut b = sample();
        b.policies.entry("1".into()).or_default().insert(
            "s3-invoke".into(),
            json!({"Sid": "s3-invoke", "Principal": {"Service": "s3.amazonaws.com"}}),
        );
        let mut n = b.clone();
        n.versions.clear();
        n.policies.clear();
        let items = plan(&b, &n, drift(&b, &n));
        let st = items
            .iter()
            .find(|i| i.id == "statement:1:s3-invoke")
            .expect("the statement's item");
        assert_eq!(st.status, BaselineItemStatus::Held);
        assert_eq!(st.op, Op::None);
    }

    #[test]
    fn a_package_over_the_direct_upload_limit_is_refused_with_the_way_out() {
        assert!(direct_upload("orders", MAX_DIRECT_UPLOAD).is_ok());
        let e = direct_upload("orders", MAX_DIRECT_UPLOAD + 1).unwrap_err();
        assert!(e.to_string().contains("50 MB"), "{e}");
        assert!(e.hint().contains("S3"), "{}", e.hint());
    }

    #[test]
    fn values_no_version_holds_are_held_for_a_human() {
        let mut b = sample();
        // The baseline's values are in no published version.
        b.versions.get_mut("1").unwrap().environment.clear();
        let mut n = b.clone();
        n.configuration.environment.insert("X".into(), "h".into());
        let items = plan(&b, &n, drift(&b, &n));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status, BaselineItemStatus::Held);
        assert_eq!(items[0].op, Op::None);
        assert!(items[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("by hand"));
    }
}
