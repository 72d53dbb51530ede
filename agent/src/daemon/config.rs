//! Typed configuration of `linkmeter-agent run`.
//!
//! Three layers, highest first: command-line flags and their environment variables,
//! an optional YAML file (`--config`), then built-in defaults. [`RunArgs`] is what clap
//! parses (every field optional so "not given" is visible), [`FileConfig`] is the file,
//! and [`RunConfig::resolve`] merges and validates them into the one struct the daemon
//! uses. Any bad value is a [`ConfigError`], which the CLI turns into exit code 64.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::host::HostPaths;
use crate::probe::{IcmpConfig, PeerTarget, icmp::MAX_PAYLOAD_BYTES};
use crate::throughput::allow::Cidr;
pub use crate::units::{parse_bytes, parse_duration};

/// A configuration error; the message names the option and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Largest config file read (bytes); a config is a few hundred bytes.
const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;
/// Most peers accepted from flags or file.
pub const MAX_STATIC_PEERS: usize = 4096;
/// Most RTT samples kept per peer.
pub const MAX_WINDOW_SAMPLES: usize = 10_000;

/// Flags of `run`. Defaults are listed in each help text and applied in
/// [`RunConfig::resolve`], after the config file.
#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// YAML file with any of the options below (kebab-case keys); flags win over it.
    #[arg(long, env = "LINKMETER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP endpoints (/metrics, /healthz, /readyz, /report) [default: 0.0.0.0:9477].
    #[arg(long, env = "LINKMETER_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
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
    /// Time between ICMP rounds to every peer [default: 10s].
    #[arg(long, env = "LINKMETER_PING_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,
    /// Echo requests per peer per round [default: 3].
    #[arg(long, env = "LINKMETER_PING_COUNT", value_name = "N")]
    pub ping_count: Option<u32>,
    /// Gap between the requests of one round [default: 200ms].
    #[arg(long, env = "LINKMETER_PING_SPACING", value_name = "DURATION", value_parser = parse_duration)]
    pub ping_spacing: Option<Duration>,
    /// Time to wait for an echo reply [default: 1s].
    #[arg(long, env = "LINKMETER_PING_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub ping_timeout: Option<Duration>,
    /// Echo payload size in bytes [default: 56].
    #[arg(long, env = "LINKMETER_PING_PAYLOAD_SIZE", value_name = "BYTES")]
    pub ping_payload_size: Option<usize>,
    /// Length of the RTT window that percentiles and loss summarise [default: 10m].
    #[arg(long, env = "LINKMETER_WINDOW", value_name = "DURATION", value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Turn throughput tests to peers off (the server still answers unless --no-serve).
    #[arg(long, env = "LINKMETER_NO_THROUGHPUT")]
    pub no_throughput: bool,
    /// Do not run the throughput server.
    #[arg(long, env = "LINKMETER_NO_SERVE")]
    pub no_serve: bool,
    /// Port of the throughput server, ours and peers' [default: 5201].
    #[arg(long, env = "LINKMETER_THROUGHPUT_PORT", value_name = "PORT")]
    pub throughput_port: Option<u16>,
    /// Shortest time between two throughput tests to the same peer [default: 1h].
    #[arg(long, env = "LINKMETER_THROUGHPUT_PERIOD", value_name = "DURATION", value_parser = parse_duration)]
    pub throughput_period: Option<Duration>,
    /// Most bytes this node's client tests may move per hour, all peers together [default: 2GiB].
    #[arg(long, env = "LINKMETER_THROUGHPUT_BYTES_PER_HOUR", value_name = "BYTES", value_parser = parse_bytes)]
    pub throughput_bytes_per_hour: Option<u64>,
    /// Longest data phase of one test direction (client and server cap) [default: 10s].
    #[arg(long, env = "LINKMETER_THROUGHPUT_MAX_DURATION", value_name = "DURATION", value_parser = parse_duration)]
    pub throughput_max_duration: Option<Duration>,
    /// Most bytes of one test direction (client and server cap) [default: 512MiB].
    #[arg(long, env = "LINKMETER_THROUGHPUT_MAX_BYTES", value_name = "BYTES", value_parser = parse_bytes)]
    pub throughput_max_bytes: Option<u64>,
    /// Networks allowed to run tests against our server; repeat [default: any].
    #[arg(
        long = "throughput-allow",
        env = "LINKMETER_THROUGHPUT_ALLOW",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub throughput_allow: Vec<String>,
    /// Time between system collections [default: 15s].
    #[arg(long, env = "LINKMETER_SYSTEM_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub system_interval: Option<Duration>,
    /// Time between GPU collections [default: 15s].
    #[arg(long, env = "LINKMETER_GPU_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub gpu_interval: Option<Duration>,
    /// Turn the GPU collector off.
    #[arg(long, env = "LINKMETER_NO_GPU")]
    pub no_gpu: bool,
    /// Turn the system collector off.
    #[arg(long, env = "LINKMETER_NO_SYSTEM")]
    pub no_system: bool,
    /// libnvidia-ml.so to load instead of the dynamic loader's choice.
    #[arg(long, env = "LINKMETER_NVML_LIBRARY", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Most peers with their own Prometheus series; the rest are summed up [default: 128].
    #[arg(long, env = "LINKMETER_MAX_PEER_SERIES", value_name = "N")]
    pub max_peer_series: Option<usize>,
    /// Discover peers from the cluster's Node objects and publish this node's
    /// NodeTopology (not with --peer).
    #[arg(long, env = "LINKMETER_KUBE")]
    pub kube: bool,
    /// kubeconfig for --kube [default: the in-cluster config, else ~/.kube/config].
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Shortest time between two NodeTopology writes [default: 60s].
    #[arg(long, env = "LINKMETER_PUBLISH_MIN_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub publish_min_interval: Option<Duration>,
    /// Longest time between two NodeTopology writes, changed or not [default: 5m].
    #[arg(long, env = "LINKMETER_PUBLISH_HEARTBEAT", value_name = "DURATION", value_parser = parse_duration)]
    pub publish_heartbeat: Option<Duration>,
    /// Most peers --kube probes; beyond it, the own zone first, then a rotating sample [default: 32].
    #[arg(long, env = "LINKMETER_MAX_PEERS", value_name = "N")]
    pub max_peers: Option<usize>,
    /// How long one sample of peers lasts before it rotates (--kube) [default: 1h].
    #[arg(long, env = "LINKMETER_PEER_ROTATION", value_name = "DURATION", value_parser = parse_duration)]
    pub peer_rotation: Option<Duration>,
    #[command(flatten)]
    pub host: HostPaths,
}

