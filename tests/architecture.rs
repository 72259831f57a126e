//! The module layering of docs/architecture.md, checked on the source: no
//! import cycles between top-level modules, and every `crate::X` a module
//! names is below it. A new arrow upwards fails here with the file that
//! draws it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom: a module may only use modules after it in this list
/// (`plan`, `aws`, `hooks` and `time` are the plain bottom everyone speaks).
const LAYERS: &[&str] = &[
    "cli",
    "drill",
    "lambda",
    "permissions",
    "render",
    "report",
    "respond",
    "engine",
    "baseline",
    "playbook",
    "action",
    "evidence",
    "state",
    "plan",
    "aws",
    "hooks",
    "time",
];

fn crate_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `module -> {(used module, file)}` from every `crate::X` outside tests.
fn uses() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let src = crate_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                out.entry(top.clone())
                    .or_default()
                    .insert((name, rel.display().to_string()));
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (module, used) in uses() {
        let Some(mine) = rank(&module) else {
            wrong.push(format!(
                "{module} is not in the layer list: add it to LAYERS and docs/architecture.md"
            ));
            continue;
        };
        for (other, file) in used {
            match rank(&other) {
                Some(theirs) if theirs > mine => {}
                Some(_) => wrong.push(format!(
                    "src/{file}: {module} uses {other}, which is above it"
                )),
                None => wrong.push(format!("src/{file}: uses unknown module {other}")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}
