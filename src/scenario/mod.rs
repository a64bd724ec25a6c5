//! `periscope scenario`: scripted end-to-end runs on real Open vSwitch. A scenario file (TOML)
//! declares hypervisors, VMs, collectors, taps, a timeline (pings, migrations, restarts, ...)
//! and expectations about what the collectors must have received; the runner builds it with
//! [`crate::lab`], drives this very binary as the controller, and reports.
//!
//! The file format is described in `docs/SCENARIOS.md`; the shipped scenarios are in
//! `scenarios/`.

pub mod controller;
pub mod expect;
pub mod http;
pub mod interrupt;
pub mod link;
pub mod ovs;
pub mod parse;
pub mod report;
pub mod runner;
pub mod spec;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

pub use interrupt::Interrupt;
pub use parse::{load, parse, ScenarioError};
pub use report::{Outcome, Report};
pub use runner::RunOptions;
pub use spec::Scenario;

use crate::lab::CollectorArgs;

/// Options of `periscope scenario`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ScenarioCommand,
}

/// The `scenario` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ScenarioCommand {
    /// Build a scenario's lab, run its timeline against the controller, report; exits 1 when
    /// an expectation fails, 2 when the run could not complete, 130 when interrupted.
    Run(RunArgs),
    /// List the scenarios of a directory with their descriptions.
    List {
        /// The directory.
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Validate scenario files without running them.
    Check {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The collector program the lab starts in each collector namespace.
    #[command(hide = true)]
    Collector(CollectorArgs),
    /// The UDP and TCP traffic generator the runner starts in VM namespaces.
    #[command(hide = true)]
    Traffic {
        /// What to do.
        #[command(subcommand)]
        mode: traffic::stream::TrafficMode,
    },
}

/// Options of `periscope scenario run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Copy the controller's, the hypervisors' and the collectors' logs to this directory.
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// The controller's log level.
    #[arg(long, default_value = "info")]
    pub controller_log_level: String,
}

/// Runs a `scenario` subcommand.
pub fn run(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ScenarioCommand::Run(a) => run_file(&a),
        ScenarioCommand::List { dir } => list(&dir),
        ScenarioCommand::Check { files } => {
            let mut bad = 0;
            for f in &files {
                match load(f) {
                    Ok(s) => println!(
                        "{}: ok ({} steps, {} expectations)",
                        f.display(),
                        s.steps.len(),
                        s.expects.len()
                    ),
                    Err(e) => {
                        bad += 1;
                        eprintln!("{e}");
                    }
                }
            }
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        ScenarioCommand::Collector(a) => {
            crate::lab::collector::run(&a)?;
            Ok(ExitCode::SUCCESS)
        }
        ScenarioCommand::Traffic { mode } => {
            traffic::stream::run(&mode);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_file(a: &RunArgs) -> anyhow::Result<ExitCode> {
    let spec = load(&a.file)?;
    if let Err(why) = crate::lab::preflight::check() {
        anyhow::bail!("cannot run {}: {why}", a.file.display());
    }
    let program = std::env::current_exe().context("finding the periscope executable")?;
    let opts = RunOptions {
        collector: Some((
            program.clone().into_os_string(),
            vec!["scenario".into(), "collector".into()],
        )),
        program,
        logs: a.logs.clone(),
        progress: !a.quiet,
        log_level: a.controller_log_level.clone(),
    };
    let stop = Interrupt::on_signals()?;
    let report = runner::run(&spec, &opts, &stop);
    print!("{}", report.render());
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::from(report.outcome.exit_code()))
}

fn list(dir: &Path) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let width = files.iter().filter_map(|f| f.file_stem().map(|s| s.len())).max().unwrap_or(0);
    for f in &files {
        let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match load(f) {
            Ok(s) => println!("{stem:<width$}  {}", s.description),
            Err(e) => println!("{stem:<width$}  (invalid: {e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
