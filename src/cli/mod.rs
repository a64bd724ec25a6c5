//! Command-line interface: one subcommand per tool, each dispatched to the module that owns it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// periscope: keeps tenant traffic mirrors attached to their VMs across live migration.
#[derive(Debug, Parser)]
#[command(name = "periscope", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Run(crate::controller::RunArgs),
    /// Build a small local Open vSwitch topology, run the controller on it, and show it at work.
    Demo(crate::demo::DemoArgs),
    /// Receive mirror copies (VXLAN, GRE): count them per key, write pcap files, summarize.
    Collector(crate::collector::CollectorArgs),
    /// Run, list and check end-to-end scenarios on real Open vSwitch.
    Scenario(crate::scenario::ScenarioArgs),
    /// Decode OpenFlow 1.3 messages (hex or raw bytes) and print them as `ovs-ofctl ofp-print`.
    OfpPrint(crate::ofprint::OfpPrintArgs),
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => crate::controller::run(args),
        Command::Demo(args) => crate::demo::run(args),
        Command::Collector(args) => crate::collector::run(args),
        Command::Scenario(args) => crate::scenario::run(args),
        Command::OfpPrint(args) => crate::ofprint::run(args),
    }
}
