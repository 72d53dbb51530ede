//! Both ends of a pair, merged into one figure.
//!
//! A pair of nodes may be measured by either node or by both. The rule:
//!
//! - **RTT**: both ends measure the same round trip, so the pair's p50 is the mean of
//!   the ends' p50s (and its p90 the mean of their p90s); with one end, that end's.
//! - **Throughput** is per direction: a → b is what `a` reports as `tx` to `b` and
//!   what `b` reports as `rx` from `a` (one test seen from its two ends, or two tests).
//!   The more recently measured figure wins; with equal or unknown times, their mean.

use std::collections::BTreeMap;

use super::input::{Checked, CheckedLink};

/// One unordered pair, stored with `a < b`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pair {
    /// Merged RTT p50, µs.
    pub rtt_p50_us: Option<u64>,
    /// Merged RTT p90, µs.
    pub rtt_p90_us: Option<u64>,
    /// Goodput a → b, kbit/s.
    pub ab_kbps: Option<u64>,
    /// Goodput b → a, kbit/s.
    pub ba_kbps: Option<u64>,
}

/// One measured pair seen from `from`: throughput `from` → `to` is `tx_kbps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasuredPair {
    /// One node.
    pub from: String,
    /// The other.
    pub to: String,
    /// Merged RTT p50, µs.
    pub rtt_p50_us: Option<u64>,
    /// Merged RTT p90, µs.
    pub rtt_p90_us: Option<u64>,
    /// Goodput `from` → `to`, kbit/s.
    pub tx_kbps: Option<u64>,
    /// Goodput `to` → `from`, kbit/s.
    pub rx_kbps: Option<u64>,
}

/// Every measured pair, keyed `(a, b)` with `a < b` (node indices).
#[derive(Clone, Debug, Default)]
pub struct PairTable(BTreeMap<(usize, usize), Pair>);

impl PairTable {
    /// The pair `{a, b}` oriented from `a`: `ab_kbps` is a → b.
    pub fn get(&self, a: usize, b: usize) -> Option<Pair> {
        if a < b {
            self.0.get(&(a, b)).cloned()
        } else {
            self.0.get(&(b, a)).map(|p| Pair {
                ab_kbps: p.ba_kbps,
                ba_kbps: p.ab_kbps,
                ..p.clone()
            })
        }
    }

