//! Tests of the whole calculation on small clusters built link by link.

use proptest::prelude::*;

use super::*;
use crate::api::{Link, NodeTopology, NodeTopologySpec, NodeTopologyStatus};

fn now() -> jiff::Timestamp {
    "2026-12-02T03:00:00Z".parse().expect("timestamp")
}

fn info(name: &str, zone: &str, region: &str) -> NodeInfo {
    NodeInfo {
        name: name.to_owned(),
        zone: Some(zone.to_owned()),
        region: Some(region.to_owned()),
        ..Default::default()
    }
}

fn topology(name: &str, observed: &str, links: Vec<Link>) -> NodeTopology {
    let mut status = NodeTopologyStatus {
        observed_at: Some(observed.to_owned()),
        links,
        ..Default::default()
    };
    status.normalize();
    let mut t = NodeTopology::new(name, NodeTopologySpec {});
    t.status = Some(status);
    t
}

fn link(peer: &str, rtt_us: u64, kbps: Option<u64>) -> Link {
    Link {
        peer: peer.to_owned(),
        rtt_p50_us: Some(rtt_us),
        rtt_p90_us: Some(rtt_us + rtt_us / 10),
        samples: 10,
        throughput_tx_kbps: kbps,
        throughput_rx_kbps: kbps,
        ..Default::default()
    }
}

/// Six nodes: a1 a2 in za, b1 b2 in zb (region r1), c1 c2 in zc (region r2). One-way
/// delays: inside a zone 0.1 ms, za–zb 2 ms, za–zc 6 ms, zb–zc 10 ms.
fn lab() -> (Vec<NodeInfo>, Vec<NodeTopology>) {
    let nodes = vec![
        info("a1", "za", "r1"),
        info("a2", "za", "r1"),
        info("b1", "zb", "r1"),
        info("b2", "zb", "r1"),
        info("c1", "zc", "r2"),
        info("c2", "zc", "r2"),
    ];
    let rtt = |x: &str, y: &str| -> u64 {
        let (zx, zy) = (&x[..1], &y[..1]);
        let one_way = match (zx.min(zy), zx.max(zy)) {
            (p, q) if p == q => 100,
            ("a", "b") => 2_000,
            ("a", "c") => 6_000,
            _ => 10_000,
        };
        2 * one_way
    };
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let stamp = "2026-12-02T02:59:00Z";
    let topologies = names
        .iter()
        .map(|&me| {
            let links = names
                .iter()
                .filter(|&&p| p != me)
                .map(|&p| {
                    // Every link of zc's nodes runs at 9 Mbit/s, the others at 900.
                    let slow = p.starts_with('c') || me.starts_with('c');
                    link(p, rtt(me, p), Some(if slow { 9_000 } else { 900_000 }))
                })
                .collect();
            topology(me, stamp, links)
        })
        .collect();
    (nodes, topologies)
}

fn cost(out: &Output, key: &str, from: &str, to: &str) -> Option<i64> {
    out.network.weights[0]
        .topology_list
        .iter()
        .find(|t| t.topology_key == key)?
        .origin_list
        .iter()
        .find(|o| o.origin == from)?
        .cost_list
        .iter()
        .find(|c| c.destination == to)
        .map(|c| c.network_cost)
}

#[test]
fn zone_costs_order_as_the_delays_and_regions_are_costed_too() {
    let (nodes, topologies) = lab();
    let out = compute(Some(&nodes), &topologies, &Options::at(now()));
    let zone = "topology.kubernetes.io/zone";
    let (ab, ac, bc) = (
        cost(&out, zone, "za", "zb").expect("za-zb"),
        cost(&out, zone, "za", "zc").expect("za-zc"),
        cost(&out, zone, "zb", "zc").expect("zb-zc"),
    );
    assert!(0 < ab && ab < ac && ac < bc, "costs {ab} {ac} {bc}");
    // p90 of 4.4 ms → 4; RTT symmetric → cost symmetric.
    assert_eq!(ab, 4);
    assert_eq!(cost(&out, zone, "zb", "za"), Some(ab));
    let region = cost(&out, "topology.kubernetes.io/region", "r1", "r2").expect("r1-r2");
    assert!(region >= ac, "region cost {region}");
    // The same zone is not written (the plugin gives it 1 by itself).
    assert_eq!(cost(&out, zone, "za", "za"), None);
    let za_zb = out
        .cluster
        .zone_pairs
        .iter()
        .find(|p| p.from == "za" && p.to == "zb")
        .expect("row");
    assert_eq!(za_zb.pairs, 4);
    assert_eq!(za_zb.throughput_median_kbps, Some(900_000));
    let to_c = out.network.weights[0].topology_list[1].origin_list[0]
        .cost_list
        .iter()
        .find(|c| c.destination == "zc")
        .and_then(|c| c.bandwidth_capacity.clone());
    assert_eq!(to_c.as_deref(), Some("9000k"));
}

