//! `firebreak validate FILE...`: static checks only, never AWS.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{exit, CliError, GlobalArgs, OutputFormat};
use crate::playbook::{self, LoadError};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Playbook files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn exec(global: &GlobalArgs, args: ValidateArgs) -> Result<u8, CliError> {
    let mut results = Vec::new();
    let mut invalid = 0;
    for file in &args.files {
        let shown = crate::playbook::source::display_path(file);
        match playbook::load(file) {
            Ok(pb) => {
                if global.output == OutputFormat::Text {
                    println!(
                        "ok: {shown} (playbook {}, {} steps)",
                        pb.name,
                        pb.steps.len()
                    );
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
