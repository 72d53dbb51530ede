//! The flags of `run` ([`RunArgs`]) and their checked form ([`Settings`]).
//!
//! Syntax (a duration that does not parse, an address that is not one) is clap's to
//! reject; [`Settings::from_args`] checks what clap cannot (ranges, names the API server
//! would refuse) so that a bad value stops the process at start with one line, not at
//! the first write.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use linkmeter_runtime::logging::LogFormat;

use crate::api::{AGGREGATOR_FIELD_MANAGER, CLUSTER_TOPOLOGY_NAME, DEFAULT_WEIGHTS_NAME};

/// Options of `linkmeter-aggregator run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Kubeconfig file (several may be joined with `:`). Without it: the pod's
    /// ServiceAccount when in a cluster, else what `KUBECONFIG` or `~/.kube/config` gives.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Recompute when a Node or NodeTopology changed, at most this often; with no change
    /// at all, recompute every four intervals anyway so that nodes turning stale show.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    /// A NodeTopology whose `observedAt` is older than this is stale: listed, and left
    /// out of costs and of the coordinate fit.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub stale_after: Duration,

    /// Name of the (cluster-scoped) ClusterTopology to write.
    #[arg(long, value_name = "NAME", default_value = CLUSTER_TOPOLOGY_NAME)]
    pub cluster_topology_name: String,

    /// Namespace of the Diktyo NetworkTopology to write.
    #[arg(long, value_name = "NAMESPACE", default_value = "default")]
    pub network_topology_namespace: String,

    /// Name of the Diktyo NetworkTopology to write.
    #[arg(long, value_name = "NAME", default_value = "nt-default")]
    pub network_topology_name: String,

    /// `weights[].name` in the NetworkTopology: the NetworkOverhead plugin's `weightsName`.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_WEIGHTS_NAME)]
    pub weights_name: String,

    /// `spec.configmapName` of the NetworkTopology (the CRD requires one; the plugin does
    /// not read it when weights are given).
    #[arg(long, value_name = "NAME", default_value = "linkmeter-aggregator")]
    pub configmap_name: String,

    /// Do not write the NetworkTopology (for clusters without the Diktyo CRD).
    #[arg(long)]
    pub no_network_topology: bool,

    /// Address of the HTTP server (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9478")]
    pub listen: SocketAddr,

    /// Serve the kube-scheduler extender (`POST /filter`, `POST /prioritize`) on this
    /// address. Every replica serves it from its own caches, leader or not. Off when not
    /// given.
    #[arg(long, value_name = "ADDR", env = "LINKMETER_EXTENDER_LISTEN")]
    pub extender_listen: Option<SocketAddr>,

    /// Largest extender request body accepted, bytes (a quantity: `64Mi`). A request with
    /// 5,000 whole Nodes (`nodeCacheCapable: false`) is about 10 MiB, more with the
    /// Nodes' image lists; one with node names about 200 KiB.
    #[arg(long, value_name = "BYTES", default_value = "64Mi", value_parser = parse_quantity)]
    pub extender_max_body: u64,

    /// Keep the `linkmeter.dev/uplink-class` label (`slow` or `fast`, by the measured
    /// uplink, with hysteresis) on every Node, for plain nodeSelectors (leader only).
    #[arg(long)]
    pub label_nodes: bool,

    /// With `--label-nodes`: an uplink below this (bit/s, a quantity: `50M`) is `slow`;
    /// it is `fast` again only from 5/4 of it.
    #[arg(long, value_name = "BITS", default_value = "50M", value_parser = parse_quantity)]
    pub slow_uplink_below: u64,

    /// Do not write NodeBandwidth objects (capacity, reservations, available per node).
    #[arg(long)]
    pub no_node_bandwidth: bool,

    /// Elect one writer among the replicas through a Lease. With `false` this process
    /// always writes (one replica only).
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub leader_election: bool,

    /// Name of the `coordination.k8s.io/v1` Lease the replicas compete for.
    #[arg(long, value_name = "NAME", default_value = "linkmeter-aggregator")]
    pub lease_name: String,

    /// Namespace of the Lease (the aggregator's own).
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "POD_NAMESPACE",
        default_value = "linkmeter"
    )]
    pub lease_namespace: String,

    /// How long a leader's Lease holds without renewal: a follower takes over within
    /// this when the leader dies. Whole seconds, at least 2.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// This replica's name in the Lease [default: host name and process id].
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    pub identity: Option<String>,

    /// Log line format on standard error.
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        env = "LINKMETER_AGGREGATOR_LOG_FORMAT",
        default_value_t = LogFormat::Json
    )]
    pub log_format: LogFormat,

    /// Log filter in RUST_LOG syntax (e.g. `info`, `linkmeter_aggregator=debug`).
    #[arg(long, value_name = "FILTER", env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

