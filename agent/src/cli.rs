//! Command line of `linkmeter-agent`: parsing, validation and dispatch.
//!
//! Every bad value is rejected while parsing, with one line on stderr and exit code 64
//! (`EX_USAGE`), before anything is measured.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::exit;
use crate::logging::{self, LogFormat};
use crate::snapshot::{self, SnapshotOptions};

/// linkmeter node agent: measures latency and throughput to peer nodes, GPUs and the
/// host, for Prometheus and for topology-aware scheduling.
#[derive(Debug, Parser)]
#[command(name = "linkmeter-agent", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log filter in RUST_LOG syntax (e.g. `info`, `linkmeter_agent=debug`).
    #[arg(
        long,
        global = true,
        env = "LINKMETER_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, env = "LINKMETER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One-shot report of this machine: system, GPUs and RTT to the given peers.
    Snapshot(SnapshotArgs),
}

/// Arguments of `snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Peer to probe with ICMP echo (host name or address); repeat for several peers.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<String>,
    /// Echo requests per peer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Time between requests to one peer (e.g. `100ms`, `1s`).
    #[arg(long, default_value = "100ms", value_parser = parse_interval)]
    pub interval: Duration,
    /// How long to wait for each reply before counting it lost.
    #[arg(long, default_value = "1s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Echo payload in bytes.
    #[arg(long, default_value_t = 56, value_parser = clap::value_parser!(u16).range(0..=8192))]
    pub payload_size: u16,
    /// Print the report as JSON in the NodeTopology status shape.
    #[arg(long)]
    pub json: bool,
    /// Skip the GPU collector.
    #[arg(long)]
    pub no_gpu: bool,
    /// Skip the system collector.
    #[arg(long)]
    pub no_system: bool,
    /// Path of libnvidia-ml.so to load instead of the dynamic loader's choice.
    #[arg(long, env = "LINKMETER_NVML_LIBRARY", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostPaths,
}

/// Where the host's /proc, /sys and root filesystem are (mounted into the container).
#[derive(Debug, Args, Clone)]
pub struct HostPaths {
    /// The host's /proc (e.g. `/host/proc` in a container).
    #[arg(
        long,
        env = "LINKMETER_HOST_PROC",
        default_value = "/proc",
        value_name = "DIR"
    )]
    pub host_proc: PathBuf,
    /// The host's /sys.
    #[arg(
        long,
        env = "LINKMETER_HOST_SYS",
        default_value = "/sys",
        value_name = "DIR"
    )]
    pub host_sys: PathBuf,
    /// The host's root filesystem, for disk usage of its mount points.
    #[arg(
        long,
        env = "LINKMETER_HOST_ROOT",
        default_value = "/",
        value_name = "DIR"
    )]
    pub host_root: PathBuf,
}

fn parse_duration_in(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (expected e.g. 100ms, 2s, 1m)"))?;
    if d < min || d > max {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, Duration::from_millis(1), Duration::from_secs(3600))
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, Duration::from_millis(1), Duration::from_secs(60))
}

/// Parses the process arguments and runs the command; the return value is the exit
/// status. Usage errors print one line and return 64.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Err(msg) = logging::init(cli.log_format, &cli.log_level) {
        eprintln!("linkmeter-agent: {msg}");
        return exit::code(exit::USAGE);
    }
    match cli.command {
        Command::Snapshot(args) => run_snapshot(args),
    }
}

/// Prints clap's help/version as usual; any other parse error becomes one line + 64.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                exit::code(exit::USAGE)
            } else {
                exit::code(exit::OK)
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let line = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("linkmeter-agent: {}", line.trim_start_matches("error: "));
            exit::code(exit::USAGE)
        }
    }
}

fn run_snapshot(args: SnapshotArgs) -> ExitCode {
    let opts = SnapshotOptions::from(args);
    // One thread is plenty for a one-shot report and keeps RSS small; collectors that
    // block run on Tokio's blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("linkmeter-agent: cannot start the async runtime: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    let snap = rt.block_on(snapshot::take(&opts));
    let out = if opts.json {
        snapshot::render::json(&snap)
    } else {
        Ok(snapshot::render::text(&snap))
    };
    match out {
        Ok(text) => {
            println!("{text}");
            exit::code(exit::OK)
        }
        Err(e) => {
            eprintln!("linkmeter-agent: cannot render the report: {e}");
            exit::code(exit::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("linkmeter-agent").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn snapshot_defaults() {
        let cli = parse(&["snapshot", "--peer", "127.0.0.1"]).expect("parses");
        let Command::Snapshot(a) = cli.command;
        assert_eq!(a.count, 10);
        assert_eq!(a.interval, Duration::from_millis(100));
        assert_eq!(a.peers, vec!["127.0.0.1".to_owned()]);
    }

    #[test]
    fn zero_count_and_bad_interval_are_rejected() {
        assert!(parse(&["snapshot", "--count", "0"]).is_err());
        assert!(parse(&["snapshot", "--interval", "soon"]).is_err());
        assert!(parse(&["snapshot", "--interval", "0s"]).is_err());
        assert!(parse(&["snapshot", "--payload-size", "9000"]).is_err());
    }
}
