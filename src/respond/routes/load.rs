//! Reading a routes file: the same limits and diagnostics as playbooks
//! (1 MiB, bounded YAML, every problem at `file:line:col`).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::raw::RawRoutes;
use super::validate::validate;
use super::Routes;
use crate::playbook::load::{parse_spanned, read_text};
use crate::playbook::source::Source;
use crate::playbook::LoadError;

/// Reads, parses and validates a routes file, and every playbook it names
/// (relative paths are relative to the routes file).
pub fn load(path: &Path) -> Result<Routes, LoadError> {
    parse(path, read_text(path)?)
}

pub fn parse(path: &Path, text: String) -> Result<Routes, LoadError> {
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let base = path.parent().unwrap_or(Path::new("."));
    parse_spanned(Source::new(path, text), |raw: RawRoutes, source| {
        validate(raw, source, sha256, base)
    })
}

/// Whether a YAML file declares `kind: Routes` (so that `validate` can
/// take playbooks and routes alike). A cheap look at the top-level lines;
/// the real check is the parse.
pub fn looks_like_routes(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines().any(|l| {
            let l = l.trim_end();
            l == "kind: Routes" || l == "kind: \"Routes\"" || l == "kind: 'Routes'"
        })
    })
}
