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
    /// Make an API token and print it with the `[[token]]` entry for `run --config`.
    Token(TokenArgs),
    /// A debug shell on a running controller: switches, topology, where a VM is, taps, flows.
    Shell(crate::shell::ShellArgs),
    /// Emulate N OpenFlow switches against a controller: connection storm, idle memory, echo.
    Bench(crate::bench::BenchArgs),
}

/// Options of `periscope token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The token's name (shown in the audit trail).
    #[arg(long)]
    pub name: String,
    /// The tenant it acts for; without it, the token is the operator's.
    #[arg(long)]
    pub tenant: Option<String>,
}

fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let token = crate::northbound::auth::new_token().map_err(|e| anyhow::anyhow!(e))?;
    let hash = crate::northbound::auth::TokenHash::of(&token);
    let role = match &args.tenant {
        Some(t) => format!("tenant = {t:?}"),
        None => "role = \"operator\"".to_string(),
    };
    println!("# Give this token to its holder; periscope keeps only its hash:");
    println!("#   {token}");
    println!("[[token]]\nname = {:?}\nsha256 = \"{}\"\n{role}", args.name, hash.0);
    Ok(ExitCode::SUCCESS)
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => crate::controller::run(args),
        Command::Demo(args) => crate::demo::run(args),
        Command::Collector(args) => crate::collector::run(args),
        Command::Scenario(args) => crate::scenario::run(args),
        Command::OfpPrint(args) => crate::ofprint::run(args),
        Command::Token(args) => token(args),
        Command::Shell(args) => crate::shell::run(args),
        Command::Bench(args) => crate::bench::run(args),
    }
}