/// A humantime duration (`30s`, `1500ms`, `15m`); zero is accepted here and refused by
/// [`Settings::from_args`], which names the flag.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// A Kubernetes quantity (`64Mi`, `50M`).
fn parse_quantity(s: &str) -> Result<u64, String> {
    crate::placement::quantity::parse(s)
}

/// What `run` was asked to do, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Kubeconfig path(s), when given.
    pub kubeconfig: Option<PathBuf>,
    /// Shortest time between two computations.
    pub interval: Duration,
    /// Longest time between two computations (four intervals).
    pub refresh: Duration,
    /// Staleness threshold handed to the computation.
    pub stale_after: Duration,
    /// Where the two objects go and what they are called.
    pub targets: Targets,
    /// HTTP address.
    pub listen: SocketAddr,
    /// The extender's address and body limit, when served.
    pub extender: Option<(SocketAddr, usize)>,
    /// `--slow-uplink-below` with `--label-nodes`.
    pub label_threshold: Option<u64>,
    /// Write NodeBandwidth objects.
    pub node_bandwidth: bool,
    /// `None` when leader election is off (always the writer).
    pub election: Option<Election>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
}

/// Names of the objects this process writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// ClusterTopology name.
    pub cluster_topology: String,
    /// NetworkTopology namespace and name; `None` with `--no-network-topology`.
    pub network_topology: Option<(String, String)>,
    /// `weights[].name`.
    pub weights_name: String,
    /// `spec.configmapName`.
    pub configmap_name: String,
}

/// Lease settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity.
    pub identity: String,
    /// Lease duration, seconds.
    pub duration_secs: u64,
    /// How long before expiry the holder renews, seconds (below `duration_secs`).
    pub grace_secs: u64,
    /// Field manager of the Lease writes (one per identity, as the lease manager expects).
    pub field_manager: String,
}

impl Settings {
    /// Checks `args`; the error is the one line to print (without the program name).
    pub fn from_args(args: &RunArgs) -> Result<Settings, String> {
        let interval = positive("--interval", args.interval)?;
        if interval > Duration::from_secs(24 * 3600) {
            return Err(format!(
                "--interval {}: must be at most 24h",
                humantime::format_duration(interval)
            ));
        }
        let stale_after = positive("--stale-after", args.stale_after)?;
        dns_subdomain("--cluster-topology-name", &args.cluster_topology_name)?;
        let network_topology = if args.no_network_topology {
            None
        } else {
            dns_label(
                "--network-topology-namespace",
                &args.network_topology_namespace,
            )?;
            dns_subdomain("--network-topology-name", &args.network_topology_name)?;
            Some((
                args.network_topology_namespace.clone(),
                args.network_topology_name.clone(),
            ))
        };
        not_blank("--weights-name", &args.weights_name)?;
        dns_subdomain("--configmap-name", &args.configmap_name)?;
        let election = if args.leader_election {
            Some(election(args)?)
        } else {
            None
        };
        if args.extender_max_body < 1024 {
            return Err(format!(
                "--extender-max-body {}: must be at least 1Ki",
                args.extender_max_body
            ));
        }
        if args.label_nodes && args.slow_uplink_below == 0 {
            return Err("--slow-uplink-below 0: must be above 0".to_owned());
        }
        let max_body = usize::try_from(args.extender_max_body).unwrap_or(usize::MAX);
        Ok(Settings {
            extender: args.extender_listen.map(|a| (a, max_body)),
            label_threshold: args.label_nodes.then_some(args.slow_uplink_below),
            node_bandwidth: !args.no_node_bandwidth,
            kubeconfig: args.kubeconfig.clone(),
            interval,
            refresh: interval.saturating_mul(4),
            stale_after,
            targets: Targets {
                cluster_topology: args.cluster_topology_name.clone(),
                network_topology,
                weights_name: args.weights_name.clone(),
                configmap_name: args.configmap_name.clone(),
            },
            listen: args.listen,
            election,
            log_format: args.log_format,
            log_level: args.log_level.clone(),
        })
    }
}

fn election(args: &RunArgs) -> Result<Election, String> {
    dns_subdomain("--lease-name", &args.lease_name)?;
    dns_label("--lease-namespace", &args.lease_namespace)?;
    let d = args.lease_duration;
    if d < Duration::from_secs(2) || d.subsec_nanos() != 0 {
        return Err(format!(
            "--lease-duration {}: must be a whole number of seconds, at least 2s",
            humantime::format_duration(d)
        ));
    }
    let duration_secs = d.as_secs();
    if duration_secs > 3600 {
        return Err(format!(
            "--lease-duration {duration_secs}s: must be at most 1h"
        ));
    }
    let identity = match &args.identity {
        Some(id) => id.clone(),
        None => default_identity(),
    };
    not_blank("--identity", &identity)?;
    if identity.len() > 128 || identity.chars().any(char::is_control) {
        return Err(format!(
            "--identity {identity:?}: must be at most 128 printable characters"
        ));
    }
    Ok(Election {
        lease_name: args.lease_name.clone(),
        namespace: args.lease_namespace.clone(),
        field_manager: lease_field_manager(&identity),
        identity,
        duration_secs,
        // A third of the duration (at least 1 s, always below the duration): renewal
        // starts early enough to ride out one slow request.
        grace_secs: (duration_secs / 3).max(1),
    })
}

