//! A bounded window of round-trip samples for one peer and its summary.

use std::collections::VecDeque;
use std::time::Duration;

/// The last `capacity` probe outcomes for one peer, in the order the probes were sent.
///
/// `None` is a probe that got no reply. Memory is fixed by the capacity, whatever the
/// uptime: pushing into a full window drops the oldest outcome.
#[derive(Clone, Debug)]
pub struct RttWindow {
    samples: VecDeque<Option<u64>>,
    capacity: usize,
}

/// Summary of an [`RttWindow`]. Times are nanoseconds; `None` when no probe got a reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttSummary {
    /// Probes in the window.
    pub sent: u32,
    /// Probes that got a reply.
    pub received: u32,
    /// Median RTT (nearest rank).
    pub p50_ns: Option<u64>,
    /// 90th percentile RTT (nearest rank).
    pub p90_ns: Option<u64>,
    /// 99th percentile RTT (nearest rank).
    pub p99_ns: Option<u64>,
    /// Smallest RTT.
    pub min_ns: Option<u64>,
    /// Largest RTT.
    pub max_ns: Option<u64>,
    /// Mean absolute difference between consecutive replies' RTTs.
    pub jitter_ns: Option<u64>,
    /// Share of probes without a reply, parts per million (0 for an empty window).
    pub loss_ppm: u32,
}

impl RttWindow {
    /// An empty window keeping at most `capacity` outcomes (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RttWindow {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Records one probe outcome: `Some(rtt)` for a reply, `None` for a loss.
    pub fn push(&mut self, rtt: Option<Duration>) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        let ns = rtt.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.samples.push_back(ns);
    }

    /// Number of outcomes currently held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Maximum number of outcomes held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every outcome.
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// Percentiles, jitter and loss over the current window.
    pub fn summary(&self) -> RttSummary {
        let sent = self.samples.len();
        let replies: Vec<u64> = self.samples.iter().flatten().copied().collect();
        let received = replies.len();
        let jitter_ns = (received >= 2).then(|| {
            let total: u128 = replies
                .windows(2)
                .map(|w| u128::from(w[0].abs_diff(w[1])))
                .sum();
            u64::try_from(total / (received as u128 - 1)).unwrap_or(u64::MAX)
        });
        let mut sorted = replies;
        sorted.sort_unstable();
        let loss_ppm = if sent == 0 {
            0
        } else {
            u32::try_from(((sent - received) as u64 * 1_000_000) / sent as u64).unwrap_or(u32::MAX)
        };
        RttSummary {
            sent: u32::try_from(sent).unwrap_or(u32::MAX),
            received: u32::try_from(received).unwrap_or(u32::MAX),
            p50_ns: percentile_nearest_rank(&sorted, 50.0),
            p90_ns: percentile_nearest_rank(&sorted, 90.0),
            p99_ns: percentile_nearest_rank(&sorted, 99.0),
            min_ns: sorted.first().copied(),
            max_ns: sorted.last().copied(),
            jitter_ns,
            loss_ppm,
        }
    }
}

/// Nearest-rank percentile of an ascending slice: the smallest value with at least `p`
/// percent of the values at or below it. `None` for an empty slice; `p` is clamped to
/// (0, 100].
pub fn percentile_nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() {
        50.0
    } else {
        p.clamp(f64::MIN_POSITIVE, 100.0)
    };
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn us(v: u64) -> Option<Duration> {
        Some(Duration::from_micros(v))
    }

    #[test]
    fn empty_window_has_no_percentiles_and_no_loss() {
        let s = RttWindow::new(10).summary();
        assert_eq!(s.sent, 0);
        assert_eq!(s.p50_ns, None);
        assert_eq!(s.loss_ppm, 0);
        assert_eq!(s.jitter_ns, None);
    }

    #[test]
    fn percentiles_loss_and_jitter_of_a_known_window() {
        let mut w = RttWindow::new(100);
        for v in 1..=10 {
            w.push(us(v * 100));
        }
        w.push(None);
        w.push(None);
        let s = w.summary();
        assert_eq!(s.sent, 12);
        assert_eq!(s.received, 10);
        assert_eq!(s.p50_ns, Some(500_000));
        assert_eq!(s.p90_ns, Some(900_000));
        assert_eq!(s.p99_ns, Some(1_000_000));
        assert_eq!(s.jitter_ns, Some(100_000));
        assert_eq!(s.loss_ppm, 166_666);
    }

    #[test]
    fn every_fifth_lost_is_twenty_percent() {
        let mut w = RttWindow::new(100);
        for i in 0..100 {
            w.push(if i % 5 == 4 { None } else { us(14_000) });
        }
        assert_eq!(w.summary().loss_ppm, 200_000);
    }

    #[test]
    fn full_window_drops_the_oldest() {
        let mut w = RttWindow::new(3);
        w.push(None);
        for v in [10, 20, 30] {
            w.push(us(v));
        }
        assert_eq!(w.len(), 3);
        let s = w.summary();
        assert_eq!(s.loss_ppm, 0);
        assert_eq!(s.min_ns, Some(10_000));
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_and_bounded(
            xs in proptest::collection::vec(proptest::option::of(0u64..10_000_000), 1..300),
            cap in 1usize..400,
        ) {
            let mut w = RttWindow::new(cap);
            for x in &xs {
                w.push(x.map(Duration::from_nanos));
            }
            prop_assert!(w.len() <= cap);
            let s = w.summary();
            prop_assert!(s.received <= s.sent);
            prop_assert!(s.loss_ppm <= 1_000_000);
            if let (Some(min), Some(p50), Some(p90), Some(p99), Some(max)) =
                (s.min_ns, s.p50_ns, s.p90_ns, s.p99_ns, s.max_ns)
            {
                prop_assert!(min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max);
                prop_assert!(s.jitter_ns.unwrap_or(0) <= max - min);
            } else {
                prop_assert_eq!(s.received, 0);
            }
        }

        #[test]
        fn nearest_rank_returns_a_member_with_enough_values_below(
            mut xs in proptest::collection::vec(any::<u64>(), 1..200),
            p in 0.1f64..100.0,
        ) {
            xs.sort_unstable();
            let v = percentile_nearest_rank(&xs, p).expect("non-empty");
            prop_assert!(xs.contains(&v));
            let at_or_below = xs.iter().filter(|&&x| x <= v).count();
            prop_assert!(at_or_below as f64 >= p / 100.0 * xs.len() as f64 - 1e-9);
        }
    }
}
