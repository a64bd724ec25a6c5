//! `periscope-lab-collector`: the lab's mirror collector, run inside a collector's namespace.
//! Records every VXLAN/GRE copy as a JSON line; prints `ready` once listening; stops when stdin
//! closes.

use std::process::ExitCode;

use clap::Parser;

/// Receives VXLAN (UDP) and GRE (raw IP) mirror copies and writes one JSON line per frame.
#[derive(Debug, Parser)]
#[command(name = "periscope-lab-collector", hide = true)]
struct Cli {
    #[command(flatten)]
    args: periscope::lab::CollectorArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match periscope::lab::collector::run(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("periscope-lab-collector: {e}");
            ExitCode::FAILURE
        }
    }
}
