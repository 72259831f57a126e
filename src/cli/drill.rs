//! `firebreak drill run SCENARIO` and `firebreak drill list`: rehearse an
//! incident on LocalStack and score the response.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::drill::{self, render, DrillError, RunOptions};

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Run a scenario end to end on LocalStack and print its scorecard.
    Run(DrillRunArgs),
    /// List the shipped scenarios, one line each.
    List(DrillListArgs),
}

#[derive(Debug, Args)]
pub struct DrillRunArgs {
    /// The scenario file (`kind: Drill`), e.g. drills/compromised-function.yaml.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Leave what the drill created in place (its own account) to inspect it.
    #[arg(long)]
    pub keep: bool,
    /// Where scorecards (scorecard.md, .json, .html) and the run's routes file go.
    #[arg(long, value_name = "DIR", default_value = ".firebreak/drills")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DrillListArgs {
    /// The directory of scenarios.
    #[arg(long, value_name = "DIR", default_value = "drills")]
    pub dir: PathBuf,
}

impl From<DrillError> for CliError {
    fn from(e: DrillError) -> Self {
        let hint = e.hint();
        match e {
            DrillError::Load(l) => l.into(),
            DrillError::State(s) => s.into(),
            DrillError::NotLocal { .. } => CliError::new(ErrorClass::Refused, e.to_string(), hint),
            DrillError::Aws { .. } => CliError::new(ErrorClass::Aws, e.to_string(), hint),
            other => CliError::new(ErrorClass::Input, other.to_string(), hint),
        }
    }
}

pub async fn exec(global: &GlobalArgs, cmd: DrillCommand) -> Result<u8, CliError> {
    match cmd {
        DrillCommand::List(args) => list(global, args),
        DrillCommand::Run(args) => run(global, args).await,
    }
}

fn list(global: &GlobalArgs, args: DrillListArgs) -> Result<u8, CliError> {
    let found = drill::list(&args.dir).map_err(|e| {
        CliError::new(
            ErrorClass::Input,
            format!("cannot read the scenarios in {}: {e}", args.dir.display()),
            "run from the repository root, or pass --dir DIR",
        )
    })?;
    let mut invalid = 0;
    let mut rows = Vec::new();
    for (file, loaded) in &found {
        match loaded {
            Ok(d) => {
                let line = d
                    .description
                    .split(". ")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_end_matches('.');
                if global.output == OutputFormat::Text {
                    println!("{:<28} {file}: {line}", d.name);
                }
                rows.push(json!({"name": d.name, "file": file, "description": d.description.trim(), "techniques": d.attack.iter().map(|t| t.id()).collect::<Vec<_>>()}));
            }
            Err(e) => {
                invalid += 1;
                eprintln!("invalid: {file}: {e}");
            }
        }
    }
    if global.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&json!({"kind": "drill_list", "drills": rows, "summary": {"changes": 0, "invalid": invalid}})).unwrap_or_default());
    }
    Ok(if invalid == 0 { exit::OK } else { exit::ERROR })
}

async fn run(global: &GlobalArgs, args: DrillRunArgs) -> Result<u8, CliError> {
    let scenario = drill::load(&args.scenario)?;
    // Refuse before anything else when the endpoint is not local.
    drill::lab::local_endpoint(global.endpoint_url.as_deref())?;
    let store: Arc<dyn crate::state::StateStore> = Arc::from(global.state_store()?);
    let opts = RunOptions {
        endpoint: global.endpoint_url.clone(),
        region: global
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into()),
        keep: args.keep,
        out_dir: args.out.clone(),
        quotas: global.quotas.clone(),
    };
    if global.output == OutputFormat::Text {
        eprintln!(
            "drill {}: setup, attack, response, checks ...",
            scenario.name
        );
    }
    let (card, dir) = drill::run(&scenario, store, &opts).await?;
    let files = [
        ("scorecard.md", render::markdown::render(&card)),
        ("scorecard.json", render::json(&card)),
        ("scorecard.html", render::html::render(&card)),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| {
            CliError::new(
                ErrorClass::Input,
                format!("cannot write {}: {e}", path.display()),
                "check --out",
            )
        })?;
    }
    match global.output {
        OutputFormat::Text => {
            print!("{}", files[0].1);
            eprintln!(
                "scorecard: {}\n      html: {}\n    report: firebreak report --incident {} --format html",
                dir.join("scorecard.md").display(),
                dir.join("scorecard.html").display(),
                card.incident
            );
        }
        OutputFormat::Json => print!("{}", files[1].1),
    }
    Ok(if card.passed {
        exit::OK
    } else {
        exit::DRILL_FAILED
    })
}
