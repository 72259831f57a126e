//! The command line: one file per subcommand.

pub mod actions;
pub mod audit;
pub mod confirm;
pub mod error;
pub mod evidence;
pub mod plan;
pub mod recover;
pub mod report;
pub mod run;
pub mod session;
pub mod targets;
pub mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use error::{exit, CliError, ErrorClass};

#[derive(Debug, Parser)]
#[command(
    name = "firebreak",
    version,
    about = "Incident response for AWS Lambda: validated playbooks, dry-run plans, idempotent containment, a tamper-evident audit trail.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named AWS profile (default: AWS_PROFILE or the standard chain).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (e.g. LocalStack).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Output format; json prints one documented object per command.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where incident state (journal, lock, audit trail) lives.
    #[arg(
        long,
        global = true,
        env = "FIREBREAK_STATE_DIR",
        default_value = ".firebreak"
    )]
    pub state_dir: PathBuf,
    /// A YAML file overriding the AWS request quotas the run paces itself to
    /// (e.g. `quotas: {lambda: {rate: 10, burst: 2}}`; see docs/architecture.md).
    #[arg(long, global = true, env = "FIREBREAK_QUOTAS", value_name = "FILE")]
    pub quotas: Option<PathBuf>,
}

impl GlobalArgs {
    /// Where incident state lives: the one place a command chooses the
    /// backend. Today the local directory `--state-dir`.
    pub fn state_store(&self) -> Box<dyn crate::state::StateStore> {
        Box::new(crate::state::LocalStore::new(&self.state_dir))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks without touching AWS (exit 1 on any problem).
    Validate(validate::ValidateArgs),
    /// Observe and print what a playbook would change (dry run).
    Plan(plan::PlanArgs),
    /// Plan, confirm, apply and verify a playbook.
    Run(run::RunArgs),
    /// Undo everything an incident changed, from its journal (risky items held back).
    Recover(recover::RecoverArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Evidence tools.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Report on an incident from its audit trail: status, what is left to do, changes, evidence, timeline.
    Report(report::ReportArgs),
    /// List the actions playbooks can use.
    Actions,
}

/// Runs a parsed command; returns the exit code.
pub async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Validate(args) => validate::exec(&cli.global, args),
        Command::Plan(args) => plan::exec(&cli.global, args).await,
        Command::Run(args) => run::exec(&cli.global, args).await,
        Command::Recover(args) => recover::exec(&cli.global, args).await,
        Command::Audit(cmd) => audit::exec(&cli.global, cmd),
        Command::Evidence(cmd) => evidence::exec(&cli.global, cmd).await,
        Command::Report(args) => report::exec(&cli.global, args),
        Command::Actions => actions::exec(&cli.global),
    }
}
