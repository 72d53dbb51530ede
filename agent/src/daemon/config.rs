//! Typed configuration of `linkmeter-agent run`.
//!
//! [`RunArgs`] is the one definition of every option: its flag, its environment
//! variable, its parser and its default (shown by `--help`). A YAML file (`--config`)
//! names the same options by their long flag names and is turned into flags by
//! [`crate::config_file`], so it meets the same parsers. Flags and variables win over
//! the file, the file over the defaults. [`RunConfig::resolve`] checks the rules that
//! tie options together and builds the one struct the daemon uses. Any bad value is a
//! [`ConfigError`], which the CLI turns into exit code 64.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::host::HostPaths;
use crate::probe::{IcmpConfig, IcmpFlags, PeerTarget};
use crate::throughput::allow::Cidr;
pub use crate::units::{parse_bytes, parse_duration};

/// A configuration error; the message names the option and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Most peers accepted from flags or file.
pub const MAX_STATIC_PEERS: usize = 4096;
/// Most RTT samples kept per peer.
pub const MAX_WINDOW_SAMPLES: usize = 10_000;

/// Options of `run`: each one's flag, variable, parser and default, once.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// YAML file of options keyed by their long flag names (`ping-interval: 30s`,
    /// `peer: [a=10.0.0.1]`, `no-throughput: true`); flags and variables win over it.
    #[arg(long, env = "LINKMETER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP endpoints (/metrics, /healthz, /readyz, /report).
    #[arg(
        long,
        env = "LINKMETER_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:9477"
    )]
    pub listen: SocketAddr,
    /// This node's name [default: the host name]; in a pod, set from the downward API.
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Peer to measure, `[NAME=]HOST`; repeat, or comma-separate in the variable.
    #[arg(
        long = "peer",
        env = "LINKMETER_PEERS",
        value_delimiter = ',',
        value_name = "[NAME=]HOST"
    )]
    pub peers: Vec<String>,
    /// Time between ICMP rounds to every peer.
    #[arg(long, env = "LINKMETER_PING_INTERVAL", value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub ping_interval: Duration,
    /// Echo requests per peer per round.
    #[arg(
        long,
        env = "LINKMETER_PING_COUNT",
        value_name = "N",
        default_value_t = 3
    )]
    pub ping_count: u32,
    /// Gap between the requests of one round.
    #[arg(long, env = "LINKMETER_PING_SPACING", value_name = "DURATION", value_parser = parse_duration, default_value = "200ms")]
    pub ping_spacing: Duration,
    /// Time to wait for an echo reply.
    #[arg(long, env = "LINKMETER_PING_TIMEOUT", value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub ping_timeout: Duration,
    /// Echo payload size in bytes.
    #[arg(
        long,
        env = "LINKMETER_PING_PAYLOAD_SIZE",
        value_name = "BYTES",
        default_value_t = 56
    )]
    pub ping_payload_size: usize,
    /// Length of the RTT window that percentiles and loss summarise.
    #[arg(long, env = "LINKMETER_WINDOW", value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub window: Duration,
    /// Turn throughput tests to peers off (the server still answers unless --no-serve).
    #[arg(long, env = "LINKMETER_NO_THROUGHPUT")]
    pub no_throughput: bool,
    /// Do not run the throughput server.
    #[arg(long, env = "LINKMETER_NO_SERVE")]
    pub no_serve: bool,
    /// Port of the throughput server, ours and peers'.
    #[arg(
        long,
        env = "LINKMETER_THROUGHPUT_PORT",
        value_name = "PORT",
        default_value_t = 5201
    )]
    pub throughput_port: u16,
    /// Shortest time between two throughput tests to the same peer.
    #[arg(long, env = "LINKMETER_THROUGHPUT_PERIOD", value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    pub throughput_period: Duration,
    /// Most bytes this node's client tests may move per hour, all peers together.
    #[arg(long, env = "LINKMETER_THROUGHPUT_BYTES_PER_HOUR", value_name = "BYTES", value_parser = parse_bytes, default_value = "2GiB")]
    pub throughput_bytes_per_hour: u64,
    /// Longest data phase of one test direction we run; as a server we allow peers 2 s more.
    #[arg(long, env = "LINKMETER_THROUGHPUT_MAX_DURATION", value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub throughput_max_duration: Duration,
    /// Most bytes of one test direction we run; as a server we allow peers a quarter more.
    #[arg(long, env = "LINKMETER_THROUGHPUT_MAX_BYTES", value_name = "BYTES", value_parser = parse_bytes, default_value = "512MiB")]
    pub throughput_max_bytes: u64,
    /// Networks allowed to run tests against our server; repeat [default: any].
    #[arg(
        long = "throughput-allow",
        env = "LINKMETER_THROUGHPUT_ALLOW",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub throughput_allow: Vec<String>,
    /// Time between system collections.
    #[arg(long, env = "LINKMETER_SYSTEM_INTERVAL", value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    pub system_interval: Duration,
    /// Time between GPU collections.
    #[arg(long, env = "LINKMETER_GPU_INTERVAL", value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    pub gpu_interval: Duration,
    /// Turn the GPU collector off.
    #[arg(long, env = "LINKMETER_NO_GPU")]
    pub no_gpu: bool,
    /// Turn the system collector off.
    #[arg(long, env = "LINKMETER_NO_SYSTEM")]
    pub no_system: bool,
    /// libnvidia-ml.so to load instead of the dynamic loader's choice.
    #[arg(long, env = "LINKMETER_NVML_LIBRARY", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Most peers with their own Prometheus series; the rest are summed up.
    #[arg(
        long,
        env = "LINKMETER_MAX_PEER_SERIES",
        value_name = "N",
        default_value_t = 128
    )]
    pub max_peer_series: usize,
    /// Discover peers from the cluster's Node objects and publish this node's
    /// NodeTopology (not with --peer).
    #[arg(long, env = "LINKMETER_KUBE")]
    pub kube: bool,
    /// kubeconfig for --kube [default: the in-cluster config, else ~/.kube/config].
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Shortest time between two NodeTopology writes.
    #[arg(long, env = "LINKMETER_PUBLISH_MIN_INTERVAL", value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub publish_min_interval: Duration,
    /// Longest time between two NodeTopology writes, changed or not.
    #[arg(long, env = "LINKMETER_PUBLISH_HEARTBEAT", value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub publish_heartbeat: Duration,
    /// Most peers --kube probes; beyond it, the own zone first, then a rotating sample.
    #[arg(
        long,
        env = "LINKMETER_MAX_PEERS",
        value_name = "N",
        default_value_t = 32
    )]
    pub max_peers: usize,
    /// How long one sample of peers lasts before it rotates (--kube).
    #[arg(long, env = "LINKMETER_PEER_ROTATION", value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    pub peer_rotation: Duration,
    #[command(flatten)]
    pub host: HostPaths,
}

