//! One summary per node: uplink estimate, class, coordinate, freshness.
//!
//! **Uplink**: the best goodput measured from the node (tx) and to it (rx) over all its
//! pairs, from either end, capped by the node's NIC speed when known. The best, not the
//! median: a peer behind a slow link says nothing about this node's own uplink.
//!
//! **Class** (the rule): a node whose best goodput in either direction is under a
//! quarter of the median of every measured node's best goodput is `slow-uplink`, once
//! at least three nodes have a throughput figure (with fewer there is no "rest" to
//! compare with); a node without any throughput figure is `unmeasured`; the others
//! have no class (normal).

use std::collections::BTreeMap;

use crate::api::{NodeSummary, ZoneNodes};
use crate::coords::Model;

use super::groups::quantile;
use super::input::Checked;
use super::pairs::PairTable;

/// Class of a node far slower than the rest.
pub const CLASS_SLOW_UPLINK: &str = "slow-uplink";
/// Class of a node without any throughput figure.
pub const CLASS_UNMEASURED: &str = "unmeasured";
/// A node is slow when its best goodput is under the median best divided by this.
const SLOW_FACTOR: u64 = 4;
/// Nodes with throughput figures needed before any is called slow.
const MIN_MEASURED_FOR_CLASS: usize = 3;

/// Summaries grouped by (region, zone), both sorted; nodes inside sorted by name.
pub(crate) fn summarise(
    checked: &Checked,
    table: &PairTable,
    model: &Model,
    now: jiff::Timestamp,
) -> Vec<ZoneNodes> {
    let n = checked.nodes.len();
    let (mut tx, mut rx) = (vec![None::<u64>; n], vec![None::<u64>; n]);
    for ((a, b), pair) in table.iter() {
        if let Some(k) = pair.ab_kbps {
            tx[a] = tx[a].max(Some(k));
            rx[b] = rx[b].max(Some(k));
        }
        if let Some(k) = pair.ba_kbps {
            tx[b] = tx[b].max(Some(k));
            rx[a] = rx[a].max(Some(k));
        }
    }
    for (i, node) in checked.nodes.iter().enumerate() {
        if let Some(cap) = node.nic_speed_mbps.and_then(|m| m.checked_mul(1000)) {
            tx[i] = tx[i].map(|k| k.min(cap));
            rx[i] = rx[i].map(|k| k.min(cap));
        }
    }
    let best: Vec<Option<u64>> = (0..n).map(|i| tx[i].max(rx[i])).collect();
    let mut measured: Vec<u64> = best.iter().flatten().copied().collect();
    let slow_below = (measured.len() >= MIN_MEASURED_FOR_CLASS)
        .then(|| quantile(&mut measured, 0.5) / SLOW_FACTOR);

    let mut zones: BTreeMap<(&str, &str), Vec<NodeSummary>> = BTreeMap::new();
    for (i, node) in checked.nodes.iter().enumerate() {
        let worst = tx[i].min(rx[i]).or(tx[i]).or(rx[i]);
        let class = match (worst, slow_below) {
            (None, _) => Some(CLASS_UNMEASURED),
            (Some(w), Some(limit)) if w < limit => Some(CLASS_SLOW_UPLINK),
            _ => None,
        };
        let coord = model.coords.get(i).filter(|c| c.error.is_some());
        zones
            .entry((node.region.as_str(), node.zone.as_str()))
            .or_default()
            .push(NodeSummary {
                name: node.name.clone(),
                class: class.map(str::to_owned),
                // A report from the future (clock skew) is 0 s old.
                age_seconds: node
                    .observed
                    .map(|t| u64::try_from(now.as_second() - t.as_second()).unwrap_or(0)),
                stale: node.stale,
                coordinate_us: coord
                    .map(|c| c.position.iter().map(|v| v.round() as i64).collect())
                    .unwrap_or_default(),
                height_us: coord.map(|c| c.height_us.round().max(0.0) as u64),
                error_permille: coord
                    .and_then(|c| c.error)
                    .map(|e| (e * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32),
                tx_kbps: tx[i],
                rx_kbps: rx[i],
                gpus: node.gpus,
            });
    }
    zones
        .into_iter()
        .map(|((region, zone), nodes)| ZoneNodes {
            region: region.to_owned(),
            zone: zone.to_owned(),
            nodes,
        })
        .collect()
}
