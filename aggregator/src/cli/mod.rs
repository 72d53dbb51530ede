//! The `linkmeter-aggregator` command line: `run` (the in-cluster controller) and the
//! offline commands `compute`, `predict`, `report` and `explain`, which read what
//! `kubectl get nodetopologies,nodes -o json` prints (or the cluster) and run the same
//! calculation.
//!
//! Exit statuses follow sysexits(3): 0 ok, 1 runtime failure, 64 bad usage, 65 bad input
//! data, 66 an input that cannot be opened. Every failure is one line on stderr.

pub mod calculate;
pub mod cluster_read;
pub mod compute;
pub mod exit;
pub mod explain;
pub mod files;
pub mod inputs;
pub mod predict;
pub mod report;
pub mod stdout;
pub mod view_args;
pub mod warnings;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use linkmeter_runtime::usage;

use exit::Failure;

/// linkmeter cluster aggregator: merges every node's NodeTopology into the cluster's
/// ClusterTopology and the Diktyo NetworkTopology that scheduler-plugins'
/// NetworkOverhead plugin reads.
#[derive(Debug, Parser)]
#[command(
    name = "linkmeter-aggregator",
    version,
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the in-cluster controller: watch NodeTopologies and Nodes, write the
    /// ClusterTopology and the NetworkTopology (leader only)
    Run(crate::controller::RunArgs),
    /// Compute the ClusterTopology and NetworkTopology offline from kubectl output; prints
    /// a v1 List for `kubectl apply -f -`
    ///
    /// The ClusterTopology's status is a subresource, which a plain `kubectl apply` leaves
    /// out; write it with `kubectl apply --server-side -f FILE` followed by
    /// `kubectl apply --server-side --subresource=status -f FILE`.
    Compute(compute::ComputeArgs),
    /// Print the RTT of node pairs, measured or predicted, one JSON object per line
    Predict(predict::PredictArgs),
    /// Summarise the cluster for a person: zones, RTT and throughput matrices, worst links,
    /// stale nodes, GPUs, node classes, model quality
    Report(report::ReportArgs),
    /// Explain where a pod may go: every node with its verdict, the reasons with the
    /// figures, and the score, as the scheduler extender decides now
    Explain(explain::ExplainArgs),
}

/// Parses `argv` and runs the chosen command; returns the process exit status.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Command::Run(args) => return crate::controller::run(args),
        Command::Compute(args) => compute::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Explain(args) => explain::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Help and version go to stdout with status 0; a bare command prints its help on
/// stderr with 64; any other parse error is one line and 64.
fn usage_error(e: &clap::Error) -> ExitCode {
    usage::help_or_version(e).unwrap_or_else(|| {
        Failure::usage(format!("{} (see --help)", usage::first_line(e))).report()
    })
}
