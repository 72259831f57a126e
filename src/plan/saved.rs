//! Saved plans (`plan --out FILE`, `run --plan FILE`).
//!
//! A saved plan is a contract: it records the exact changes and the state
//! they were computed from. Applying it re-observes every step first and
//! refuses when anything moved, as Terraform does with saved plans.

use std::path::{Path, PathBuf};

use super::Plan;

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read saved plan {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a firebreak plan: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has plan format {found}; this firebreak reads format {expected}")]
    Format {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cannot write plan {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn save(plan: &Plan, path: &Path) -> Result<(), SavedPlanError> {
    let write_err = |source| SavedPlanError::Write {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(plan).map_err(|e| write_err(std::io::Error::other(e)))?;
    // Written to a temporary file and renamed, so a crash never leaves half
    // a plan that could later be applied.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

pub fn load(path: &Path) -> Result<Plan, SavedPlanError> {
    let bytes = std::fs::read(path).map_err(|source| SavedPlanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_u64()));
    if let Some(found) = format {
        if found != u64::from(Plan::FORMAT) {
            return Err(SavedPlanError::Format {
                path: path.to_path_buf(),
                found: found as u32,
                expected: Plan::FORMAT,
            });
        }
    }
    serde_json::from_slice(&bytes).map_err(|source| SavedPlanError::Parse {
        path: path.to_path_buf(),
        source,
    })
}
