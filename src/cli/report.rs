//! `firebreak report --incident ID [--format md|json|html]`: the incident's
//! report from its audit trail. Read-only: it takes no lock, calls no AWS
//! API and writes nothing, so it can run at any time, also during a run.

use clap::{Args, ValueEnum};

use super::{exit, CliError, ErrorClass, GlobalArgs, OutputFormat};
use crate::render::incident::html::Html;
use crate::render::incident::json::Json;
use crate::render::incident::markdown::Markdown;
use crate::render::incident::IncidentView;
use crate::report::{self, ReportError};
use crate::state::IncidentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for people.
    Md,
    /// One JSON object, for tools.
    Json,
    /// One self-contained HTML page with the timeline drawn.
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The incident to report on.
    #[arg(long, env = "FIREBREAK_INCIDENT")]
    pub incident: String,
    /// `md` (default), `json` (the default with `--output json`) or `html`.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
}

impl From<ReportError> for CliError {
    fn from(e: ReportError) -> Self {
        let hint = e.hint();
        match e {
            ReportError::State(s) => s.into(),
            other => CliError::new(ErrorClass::Input, other.to_string(), hint),
        }
    }
}

pub fn exec(global: &GlobalArgs, args: ReportArgs) -> Result<u8, CliError> {
    let id = IncidentId::parse(&args.incident)?;
    let format = args.format.unwrap_or(match global.output {
        OutputFormat::Json => ReportFormat::Json,
        OutputFormat::Text => ReportFormat::Md,
    });
    let store = global.state_store()?;
    let report = report::build(store.as_ref(), &id, &crate::time::now_rfc3339_seconds())?;
    let view: &dyn IncidentView = match format {
        ReportFormat::Md => &Markdown,
        ReportFormat::Json => &Json,
        ReportFormat::Html => &Html,
    };
    print!("{}", view.render(&report));
    // A trail that does not verify makes every line above doubtful: the
    // report is still printed (it is what there is), but not as a success.
    Ok(if report.integrity.intact {
        exit::OK
    } else {
        eprintln!(
            "error: the audit trail of incident {id} does not verify{}; this report may not show what really happened\n  hint: keep the trail as it is and check it with `firebreak audit verify --incident {id}`",
            report
                .integrity
                .broken_line
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default()
        );
        exit::ERROR
    })
}