/// The YAML config file. Same names as the flags, kebab-case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    listen: Option<String>,
    node_name: Option<String>,
    #[serde(default)]
    peers: Vec<String>,
    ping_interval: Option<String>,
    ping_count: Option<u32>,
    ping_spacing: Option<String>,
    ping_timeout: Option<String>,
    ping_payload_size: Option<usize>,
    window: Option<String>,
    throughput: Option<bool>,
    serve: Option<bool>,
    throughput_port: Option<u16>,
    throughput_period: Option<String>,
    throughput_bytes_per_hour: Option<String>,
    throughput_max_duration: Option<String>,
    throughput_max_bytes: Option<String>,
    #[serde(default)]
    throughput_allow: Vec<String>,
    system_interval: Option<String>,
    gpu_interval: Option<String>,
    gpu: Option<bool>,
    system: Option<bool>,
    nvml_library: Option<PathBuf>,
    max_peer_series: Option<usize>,
    kube: Option<bool>,
    kubeconfig: Option<PathBuf>,
    publish_min_interval: Option<String>,
    publish_heartbeat: Option<String>,
    max_peers: Option<usize>,
    peer_rotation: Option<String>,
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
    /// Reads the config file named by `args` (if any), merges and validates.
    pub fn load(args: &RunArgs) -> Result<RunConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Self::resolve(args, file)
    }

    /// Merges flags over the file over defaults and validates the result.
    pub fn resolve(args: &RunArgs, file: FileConfig) -> Result<RunConfig, ConfigError> {
        let dur =
            |flag: Option<Duration>, file: &Option<String>, name: &str, default: Duration| match (
                flag, file,
            ) {
                (Some(d), _) => Ok(d),
                (None, Some(s)) => {
                    parse_duration(s).map_err(|e| ConfigError(format!("config {name}: {e}")))
                }
                (None, None) => Ok(default),
            };
        let bytes =
            |flag: Option<u64>, file: &Option<String>, name: &str, default: u64| match (flag, file)
            {
                (Some(b), _) => Ok(b),
                (None, Some(s)) => {
                    parse_bytes(s).map_err(|e| ConfigError(format!("config {name}: {e}")))
                }
                (None, None) => Ok(default),
            };

        let listen = match (args.listen, &file.listen) {
            (Some(a), _) => a,
            (None, Some(s)) => s
                .parse()
                .map_err(|e| ConfigError(format!("config listen: {s:?} is not ADDR:PORT ({e})")))?,
            (None, None) => SocketAddr::from(([0, 0, 0, 0], 9477)),
        };
        let node_name = args
            .node_name
            .clone()
            .or(file.node_name.clone())
            .or_else(crate::collect::system::host_name)
            .ok_or_else(|| {
                ConfigError("--node-name is not set and the host name is unknown".into())
            })?;
        validate_name(&node_name)?;

        let peer_texts = if args.peers.is_empty() {
            &file.peers
        } else {
            &args.peers
        };
        let peers = parse_peers(peer_texts)?;

        let ping_interval = dur(
            args.ping_interval,
            &file.ping_interval,
            "ping-interval",
            Duration::from_secs(10),
        )?;
        let count = args.ping_count.or(file.ping_count).unwrap_or(3);
        let spacing = dur(
            args.ping_spacing,
            &file.ping_spacing,
            "ping-spacing",
            Duration::from_millis(200),
        )?;
        let timeout = dur(
            args.ping_timeout,
            &file.ping_timeout,
            "ping-timeout",
            Duration::from_secs(1),
        )?;
        let payload = args
            .ping_payload_size
            .or(file.ping_payload_size)
            .unwrap_or(56);
        let window = dur(
            args.window,
            &file.window,
            "window",
            Duration::from_secs(600),
        )?;

        check(
            ping_interval >= Duration::from_millis(100),
            "--ping-interval must be at least 100ms",
        )?;
        check(
            ping_interval <= Duration::from_secs(3600),
            "--ping-interval must be at most 1h",
        )?;
        check(
            (1..=100).contains(&count),
            "--ping-count must be between 1 and 100",
        )?;
        check(
            spacing >= Duration::from_millis(1),
            "--ping-spacing must be at least 1ms",
        )?;
        check(
            spacing.saturating_mul(count.saturating_sub(1)) + timeout <= ping_interval,
            "a round (--ping-count x --ping-spacing + --ping-timeout) must fit in --ping-interval",
        )?;
        check(
            timeout >= Duration::from_millis(1) && timeout <= Duration::from_secs(60),
            "--ping-timeout must be between 1ms and 60s",
        )?;
        check(
            payload <= MAX_PAYLOAD_BYTES,
            &format!("--ping-payload-size must be at most {MAX_PAYLOAD_BYTES}"),
        )?;
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
        let window_samples = usize::try_from(rounds.saturating_mul(u128::from(count)))
            .unwrap_or(usize::MAX)
            .min(MAX_WINDOW_SAMPLES);

        let allow_texts = if args.throughput_allow.is_empty() {
            &file.throughput_allow
        } else {
            &args.throughput_allow
        };
        let allow = allow_texts
            .iter()
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| ConfigError(format!("--throughput-allow {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let throughput = ThroughputConfig {
            client: !args.no_throughput && file.throughput.unwrap_or(true),
            serve: !args.no_serve && file.serve.unwrap_or(true),
            port: args
                .throughput_port
                .or(file.throughput_port)
                .unwrap_or(5201),
            period: dur(
                args.throughput_period,
                &file.throughput_period,
                "throughput-period",
                Duration::from_secs(3600),
            )?,
            bytes_per_hour: bytes(
                args.throughput_bytes_per_hour,
                &file.throughput_bytes_per_hour,
                "throughput-bytes-per-hour",
                2 << 30,
            )?,
            max_duration: dur(
                args.throughput_max_duration,
                &file.throughput_max_duration,
                "throughput-max-duration",
                Duration::from_secs(10),
            )?,
            max_bytes: bytes(
                args.throughput_max_bytes,
                &file.throughput_max_bytes,
                "throughput-max-bytes",
                512 << 20,
            )?,
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

        let system_on = !args.no_system && file.system.unwrap_or(true);
        let gpu_on = !args.no_gpu && file.gpu.unwrap_or(true);
        let system_interval = dur(
            args.system_interval,
            &file.system_interval,
            "system-interval",
            Duration::from_secs(15),
        )?;
        let gpu_interval = dur(
            args.gpu_interval,
            &file.gpu_interval,
            "gpu-interval",
            Duration::from_secs(15),
        )?;
        check(
            system_interval >= Duration::from_secs(1),
            "--system-interval must be at least 1s",
        )?;
        check(
            gpu_interval >= Duration::from_secs(1),
            "--gpu-interval must be at least 1s",
        )?;
        let max_peer_series = args.max_peer_series.or(file.max_peer_series).unwrap_or(128);
        check(
            max_peer_series <= 100_000,
            "--max-peer-series must be at most 100000",
        )?;

        let kube = if args.kube || file.kube.unwrap_or(false) {
            check(
                peers.is_empty(),
                "--kube discovers peers from the Node objects; it cannot be combined with --peer",
            )?;
            let k = KubeSettings {
                kubeconfig: args.kubeconfig.clone().or(file.kubeconfig.clone()),
                publish_min_interval: dur(
                    args.publish_min_interval,
                    &file.publish_min_interval,
                    "publish-min-interval",
                    Duration::from_secs(60),
                )?,
                publish_heartbeat: dur(
                    args.publish_heartbeat,
                    &file.publish_heartbeat,
                    "publish-heartbeat",
                    Duration::from_secs(300),
                )?,
                max_peers: args.max_peers.or(file.max_peers).unwrap_or(32),
                peer_rotation: dur(
                    args.peer_rotation,
                    &file.peer_rotation,
                    "peer-rotation",
                    Duration::from_secs(3600),
                )?,
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
            listen,
            node_name,
            peers,
            ping_interval,
            icmp: IcmpConfig {
                count,
                interval: spacing,
                timeout,
                payload_bytes: payload,
            },
            window,
            window_samples,
            throughput,
            system_interval: system_on.then_some(system_interval),
            gpu_interval: gpu_on.then_some(gpu_interval),
            nvml_library: args.nvml_library.clone().or(file.nvml_library),
            host: args.host.clone(),
            max_peer_series,
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

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| ConfigError(format!("--config {}: {e}", path.display())))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| ConfigError(format!("--config {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(ConfigError(format!(
            "--config {}: larger than 1 MiB",
            path.display()
        )));
    }
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_norway::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid YAML");
        ConfigError(format!("--config {}: {first}", path.display()))
    })
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

    fn args() -> RunArgs {
        RunArgs {
            node_name: Some("node-a".into()),
            ..Default::default()
        }
    }

    fn file(yaml: &str) -> FileConfig {
        serde_norway::from_str(yaml).expect("yaml")
    }

    #[test]
    fn defaults() {
        let c = RunConfig::resolve(&args(), FileConfig::default()).expect("valid");
        assert_eq!(c.listen, "0.0.0.0:9477".parse().expect("addr"));
        assert_eq!(c.ping_interval, Duration::from_secs(10));
        assert_eq!(c.icmp.count, 3);
        assert_eq!(c.window_samples, 60 * 3);
        assert!(c.throughput.client && c.throughput.serve);
        assert_eq!(c.throughput.port, 5201);
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let f = file("ping-interval: 30s\nping-count: 5\npeers: [a=10.0.0.1]\nthroughput: false\n");
        let mut a = args();
        a.ping_count = Some(2);
        let c = RunConfig::resolve(&a, f).expect("valid");
        assert_eq!(c.ping_interval, Duration::from_secs(30));
        assert_eq!(c.icmp.count, 2);
        assert_eq!(
            c.peers,
            vec![PeerTarget {
                name: "a".into(),
                host: "10.0.0.1".into()
            }]
        );
        assert!(!c.throughput.client);
    }

    #[test]
    fn bad_values_are_errors_naming_the_option() {
        let cases: Vec<(RunArgs, &str)> = vec![
            (
                RunArgs {
                    ping_count: Some(0),
                    ..args()
                },
                "--ping-count",
            ),
            (
                RunArgs {
                    ping_interval: Some(Duration::from_millis(10)),
                    ..args()
                },
                "--ping-interval",
            ),
            (
                RunArgs {
                    peers: vec!["a=x".into(), "a=y".into()],
                    ..args()
                },
                "twice",
            ),
            (
                RunArgs {
                    peers: vec!["bad name=x".into()],
                    ..args()
                },
                "--peer",
            ),
            (
                RunArgs {
                    throughput_allow: vec!["10.0.0.0/99".into()],
                    ..args()
                },
                "--throughput-allow",
            ),
            (
                RunArgs {
                    window: Some(Duration::from_secs(1)),
                    ..args()
                },
                "--window",
            ),
        ];
        for (a, want) in cases {
            let e = RunConfig::resolve(&a, FileConfig::default()).expect_err(want);
            assert!(e.0.contains(want), "{e} should mention {want}");
        }
    }

    #[test]
    fn kube_settings_default_and_exclude_static_peers() {
        let c = RunConfig::resolve(
            &RunArgs {
                kube: true,
                ..args()
            },
            FileConfig::default(),
        )
        .expect("valid");
        let k = c.kube.expect("kube on");
        assert_eq!(k.publish_min_interval, Duration::from_secs(60));
        assert_eq!(k.publish_heartbeat, Duration::from_secs(300));
        assert_eq!(k.max_peers, 32);
        assert_eq!(k.peer_rotation, Duration::from_secs(3600));
        assert!(k.kubeconfig.is_none());
        assert!(
            RunConfig::resolve(&args(), FileConfig::default())
                .expect("valid")
                .kube
                .is_none()
        );

        let e = RunConfig::resolve(
            &RunArgs {
                kube: true,
                peers: vec!["a=10.0.0.1".into()],
                ..args()
            },
            FileConfig::default(),
        )
        .expect_err("--kube with --peer");
        assert!(e.0.contains("--peer"), "{e}");
        let e = RunConfig::resolve(
            &RunArgs {
                kube: true,
                publish_min_interval: Some(Duration::from_secs(600)),
                ..args()
            },
            FileConfig::default(),
        )
        .expect_err("heartbeat below min interval");
        assert!(e.0.contains("--publish-heartbeat"), "{e}");
        let c = RunConfig::resolve(
            &args(),
            file("kube: true\nmax-peers: 8\npeer-rotation: 10m\n"),
        )
        .expect("valid");
        let k = c.kube.expect("kube from file");
        assert_eq!(k.max_peers, 8);
        assert_eq!(k.peer_rotation, Duration::from_secs(600));
    }

    #[test]
    fn unknown_file_keys_and_bad_file_values_are_rejected() {
        assert!(serde_norway::from_str::<FileConfig>("ping-intervall: 10s").is_err());
        let e = RunConfig::resolve(&args(), file("window: forever")).expect_err("bad window");
        assert!(e.0.contains("window"));
    }
}
