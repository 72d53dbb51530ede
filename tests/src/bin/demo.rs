//! `linkmeter-demo`: measures a three-node cluster in network namespaces and schedules
//! on it. Run through `scripts/demo.sh`, which builds and installs what it needs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use linkmeter_tests::demo::{self, Options};

/// Measure a seed-like mini-cluster (a VPS behind 10 Mbit/s and 45 ms, two home PCs on a
/// 1 Gbit/s LAN, a GPU) with real agents, a real API server and kube-scheduler, and place
/// pods on what was measured. Needs root (network namespaces).
#[derive(Debug, Parser)]
#[command(name = "linkmeter-demo", version)]
struct Args {
    /// Assert the matrix (against ping and iperf3 on the same paths), the placements and
    /// the dashboard's queries; exit 1 with the reasons when one is off.
    #[arg(long)]
    check: bool,
    /// Leave everything running after the demo until Ctrl-C, and print how to reach it.
    #[arg(long)]
    keep: bool,
    /// Skip the ping/iperf3 reference measurements (not with --check).
    #[arg(long, conflicts_with = "check")]
    no_reference: bool,
    /// Do not start Prometheus even when it is installed (not with --check).
    #[arg(long, conflicts_with = "check")]
    no_prometheus: bool,
    /// Directory for the picture of the matrix.
    #[arg(long, value_name = "DIR", default_value = "target/demo")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("linkmeter-demo: needs root (it creates network namespaces); run it with sudo");
        return ExitCode::from(64);
    }
    let opts = Options {
        check: args.check,
        keep: args.keep,
        reference: !args.no_reference,
        prometheus: !args.no_prometheus && demo::prometheus_installed(),
        out_dir: args.out,
    };
    match demo::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if demo::interrupted() => {
            eprintln!("linkmeter-demo: interrupted; everything it started is stopped");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("linkmeter-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}