#[test]
fn every_node_gets_a_coordinate_and_measured_pairs_report_the_measurement() {
    let (nodes, topologies) = lab();
    let out = compute(Some(&nodes), &topologies, &Options::at(now()));
    let listed: Vec<&NodeSummaryRef> = out.cluster.zones.iter().flat_map(|z| &z.nodes).collect();
    assert_eq!(listed.len(), 6);
    assert!(
        listed.iter().all(|n| n.coordinate_us.len() == 3),
        "{listed:?}"
    );
    let p = out.predict("a1", "c2").expect("pair");
    assert!(p.measured);
    assert_eq!(p.rtt_us, 12_000);
    assert_eq!(out.predict("a1", "a1"), None);
    assert_eq!(out.predict("a1", "nobody"), None);
}

type NodeSummaryRef = crate::api::NodeSummary;

#[test]
fn unmeasured_pairs_are_predicted_from_the_coordinates() {
    let (nodes, mut topologies) = lab();
    // Nobody measures a1 <-> c1 any more.
    for t in &mut topologies {
        let me = t.metadata.name.clone().unwrap_or_default();
        if let Some(s) = t.status.as_mut() {
            s.links
                .retain(|l| !matches!((me.as_str(), l.peer.as_str()), ("a1", "c1") | ("c1", "a1")));
        }
    }
    let out = compute(Some(&nodes), &topologies, &Options::at(now()));
    let p = out.predict("a1", "c1").expect("predicted");
    assert!(!p.measured);
    let err = (p.rtt_us as f64 - 12_000.0).abs() / 12_000.0;
    assert!(err < 0.3, "predicted {} µs for 12000", p.rtt_us);
}

#[test]
fn stale_and_missing_reports_are_listed_and_left_out() {
    let (mut nodes, mut topologies) = lab();
    nodes.push(info("d1", "zd", "r2"));
    // c2 last reported an hour ago: stale; its links must not count.
    let c2 = topologies
        .iter_mut()
        .find(|t| t.metadata.name.as_deref() == Some("c2"))
        .expect("c2");
    if let Some(s) = c2.status.as_mut() {
        s.observed_at = Some("2026-12-02T02:00:00Z".to_owned());
        for l in &mut s.links {
            l.rtt_p50_us = Some(900_000);
            l.rtt_p90_us = Some(900_000);
        }
    }
    // A report whose Node is gone.
    topologies.push(topology(
        "ghost",
        "2026-12-02T02:59:00Z",
        vec![link("a1", 5, None)],
    ));
    let out = compute(Some(&nodes), &topologies, &Options::at(now()));
    assert_eq!(out.cluster.stale_nodes, ["c2", "d1"]);
    assert_eq!(out.cluster.node_count, 7);
    assert!(out.node_names().iter().all(|n| n != "ghost"));
    assert!(
        out.cluster
            .skipped
            .iter()
            .any(|s| s.reason == "nodeGone" && s.count == 1)
    );
    // c2's absurd figures were ignored, and so are the others' links to it: a stale
    // node is out of every figure and has no coordinate.
    let zc = out
        .cluster
        .zone_pairs
        .iter()
        .find(|p| p.from == "za" && p.to == "zc")
        .expect("za-zc");
    assert_eq!(zc.pairs, 2, "only a1-c1 and a2-c1");
    assert!(out.predict("a1", "c2").is_none());
    assert!(
        out.cluster
            .skipped
            .iter()
            .any(|s| s.reason == "linkToStaleNode")
    );
    let stale = out
        .cluster
        .zones
        .iter()
        .flat_map(|z| &z.nodes)
        .find(|n| n.name == "c2")
        .expect("c2");
    assert!(stale.coordinate_us.is_empty());
    assert!(stale.stale);
}

