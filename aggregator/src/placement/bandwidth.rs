//! The `NodeBandwidth` status of every node: measured capacity, the reservations of
//! the pods bound to it, what is left.

use std::collections::BTreeMap;

use crate::api::{BandwidthFigures, NodeBandwidthStatus, Reservation};

use super::units;
use super::world::{PlacedPod, World};

/// Reservations listed per node at most (the sums count them all).
pub const MAX_LISTED: usize = 256;

/// One status per node of the world, by node name.
pub fn statuses<P: AsRef<PlacedPod>>(
    world: &World,
    pods: &[P],
) -> BTreeMap<String, NodeBandwidthStatus> {
    let mut by_node: BTreeMap<&str, Vec<&PlacedPod>> = BTreeMap::new();
    for p in pods.iter().map(AsRef::as_ref) {
        if p.egress_bps > 0 || p.ingress_bps > 0 {
            by_node.entry(p.node.as_str()).or_default().push(p);
        }
    }
    world
        .nodes()
        .map(|n| {
            let mut held = by_node.remove(n.name.as_str()).unwrap_or_default();
            held.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            let egress: u64 = held.iter().fold(0, |s, p| s.saturating_add(p.egress_bps));
            let ingress: u64 = held.iter().fold(0, |s, p| s.saturating_add(p.ingress_bps));
            let figures = |capacity: Option<u64>, reserved: u64| BandwidthFigures {
                capacity_bps: capacity,
                reserved_bps: reserved,
                available_bps: capacity.map(|c| c.saturating_sub(reserved)),
            };
            let status = NodeBandwidthStatus {
                egress: figures(n.egress_capacity_bps, egress),
                ingress: figures(n.ingress_capacity_bps, ingress),
                pod_count: u32::try_from(held.len()).unwrap_or(u32::MAX),
                summary: summary(n.egress_capacity_bps, egress, held.len()),
                reservations: held
                    .iter()
                    .take(MAX_LISTED)
                    .map(|p| Reservation {
                        namespace: p.namespace.clone(),
                        pod: p.name.clone(),
                        egress_bps: p.egress_bps,
                        ingress_bps: p.ingress_bps,
                    })
                    .collect(),
            };
            (n.name.clone(), status)
        })
        .collect()
}

fn summary(capacity: Option<u64>, reserved: u64, pods: usize) -> String {
    match capacity {
        None => format!("egress not measured, {} reserved", units::bps(reserved)),
        Some(c) => format!(
            "egress {} free of {} ({} pod{})",
            units::bps(c.saturating_sub(reserved)),
            units::bps(c),
            pods,
            if pods == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::{self, Options};
    use crate::placement::seed;

    #[test]
    fn reservations_are_summed_per_node() {
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().expect("timestamp");
        let (infos, topologies) = seed::cluster(now);
        let world = World::new(
            cluster::compute(Some(&infos), &topologies, &Options::at(now)),
            &topologies,
        );
        let pod = |name: &str, node: &str, e: u64, i: u64| {
            Arc::new(PlacedPod {
                namespace: "ns".into(),
                name: name.into(),
                uid: name.into(),
                node: node.into(),
                labels: BTreeMap::new(),
                owner_uid: None,
                egress_bps: e,
                ingress_bps: i,
            })
        };
        let pods = [
            pod("b", "home-1", 600_000_000, 0),
            pod("a", "home-1", 100_000_000, 5),
            pod("idle", "home-2", 0, 0),
        ];
        let s = statuses(&world, &pods);
        assert_eq!(s.len(), 3);
        let h1 = &s["home-1"];
        assert_eq!(h1.egress.capacity_bps, Some(940_000_000));
        assert_eq!(h1.egress.reserved_bps, 700_000_000);
        assert_eq!(h1.egress.available_bps, Some(240_000_000));
        assert_eq!(h1.ingress.reserved_bps, 5);
        assert_eq!(h1.pod_count, 2);
        assert_eq!(h1.reservations[0].pod, "a", "sorted");
        assert_eq!(h1.summary, "egress 240 Mbit/s free of 940 Mbit/s (2 pods)");
        assert_eq!(s["home-2"].pod_count, 0);
        assert_eq!(s["vps"].egress.available_bps, Some(9_600_000));
    }
}
