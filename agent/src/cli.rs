//! Command line of `linkmeter-agent`: parsing, validation and dispatch.
//!
//! Every bad value is rejected while parsing, with one line on stderr and exit code 64
//! (`EX_USAGE`), before anything is measured.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use linkmeter_runtime::logging::{self, Colour, LogFormat};
use linkmeter_runtime::{exit, kube_client, usage};

use crate::collect::system::SystemConfig;
use crate::config_file;
use crate::daemon::{RunArgs, RunConfig, StaticPeers};
pub use crate::host::HostPaths;
use crate::probe::{IcmpConfig, IcmpFlags, PeerTarget};
use crate::snapshot::{self, SnapshotOptions};
use crate::throughput::{ProbeArgs, ServeArgs, ThroughputError};
use crate::units::parse_duration;

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
    #[arg(long, default_value_t = 10)]
    pub count: u32,
    /// Time between requests to one peer (e.g. `100ms`, `1s`).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to wait for each reply before counting it lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Echo payload in bytes.
    #[arg(long, default_value_t = 56)]
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
/// never imports the CLI. The round's settings meet the same rules as `run`'s.
impl TryFrom<SnapshotArgs> for SnapshotOptions {
    type Error = String;

    fn try_from(a: SnapshotArgs) -> Result<Self, String> {
        let icmp = IcmpConfig {
            count: a.count,
            interval: a.interval,
            timeout: a.timeout,
            payload_bytes: usize::from(a.payload_size),
        };
        icmp.validate(&IcmpFlags {
            count: "--count",
            interval: "--interval",
            timeout: "--timeout",
            payload: "--payload-size",
        })?;
        Ok(SnapshotOptions {
            peers: a.peers.iter().map(|p| PeerTarget::from_host(p)).collect(),
            icmp,
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
        })
    }
}

/// Parses the process arguments and runs the command; the return value is the exit
/// status. Usage errors print one line and return 64.
pub fn main() -> ExitCode {
    let cli = match parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // kube's client logs every failed request at ERROR; the agent logs outages itself,
    // once (`kube::health`).
    let filter = logging::quiet_kube_client(&cli.log_level);
    if let Err(e) = logging::init(cli.log_format, &filter, Colour::Default) {
        eprintln!("linkmeter-agent: invalid --log-level {filter:?}: {e}");
        return exit::code(exit::USAGE);
    }
    match cli.command {
        Command::Run(args) => run_daemon(&args),
        Command::Snapshot(args) => run_snapshot(args),
        Command::Probe(args) => run_async(true, crate::throughput::run_probe(args)),
        Command::Serve(args) => run_async(false, crate::throughput::run_serve(args)),
    }
}

