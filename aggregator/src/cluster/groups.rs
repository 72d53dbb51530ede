//! Zone × zone and region × region figures, and the cost the NetworkTopology carries.
//!
//! Over the measured node pairs between two groups: the median of their RTT p50s, the
//! 90th percentile of their RTT p90s, the median and the smallest goodput per direction,
//! and the pair count. A group pair nobody measured is filled from the network
//! coordinates (the median predicted RTT over node pairs between the groups, used for
//! both percentiles; `pairs: 0` marks it), so the scheduler never falls back to its
//! MaxCost for a pair linkmeter can estimate.

use std::collections::BTreeMap;

use crate::api::GroupPair;
use crate::coords::Model;

use super::input::Checked;
use super::pairs::PairTable;

/// Which label groups the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// `topology.kubernetes.io/zone`.
    Zone,
    /// `topology.kubernetes.io/region`.
    Region,
}

/// How a p90 RTT becomes a `networkCost`: `max(min, round(p90 / unit))`.
///
/// With the default 1 ms unit the cost is the p90 RTT in milliseconds, as the upstream
/// netperf pipeline wrote it, and at least 1 so a measured pair is never free (the
/// plugin gives 0 to the same host and 1 to the same zone; 100 to a missing pair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostRule {
    /// RTT per cost unit, µs.
    pub unit_us: u64,
    /// Smallest cost written.
    pub min: u64,
}

impl Default for CostRule {
    fn default() -> Self {
        CostRule {
            unit_us: 1000,
            min: 1,
        }
    }
}

impl CostRule {
    /// The cost of a group pair whose p90 RTT is `p90_us`. Monotone in `p90_us`.
    pub fn cost(&self, p90_us: u64) -> u64 {
        let unit = self.unit_us.max(1);
        ((p90_us + unit / 2) / unit).max(self.min)
    }
}

/// Node pairs sampled per group pair when predicting an unmeasured one.
const PREDICT_SAMPLE: usize = 32;

#[derive(Default)]
struct Acc {
    p50: Vec<u64>,
    p90: Vec<u64>,
    kbps: Vec<u64>,
}

/// The figures of every ordered pair of groups that have nodes, sorted by (from, to).
pub(crate) fn fold(
    checked: &Checked,
    table: &PairTable,
    model: &Model,
    level: Level,
    rule: &CostRule,
) -> Vec<GroupPair> {
    let group = |i: usize| -> &str {
        let n = &checked.nodes[i];
        match level {
            Level::Zone => &n.zone,
            Level::Region => &n.region,
        }
    };
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for i in 0..checked.nodes.len() {
        members.entry(group(i)).or_default().push(i);
    }
    let mut acc: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
    for ((a, b), pair) in table.iter() {
        let (ga, gb) = (group(a), group(b));
        if let (Some(p50), Some(p90)) = (pair.rtt_p50_us, pair.rtt_p90_us) {
            for key in [(ga, gb), (gb, ga)] {
                let e = acc.entry(key).or_default();
                e.p50.push(p50);
                e.p90.push(p90);
                if ga == gb {
                    break;
                }
            }
        }
        if let Some(k) = pair.ab_kbps {
            acc.entry((ga, gb)).or_default().kbps.push(k);
        }
        if let Some(k) = pair.ba_kbps {
            acc.entry((gb, ga)).or_default().kbps.push(k);
        }
    }
    let mut out = Vec::new();
    for (&from, from_nodes) in &members {
        for (&to, to_nodes) in &members {
            let measured = acc.get_mut(&(from, to));
            let row = match measured {
                Some(e) if !e.p50.is_empty() => {
                    let p50 = quantile(&mut e.p50, 0.5);
                    let p90 = quantile(&mut e.p90, 0.9);
                    let (median, min) = if e.kbps.is_empty() {
                        (None, None)
                    } else {
                        let min = e.kbps.iter().copied().min();
                        (Some(quantile(&mut e.kbps, 0.5)), min)
                    };
                    GroupPair {
                        from: from.to_owned(),
                        to: to.to_owned(),
                        rtt_p50_us: p50,
                        rtt_p90_us: p90,
                        throughput_median_kbps: median,
                        throughput_min_kbps: min,
                        cost: rule.cost(p90),
                        pairs: u32::try_from(e.p50.len()).unwrap_or(u32::MAX),
                    }
                }
                _ => {
                    let Some(rtt) = predicted(model, from_nodes, to_nodes) else {
                        continue;
                    };
                    GroupPair {
                        from: from.to_owned(),
                        to: to.to_owned(),
                        rtt_p50_us: rtt,
                        rtt_p90_us: rtt,
                        throughput_median_kbps: None,
                        throughput_min_kbps: None,
                        cost: rule.cost(rtt),
                        pairs: 0,
                    }
                }
            };
            out.push(row);
        }
    }
    out
}

/// Median predicted RTT over up to [`PREDICT_SAMPLE`]² node pairs between the groups
/// (the first nodes by name: deterministic), µs.
fn predicted(model: &Model, from: &[usize], to: &[usize]) -> Option<u64> {
    let mut rtts: Vec<u64> = Vec::new();
    for &a in from.iter().take(PREDICT_SAMPLE) {
        for &b in to.iter().take(PREDICT_SAMPLE) {
            if a != b
                && let Some(r) = model.predict(a, b)
            {
                rtts.push(r.round().max(1.0) as u64);
            }
        }
    }
    (!rtts.is_empty()).then(|| quantile(&mut rtts, 0.5))
}

/// Nearest-rank quantile of a non-empty list (sorted in place).
pub(crate) fn quantile(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    let rank = ((v.len() as f64) * q).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cost_is_p90_in_ms_and_never_zero() {
        let r = CostRule::default();
        assert_eq!(r.cost(0), 1);
        assert_eq!(r.cost(400), 1);
        assert_eq!(r.cost(1_600), 2);
        assert_eq!(r.cost(45_200), 45);
    }

    #[test]
    fn nearest_rank() {
        assert_eq!(quantile(&mut [5], 0.9), 5);
        assert_eq!(quantile(&mut [4, 1, 3, 2], 0.5), 2);
        assert_eq!(quantile(&mut (1..=10).collect::<Vec<_>>(), 0.9), 9);
    }

    proptest! {
        #[test]
        fn cost_is_monotone(a in 0u64..10_000_000, b in 0u64..10_000_000, unit in 1u64..100_000) {
            let r = CostRule { unit_us: unit, min: 1 };
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(r.cost(lo) <= r.cost(hi));
            prop_assert!(r.cost(lo) >= 1);
        }
    }
}
