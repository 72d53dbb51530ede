//! When is a new NodeTopology status worth writing? A pure decision.
//!
//! The API server is shared by every node, so an agent writes only when something a
//! scheduler could act on moved beyond a threshold, or when the last write is older than
//! a heartbeat age (so readers can tell a live node from a stale one), and never more
//! often than a minimum interval. The comparison is always against what was last
//! *published*, so slow drift accumulates until it crosses a threshold.

use std::time::Duration;

use crate::api::{Link, NodeTopologyStatus};

/// Thresholds of the decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Hysteresis {
    /// Never write more often than this.
    pub min_interval: Duration,
    /// Write at least this often, changed or not.
    pub heartbeat: Duration,
    /// Relative change of a latency percentile that counts as a move (0.1 = 10%).
    pub rtt_relative: f64,
    /// Absolute change of a latency percentile below which nothing counts (µs): on a
    /// 40 µs LAN link 10% is noise.
    pub rtt_floor_us: u64,
    /// Change of loss that counts, parts per million (10 000 = 1 percentage point).
    pub loss_ppm: u32,
    /// Relative change of throughput that counts.
    pub throughput_relative: f64,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            min_interval: Duration::from_secs(60),
            heartbeat: Duration::from_secs(300),
            rtt_relative: 0.10,
            rtt_floor_us: 100,
            loss_ppm: 10_000,
            throughput_relative: 0.10,
        }
    }
}

/// The decision and why (the reason is logged and counted in a metric label, so it is
/// one of a few fixed words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write now.
    Publish(Reason),
    /// Nothing worth writing; check again later.
    Skip,
    /// Something moved, but the minimum interval has not passed; wait this long.
    Defer(Duration),
}

/// Why a write happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Nothing was published yet.
    First,
    /// The heartbeat age passed.
    Heartbeat,
    /// Peers were added or removed.
    Peers,
    /// A condition changed status or reason.
    Conditions,
    /// GPU inventory or MIG mode changed.
    Gpus,
    /// Zone, region, addresses or NIC speed changed.
    Identity,
    /// A link's latency, loss or throughput moved beyond a threshold.
    Links,
}

impl Reason {
    /// Stable lower-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::First => "first",
            Reason::Heartbeat => "heartbeat",
            Reason::Peers => "peers",
            Reason::Conditions => "conditions",
            Reason::Gpus => "gpus",
            Reason::Identity => "identity",
            Reason::Links => "links",
        }
    }
}

impl Hysteresis {
    /// Decides whether `current` should be written, given the last published status and
    /// how long ago it was written (`None`: never).
    pub fn decide(
        &self,
        published: Option<&NodeTopologyStatus>,
        since_publish: Option<Duration>,
        current: &NodeTopologyStatus,
    ) -> Decision {
        let (Some(prev), Some(age)) = (published, since_publish) else {
            return Decision::Publish(Reason::First);
        };
        let reason = if age >= self.heartbeat {
            Some(Reason::Heartbeat)
        } else {
            self.material_change(prev, current)
        };
        match reason {
            None => Decision::Skip,
            Some(r) if age >= self.min_interval => Decision::Publish(r),
            Some(_) => Decision::Defer(self.min_interval - age),
        }
    }

    /// The first material difference between two statuses, if any.
    pub fn material_change(
        &self,
        prev: &NodeTopologyStatus,
        cur: &NodeTopologyStatus,
    ) -> Option<Reason> {
        let peers =
            |s: &NodeTopologyStatus| s.links.iter().map(|l| l.peer.clone()).collect::<Vec<_>>();
        if peers(prev) != peers(cur) {
            return Some(Reason::Peers);
        }
        let conds = |s: &NodeTopologyStatus| {
            s.conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
                .collect::<Vec<_>>()
        };
        if conds(prev) != conds(cur) {
            return Some(Reason::Conditions);
        }
        let gpus = |s: &NodeTopologyStatus| {
            s.gpus
                .iter()
                .map(|g| (g.index, g.uuid.clone(), g.mig_mode.clone()))
                .collect::<Vec<_>>()
        };
        if gpus(prev) != gpus(cur) {
            return Some(Reason::Gpus);
        }
        if prev.zone != cur.zone
            || prev.region != cur.region
            || prev.addresses != cur.addresses
            || prev.nic_speed_mbps != cur.nic_speed_mbps
        {
            return Some(Reason::Identity);
        }
        prev.links
            .iter()
            .zip(&cur.links)
            .any(|(a, b)| self.link_moved(a, b))
            .then_some(Reason::Links)
    }

