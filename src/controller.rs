//! `periscope run`: the controller process.

use std::process::ExitCode;

/// Options of `periscope run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs the controller until it is told to stop.
pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
