//! The `periscope` command: the controller, and the tools that go with it.

use std::process::ExitCode;

use clap::Parser;

use periscope::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match periscope::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("periscope: {e:#}");
            ExitCode::FAILURE
        }
    }
}