    fn link_moved(&self, a: &Link, b: &Link) -> bool {
        let rtt = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => {
                let d = x.abs_diff(y);
                d > self.rtt_floor_us && (d as f64) > self.rtt_relative * (x.max(y) as f64)
            }
            (None, None) => false,
            _ => true,
        };
        let rate = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => {
                (x.abs_diff(y) as f64) > self.throughput_relative * (x.max(y) as f64)
            }
            (None, None) => false,
            _ => true,
        };
        rtt(a.rtt_p50_us, b.rtt_p50_us)
            || rtt(a.rtt_p90_us, b.rtt_p90_us)
            || a.loss_ppm.abs_diff(b.loss_ppm) >= self.loss_ppm
            || rate(a.throughput_tx_kbps, b.throughput_tx_kbps)
            || rate(a.throughput_rx_kbps, b.throughput_rx_kbps)
            || a.method != b.method
            || a.error.is_some() != b.error.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Condition, Gpu};
    use proptest::prelude::*;

    fn status(links: &[(&str, u64, u32)]) -> NodeTopologyStatus {
        let mut s = NodeTopologyStatus {
            links: links
                .iter()
                .map(|(p, rtt, loss)| Link {
                    peer: (*p).into(),
                    rtt_p50_us: Some(*rtt),
                    rtt_p90_us: Some(*rtt + rtt / 10),
                    loss_ppm: *loss,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        s.normalize();
        s
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn first_write_and_heartbeat() {
        let h = Hysteresis::default();
        let s = status(&[("a", 1000, 0)]);
        assert_eq!(h.decide(None, None, &s), Decision::Publish(Reason::First));
        assert_eq!(h.decide(Some(&s), Some(S(299)), &s), Decision::Skip);
        assert_eq!(
            h.decide(Some(&s), Some(S(300)), &s),
            Decision::Publish(Reason::Heartbeat)
        );
    }

    #[test]
    fn small_moves_are_noise_and_big_ones_wait_for_the_minimum_interval() {
        let h = Hysteresis::default();
        let prev = status(&[("a", 10_000, 0), ("b", 40, 0)]);
        // +5% on a, +60 µs (150%) on b: below the relative and the absolute floor.
        let noise = status(&[("a", 10_500, 0), ("b", 100, 0)]);
        assert_eq!(h.decide(Some(&prev), Some(S(120)), &noise), Decision::Skip);
        let moved = status(&[("a", 14_000, 0), ("b", 40, 0)]);
        assert_eq!(
            h.decide(Some(&prev), Some(S(10)), &moved),
            Decision::Defer(S(50))
        );
        assert_eq!(
            h.decide(Some(&prev), Some(S(60)), &moved),
            Decision::Publish(Reason::Links)
        );
        let lossy = status(&[("a", 10_000, 20_000), ("b", 40, 0)]);
        assert_eq!(
            h.decide(Some(&prev), Some(S(60)), &lossy),
            Decision::Publish(Reason::Links)
        );
    }

    #[test]
    fn peers_conditions_and_gpus_are_material() {
        let h = Hysteresis::default();
        let prev = status(&[("a", 1000, 0)]);
        let more = status(&[("a", 1000, 0), ("b", 1000, 0)]);
        assert_eq!(h.material_change(&prev, &more), Some(Reason::Peers));
        let mut cond = prev.clone();
        cond.conditions.push(Condition::new(
            "NvmlAvailable",
            false,
            "LibraryNotFound",
            "",
        ));
        assert_eq!(h.material_change(&prev, &cond), Some(Reason::Conditions));
        let mut gpu = prev.clone();
        gpu.gpus.push(Gpu {
            index: 0,
            ..Default::default()
        });
        assert_eq!(h.material_change(&prev, &gpu), Some(Reason::Gpus));
    }

    proptest! {
        #[test]
        fn never_more_often_than_the_minimum_interval(
            rtt in 1u64..1_000_000, rtt2 in 1u64..1_000_000, age in 0u64..1000,
        ) {
            let h = Hysteresis::default();
            let d = h.decide(Some(&status(&[("a", rtt, 0)])), Some(S(age)), &status(&[("a", rtt2, 0)]));
            if age < 60 {
                prop_assert!(!matches!(d, Decision::Publish(_)));
            }
            if age >= 300 {
                prop_assert_eq!(d, Decision::Publish(Reason::Heartbeat));
            }
        }

        #[test]
        fn identical_status_is_never_a_change(rtt in 1u64..1_000_000, loss in 0u32..1_000_000) {
            let s = status(&[("a", rtt, loss), ("b", rtt / 2 + 1, 0)]);
            prop_assert_eq!(Hysteresis::default().material_change(&s, &s.clone()), None);
        }
    }
}