/// Throughput settings after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThroughputConfig {
    /// Run client tests to peers.
    pub client: bool,
    /// Run the server.
    pub serve: bool,
    /// Port of every node's server.
    pub port: u16,
    /// Per-peer minimum time between tests.
    pub period: Duration,
    /// Client bytes per rolling hour.
    pub bytes_per_hour: u64,
    /// Cap on one direction's data phase.
    pub max_duration: Duration,
    /// Cap on one direction's bytes.
    pub max_bytes: u64,
    /// Client networks our server accepts (empty: all).
    pub allow: Vec<Cidr>,
}

/// Settings of `--kube` (peer discovery from Node objects, NodeTopology publishing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// kubeconfig file(s); `None`: in-cluster config, else the default kubeconfig.
    pub kubeconfig: Option<PathBuf>,
    /// Shortest time between two writes.
    pub publish_min_interval: Duration,
    /// Longest time between two writes.
    pub publish_heartbeat: Duration,
    /// Most peers selected from the Node objects.
    pub max_peers: usize,
    /// Length of a peer-selection epoch.
    pub peer_rotation: Duration,
}

/// Most peers `--max-peers` accepts: each costs a few packets per round and an RTT
/// window, and the NodeTopology grows by ~250 bytes per link.
pub const MAX_KUBE_PEERS: usize = 1024;

