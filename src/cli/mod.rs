//! The command line: one file per subcommand.

pub mod actions;
pub mod audit;
pub mod baseline;
pub mod confirm;
pub mod drill;
pub mod error;
pub mod evidence;
pub mod permissions;
pub mod plan;
pub mod progress_bar;
pub mod recover;
pub mod recover_baseline;
pub mod report;
pub mod respond;
pub mod run;
pub mod session;
pub mod targets;
pub mod validate;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::AwsSettings;
use crate::state::{LeaseTerms, LocalStore, S3Location, S3Store, StateStore};

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
    /// When the process started (set by `main`, not a flag): time to
    /// contained is measured from it.
    #[arg(skip)]
    pub process_started: Option<std::time::Instant>,
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
    /// Keep incident state in S3 instead of --state-dir, shared by every
    /// responder (locks and records by conditional writes).
    #[arg(
        long,
        global = true,
        env = "FIREBREAK_STATE",
        value_name = "s3://BUCKET/PREFIX",
        value_parser = parse_state_location
    )]
    pub state: Option<S3Location>,
    /// With --state: seconds a responder's lease on an incident lasts
    /// without renewal (renewed every quarter of it); after that another
    /// responder may take a dead one's incident over.
    #[arg(
        long,
        global = true,
        env = "FIREBREAK_STATE_LEASE",
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub state_lease: u64,
    /// A YAML file overriding the AWS request quotas the run paces itself to
    /// (e.g. `quotas: {lambda: {rate: 10, burst: 2}}`; see docs/architecture.md).
    #[arg(long, global = true, env = "FIREBREAK_QUOTAS", value_name = "FILE")]
    pub quotas: Option<PathBuf>,
}

fn parse_state_location(given: &str) -> Result<S3Location, String> {
    S3Location::parse(given).map_err(|e| format!("{e}\n  hint: {}", e.hint()))
}

impl GlobalArgs {
    /// How to reach AWS, from the global flags.
    pub fn aws_settings(&self, dry_run: bool) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            dry_run,
            quotas: self.quotas.clone(),
        }
    }

    /// Where incident state lives: the one place a command chooses the
    /// backend. `--state s3://BUCKET/PREFIX` when given, otherwise the
    /// local directory `--state-dir`.
    pub fn state_store(&self) -> Result<Box<dyn StateStore>, CliError> {
        match &self.state {
            None => Ok(Box::new(LocalStore::new(&self.state_dir))),
            Some(location) => Ok(Box::new(S3Store::connect(
                location.clone(),
                self.aws_settings(false),
                LeaseTerms::new(Duration::from_secs(self.state_lease)),
            )?)),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks and routes files without touching AWS (exit 1 on any problem).
    Validate(validate::ValidateArgs),
    /// Observe and print what a playbook would change (dry run).
    Plan(plan::PlanArgs),
    /// Plan, confirm, apply and verify a playbook.
    Run(run::RunArgs),
    /// Record functions' known-good state (read-only) in a baseline store, dated.
    Baseline(baseline::BaselineArgs),
    /// Undo everything an incident changed, from its journal (risky items held back).
    Recover(recover::RecoverArgs),
    /// Handle one alarm or finding event as the routes say (no prompt).
    Respond(respond::RespondArgs),
    /// Consume an SQS queue of alarms and findings and respond to each.
    Watch(watch::WatchArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Evidence tools.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Report on an incident from its audit trail: status, what is left to do, changes, evidence, timeline.
    Report(report::ReportArgs),
    /// Rehearse an incident on LocalStack: setup, attack, response, scorecard.
    #[command(subcommand)]
    Drill(drill::DrillCommand),
    /// List the actions playbooks can use.
    Actions,
    /// Print the least-privilege IAM policy for playbooks (and, with --routes, the responder).
    Permissions(permissions::PermissionsArgs),
}

impl Command {
    /// Whether the command may call AWS: the others never need the TLS
    /// trust store loaded ahead (`aws::trust_store::warm`).
    pub fn talks_to_aws(&self) -> bool {
        !matches!(
            self,
            Command::Validate(_) | Command::Actions | Command::Permissions(_)
        )
    }
}

/// Runs a parsed command; returns the exit code.
pub async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Validate(args) => validate::exec(&cli.global, args),
        Command::Plan(args) => plan::exec(&cli.global, args).await,
        Command::Run(args) => run::exec(&cli.global, args).await,
        Command::Baseline(args) => baseline::exec(&cli.global, args).await,
        Command::Recover(args) => recover::exec(&cli.global, args).await,
        Command::Respond(args) => respond::exec(&cli.global, args).await,
        Command::Watch(args) => watch::exec(&cli.global, args).await,
        Command::Audit(cmd) => audit::exec(&cli.global, cmd),
        Command::Evidence(cmd) => evidence::exec(&cli.global, cmd).await,
        Command::Report(args) => report::exec(&cli.global, args),
        Command::Drill(cmd) => drill::exec(&cli.global, cmd).await,
        Command::Actions => actions::exec(&cli.global),
        Command::Permissions(args) => permissions::exec(&cli.global, args),
    }
}
