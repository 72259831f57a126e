//! Code packages kept next to the baselines, so that a version the
//! attacker deleted can be re-published from a copy firebreak holds:
//! `<account>/<region>/<function>/packages/<hex sha256>.zip`.
//!
//! Content-addressed and written once: a scheduled baseline checks the
//! store first and downloads only code it has not kept yet. The hash is
//! checked when the package is written (against what Lambda reported at
//! capture) and again when it is read back, so a package altered in the
//! store is refused, never deployed.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::model::Baseline;
use super::store::BaselineStore;
use super::BaselineError;
use crate::aws::error::classify;
use crate::aws::{Aws, AwsErrorKind};
use crate::evidence::download::{fetch_to_file, MAX_PACKAGE_BYTES};
use crate::evidence::store::artifact_key;

/// The hex form of Lambda's base64 `CodeSha256` (`None`: not a SHA-256,
/// e.g. a container image's digest is reported otherwise).
pub fn hex_of(sha_b64: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sha_b64)
        .ok()?;
    (raw.len() == 32).then(|| hex::encode(raw))
}

fn b64_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// The store-relative path of a package of `b`'s function.
fn rel(b: &Baseline, file: &str) -> Result<String, BaselineError> {
    artifact_key(&[&b.account, &b.region, &b.function, "packages", file])
        .map_err(|e| BaselineError::input(e.to_string(), "function names never hold `/`"))
}

fn store_err(location: impl Into<String>, message: String, hint: &str) -> BaselineError {
    BaselineError::Store {
        location: location.into(),
        message,
        hint: hint.into(),
    }
}

impl BaselineStore {
    async fn has_package(&self, aws: &Aws, rel: &str) -> Result<bool, BaselineError> {
        match self {
            BaselineStore::Dir(dir) => Ok(dir.join(rel).is_file()),
            BaselineStore::S3 { bucket, prefix } => {
                let key = Self::s3_key(prefix, rel);
                match aws.s3.head_object().bucket(bucket).key(&key).send().await {
                    Ok(_) => Ok(true),
                    Err(e) => {
                        let e = classify(
                            "HeadObject",
                            "s3:GetObject",
                            format!("s3://{bucket}/{key}"),
                            e,
                        );
                        if e.kind == AwsErrorKind::NotFound {
                            Ok(false)
                        } else {
                            Err(e.into())
                        }
                    }
                }
            }
        }
    }

    async fn write_package(&self, aws: &Aws, rel: &str, file: &Path) -> Result<(), BaselineError> {
        match self {
            BaselineStore::Dir(dir) => {
                let path = dir.join(rel);
                let io = |e: std::io::Error| {
                    store_err(
                        path.display().to_string(),
                        format!("cannot write the package: {e}"),
                        "check the directory exists, is writable and has space",
                    )
                };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                // Copied beside it, then renamed: a crash never leaves a
                // partial package under the final name.
                let tmp = path.with_extension("zip.tmp");
                std::fs::copy(file, &tmp).map_err(io)?;
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)
            }
            BaselineStore::S3 { bucket, prefix } => {
                let key = Self::s3_key(prefix, rel);
                let location = format!("s3://{bucket}/{key}");
                let body = ByteStream::from_path(file).await.map_err(|e| {
                    store_err(
                        &location,
                        format!("cannot read the downloaded package to upload it: {e}"),
                        "check the temporary directory (TMPDIR) is readable",
                    )
                })?;
                match aws
                    .s3
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .if_none_match("*")
                    .content_type("application/zip")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let e = classify("PutObject", "s3:PutObject", &location, e);
                        // Written meanwhile by another baseline run: the
                        // same name is the same content (read back checks).
                        if e.code.as_deref() == Some("PreconditionFailed") {
                            Ok(())
                        } else {
                            Err(e.into())
                        }
                    }
                }
            }
        }
    }

    /// Keeps the packages `b` may need to be re-published from (see
    /// `Baseline::code_to_keep`) and records them in `b.packages`. Code
    /// already kept is not downloaded again. A container image has no
    /// package: it is not recorded, and recovery says so.
    pub async fn keep_packages(&self, aws: &Aws, b: &mut Baseline) -> Result<(), BaselineError> {
        for (sha, qualifier) in b.code_to_keep() {
            let Some(hex) = hex_of(&sha) else { continue };
            let file = format!("{hex}.zip");
            let rel = rel(b, &file)?;
            if !self.has_package(aws, &rel).await? {
                let at = qualifier.as_deref().unwrap_or("$LATEST");
                let got = aws
                    .lambda
                    .get_function()
                    .function_name(&b.function)
                    .set_qualifier(qualifier.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        classify(
                            "GetFunction",
                            "lambda:GetFunction",
                            format!("{}:{at}", b.function_arn),
                            e,
                        )
                    })?;
                let Some(url) = got.code().and_then(|c| c.location()) else {
                    continue;
                };
                let tmp = tempfile::NamedTempFile::new().map_err(|e| {
                    store_err(
                        std::env::temp_dir().display().to_string(),
                        format!("no temporary file for the package: {e}"),
                        "check the temporary directory (TMPDIR) is writable and has space",
                    )
                })?;
                let fetched = fetch_to_file(url, tmp.path()).await.map_err(|e| {
                    BaselineError::input(
                        format!("the code of `{}` ({at}) could not be kept: {e}", b.function),
                        "take the baseline again (the code location is short-lived)",
                    )
                })?;
                if fetched.sha256_b64 != sha {
                    return Err(BaselineError::input(
                        format!(
                            "the code of `{}` ({at}) changed while the baseline was taken: the package hashes to {}, the configuration read said {sha}",
                            b.function, fetched.sha256_b64
                        ),
                        "take the baseline again once no deployment is running",
                    ));
                }
                self.write_package(aws, &rel, tmp.path()).await?;
            }
            b.packages.insert(sha, file);
        }
        Ok(())
    }

    /// The package `b` kept for code `sha` (base64, as Lambda reports
    /// it), read back and checked against that hash.
    pub async fn package(
        &self,
        aws: &Aws,
        b: &Baseline,
        sha: &str,
    ) -> Result<Vec<u8>, BaselineError> {
        let file = b.packages.get(sha).ok_or_else(|| {
            BaselineError::input(
                format!(
                    "the baseline of `{}` taken at {} kept no package of code {sha}",
                    b.function, b.taken_at
                ),
                "deploy the baseline's code by hand",
            )
        })?;
        // The name is the hash: a baseline file edited to point elsewhere
        // is refused like an altered package.
        if hex_of(sha).map(|h| format!("{h}.zip")).as_deref() != Some(file.as_str()) {
            return Err(store_err(
                self.to_string(),
                format!(
                    "the baseline of `{}` names package `{file}` for code {sha}",
                    b.function
                ),
                "the baseline file was edited; use an intact copy",
            ));
        }
        let rel = rel(b, file)?;
        let (location, bytes) = self.read(aws, &rel, "package", MAX_PACKAGE_BYTES).await?;
        let got = b64_sha256(&bytes);
        if got != sha {
            return Err(store_err(
                location,
                format!("the package hashes to {got}, not the baseline's {sha}: it was altered after it was kept"),
                "do not deploy it; restore the package from a backup of the store, or deploy the baseline's code by hand",
            ));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_hashes_convert_to_hex_names() {
        let b64 = b64_sha256(b"abc");
        assert_eq!(
            hex_of(&b64).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(hex_of("not base64!"), None);
        assert_eq!(hex_of("YWJj"), None, "three bytes are no SHA-256");
    }
}
