//! A synthetic cluster as its agents would report it, for benches and tests: the
//! Internet-like RTTs of [`crate::coords::synthetic`], nodes spread over zones and
//! regions, each node publishing one link (RTT percentiles and throughput both ways)
//! per peer it measured.

use crate::api::{Link, NodeTopology, NodeTopologySpec, NodeTopologyStatus};
use crate::coords::synthetic::internet_like;

use super::input::NodeInfo;

/// `n` nodes in `zones` zones (zone `i % zones`, region `zone % 4`), each measuring
/// `peers` others, observed at `now`.
pub fn cluster(
    n: usize,
    peers: usize,
    zones: usize,
    seed: u64,
    now: jiff::Timestamp,
) -> (Vec<NodeInfo>, Vec<NodeTopology>) {
    let topo = internet_like(n, peers, seed);
    // Names as long as a cloud provider's (41 bytes): the object's size depends on them.
    let name = |i: usize| {
        format!(
            "ip-10-{}-{}-{}.eu-west-1.compute.internal",
            i / 65536,
            (i / 256) % 256,
            i % 256
        )
    };
    let zones = zones.max(1);
    let infos: Vec<NodeInfo> = (0..n)
        .map(|i| NodeInfo {
            name: name(i),
            zone: Some(format!("zone-{:02}", i % zones)),
            region: Some(format!("region-{}", (i % zones) % 4)),
            ..Default::default()
        })
        .collect();
    let mut links: Vec<Vec<Link>> = vec![Vec::new(); n];
    let stamp = now.to_string();
    for s in &topo.measured {
        let rtt = s.rtt_us.round().max(1.0) as u64;
        // Throughput from a stable function of the pair: 50 Mbit/s to 10 Gbit/s.
        let kbps = |x: usize, y: usize| 50_000 + ((x * 7919 + y * 104_729) % 200) as u64 * 50_000;
        links[s.a].push(Link {
            peer: name(s.b),
            rtt_p50_us: Some(rtt),
            rtt_p90_us: Some(rtt + rtt / 10),
            rtt_p99_us: Some(rtt + rtt / 5),
            jitter_us: Some(rtt / 50),
            samples: 30,
            throughput_tx_kbps: Some(kbps(s.a, s.b)),
            throughput_rx_kbps: Some(kbps(s.b, s.a)),
            throughput_measured_at: Some(stamp.clone()),
            ..Default::default()
        });
    }
    let topologies = links
        .into_iter()
        .enumerate()
        .map(|(i, links)| {
            let mut status = NodeTopologyStatus {
                observed_at: Some(stamp.clone()),
                window_seconds: 600,
                zone: infos[i].zone.clone(),
                region: infos[i].region.clone(),
                links,
                ..Default::default()
            };
            status.normalize();
            let mut t = NodeTopology::new(&name(i), NodeTopologySpec {});
            t.status = Some(status);
            t
        })
        .collect();
    (infos, topologies)
}
