//! Playbook problems: collected, then rendered all at once with the source
//! line, a label at the exact span and a hint (miette), or as JSON.

use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};
use serde::Serialize;

use super::source::{Pos, Source};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: Pos,
    pub message: String,
    pub label: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
            label: String::new(),
            hint: None,
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        if !hint.is_empty() {
            self.hint = Some(hint);
        }
        self
    }
}

/// Every problem found in one playbook file.
#[derive(Debug, thiserror::Error)]
#[error("{} has {} problem(s); the first: {}", .file.display_path(), .problems.len(), first_message(.problems))]
pub struct PlaybookErrors {
    pub file: Arc<Source>,
    pub problems: Vec<Problem>,
}

fn first_message(problems: &[Problem]) -> String {
    problems
        .first()
        .map(|p| format!("{}:{}: {}", p.pos.line, p.pos.column, p.message))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{location}: {message}")]
struct Report {
    location: String,
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    #[help]
    help: Option<String>,
    label: String,
}

/// One problem as JSON (`--output json`).
#[derive(Debug, Serialize)]
pub struct ProblemJson<'a> {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: &'a str,
    pub hint: Option<&'a str>,
}

impl PlaybookErrors {
    /// `file:line:col: message`, the source line underlined, and the hint.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let path = self.file.display_path();
        let mut out = String::new();
        for p in &self.problems {
            let report = Report {
                location: format!("{path}:{}:{}", p.pos.line, p.pos.column),
                message: p.message.clone(),
                src: NamedSource::new(&path, self.file.text.clone()),
                span: SourceSpan::new(p.pos.offset.into(), p.pos.len),
                help: p.hint.clone(),
                label: if p.label.is_empty() {
                    "here".into()
                } else {
                    p.label.clone()
                },
            };
            if handler.render_report(&mut out, &report).is_err() {
                out.push_str(&format!("{}: {}\n", report.location, report.message));
            }
        }
        out
    }

    pub fn to_json(&self) -> Vec<ProblemJson<'_>> {
        let file = self.file.display_path();
        self.problems
            .iter()
            .map(|p| ProblemJson {
                file: file.clone(),
                line: p.pos.line,
                column: p.pos.column,
                message: &p.message,
                hint: p.hint.as_deref(),
            })
            .collect()
    }
}

/// "did you mean" for a misspelt name: the closest by spelling, or else a
/// candidate that contains it (`arn` → `function_arn`).
pub fn suggest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
        .or_else(|| {
            (wrong.len() >= 3)
                .then(|| candidates.iter().copied().find(|c| c.contains(wrong)))
                .flatten()
        })
}

/// A hint listing what is allowed, with a suggestion first when one is close.
pub fn choices_hint(wrong: &str, allowed: &[&str]) -> String {
    let list = allowed
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match suggest(wrong, allowed.iter().copied()) {
        Some(s) if allowed.len() == 1 => format!("did you mean `{s}`?"),
        Some(s) => format!("did you mean `{s}`? expected one of {list}"),
        None if allowed.is_empty() => String::new(),
        None => format!("expected one of {list}"),
    }
}
