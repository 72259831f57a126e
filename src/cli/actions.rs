//! `firebreak actions`: what playbooks can use.

use serde_json::json;

use super::{exit, CliError, GlobalArgs, OutputFormat};
use crate::action::registry;

pub fn exec(global: &GlobalArgs) -> Result<u8, CliError> {
    match global.output {
        OutputFormat::Json => {
            let list: Vec<_> = registry::all()
                .iter()
                .map(|a| {
                    let s = a.spec();
                    json!({
                        "name": s.name, "summary": s.summary, "mutating": s.mutating,
                        "params": s.params.iter().map(|p| json!({"name": p.name, "type": p.ty, "required": p.required, "min": p.min, "max": p.max, "description": p.description})).collect::<Vec<_>>(),
                        "outputs": s.outputs.iter().map(|o| json!({"name": o.name, "type": o.ty, "nullable": o.nullable, "description": o.description})).collect::<Vec<_>>(),
                        "iam_actions": s.iam_actions,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"kind": "actions", "actions": list, "summary": {"changes": 0}})
                )
                .unwrap_or_default()
            );
        }
        OutputFormat::Text => {
            for a in registry::all() {
                let s = a.spec();
                println!(
                    "{}{}: {}",
                    s.name,
                    if s.mutating { "" } else { " (read-only)" },
                    s.summary
                );
                for p in s.params {
                    println!(
                        "    with.{} ({}{}): {}",
                        p.name,
                        p.ty.name(),
                        if p.required { ", required" } else { "" },
                        p.description
                    );
                }
                for o in s.outputs {
                    println!("    output {} ({}): {}", o.name, o.ty.name(), o.description);
                }
                println!("    IAM: {}", s.iam_actions.join(", "));
            }
        }
    }
    Ok(exit::OK)
}
