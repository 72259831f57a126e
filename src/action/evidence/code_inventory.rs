//! What code a function runs and could run: `$LATEST`, every published
//! version, every alias (with its traffic split) and every layer, each with
//! the `CodeSha256` Lambda reports. An attacker who published a version
//! and pointed an alias at it leaves the evidence here, not in `$LATEST`.
//!
//! Rendered as deterministic JSON (sorted) so a re-run hashes the same.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::action::lambda::function::FunctionRef;
use crate::action::{ActionError, StepContext};
use crate::aws::error::classify;
use crate::evidence::store::b64_to_hex;

/// One package to preserve: a function version's code or a layer's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Lambda's `CodeSha256` as hex: the package's name in the bucket.
    pub reported_hex: String,
    pub size: i64,
    pub from: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `GetFunction` with this qualifier (`$LATEST` or a version number).
    Function { qualifier: String },
    /// `GetLayerVersionByArn`.
    Layer { arn: String },
}

impl Source {
    pub fn api(&self) -> &'static str {
        match self {
            Source::Function { .. } => "lambda:GetFunction",
            Source::Layer { .. } => "lambda:GetLayerVersion",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Function { qualifier } => format!("lambda:GetFunction (Qualifier {qualifier})"),
            Source::Layer { arn } => format!("lambda:GetLayerVersion ({arn})"),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Source::Function { qualifier } => json!({"qualifier": qualifier}),
            Source::Layer { arn } => json!({"layer": arn}),
        }
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        if let Some(q) = v["qualifier"].as_str() {
            return Some(Source::Function {
                qualifier: q.to_string(),
            });
        }
        v["layer"]
            .as_str()
            .map(|a| Source::Layer { arn: a.to_string() })
    }
}

pub struct Inventory {
    /// The document stored as `code/inventory.json`.
    pub document: Value,
    /// Distinct packages by reported hash; the first source found wins
    /// (`$LATEST` before versions, functions before layers).
    pub packages: BTreeMap<String, Package>,
    /// Container-image functions have no package to download.
    pub image_uri: Option<String>,
}

