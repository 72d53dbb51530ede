//! The aggregator at scale: a synthetic cluster of NODES nodes × PEERS links (default
//! 5,000 × 32, in 20 zones of 4 regions) through the same steps as `compute`: parse the
//! `kubectl get -o json` list, compute, render both objects. Prints CPU time per step,
//! object sizes, and peak RSS; the goals are ≤ 1 s of CPU for the calculation and a
//! ClusterTopology ≤ 1 MiB.
//!
//!   cargo bench -p linkmeter-aggregator --bench scale [-- NODES PEERS ZONES]

use std::time::Duration;

use linkmeter_aggregator::api::{
    ClusterTopology, ClusterTopologySpec, NetworkTopology, NodeTopology,
};
use linkmeter_aggregator::cluster::{self, Options};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(5000);
    let peers = args.get(1).copied().unwrap_or(32);
    let zones = args.get(2).copied().unwrap_or(20);
    let now = jiff::Timestamp::now();
    let (nodes, topologies) = cluster::synthetic::cluster(n, peers, zones, 1, now);
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": topologies});
    let text = serde_json::to_vec(&list).expect("serialises");
    drop(topologies);
    let rss_before = peak_rss_kib();

    let t0 = cpu_time();
    let value: serde_json::Value = serde_json::from_slice(&text).expect("parses");
    let parsed: Vec<NodeTopology> = value["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    drop(value);
    let t1 = cpu_time();
    let out = cluster::compute(Some(&nodes), &parsed, &Options::at(now));
    let t2 = cpu_time();
    let mut ct = ClusterTopology::new("cluster", ClusterTopologySpec {});
    ct.status = Some(out.cluster.clone());
    let mut nt = NetworkTopology::new("nt-default", out.network.clone());
    nt.status = Some(out.network_status.clone());
    let ct_bytes = serde_json::to_vec(&ct).expect("json").len();
    let nt_bytes = serde_json::to_vec(&nt).expect("json").len();
    let t3 = cpu_time();

    let secs = |a: Duration, b: Duration| (b - a).as_secs_f64();
    let model = out.cluster.model.clone().unwrap_or_default();
    println!(
        "scale: {n} nodes x {peers} peers, {zones} zones: input {:.1} MiB, {} measured pairs",
        text.len() as f64 / 1048576.0,
        out.measured_pairs().count()
    );
    println!(
        "scale: CPU parse {:.2}s, compute {:.2}s, render {:.3}s (goal: compute <= 1 s)",
        secs(t0, t1),
        secs(t1, t2),
        secs(t2, t3)
    );
    println!(
        "scale: ClusterTopology {} bytes ({:.2} MiB, goal <= 1 MiB), NetworkTopology {} bytes",
        ct_bytes,
        ct_bytes as f64 / 1048576.0,
        nt_bytes
    );
    println!(
        "scale: model held-out error median {:.1}% p90 {:.1}% over {} pairs",
        f64::from(model.median_error_permille.unwrap_or(0)) / 10.0,
        f64::from(model.p90_error_permille.unwrap_or(0)) / 10.0,
        model.held_out_pairs
    );
    println!(
        "scale: peak RSS {:.1} MiB (with the input held: {:.1} MiB before parsing)",
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}

/// This process's user + system CPU time.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (in parentheses, may hold spaces): state is the
    // first, utime and stime the 12th and 13th; /proc counts in USER_HZ (100 on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |i: usize| -> u64 {
        rest.split_whitespace()
            .nth(i)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

/// Peak resident set, KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