/// Everything `run` needs, validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// This node's name.
    pub node_name: String,
    /// Static peers.
    pub peers: Vec<PeerTarget>,
    /// Time between ICMP rounds.
    pub ping_interval: Duration,
    /// One round's settings (count, spacing as `interval`, timeout, payload).
    pub icmp: IcmpConfig,
    /// RTT window length.
    pub window: Duration,
    /// Samples kept per peer (derived from window, interval and count).
    pub window_samples: usize,
    /// Throughput settings.
    pub throughput: ThroughputConfig,
    /// System collector interval, or `None` when off.
    pub system_interval: Option<Duration>,
    /// GPU collector interval, or `None` when off.
    pub gpu_interval: Option<Duration>,
    /// NVML library path override.
    pub nvml_library: Option<PathBuf>,
    /// Host paths for the system collector.
    pub host: HostPaths,
    /// Cap on peers with their own series.
    pub max_peer_series: usize,
    /// Kubernetes discovery and publishing; `None` without `--kube`.
    pub kube: Option<KubeSettings>,
}

impl RunConfig {
    /// Checks the options against each other and builds the daemon's configuration.
    pub fn resolve(args: &RunArgs) -> Result<RunConfig, ConfigError> {
        let node_name = args
            .node_name
            .clone()
            .or_else(crate::collect::system::host_name)
            .ok_or_else(|| {
                ConfigError("--node-name is not set and the host name is unknown".into())
            })?;
        validate_name(&node_name)?;
        let peers = parse_peers(&args.peers)?;

        let ping_interval = args.ping_interval;
        let icmp = IcmpConfig {
            count: args.ping_count,
            interval: args.ping_spacing,
            timeout: args.ping_timeout,
            payload_bytes: args.ping_payload_size,
        };
        icmp.validate(&IcmpFlags {
            count: "--ping-count",
            interval: "--ping-spacing",
            timeout: "--ping-timeout",
            payload: "--ping-payload-size",
        })
        .map_err(ConfigError)?;
        check(
            ping_interval >= Duration::from_millis(100),
            "--ping-interval must be at least 100ms",
        )?;
        check(
            ping_interval <= Duration::from_secs(3600),
            "--ping-interval must be at most 1h",
        )?;
        check(
            icmp.interval.saturating_mul(icmp.count.saturating_sub(1)) + icmp.timeout
                <= ping_interval,
            "a round (--ping-count x --ping-spacing + --ping-timeout) must fit in --ping-interval",
        )?;
        let window = args.window;
        check(
            window >= ping_interval,
            "--window must be at least --ping-interval",
        )?;
        check(
            window <= Duration::from_secs(24 * 3600),
            "--window must be at most 24h",
        )?;
        let rounds = window
            .as_millis()
            .div_ceil(ping_interval.as_millis().max(1));
        let window_samples = usize::try_from(rounds.saturating_mul(u128::from(icmp.count)))
            .unwrap_or(usize::MAX)
            .min(MAX_WINDOW_SAMPLES);

        let allow = args
            .throughput_allow
            .iter()
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| ConfigError(format!("--throughput-allow {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let throughput = ThroughputConfig {
            client: !args.no_throughput,
            serve: !args.no_serve,
            port: args.throughput_port,
            period: args.throughput_period,
            bytes_per_hour: args.throughput_bytes_per_hour,
            max_duration: args.throughput_max_duration,
            max_bytes: args.throughput_max_bytes,
            allow,
        };
        check(throughput.port != 0, "--throughput-port must not be 0")?;
        check(
            throughput.period >= Duration::from_secs(1),
            "--throughput-period must be at least 1s",
        )?;
        check(
            throughput.max_duration <= Duration::from_secs(60),
            "--throughput-max-duration must be at most 60s",
        )?;
        check(
            throughput.max_bytes >= 1 << 20,
            "--throughput-max-bytes must be at least 1MiB",
        )?;
        check(
            !throughput.client || throughput.bytes_per_hour >= throughput.max_bytes,
            "--throughput-bytes-per-hour must be at least --throughput-max-bytes",
        )?;

        check(
            args.system_interval >= Duration::from_secs(1),
            "--system-interval must be at least 1s",
        )?;
        check(
            args.gpu_interval >= Duration::from_secs(1),
            "--gpu-interval must be at least 1s",
        )?;
        check(
            args.max_peer_series <= 100_000,
            "--max-peer-series must be at most 100000",
        )?;

        let kube = if args.kube {
            check(
                peers.is_empty(),
                "--kube discovers peers from the Node objects; it cannot be combined with --peer",
            )?;
            let k = KubeSettings {
                kubeconfig: args.kubeconfig.clone(),
                publish_min_interval: args.publish_min_interval,
                publish_heartbeat: args.publish_heartbeat,
                max_peers: args.max_peers,
                peer_rotation: args.peer_rotation,
            };
            check(
                k.publish_min_interval >= Duration::from_secs(1),
                "--publish-min-interval must be at least 1s",
            )?;
            check(
                k.publish_heartbeat >= k.publish_min_interval,
                "--publish-heartbeat must be at least --publish-min-interval",
            )?;
            check(
                k.publish_heartbeat <= Duration::from_secs(24 * 3600),
                "--publish-heartbeat must be at most 24h",
            )?;
            check(
                (1..=MAX_KUBE_PEERS).contains(&k.max_peers),
                &format!("--max-peers must be between 1 and {MAX_KUBE_PEERS}"),
            )?;
            check(
                k.peer_rotation >= Duration::from_secs(1),
                "--peer-rotation must be at least 1s",
            )?;
            Some(k)
        } else {
            None
        };

        Ok(RunConfig {
            listen: args.listen,
            node_name,
            peers,
            ping_interval,
            icmp,
            window,
            window_samples,
            throughput,
            system_interval: (!args.no_system).then_some(args.system_interval),
            gpu_interval: (!args.no_gpu).then_some(args.gpu_interval),
            nvml_library: args.nvml_library.clone(),
            host: args.host.clone(),
            max_peer_series: args.max_peer_series,
            kube,
        })
    }
}

fn check(ok: bool, msg: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError(msg.to_owned()))
    }
}

