use std::process::ExitCode;

use clap::Parser;
use firebreak::cli::{self, exit, Cli, OutputFormat};

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "firebreak=info,warn",
        _ => "firebreak=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIREBREAK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    cli.global.process_started = Some(started);
    if cli.command.talks_to_aws() {
        firebreak::aws::trust_store::warm();
    }
    init_tracing(cli.global.verbose);
    let output = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
                ),
                OutputFormat::Text => eprint!("{}", e.render_text()),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
