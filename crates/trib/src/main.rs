//! `trib`: the Tributary command line and composition root.
//!
//! Parses arguments (clap), merges settings once, wires the library crates together and
//! maps outcomes to exit codes: 0 ok, 1 problems found, 2 error. stdout carries data,
//! stderr diagnostics.

mod cli;
mod commands;
mod generate;
mod git;
mod lineage_sink;
mod render;
mod template;

use clap::Parser;
use std::process::ExitCode;

/// Outcome of a command that ran to the end.
pub enum Outcome {
    Ok,
    /// The command worked and found problems (failed checks, breaking changes).
    Problems,
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(&cli.global);
    match commands::run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn init_logging(global: &cli::GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    // `-v` is about Tributary: the Delta libraries log every log-segment read at info,
    // so they get one level less. Opening a table that does not exist yet is how tables
    // get created; the Delta kernel logs that as an error, which is noise here.
    let default = match global.verbose {
        0 => "warn,buoyant_kernel::snapshot=off,deltalake_core::operations::merge=error",
        1 => {
            "info,buoyant_kernel=warn,deltalake_core=warn,buoyant_kernel::snapshot=off,deltalake_core::operations::merge=error"
        }
        _ => "debug,buoyant_kernel=info,deltalake_core=info,buoyant_kernel::snapshot=off",
    };
    let filter = EnvFilter::try_from_env("TRIB_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if global.log_json {
        builder.json().init();
    } else {
        builder.with_ansi(render::color_enabled()).init();
    }
}