/// Parses `[NAME=]HOST` entries; names must be unique.
fn parse_peers(texts: &[String]) -> Result<Vec<PeerTarget>, ConfigError> {
    check(
        texts.len() <= MAX_STATIC_PEERS,
        &format!("at most {MAX_STATIC_PEERS} peers"),
    )?;
    let mut peers: Vec<PeerTarget> = Vec::with_capacity(texts.len());
    for t in texts {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let (name, host) = match t.split_once('=') {
            Some((n, h)) => (n.trim(), h.trim()),
            None => (t, t),
        };
        check(!host.is_empty(), &format!("--peer {t:?}: empty host"))?;
        validate_name(name).map_err(|e| ConfigError(format!("--peer {t:?}: {e}")))?;
        check(
            !peers.iter().any(|p| p.name == name),
            &format!("--peer {name:?} given twice"),
        )?;
        peers.push(PeerTarget {
            name: name.to_owned(),
            host: host.to_owned(),
        });
    }
    Ok(peers)
}

/// Node and peer names end up in Prometheus labels and API objects: keep them to a
/// printable, bounded form.
fn validate_name(name: &str) -> Result<(), ConfigError> {
    check(
        !name.is_empty() && name.len() <= 253,
        "name must be 1-253 characters",
    )?;
    check(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c)),
        &format!("name {name:?} may only hold letters, digits and - . _ : [ ]"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `run`'s options on their own, parsed as the CLI parses them.
    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn args(extra: &[&str]) -> RunArgs {
        let argv = ["run", "--node-name", "node-a"]
            .into_iter()
            .chain(extra.iter().copied());
        Run::try_parse_from(argv).expect("parses").args
    }

    #[test]
    fn defaults() {
        let c = RunConfig::resolve(&args(&[])).expect("valid");
        assert_eq!(c.listen, "0.0.0.0:9477".parse().expect("addr"));
        assert_eq!(c.ping_interval, Duration::from_secs(10));
        assert_eq!(c.icmp.count, 3);
        assert_eq!(c.window_samples, 60 * 3);
        assert!(c.throughput.client && c.throughput.serve);
        assert_eq!(c.throughput.port, 5201);
        assert_eq!(c.throughput.bytes_per_hour, 2 << 30);
        assert_eq!(c.throughput.max_bytes, 512 << 20);
    }

    #[test]
    fn bad_values_are_errors_naming_the_option() {
        let cases: Vec<(RunArgs, &str)> = vec![
            (args(&["--ping-count", "0"]), "--ping-count"),
            (args(&["--ping-interval", "10ms"]), "--ping-interval"),
            (
                args(&["--ping-payload-size", "9000"]),
                "--ping-payload-size",
            ),
            (args(&["--peer", "a=x", "--peer", "a=y"]), "twice"),
            (args(&["--peer", "bad name=x"]), "--peer"),
            (
                args(&["--throughput-allow", "10.0.0.0/99"]),
                "--throughput-allow",
            ),
            (args(&["--window", "1s"]), "--window"),
        ];
        for (a, want) in cases {
            let e = RunConfig::resolve(&a).expect_err(want);
            assert!(e.0.contains(want), "{e} should mention {want}");
        }
    }

    #[test]
    fn kube_settings_default_and_exclude_static_peers() {
        let c = RunConfig::resolve(&args(&["--kube"])).expect("valid");
        let k = c.kube.expect("kube on");
        assert_eq!(k.publish_min_interval, Duration::from_secs(60));
        assert_eq!(k.publish_heartbeat, Duration::from_secs(300));
        assert_eq!(k.max_peers, 32);
        assert_eq!(k.peer_rotation, Duration::from_secs(3600));
        // clap reads KUBECONFIG, so the default is whatever the test's environment says.
        assert_eq!(
            k.kubeconfig,
            std::env::var_os("KUBECONFIG").map(PathBuf::from)
        );
        assert!(
            RunConfig::resolve(&args(&[]))
                .expect("valid")
                .kube
                .is_none()
        );

        let e = RunConfig::resolve(&args(&["--kube", "--peer", "a=10.0.0.1"]))
            .expect_err("--kube with --peer");
        assert!(e.0.contains("--peer"), "{e}");
        let e = RunConfig::resolve(&args(&["--kube", "--publish-min-interval", "10m"]))
            .expect_err("heartbeat below min interval");
        assert!(e.0.contains("--publish-heartbeat"), "{e}");
        let c = RunConfig::resolve(&args(&[
            "--kube",
            "--max-peers",
            "8",
            "--peer-rotation",
            "10m",
        ]))
        .expect("valid");
        let k = c.kube.expect("kube on");
        assert_eq!(k.max_peers, 8);
        assert_eq!(k.peer_rotation, Duration::from_secs(600));
    }

    #[test]
    fn unparsable_values_are_refused_by_the_flag_parser() {
        let argv = |v: &[&'static str]| {
            let mut all = vec!["run"];
            all.extend_from_slice(v);
            all
        };
        for bad in [
            &["--window", "forever"][..],
            &["--throughput-max-bytes", "lots"],
            &["--listen", "nowhere"],
            &["--ping-count", "-1"],
        ] {
            assert!(Run::try_parse_from(argv(bad)).is_err(), "{bad:?}");
        }
    }
}