pub async fn collect(cx: &StepContext<'_>, f: &FunctionRef) -> Result<Inventory, ActionError> {
    let lambda = &cx.aws.lambda;
    let got = lambda
        .get_function()
        .function_name(&f.name)
        .send()
        .await
        .map_err(|e| classify("GetFunction", "lambda:GetFunction", &f.arn, e))?;
    let image_uri = got
        .code()
        .and_then(|c| c.resolved_image_uri().or(c.image_uri()))
        .map(str::to_string);

    let mut versions = Vec::new();
    let mut pages = lambda
        .list_versions_by_function()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                "ListVersionsByFunction",
                "lambda:ListVersionsByFunction",
                &f.arn,
                e,
            )
        })?;
        versions.extend(page.versions().iter().cloned());
    }
    // `$LATEST` first, then versions in numeric order.
    versions.sort_by_key(|v| {
        let ver = v.version().unwrap_or_default();
        (ver != "$LATEST", ver.parse::<u64>().unwrap_or(0))
    });

    let mut aliases = Vec::new();
    let mut pages = lambda
        .list_aliases()
        .function_name(&f.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListAliases", "lambda:ListAliases", &f.arn, e))?;
        for a in page.aliases() {
            let weights: BTreeMap<String, f64> = a
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            aliases.push(json!({
                "Name": a.name(),
                "AliasArn": a.alias_arn(),
                "FunctionVersion": a.function_version(),
                "AdditionalVersionWeights": weights,
                "Description": a.description(),
                "RevisionId": a.revision_id(),
            }));
        }
    }
    aliases.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));

    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    let mut version_docs = Vec::new();
    let mut layer_arns: Vec<String> = Vec::new();
    for v in &versions {
        let qualifier = v.version().unwrap_or("$LATEST").to_string();
        let reported = v.code_sha256().and_then(b64_to_hex);
        if let (Some(hex), None) = (&reported, &image_uri) {
            packages.entry(hex.clone()).or_insert_with(|| Package {
                reported_hex: hex.clone(),
                size: v.code_size(),
                from: Source::Function {
                    qualifier: qualifier.clone(),
                },
            });
        }
        let layers: Vec<&str> = v.layers().iter().filter_map(|l| l.arn()).collect();
        for l in &layers {
            if !layer_arns.iter().any(|a| a == l) {
                layer_arns.push((*l).to_string());
            }
        }
        version_docs.push(json!({
            "Version": qualifier,
            "CodeSha256": v.code_sha256(),
            "CodeSize": v.code_size(),
            "LastModified": v.last_modified(),
            "Description": v.description(),
            "RevisionId": v.revision_id(),
            "Handler": v.handler(),
            "Runtime": v.runtime().map(|r| r.as_str()),
            "Layers": layers,
            "Package": reported.as_ref().filter(|_| image_uri.is_none()).map(|h| format!("code/packages/{h}.zip")),
        }));
    }

    let mut layer_docs = Vec::new();
    for arn in &layer_arns {
        let l = lambda
            .get_layer_version_by_arn()
            .arn(arn)
            .send()
            .await
            .map_err(|e| classify("GetLayerVersion", "lambda:GetLayerVersion", arn, e))?;
        let content = l.content();
        let sha = content.and_then(|c| c.code_sha256());
        let reported = sha.and_then(b64_to_hex);
        if let Some(hex) = &reported {
            packages.entry(hex.clone()).or_insert_with(|| Package {
                reported_hex: hex.clone(),
                size: content.map(|c| c.code_size()).unwrap_or(0),
                from: Source::Layer { arn: arn.clone() },
            });
        }
        layer_docs.push(json!({
            "LayerVersionArn": arn,
            "CodeSha256": sha,
            "CodeSize": content.map(|c| c.code_size()),
            "Description": l.description(),
            "CreatedDate": l.created_date(),
            "CompatibleRuntimes": l.compatible_runtimes().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "SigningJobArn": content.and_then(|c| c.signing_job_arn()),
            "Package": reported.map(|h| format!("code/packages/{h}.zip")),
        }));
    }

    let document = json!({
        "FunctionArn": f.arn,
        "PackageType": got.configuration().and_then(|c| c.package_type()).map(|p| p.as_str()),
        "ImageUri": image_uri,
        "Versions": version_docs,
        "Aliases": aliases,
        "Layers": layer_docs,
    });
    Ok(Inventory {
        document,
        packages,
        image_uri,
    })
}

/// A fresh presigned URL for `source`: URLs last about ten minutes, so one
/// is fetched right before each download and again when it has expired.
/// Returns the URL and the `CodeSha256` Lambda reports with it.
pub async fn location(
    cx: &StepContext<'_>,
    f: &FunctionRef,
    source: &Source,
) -> Result<(String, Option<String>), ActionError> {
    let lambda = &cx.aws.lambda;
    match source {
        Source::Function { qualifier } => {
            let got = lambda
                .get_function()
                .function_name(&f.name)
                .qualifier(qualifier)
                .send()
                .await
                .map_err(|e| classify("GetFunction", "lambda:GetFunction", &f.arn, e))?;
            let url = got.code().and_then(|c| c.location()).map(str::to_string);
            let sha = got
                .configuration()
                .and_then(|c| c.code_sha256())
                .and_then(b64_to_hex);
            url.map(|u| (u, sha)).ok_or_else(|| {
                ActionError::input(
                    format!("GetFunction for {} ({qualifier}) returned no code location", f.arn),
                    "the function may be a container image (its image stays in ECR) or the caller lacks lambda:GetFunction",
                )
            })
        }
        Source::Layer { arn } => {
            let l = lambda
                .get_layer_version_by_arn()
                .arn(arn)
                .send()
                .await
                .map_err(|e| classify("GetLayerVersion", "lambda:GetLayerVersion", arn, e))?;
            let c = l.content();
            let url = c.and_then(|c| c.location()).map(str::to_string);
            let sha = c.and_then(|c| c.code_sha256()).and_then(b64_to_hex);
            url.map(|u| (u, sha)).ok_or_else(|| {
                ActionError::input(
                    format!("GetLayerVersion for {arn} returned no content location"),
                    "check the caller has lambda:GetLayerVersion on the layer (it may belong to another account)",
                )
            })
        }
    }
}
