//! The `custval` binary: parse, set up logging, call the library, map errors to exit codes.

use clap::Parser;
use custval::cli::{self, Cli, LogFormat};
use std::process::ExitCode;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli::execute(cli) {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(e) => {
            eprintln!("custval: error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