#[test]
fn hostile_reports_are_clipped_and_counted_not_fatal() {
    let (nodes, mut topologies) = lab();
    let a1 = topologies
        .iter_mut()
        .find(|t| t.metadata.name.as_deref() == Some("a1"))
        .expect("a1");
    if let Some(s) = a1.status.as_mut() {
        s.links.push(link("a1", 10, None)); // itself
        s.links.push(link("nobody", 10, None));
        s.links.push(link("b1", 0, None)); // duplicate peer, and zero RTT
        s.links.push(Link {
            peer: "b2".into(),
            rtt_p50_us: Some(u64::MAX),
            throughput_tx_kbps: Some(u64::MAX),
            ..Default::default()
        });
        for i in 0..100_000 {
            s.links.push(link(&format!("x{i}"), 10, None));
        }
    }
    topologies.push(NodeTopology::new("b1", NodeTopologySpec {})); // duplicate object
    let out = compute(Some(&nodes), &topologies, &Options::at(now()));
    let count = |r: &str| {
        out.skipped
            .iter()
            .find(|(k, _)| *k == r)
            .map_or(0, |(_, n)| n)
    };
    assert!(count("tooManyLinks") >= 99_000);
    assert!(count("unknownPeer") >= 1);
    assert_eq!(count("duplicateObject"), 1);
    assert!(out.warnings.len() <= 21, "{} warnings", out.warnings.len());
    assert_eq!(out.predict("a1", "b1").map(|p| p.rtt_us), Some(4_000));
}

#[test]
fn a_slow_uplink_is_classed() {
    let (nodes, topologies) = lab();
    let out = compute(Some(&nodes), &topologies, &Options::at(now()));
    let class = |name: &str| {
        out.cluster
            .zones
            .iter()
            .flat_map(|z| &z.nodes)
            .find(|n| n.name == name)
            .and_then(|n| n.class.clone())
    };
    // Every node's best figure is 900 Mbit/s except zc's, whose links all run at 9.
    assert_eq!(class("c1").as_deref(), Some(nodes::CLASS_SLOW_UPLINK));
    assert_eq!(class("a1"), None);
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let (nodes, topologies) = crate::cluster::synthetic::cluster(120, 16, 6, 7, now());
    let a = compute(Some(&nodes), &topologies, &Options::at(now()));
    let b = compute(Some(&nodes), &topologies, &Options::at(now()));
    let bytes = |o: &Output| serde_json::to_vec(&(&o.cluster, &o.network)).expect("json");
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn a_node_costs_well_under_200_bytes_of_cluster_topology() {
    let (nodes, topologies) = crate::cluster::synthetic::cluster(400, 32, 20, 3, now());
    let opts = Options {
        fit: crate::coords::FitConfig {
            iterations: 100,
            ..Default::default()
        },
        ..Options::at(now())
    };
    let out = compute(Some(&nodes), &topologies, &opts);
    let zones_bytes = serde_json::to_vec(&out.cluster.zones).expect("json").len();
    // 1 MiB at 5,000 nodes leaves 209 bytes a node; keep room for the matrices.
    assert!(
        zones_bytes / 400 < 190,
        "{} bytes per node",
        zones_bytes / 400
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn lists_are_sorted_and_costs_positive(n in 2usize..40, peers in 1usize..8, zones in 1usize..6, seed in any::<u64>()) {
        let (nodes, topologies) = crate::cluster::synthetic::cluster(n, peers, zones, seed, now());
        let opts = Options { fit: crate::coords::FitConfig { iterations: 50, ..Default::default() }, ..Options::at(now()) };
        let out = compute(Some(&nodes), &topologies, &opts);
        let w = &out.network.weights[0];
        prop_assert!(w.topology_list.windows(2).all(|p| p[0].topology_key < p[1].topology_key));
        for t in &w.topology_list {
            prop_assert!(t.origin_list.windows(2).all(|p| p[0].origin < p[1].origin));
            for o in &t.origin_list {
                prop_assert!(o.cost_list.windows(2).all(|p| p[0].destination < p[1].destination));
                prop_assert!(o.cost_list.iter().all(|c| c.network_cost >= 1 && c.destination != o.origin));
            }
        }
        let zp = &out.cluster.zone_pairs;
        prop_assert!(zp.windows(2).all(|p| (&p[0].from, &p[0].to) < (&p[1].from, &p[1].to)));
        // Costs are monotone in the p90 they come from.
        for x in zp {
            for y in zp {
                if x.rtt_p90_us <= y.rtt_p90_us {
                    prop_assert!(x.cost <= y.cost);
                }
            }
        }
        let names: Vec<&str> = out.cluster.zones.iter().flat_map(|z| z.nodes.iter().map(|n| n.name.as_str())).collect();
        prop_assert_eq!(names.len(), n);
    }
}