/// One field manager per identity (the lease manager's patches rely on it), named
/// after this program; the API server allows at most 128 characters.
fn lease_field_manager(identity: &str) -> String {
    let mut m = format!("{AGGREGATOR_FIELD_MANAGER}-{identity}");
    while m.len() > 128 {
        m.pop();
    }
    m
}

/// `hostname-pid`: unique per process even when two replicas share a host (tests).
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "linkmeter-aggregator".to_owned());
    format!("{host}-{}", std::process::id())
}

fn positive(flag: &str, d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err(format!("{flag} 0s: must be positive"))
    } else {
        Ok(d)
    }
}

fn not_blank(flag: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(format!("{flag}: must not be empty"))
    } else {
        Ok(())
    }
}

/// RFC 1123 subdomain: what the API server accepts as most object names.
fn dns_subdomain(flag: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty() && v.len() <= 253 && v.split('.').all(|part| label_ok(part, 63));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} {v:?}: not a valid object name (lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most 253 characters)"
        ))
    }
}

/// RFC 1123 label: what the API server accepts as a namespace name.
fn dns_label(flag: &str, v: &str) -> Result<(), String> {
    if label_ok(v, 63) {
        Ok(())
    } else {
        Err(format!(
            "{flag} {v:?}: not a valid namespace name (lower-case letters, digits and '-', \
             starting and ending with a letter or digit, at most 63 characters)"
        ))
    }
}

fn label_ok(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= max
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    /// `run` with `extra` flags, parsed (other test modules build their args here too).
    pub(in crate::controller) fn parse(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["run"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("parses").run
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::from_args(&parse(&["--identity", "a"])).expect("valid");
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.refresh, Duration::from_secs(120));
        assert_eq!(s.stale_after, Duration::from_secs(900));
        assert_eq!(s.targets.cluster_topology, "cluster");
        assert_eq!(
            s.targets.network_topology,
            Some(("default".to_owned(), "nt-default".to_owned()))
        );
        assert_eq!(s.targets.weights_name, "UserDefined");
        assert_eq!(s.listen.port(), 9478);
        assert_eq!(s.log_format, LogFormat::Json);
        let e = s.election.expect("on by default");
        assert_eq!((e.duration_secs, e.grace_secs), (15, 5));
        assert_eq!(e.identity, "a");
    }

    #[test]
    fn leader_election_takes_a_boolean() {
        let off = parse(&["--leader-election=false"]);
        assert!(!off.leader_election);
        assert!(Settings::from_args(&off).expect("valid").election.is_none());
        assert!(parse(&["--leader-election", "true"]).leader_election);
        assert!(parse(&["--leader-election"]).leader_election);
        assert!(parse(&[]).leader_election);
    }

    #[test]
    fn no_network_topology_drops_the_target() {
        let s = Settings::from_args(&parse(&["--no-network-topology"])).expect("valid");
        assert_eq!(s.targets.network_topology, None);
    }

    #[test]
    fn bad_values_give_one_line_naming_the_flag() {
        for (argv, flag) in [
            (&["--interval", "0s"][..], "--interval"),
            (&["--stale-after", "0s"], "--stale-after"),
            (&["--lease-duration", "1s"], "--lease-duration"),
            (&["--lease-duration", "2500ms"], "--lease-duration"),
            (&["--lease-name", "Bad_Name"], "--lease-name"),
            (&["--lease-namespace", "a.b"], "--lease-namespace"),
            (&["--cluster-topology-name", ""], "--cluster-topology-name"),
            (&["--network-topology-name=-x"], "--network-topology-name"),
            (&["--weights-name", " "], "--weights-name"),
            (&["--identity", ""], "--identity"),
        ] {
            let err = Settings::from_args(&parse(argv)).expect_err("refused");
            assert!(err.starts_with(flag), "{argv:?}: {err}");
            assert!(!err.contains('\n'), "{argv:?}: {err}");
        }
    }

    #[test]
    fn lease_checks_are_skipped_without_election() {
        let s = Settings::from_args(&parse(&[
            "--leader-election=false",
            "--lease-duration",
            "1s",
        ]));
        assert!(s.is_ok());
    }

    #[test]
    fn default_identity_is_host_and_pid() {
        let id = default_identity();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
    }
}
