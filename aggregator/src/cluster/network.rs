//! The Diktyo NetworkTopology spec from the zone and region figures.
//!
//! One weights entry (named by `--weights-name`), with `topologyList` sorted by key
//! (region before zone), each `originList` sorted by origin and each `costList` by
//! destination, because the plugin binary-searches them. A group's cost to itself is
//! not written (the plugin gives the same zone 1 without reading it), nor are
//! unlabelled nodes' groups (the plugin cannot see them). `bandwidthCapacity` is the
//! median measured goodput origin → destination, in bits per second; absent when the
//! pair's figures are predicted.

use crate::api::{
    CostInfo, GroupPair, NetworkTopologySpec, OriginInfo, REGION_LABEL, TopologyInfo, WeightInfo,
    ZONE_LABEL, kbps_quantity,
};

use super::view::Options;

/// Renders the spec from the group pairs (each sorted by (from, to)).
pub(crate) fn render(
    zones: &[GroupPair],
    regions: &[GroupPair],
    opts: &Options,
) -> NetworkTopologySpec {
    let mut topology_list = vec![
        TopologyInfo {
            topology_key: REGION_LABEL.to_owned(),
            origin_list: origins(regions),
        },
        TopologyInfo {
            topology_key: ZONE_LABEL.to_owned(),
            origin_list: origins(zones),
        },
    ];
    topology_list.sort_by(|a, b| a.topology_key.cmp(&b.topology_key));
    NetworkTopologySpec {
        configmap_name: opts.configmap_name.clone(),
        weights: vec![WeightInfo {
            name: opts.weights_name.clone(),
            topology_list,
        }],
    }
}

fn origins(pairs: &[GroupPair]) -> Vec<OriginInfo> {
    let mut out: Vec<OriginInfo> = Vec::new();
    for p in pairs {
        if p.from.is_empty() || p.to.is_empty() {
            continue;
        }
        if out.last().is_none_or(|o| o.origin != p.from) {
            out.push(OriginInfo {
                origin: p.from.clone(),
                cost_list: Vec::new(),
            });
        }
        if p.from == p.to {
            continue;
        }
        if let Some(origin) = out.last_mut() {
            origin.cost_list.push(CostInfo {
                destination: p.to.clone(),
                network_cost: i64::try_from(p.cost).unwrap_or(i64::MAX),
                bandwidth_capacity: (p.pairs > 0)
                    .then_some(p.throughput_median_kbps)
                    .flatten()
                    .map(kbps_quantity),
                bandwidth_allocated: None,
            });
        }
    }
    out.sort_by(|a, b| a.origin.cmp(&b.origin));
    for o in &mut out {
        o.cost_list
            .sort_by(|a, b| a.destination.cmp(&b.destination));
    }
    out
}
