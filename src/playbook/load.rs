//! Reading a playbook file: size limit, YAML with positions and budgets,
//! then validation.
//!
//! A playbook may come from anyone with write access to a repository, so the
//! parser's resource use is bounded: 1 MiB of text, nesting depth 64 and an
//! alias/node budget that stops a "billion laughs" document early.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::{Budget, Options};
use sha2::{Digest, Sha256};

use super::diagnostics::{choices_hint, PlaybookErrors, Problem};
use super::model::Playbook;
use super::raw::RawPlaybook;
use super::source::{Pos, Source};
use super::validate::validate;

pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read playbook {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("playbook {path} is {size} bytes; playbooks are limited to 1 MiB")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("playbook {path} is not UTF-8 text")]
    NotUtf8 { path: PathBuf },
    #[error(transparent)]
    Invalid(#[from] PlaybookErrors),
}

impl LoadError {
    pub fn hint(&self) -> &'static str {
        match self {
            LoadError::Read { .. } => "check the path and that the file is readable",
            LoadError::TooLarge { .. } => {
                "a playbook is a short list of steps; split it or remove what is not a playbook"
            }
            LoadError::NotUtf8 { .. } => "save the file as UTF-8",
            LoadError::Invalid(_) => {
                "fix the problems listed above, then run `firebreak validate FILE` again"
            }
        }
    }
}

pub(crate) fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = 50_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// Reads, parses and validates one playbook file.
pub fn load(path: &Path) -> Result<Playbook, LoadError> {
    parse(path, read_text(path)?)
}

/// A YAML file's text, within the size limit (playbooks and routes alike).
pub(crate) fn read_text(path: &Path) -> Result<String, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_PLAYBOOK_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Parses and validates playbook text (the path is only for messages).
pub fn parse(path: &Path, text: String) -> Result<Playbook, LoadError> {
    if text.len() as u64 > MAX_PLAYBOOK_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: text.len() as u64,
        });
    }
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let source = Source::new(path, text);
    let raw: RawPlaybook = match serde_saphyr::from_str_with_options(&source.text, options()) {
        Ok(raw) => raw,
        Err(e) => return Err(syntax_error(&source, &e).into()),
    };
    validate(raw, source.clone(), sha256).map_err(|problems| {
        LoadError::Invalid(PlaybookErrors {
            file: source,
            problems,
        })
    })
}

/// The one path every YAML document kind takes (playbooks' own `parse`
/// aside, which checks the size of text it is handed): bounded parse into
/// the raw, positioned form `R`, then `validate`, every problem reported
/// against `source` at `file:line:col`.
pub(crate) fn parse_spanned<R, T>(
    source: Arc<Source>,
    validate: impl FnOnce(R, Arc<Source>) -> Result<T, Vec<Problem>>,
) -> Result<T, LoadError>
where
    R: serde::de::DeserializeOwned,
{
    let raw: R = match serde_saphyr::from_str_with_options(&source.text, options()) {
        Ok(raw) => raw,
        Err(e) => return Err(syntax_error(&source, &e).into()),
    };
    validate(raw, source.clone()).map_err(|problems| {
        LoadError::Invalid(PlaybookErrors {
            file: source,
            problems,
        })
    })
}

pub(crate) fn syntax_error(source: &Arc<Source>, e: &serde_saphyr::Error) -> PlaybookErrors {
    let pos = e
        .location()
        .map(|l| Pos::from_location(&l, source))
        .unwrap_or_else(|| source.pos_at(0, 1));
    let (message, hint) = explain(&bare_message(&e.to_string()));
    PlaybookErrors {
        file: source.clone(),
        problems: vec![Problem::new(pos, message).label("here").hint(hint)],
    }
}

/// serde-saphyr puts the position before ("line N column M: ") or after
/// (" at line N, column M ...") the message; we print our own
/// `file:line:col`, so keep only the message.
fn bare_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.find(" column ") {
        Some(i) if first.starts_with("line ") => {
            first[i + 8..].split_once(": ").map_or(first, |(_, m)| m)
        }
        _ => first,
    };
    match first.find(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

/// Rewrites parser messages meant for programmers into ones meant for
/// playbook authors, and picks the hint.
fn explain(message: &str) -> (String, String) {
    let depth = || {
        (
            format!("the document nests deeper than {MAX_DEPTH} levels"),
            format!("playbooks may nest at most {MAX_DEPTH} levels deep"),
        )
    };
    if message.contains("recursion limit")
        || (message.contains("budget breached") && message.contains("Depth"))
    {
        return depth();
    }
    if message.contains("budget breached") {
        return (
            "the document expands to too many values (YAML aliases or a huge document)".into(),
            "playbooks do not need YAML anchors and aliases; write the values out".into(),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, expected one of ") {
            let allowed: Vec<&str> = expected.split(", ").map(str::trim).collect();
            return (
                format!("unknown field `{field}`"),
                choices_hint(field, &allowed),
            );
        }
        if let Some((field, _)) = rest.split_once('`') {
            return (
                format!("unknown field `{field}`"),
                "this mapping has no fields; docs/playbook.md lists every field".into(),
            );
        }
    }
    let hint = if message.contains("duplicate") {
        "each key may appear once in a mapping"
    } else if message.contains("missing field") {
        "add the field; docs/playbook.md lists the required ones"
    } else if message.contains("flow mapping") || message.contains("flow sequence") {
        "an inline `{...}` or `[...]` is not closed or lacks a comma; the problem may start on an earlier line"
    } else {
        "see docs/playbook.md for the playbook format"
    };
    (message.to_string(), hint.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_message_strips_position_prefix() {
        assert_eq!(
            bare_message("error: line 5 column 7: unknown field `acton`, expected one of id"),
            "unknown field `acton`, expected one of id"
        );
        assert_eq!(bare_message("something else"), "something else");
        assert_eq!(
            bare_message("unknown field `acton`, expected one of id, action at line 9, column 7"),
            "unknown field `acton`, expected one of id, action"
        );
        let (m, h) = explain("unknown field `acton`, expected one of id, action, with");
        assert_eq!(m, "unknown field `acton`");
        assert!(h.starts_with("did you mean `action`?"), "{h}");
        assert!(explain("budget breached: Depth { depth: 65 }")
            .0
            .contains("deeper than 64"));
    }
}
