//! The seed scenario of DESIGN.md §9 as its agents would report it, for tests, goldens
//! and the bench: `vps` behind a 10 Mbit/s link, 45 ms RTT to two home PCs `home-1` and
//! `home-2` that share a 1 Gbit/s LAN (1 ms RTT); `home-1` has a 24 GiB GPU.

use crate::api::{Gpu, Link, Nic, NodeTopology, NodeTopologySpec, NodeTopologyStatus};
use crate::cluster::NodeInfo;

/// VPS ↔ home RTT, µs.
pub const VPS_RTT_US: u64 = 45_000;
/// home ↔ home RTT, µs.
pub const LAN_RTT_US: u64 = 1_000;
/// Goodput through the VPS's link, kbit/s.
pub const VPS_KBPS: u64 = 9_600;
/// Goodput on the LAN, kbit/s.
pub const LAN_KBPS: u64 = 940_000;
/// The GPU's memory, bytes.
pub const GPU_MEMORY: u64 = 24 << 30;
/// Memory in use on it, bytes.
pub const GPU_USED: u64 = 512 << 20;

/// The three Nodes (`vps` in its own zone and region) and their NodeTopologies,
/// observed at `now`.
pub fn cluster(now: jiff::Timestamp) -> (Vec<NodeInfo>, Vec<NodeTopology>) {
    let stamp = now.to_string();
    let infos = vec![
        info("home-1", "home", "home"),
        info("home-2", "home", "home"),
        info("vps", "vps", "cloud"),
    ];
    let link = |peer: &str, rtt: u64, kbps: u64| Link {
        peer: peer.to_owned(),
        rtt_p50_us: Some(rtt),
        rtt_p90_us: Some(rtt + rtt / 50),
        rtt_p99_us: Some(rtt + rtt / 20),
        jitter_us: Some(rtt / 100),
        samples: 60,
        throughput_tx_kbps: Some(kbps),
        throughput_rx_kbps: Some(kbps),
        throughput_measured_at: Some(stamp.clone()),
        ..Default::default()
    };
    let links = [
        vec![
            link("home-2", LAN_RTT_US, LAN_KBPS),
            link("vps", VPS_RTT_US, VPS_KBPS),
        ],
        vec![
            link("home-1", LAN_RTT_US, LAN_KBPS),
            link("vps", VPS_RTT_US, VPS_KBPS),
        ],
        vec![
            link("home-1", VPS_RTT_US, VPS_KBPS),
            link("home-2", VPS_RTT_US, VPS_KBPS),
        ],
    ];
    let topologies = infos
        .iter()
        .zip(links)
        .map(|(n, links)| {
            let gpus = if n.name == "home-1" {
                vec![Gpu {
                    index: 0,
                    name: Some("NVIDIA GeForce RTX 4090".to_owned()),
                    memory_total_bytes: Some(GPU_MEMORY),
                    memory_used_bytes: Some(GPU_USED),
                    utilization_gpu_percent: Some(3),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let mut status = NodeTopologyStatus {
                observed_at: Some(stamp.clone()),
                window_seconds: 600,
                zone: n.zone.clone(),
                region: n.region.clone(),
                nics: vec![Nic {
                    name: "eth0".to_owned(),
                    speed_mbps: Some(1000),
                }],
                gpus,
                links,
                ..Default::default()
            };
            status.normalize();
            let mut t = NodeTopology::new(&n.name, NodeTopologySpec {});
            t.status = Some(status);
            t
        })
        .collect();
    (infos, topologies)
}

fn info(name: &str, zone: &str, region: &str) -> NodeInfo {
    NodeInfo {
        name: name.to_owned(),
        zone: Some(zone.to_owned()),
        region: Some(region.to_owned()),
        ..Default::default()
    }
}