    /// Pairs in canonical order, `a < b`.
    pub fn iter(&self) -> impl Iterator<Item = ((usize, usize), &Pair)> + '_ {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One end's view of a direction: (kbit/s, when).
type Reading = (u64, Option<jiff::Timestamp>);

#[derive(Default)]
struct Ends {
    p50: Vec<u64>,
    p90: Vec<u64>,
    ab: Vec<Reading>,
    ba: Vec<Reading>,
}

/// Merges every node's links into one table (see the module docs for the rule).
pub(crate) fn merge(checked: &Checked) -> PairTable {
    let mut ends: BTreeMap<(usize, usize), Ends> = BTreeMap::new();
    for (me, node) in checked.nodes.iter().enumerate() {
        for link in &node.links {
            let CheckedLink { peer, .. } = *link;
            let key = (me.min(peer), me.max(peer));
            let e = ends.entry(key).or_default();
            if let (Some(p50), Some(p90)) = (link.rtt_p50_us, link.rtt_p90_us) {
                e.p50.push(p50);
                e.p90.push(p90);
            }
            // From `me`: tx is me → peer, rx is peer → me.
            let (out_dir, in_dir) = if me < peer {
                (&mut e.ab, &mut e.ba)
            } else {
                (&mut e.ba, &mut e.ab)
            };
            if let Some(k) = link.tx_kbps {
                out_dir.push((k, link.throughput_at));
            }
            if let Some(k) = link.rx_kbps {
                in_dir.push((k, link.throughput_at));
            }
        }
    }
    PairTable(
        ends.into_iter()
            .map(|(key, e)| {
                let pair = Pair {
                    rtt_p50_us: mean(&e.p50),
                    rtt_p90_us: mean(&e.p90),
                    ab_kbps: newest(&e.ab),
                    ba_kbps: newest(&e.ba),
                };
                (key, pair)
            })
            .collect(),
    )
}

fn mean(v: &[u64]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
    u64::try_from((sum + v.len() as u128 / 2) / v.len() as u128).ok()
}

/// The most recent reading; the mean of those tied for most recent.
fn newest(readings: &[Reading]) -> Option<u64> {
    let latest = readings.iter().map(|r| r.1).max()?;
    let tied: Vec<u64> = readings
        .iter()
        .filter(|r| r.1 == latest)
        .map(|r| r.0)
        .collect();
    mean(&tied)
}

/// True for the fixed tenth of pairs held out of the fit to measure the model's error.
/// A hash of the names, not the indices: a node joining does not reshuffle the set.
pub(crate) fn held_out(a: &str, b: &str) -> bool {
    crate::peers::pair_score(a, b, 0).is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::input::CheckedNode;

    fn node(name: &str, links: Vec<CheckedLink>) -> CheckedNode {
        CheckedNode {
            name: name.to_owned(),
            zone: String::new(),
            region: String::new(),
            observed: None,
            stale: false,
            gpus: 0,
            nic_speed_mbps: None,
            links,
        }
    }

    fn link(
        peer: usize,
        rtt: Option<u64>,
        tx: Option<u64>,
        rx: Option<u64>,
        at: Option<&str>,
    ) -> CheckedLink {
        CheckedLink {
            peer,
            rtt_p50_us: rtt,
            rtt_p90_us: rtt.map(|r| r + 100),
            tx_kbps: tx,
            rx_kbps: rx,
            throughput_at: at.map(|t| t.parse().expect("timestamp")),
        }
    }

    #[test]
    fn rtt_is_the_mean_of_both_ends_and_one_end_suffices() {
        let checked = Checked {
            nodes: vec![
                node(
                    "a",
                    vec![
                        link(1, Some(1000), None, None, None),
                        link(2, Some(500), None, None, None),
                    ],
                ),
                node("b", vec![link(0, Some(1200), None, None, None)]),
                node("c", vec![]),
            ],
            ..Default::default()
        };
        let t = merge(&checked);
        assert_eq!(t.get(0, 1).and_then(|p| p.rtt_p50_us), Some(1100));
        assert_eq!(t.get(1, 0).and_then(|p| p.rtt_p90_us), Some(1200));
        assert_eq!(t.get(2, 0).and_then(|p| p.rtt_p50_us), Some(500));
        assert!(t.get(1, 2).is_none());
    }

    #[test]
    fn the_tx_of_one_end_is_the_rx_of_the_other_and_the_newer_wins() {
        let old = Some("2026-12-01T10:00:00Z");
        let new = Some("2026-12-01T11:00:00Z");
        let checked = Checked {
            nodes: vec![
                // a measured a -> b = 90 (old) and b -> a = 40 (old).
                node("a", vec![link(1, None, Some(90_000), Some(40_000), old)]),
                // b measured b -> a = 50 (new) and a -> b = 80 (new).
                node("b", vec![link(0, None, Some(50_000), Some(80_000), new)]),
            ],
            ..Default::default()
        };
        let t = merge(&checked);
        let ab = t.get(0, 1).expect("pair");
        assert_eq!((ab.ab_kbps, ab.ba_kbps), (Some(80_000), Some(50_000)));
        let ba = t.get(1, 0).expect("pair");
        assert_eq!((ba.ab_kbps, ba.ba_kbps), (Some(50_000), Some(80_000)));
    }

    #[test]
    fn readings_of_the_same_time_are_averaged() {
        let at = Some("2026-12-01T10:00:00Z");
        let checked = Checked {
            nodes: vec![
                node("a", vec![link(1, None, Some(100), None, at)]),
                node("b", vec![link(0, None, None, Some(200), at)]),
            ],
            ..Default::default()
        };
        assert_eq!(merge(&checked).get(0, 1).and_then(|p| p.ab_kbps), Some(150));
    }

    #[test]
    fn a_tenth_is_held_out_and_the_choice_is_symmetric() {
        let mut held = 0;
        for i in 0..1000 {
            let (a, b) = (format!("node-{i}"), format!("node-{}", i + 1));
            assert_eq!(held_out(&a, &b), held_out(&b, &a));
            held += usize::from(held_out(&a, &b));
        }
        assert!((60..140).contains(&held), "{held} of 1000 held out");
    }
}
