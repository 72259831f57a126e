//! The text of a playbook and positions inside it.
//!
//! Positions are kept as byte offsets as well as line/column so that a
//! diagnostic can both print `file:line:col` and underline the exact span.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Location;

/// A playbook file as read from disk; shared by every diagnostic about it.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
        })
    }

    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }

    /// The 1-based line/column of a byte offset (used for positions we compute
    /// ourselves, e.g. a `${...}` reference inside a scalar).
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() as u32 + 1;
        (line, column)
    }

    /// A position for `len` bytes starting at `offset`.
    pub fn pos_at(&self, offset: usize, len: usize) -> Pos {
        let (line, column) = self.line_col(offset);
        Pos {
            line,
            column,
            offset,
            len,
        }
    }

    /// The source text a position covers, clamped to the file.
    pub fn slice(&self, pos: Pos) -> &str {
        let start = pos.offset.min(self.text.len());
        let end = (pos.offset + pos.len).min(self.text.len());
        self.text.get(start..end).unwrap_or("")
    }
}

/// Paths are shown relative to the working directory when possible, so that
/// diagnostics and snapshots are the same on every machine.
pub fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    path.display().to_string()
}

/// A place in a playbook: 1-based line and column, plus the byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
    pub len: usize,
}

impl Pos {
    /// Converts a serde-saphyr location. Locations from string input always
    /// carry byte offsets; `source` recovers them if one ever does not.
    pub fn from_location(loc: &Location, source: &Source) -> Self {
        let span = loc.span();
        let line = loc.line() as u32;
        let column = loc.column() as u32;
        let offset = match span.byte_offset() {
            Some(o) => o as usize,
            None => offset_of(source, line, column),
        };
        let len = span.byte_len().map_or(1, |l| l as usize).max(1);
        Self {
            line,
            column,
            offset,
            len,
        }
    }
}

fn offset_of(source: &Source, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (i, l) in source.text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1) as usize)
                .map_or(l.len(), |(b, _)| b);
            return offset + col;
        }
        offset += l.len();
    }
    source.text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = Source::new("x.yaml", "ab\ncd\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(4), (2, 2));
        assert_eq!(offset_of(&s, 2, 2), 4);
    }
}
