//! `firebreak validate FILE...`: static checks only, never AWS.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{exit, CliError, GlobalArgs, OutputFormat};
use crate::playbook::{self, LoadError};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Playbook, routes or drill files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn exec(global: &GlobalArgs, args: ValidateArgs) -> Result<u8, CliError> {
    let mut results = Vec::new();
    let mut invalid = 0;
    for file in &args.files {
        let shown = crate::playbook::source::display_path(file);
        let loaded = if crate::drill::looks_like_drill(file) {
            crate::drill::load(file).map(|d| {
                format!(
                    "drill {}, {} attack step(s), {} check(s)",
                    d.name,
                    d.attack.len(),
                    d.contained.len() + d.recovered.len()
                )
            })
        } else if crate::respond::routes::looks_like_routes(file) {
            crate::respond::routes::load(file).map(|r| {
                format!("routes, {} route(s) over {} playbook(s)", r.routes.len(), {
                    let mut p: Vec<_> = r.routes.iter().map(|x| &x.playbook_path).collect();
                    p.sort();
                    p.dedup();
                    p.len()
                })
            })
        } else {
            playbook::load(file).map(|pb| format!("playbook {}, {} steps", pb.name, pb.steps.len()))
        };
        match loaded {
            Ok(what) => {
                if global.output == OutputFormat::Text {
                    println!("ok: {shown} ({what})");
                }
                results.push(json!({"file": shown, "valid": true, "problems": []}));
            }
            Err(e) => {
                invalid += 1;
                let problems = match &e {
                    LoadError::Invalid(errs) => {
                        serde_json::to_value(errs.to_json()).unwrap_or_default()
                    }
                    other => {
                        json!([{"file": shown, "line": null, "column": null, "message": other.to_string(), "hint": other.hint()}])
                    }
                };
                if global.output == OutputFormat::Text {
                    eprint!("{}", CliError::from(e).render_text());
                }
                results.push(json!({"file": shown, "valid": false, "problems": problems}));
            }
        }
    }
    if global.output == OutputFormat::Json {
        let out = json!({
            "kind": "validate",
            "files": results,
            "summary": {"changes": 0, "files": args.files.len(), "invalid": invalid},
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(if invalid == 0 { exit::OK } else { exit::ERROR })
}
