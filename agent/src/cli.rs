//! Command line of `linkmeter-agent`: parsing, validation and dispatch.
//!
//! Every bad value is rejected while parsing, with one line on stderr and exit code 64
//! (`EX_USAGE`), before anything is measured.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::collect::system::SystemConfig;
use crate::daemon::{RunArgs, RunConfig, StaticPeers};
use crate::exit;
pub use crate::host::HostPaths;
use crate::logging::{self, LogFormat};
use crate::probe::{IcmpConfig, PeerTarget};
use crate::snapshot::{self, SnapshotOptions};
use crate::throughput::{ProbeArgs, ServeArgs, ThroughputError};
use crate::units::parse_duration_in;

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
    /// Run the agent: measure peers continuously and serve /metrics, /healthz, /readyz, /report.
    Run(Box<RunArgs>),
    /// One-shot report of this machine: system, GPUs and RTT to the given peers.
    Snapshot(SnapshotArgs),
    /// Measure TCP throughput to an iperf3-compatible server, both directions (like `iperf3 -c`).
    Probe(ProbeArgs),
    /// Answer throughput tests only (stock `iperf3 -c` works against it).
    Serve(ServeArgs),
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

/// The CLI owns the mapping from its flags to what `snapshot` runs, so `snapshot`
/// never imports the CLI.
impl From<SnapshotArgs> for SnapshotOptions {
    fn from(a: SnapshotArgs) -> Self {
        SnapshotOptions {
            peers: a.peers.iter().map(|p| PeerTarget::from_host(p)).collect(),
            icmp: IcmpConfig {
                count: a.count,
                interval: a.interval,
                timeout: a.timeout,
                payload_bytes: usize::from(a.payload_size),
            },
            gpu: !a.no_gpu,
            nvml_library: a.nvml_library,
            system: !a.no_system,
            system_config: SystemConfig {
                proc_root: a.host.host_proc,
                sys_root: a.host.host_sys,
                root_fs: a.host.host_root,
                ..SystemConfig::default()
            },
            json: a.json,
        }
    }
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
    if let Err(msg) = logging::init(cli.log_format, &quiet_kube_client(&cli.log_level)) {
        eprintln!("linkmeter-agent: {msg}");
        return exit::code(exit::USAGE);
    }
    match cli.command {
        Command::Run(args) => run_daemon(&args),
        Command::Snapshot(args) => run_snapshot(args),
        Command::Probe(args) => run_async(true, crate::throughput::run_probe(args)),
        Command::Serve(args) => run_async(false, crate::throughput::run_serve(args)),
    }
}

/// Adds `kube_client::client::builder=off` to a log filter that says nothing about
/// `kube_client`: the client's tracing layer logs every failed request at ERROR, which
/// during an API outage is a line per retry. The agent logs outages itself, once
/// (`kube::health`). A filter that names `kube_client` is left as the user wrote it.
fn quiet_kube_client(filter: &str) -> String {
    if filter.contains("kube_client") {
        filter.to_owned()
    } else if filter.trim().is_empty() {
        "kube_client::client::builder=off".to_owned()
    } else {
        format!("{filter},kube_client::client::builder=off")
    }
}

/// Runs an async entry point on a fresh runtime; a `ThroughputError::Config` anywhere
/// in the error chain is a usage error (64).
fn run_async(
    single_thread: bool,
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> ExitCode {
    let rt = if single_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("linkmeter-agent: cannot start the async runtime: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    match rt.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ThroughputError>(),
                    Some(ThroughputError::Config(_))
                )
            });
            eprintln!("linkmeter-agent: {e:#}");
            exit::code(if usage { exit::USAGE } else { exit::FAILURE })
        }
    }
}

/// `run`: validates the configuration (64 on error), then runs until SIGTERM/SIGINT.
fn run_daemon(args: &RunArgs) -> ExitCode {
    let config = match RunConfig::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("linkmeter-agent: {e}");
            return exit::code(exit::USAGE);
        }
    };
    let code = run_async(false, async move {
        let token = tokio_util::sync::CancellationToken::new();
        crate::shutdown::cancel_on_signals(token.clone())?;
        let Some(settings) = config.kube.clone() else {
            let source = std::sync::Arc::new(StaticPeers::new(config.peers.clone()));
            crate::daemon::run(config, source, Vec::new(), token).await?;
            return Ok(exit::code(exit::OK));
        };
        use crate::kube::{ApiHealth, KubeHandles, KubePeers, discovery::Selection};
        let client = match crate::kube::connect(settings.kubeconfig.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("linkmeter-agent: {e}");
                return Ok(exit::code(exit::USAGE));
            }
        };
        let health = std::sync::Arc::new(ApiHealth::new());
        let source = KubePeers::start(
            client.clone(),
            Selection {
                node_name: config.node_name.clone(),
                max_peers: settings.max_peers,
                rotation: settings.peer_rotation,
            },
            health.clone(),
            token.clone(),
        );
        let kube = KubeHandles { client, health };
        crate::daemon::run(config, source, vec![Box::new(kube)], token).await?;
        Ok(exit::code(exit::OK))
    });
    if code != exit::code(exit::OK) {
        write_termination_log("linkmeter-agent run failed; see the log for the cause");
    }
    code
}

/// Kubernetes shows `/dev/termination-log` in `kubectl describe pod`; write the reason
/// there when it exists (outside a pod it does not, and nothing is written).
fn write_termination_log(msg: &str) {
    let path = std::path::Path::new("/dev/termination-log");
    if path.exists() {
        let _ = std::fs::write(path, msg);
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
    run_async(true, async move {
        let snap = snapshot::take(&opts).await;
        let out = if opts.json {
            snapshot::render::json(&snap)
        } else {
            Ok(snapshot::render::text(&snap))
        };
        match out {
            Ok(text) => {
                println!("{text}");
                Ok(exit::code(exit::OK))
            }
            Err(e) => {
                eprintln!("linkmeter-agent: cannot render the report: {e}");
                Ok(exit::code(exit::FAILURE))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("linkmeter-agent").chain(args.iter().copied()))
    }

    #[test]
    fn kube_client_request_failures_are_quiet_unless_asked_for() {
        assert_eq!(
            quiet_kube_client("info"),
            "info,kube_client::client::builder=off"
        );
        assert_eq!(quiet_kube_client("kube_client=debug"), "kube_client=debug");
    }

    #[test]
    fn kube_flags_parse_with_defaults_in_help() {
        let cli = parse(&[
            "run",
            "--kube",
            "--kubeconfig",
            "/tmp/kc",
            "--publish-min-interval",
            "5s",
            "--max-peers",
            "8",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert!(args.kube);
        assert_eq!(args.publish_min_interval, Some(Duration::from_secs(5)));
        assert_eq!(args.max_peers, Some(8));
        let help = match parse(&["run", "--help"]) {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        for want in [
            "--kube",
            "--kubeconfig",
            "[default: 60s]",
            "[default: 5m]",
            "[default: 32]",
            "[default: 1h]",
            "LINKMETER_KUBE",
            "KUBECONFIG",
        ] {
            assert!(help.contains(want), "help lacks {want}:\n{help}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn snapshot_defaults() {
        let cli = parse(&["snapshot", "--peer", "127.0.0.1"]).expect("parses");
        let Command::Snapshot(a) = cli.command else {
            panic!("not snapshot")
        };
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