/// Parses `argv`, and for `run --config F` parses it again with the file's entries
/// appended as flags (only those the command line and the environment leave unset),
/// so the file meets the same parsers and the log settings in it apply before
/// logging starts. On error the message is printed and the exit status returned.
fn parse(mut argv: Vec<std::ffi::OsString>) -> Result<Cli, ExitCode> {
    use clap::parser::ValueSource;
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let matches = cmd.try_get_matches_from_mut(&argv).map_err(usage_error)?;
    let run = matches.subcommand_matches("run");
    let Some((run, path)) = run.and_then(|r| Some((r, r.get_one::<PathBuf>("config")?.clone())))
    else {
        return Cli::from_arg_matches(&matches).map_err(usage_error);
    };
    cmd.build();
    let Some(run_cmd) = cmd.find_subcommand("run") else {
        return Cli::from_arg_matches(&matches).map_err(usage_error);
    };
    let set = |source: Option<ValueSource>| {
        matches!(
            source,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    // Global options (the log settings) may be given before `run`, at the top level;
    // asking the top level about another id would panic.
    let global = |id: &str| cmd.get_arguments().any(|a| a.get_id() == id);
    let given =
        |id: &str| set(run.value_source(id)) || (global(id) && set(matches.value_source(id)));
    let flags = config_file::flags_from_file(&path, run_cmd, &given).map_err(|e| {
        eprintln!("linkmeter-agent: {e}");
        exit::code(exit::USAGE)
    })?;
    argv.extend(flags);
    // Only the file's entries are new, so an error now is the file's.
    Cli::try_parse_from(argv).map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            usage_error(e)
        }
        _ => {
            eprintln!(
                "linkmeter-agent: --config {}: {}",
                path.display(),
                usage::first_line(&e)
            );
            exit::code(exit::USAGE)
        }
    })
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
    let config = match RunConfig::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("linkmeter-agent: {e}");
            return exit::code(exit::USAGE);
        }
    };
    let code = run_async(false, async move {
        let token = tokio_util::sync::CancellationToken::new();
        linkmeter_runtime::shutdown::cancel_on_signals(token.clone())?;
        let Some(settings) = config.kube.clone() else {
            let source = std::sync::Arc::new(StaticPeers::new(config.peers.clone()));
            crate::daemon::run(config, source, Vec::new(), token).await?;
            return Ok(exit::code(exit::OK));
        };
        use crate::kube::{ApiHealth, KubeHandles, KubePeers, discovery::Selection};
        let client = match kube_client::connect(settings.kubeconfig.as_deref()).await {
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
    if let Some(code) = usage::help_or_version(&e) {
        return code;
    }
    eprintln!("linkmeter-agent: {}", usage::first_line(&e));
    exit::code(exit::USAGE)
}

fn run_snapshot(args: SnapshotArgs) -> ExitCode {
    let opts = match SnapshotOptions::try_from(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("linkmeter-agent: {e}");
            return exit::code(exit::USAGE);
        }
    };
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
        assert_eq!(args.publish_min_interval, Duration::from_secs(5));
        assert_eq!(args.max_peers, 8);
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
        assert!(parse(&["snapshot", "--interval", "soon"]).is_err());
        assert!(parse(&["snapshot", "--interval", "0s"]).is_err());
        for bad in [
            &["snapshot", "--count", "0"][..],
            &["snapshot", "--payload-size", "9000"],
            &["snapshot", "--timeout", "2m"],
        ] {
            let Command::Snapshot(a) = parse(bad).expect("parses").command else {
                panic!("not snapshot")
            };
            let e = SnapshotOptions::try_from(a).expect_err("breaks the ICMP rules");
            assert!(e.starts_with(bad[1]), "{e} should name {}", bad[1]);
        }
    }

    fn write_config(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    fn parse_with_file(args: &[&str], file: &tempfile::NamedTempFile) -> Option<RunArgs> {
        let mut argv: Vec<std::ffi::OsString> = vec!["linkmeter-agent".into()];
        argv.extend(args.iter().map(std::ffi::OsString::from));
        argv.push("--config".into());
        argv.push(file.path().into());
        match super::parse(argv).ok()?.command {
            Command::Run(a) => Some(*a),
            _ => None,
        }
    }

    #[test]
    fn the_file_takes_every_long_flag_name_and_flags_win() {
        let f = write_config(
            "log-level: debug\nlog-format: json\nping-interval: 30s\nping-count: 5\n\
             peer: [a=10.0.0.1, b=10.0.0.2]\nno-throughput: true\nno-serve: false\n\
             host-proc: /host/proc\nthroughput-max-bytes: 64MiB\n",
        );
        let a =
            parse_with_file(&["run", "--node-name", "n", "--ping-count", "2"], &f).expect("valid");
        assert_eq!(a.ping_interval, Duration::from_secs(30));
        assert_eq!(a.ping_count, 2, "the flag wins over the file");
        assert_eq!(
            a.peers,
            vec!["a=10.0.0.1".to_owned(), "b=10.0.0.2".to_owned()]
        );
        assert!(a.no_throughput && !a.no_serve);
        assert_eq!(a.host.host_proc, PathBuf::from("/host/proc"));
        assert_eq!(a.throughput_max_bytes, 64 << 20);

        let mut argv: Vec<std::ffi::OsString> =
            vec!["linkmeter-agent".into(), "run".into(), "--config".into()];
        argv.push(f.path().into());
        let cli = super::parse(argv).expect("valid");
        assert_eq!(cli.log_level, "debug");
        assert_eq!(cli.log_format, LogFormat::Json);
        // A global option before `run` wins over the file too.
        let mut argv: Vec<std::ffi::OsString> = vec![
            "linkmeter-agent".into(),
            "--log-level=warn".into(),
            "run".into(),
            "--config".into(),
        ];
        argv.push(f.path().into());
        let cli = super::parse(argv).expect("valid");
        assert_eq!(cli.log_level, "warn");
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn every_run_option_is_accepted_as_a_file_key() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        cmd.build();
        let run = cmd.find_subcommand("run").expect("run");
        let keys: Vec<&str> = run
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !["config", "help", "version"].contains(l))
            .collect();
        assert!(
            keys.contains(&"log-level") && keys.contains(&"host-sys"),
            "{keys:?}"
        );
        let given = |_: &str| false;
        for key in keys {
            let text = format!("{key}: x\n");
            let flags = config_file::flags_from_text(&text, run, &given)
                .or_else(|_| config_file::flags_from_text(&format!("{key}: true\n"), run, &given));
            assert!(flags.is_ok(), "{key}: {flags:?}");
        }
    }

    #[test]
    fn file_values_meet_the_flag_parsers() {
        let f = write_config("window: forever\n");
        assert!(parse_with_file(&["run"], &f).is_none());
        let f = write_config("ping-count: many\n");
        assert!(parse_with_file(&["run"], &f).is_none());
    }
}
