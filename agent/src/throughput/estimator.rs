//! Adaptive stop for throughput tests: when has the rate been measured well enough?
//!
//! Pure: fed `(elapsed, cumulative bytes)` samples every interval (100 ms by default),
//! it answers whether to go on and what the estimate is. The caller chooses where the
//! bytes are counted; the probe uses the kernel's count of bytes the peer acknowledged
//! (sending) or received (receiving), because the sender's own write count runs ahead
//! of the link while the socket buffer fills.
//!
//! The method:
//! 1. **Warm-up.** The first `min_warmup` intervals are discarded, and then every
//!    interval whose rate still rose by more than `rise_tolerance` over the previous
//!    one (slow start, queue fill, a shaper's initial burst). Warm-up is forced over
//!    after `max_warmup`.
//! 2. **Convergence.** Once `window` intervals were counted after warm-up, the
//!    cumulative byte count over the last `window` intervals is compared with the
//!    straight line through its ends. If it never strays from the line by more than
//!    `tolerance` of the bytes in the window, and the window saw few losses (at most
//!    `max_disturbance`), the estimate has converged and the window's rate is the
//!    answer. The largest distance from the line bounds the error of the window's
//!    rate against any part of it, and catches both trends (a bowed curve) and
//!    oscillations, while tolerating what single 100 ms intervals cannot: the
//!    kernel's counters advance in ACK-sized steps (~14 KB for an ACK of a
//!    10-segment GSO packet, 12 ms of data at 10 Mbit/s), which moves one interval's
//!    rate by 10% there without the rate changing at all.
//! 3. **Caps.** At `max_duration` or `max_bytes` the test stops regardless; the
//!    estimate is then the rate over everything after warm-up (or over the whole test
//!    if warm-up never ended).

use std::collections::VecDeque;
use std::time::Duration;

/// Tuning of the adaptive stop.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimatorConfig {
    /// Intervals always discarded at the start.
    pub min_warmup: usize,
    /// Warm-up ends at the latest after this long.
    pub max_warmup: Duration,
    /// A rise of more than this fraction from one interval to the next means the rate
    /// is still ramping up.
    pub rise_tolerance: f64,
    /// Intervals in the convergence window.
    pub window: usize,
    /// Largest distance of the cumulative byte count from the straight line through
    /// the window's ends, as a fraction of the window's bytes, for convergence.
    pub tolerance: f64,
    /// Most loss-indicator bytes (see [`Estimator::push_sample`]) a window may contain,
    /// as a fraction of the bytes it delivered, for it to count as converged: loss
    /// recovery (stalls, then bursts) is not a steady state.
    pub max_disturbance: f64,
    /// Stop after this long whatever the estimate.
    pub max_duration: Duration,
    /// Stop after this many bytes whatever the estimate.
    pub max_bytes: u64,
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        EstimatorConfig {
            min_warmup: 2,
            max_warmup: Duration::from_secs(3),
            rise_tolerance: 0.05,
            window: 10,
            tolerance: 0.015,
            max_disturbance: 0.01,
            max_duration: Duration::from_secs(10),
            max_bytes: u64::MAX,
        }
    }
}

/// What to do after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Keep measuring.
    Continue,
    /// The estimate converged.
    Converged,
    /// `max_duration` reached.
    DurationCap,
    /// `max_bytes` reached.
    ByteCap,
}

impl Decision {
    /// Whether the test should stop.
    pub fn is_stop(self) -> bool {
        self != Decision::Continue
    }
}

/// The current estimate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Goodput in bits per second.
    pub bits_per_second: f64,
    /// Whether the convergence test passed.
    pub converged: bool,
    /// Time discarded as warm-up (all of it if warm-up never ended).
    pub warmup: Duration,
    /// Span of measurement the estimate rests on.
    pub span: Duration,
    /// Largest distance of the byte count from the window's straight line, as a
    /// fraction of the window's bytes, when a full window was available.
    pub spread: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    t: f64,
    bytes: u64,
    lossy: u64,
}

fn rate(a: Sample, b: Sample) -> f64 {
    let dt = b.t - a.t;
    if dt <= 0.0 {
        return 0.0;
    }
    b.bytes.saturating_sub(a.bytes) as f64 * 8.0 / dt
}

/// The adaptive-stop state machine. Memory is bounded by `window`.
#[derive(Debug, Clone)]
pub struct Estimator {
    cfg: EstimatorConfig,
    last: Sample,
    intervals: usize,
    prev_rate: f64,
    /// Start of measurement once warm-up is over.
    anchor: Option<Sample>,
    /// The last `window + 1` samples after the anchor (the anchor included).
    recent: VecDeque<Sample>,
    spread: Option<f64>,
    converged: bool,
}

impl Estimator {
    /// A new estimator; the implicit first sample is `(0 s, 0 bytes)`.
    pub fn new(mut cfg: EstimatorConfig) -> Estimator {
        cfg.window = cfg.window.max(1);
        let origin = Sample {
            t: 0.0,
            bytes: 0,
            lossy: 0,
        };
        Estimator {
            recent: VecDeque::with_capacity(cfg.window + 1),
            cfg,
            last: origin,
            intervals: 0,
            prev_rate: 0.0,
            anchor: None,
            spread: None,
            converged: false,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EstimatorConfig {
        &self.cfg
    }

    /// Feeds a sample: time since the data phase started and bytes counted since.
    /// Samples that go back in time are ignored; byte counts that go back are treated
    /// as no progress.
    pub fn push(&mut self, elapsed: Duration, bytes: u64) -> Decision {
        self.push_sample(elapsed, bytes, self.last.lossy)
    }

    /// Like [`Estimator::push`], with a cumulative loss indicator in bytes (e.g.
    /// retransmitted segments × MSS): windows with more than `max_disturbance` of it
    /// do not converge.
    pub fn push_sample(&mut self, elapsed: Duration, bytes: u64, lossy: u64) -> Decision {
        let s = Sample {
            t: elapsed.as_secs_f64(),
            bytes: bytes.max(self.last.bytes),
            lossy: lossy.max(self.last.lossy),
        };
        if s.t > self.last.t {
            self.advance(s);
        }
        if self.converged {
            Decision::Converged
        } else if s.bytes >= self.cfg.max_bytes {
            Decision::ByteCap
        } else if elapsed >= self.cfg.max_duration {
            Decision::DurationCap
        } else {
            Decision::Continue
        }
    }

    fn advance(&mut self, s: Sample) {
        let r = rate(self.last, s);
        self.intervals += 1;
        match self.anchor {
            None => {
                let past_min = self.intervals > self.cfg.min_warmup;
                let flat = r <= self.prev_rate * (1.0 + self.cfg.rise_tolerance);
                if past_min && flat {
                    // This interval is no faster than the one before: the ramp ended
                    // at its start, so count it.
                    self.start_measuring(self.last);
                    self.recent.push_back(s);
                } else if s.t >= self.cfg.max_warmup.as_secs_f64() {
                    self.start_measuring(s);
                }
            }
            Some(_) => {
                if self.recent.len() == self.cfg.window + 1 {
                    self.recent.pop_front();
                }
                self.recent.push_back(s);
            }
        }
        self.prev_rate = r;
        self.last = s;
        if !self.converged {
            self.check_convergence();
        }
    }

    fn start_measuring(&mut self, at: Sample) {
        self.anchor = Some(at);
        self.recent.clear();
        self.recent.push_back(at);
    }

    fn check_convergence(&mut self) {
        if self.recent.len() < self.cfg.window + 1 {
            return;
        }
        let (Some(first), Some(last)) = (self.recent.front(), self.recent.back()) else {
            return;
        };
        let (t0, b0) = (first.t, first.bytes as f64);
        let span = last.t - t0;
        let delivered = last.bytes.saturating_sub(first.bytes) as f64;
        if span <= 0.0 || delivered <= 0.0 {
            self.spread = None;
            return;
        }
        let strays = self
            .recent
            .iter()
            .map(|s| (s.bytes as f64 - (b0 + delivered * (s.t - t0) / span)).abs())
            .fold(0.0, f64::max);
        let spread = strays / delivered;
        let mut ok = spread <= self.cfg.tolerance;
        ok &= last.lossy.saturating_sub(first.lossy) as f64 <= self.cfg.max_disturbance * delivered;
        self.spread = Some(spread);
        self.converged = ok;
    }

    /// The estimate so far: the window's rate once converged, else the rate since
    /// warm-up ended, else the rate over everything.
    pub fn estimate(&self) -> Estimate {
        let origin = Sample {
            t: 0.0,
            bytes: 0,
            lossy: 0,
        };
        let (from, to) = match (self.converged, self.anchor) {
            (true, _) => (
                self.recent.front().copied().unwrap_or(origin),
                self.recent.back().copied().unwrap_or(self.last),
            ),
            (false, Some(a)) if self.last.t > a.t => (a, self.last),
            _ => (origin, self.last),
        };
        let warmup = self.anchor.map_or(self.last.t, |a| a.t);
        Estimate {
            bits_per_second: rate(from, to),
            converged: self.converged,
            warmup: Duration::from_secs_f64(warmup.max(0.0)),
            span: Duration::from_secs_f64((to.t - from.t).max(0.0)),
            spread: self.spread,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TICK: f64 = 0.1;

    /// Feeds per-interval rates (bit/s) at 100 ms ticks until a stop; returns the
    /// decision, the estimate and how many intervals were fed.
    fn run(
        cfg: EstimatorConfig,
        rates: impl IntoIterator<Item = f64>,
    ) -> (Decision, Estimate, usize) {
        let mut e = Estimator::new(cfg);
        let mut bytes = 0f64;
        let mut n = 0;
        let mut d = Decision::Continue;
        for r in rates {
            n += 1;
            bytes += r * TICK / 8.0;
            d = e.push(Duration::from_secs_f64(n as f64 * TICK), bytes as u64);
            if d.is_stop() {
                break;
            }
        }
        (d, e.estimate(), n)
    }

    fn cfg() -> EstimatorConfig {
        EstimatorConfig::default()
    }

    #[test]
    fn constant_rate_converges_after_warmup_and_one_window() {
        let (d, est, n) = run(cfg(), std::iter::repeat(40e6));
        assert_eq!(d, Decision::Converged);
        // 2 discarded, the 3rd is flat and counted: 2 + 10 intervals.
        assert_eq!(n, 12);
        assert!((est.bits_per_second - 40e6).abs() / 40e6 < 1e-6, "{est:?}");
        assert!(est.converged);
        assert_eq!(est.span, Duration::from_secs(1));
    }

    #[test]
    fn slow_start_is_discarded() {
        // Doubling for 8 intervals, then a steady 100 Mbit/s.
        let ramp = (0..8).map(|i| 100e6 / f64::powi(2.0, 8 - i));
        let (d, est, n) = run(cfg(), ramp.chain(std::iter::repeat(100e6)));
        assert_eq!(d, Decision::Converged);
        assert!(
            (est.bits_per_second - 100e6).abs() / 100e6 < 1e-6,
            "{est:?}"
        );
        assert!(est.warmup >= Duration::from_millis(750), "{est:?}");
        assert!(n <= 8 + 11);
    }

    #[test]
    fn initial_burst_then_steady() {
        // A shaper's bucket lets the first interval through at 3x the rate.
        let rates = [120e6, 45e6].into_iter().chain(std::iter::repeat(40e6));
        let (d, est, _) = run(cfg(), rates);
        assert_eq!(d, Decision::Converged);
        assert!((est.bits_per_second - 40e6).abs() / 40e6 < 1e-6, "{est:?}");
    }

    #[test]
    fn small_noise_converges_large_noise_hits_the_cap() {
        // ±0.5% alternating noise converges.
        let small = (0..).map(|i: u32| {
            if i.is_multiple_of(2) {
                10e6 * 1.005
            } else {
                10e6 * 0.995
            }
        });
        let (d, est, _) = run(cfg(), small);
        assert_eq!(d, Decision::Converged);
        assert!((est.bits_per_second - 10e6).abs() / 10e6 < 0.005);
        // ±20% in 300 ms blocks never does: stop at the duration cap.
        let big = (0..).map(|i: u32| if (i / 3).is_multiple_of(2) { 12e6 } else { 8e6 });
        let c = EstimatorConfig {
            max_duration: Duration::from_secs(3),
            ..cfg()
        };
        let (d, est, n) = run(c, big);
        assert_eq!(d, Decision::DurationCap);
        assert_eq!(n, 30);
        assert!(!est.converged);
        assert!((est.bits_per_second - 10e6).abs() / 10e6 < 0.1, "{est:?}");
    }

    #[test]
    fn byte_cap() {
        let c = EstimatorConfig {
            max_bytes: 1_000_000,
            ..cfg()
        };
        // 80 Mbit/s = 1 MB per 100 ms: capped at the first sample.
        let (d, _, n) = run(c, std::iter::repeat(80e6));
        assert_eq!((d, n), (Decision::ByteCap, 1));
    }

    #[test]
    fn stuck_ramp_forced_over_by_max_warmup() {
        // A rate that rises 10% per interval forever never looks flat.
        let c = EstimatorConfig {
            max_warmup: Duration::from_millis(500),
            max_duration: Duration::from_secs(2),
            ..cfg()
        };
        let e_rates = (0..).map(|i| 1e6 * 1.1f64.powi(i));
        let (d, est, _) = run(c, e_rates);
        assert_eq!(d, Decision::DurationCap);
        assert!((est.warmup.as_secs_f64() - 0.5).abs() < 1e-9, "{est:?}");
    }

    #[test]
    fn no_data_gives_zero_not_nan() {
        let c = EstimatorConfig {
            max_duration: Duration::from_secs(1),
            ..cfg()
        };
        let (d, est, _) = run(c, std::iter::repeat(0.0));
        assert_eq!(d, Decision::DurationCap);
        assert_eq!(est.bits_per_second, 0.0);
        assert!(!est.converged);
    }

    #[test]
    fn bursty_counter_converges_close() {
        // 9.56 Mbit/s goodput seen through a counter that moves in 14480-byte ACK steps
        // (what bytes_acked does on a 10 Mbit/s tbf link), sampled with 2 ms jitter.
        let q = 14_480u64;
        let mut e = Estimator::new(cfg());
        let mut d = Decision::Continue;
        let mut n = 0;
        while !d.is_stop() {
            n += 1;
            let t = n as f64 * 0.1 + if n % 3 == 0 { 0.002 } else { 0.0 };
            let true_bytes = (9.56e6 / 8.0 * t) as u64;
            d = e.push(Duration::from_secs_f64(t), true_bytes / q * q);
        }
        let est = e.estimate();
        assert_eq!(d, Decision::Converged, "{est:?}");
        assert!(n <= 20, "{n}");
        assert!(
            (est.bits_per_second - 9.56e6).abs() / 9.56e6 < 0.015,
            "{est:?}"
        );
    }

    #[test]
    fn steady_trend_never_converges() {
        // +2% per interval: below the slow-start threshold, but a trend all the same.
        let c = EstimatorConfig {
            max_duration: Duration::from_secs(3),
            ..cfg()
        };
        let (d, est, _) = run(c, (0..).map(|i| 50e6 * 1.02f64.powi(i)));
        assert_eq!(d, Decision::DurationCap, "{est:?}");
    }

    #[test]
    fn losses_in_the_window_delay_convergence() {
        // Steady 10 Mbit/s, but retransmitting 20% of it until 1.5 s.
        let mut e = Estimator::new(cfg());
        let mut d = Decision::Continue;
        let mut n = 0u64;
        while !d.is_stop() {
            n += 1;
            let bytes = n * 125_000;
            let lossy = n.min(15) * 25_000;
            d = e.push_sample(Duration::from_millis(n * 100), bytes, lossy);
        }
        assert_eq!(d, Decision::Converged);
        // The window (1 s) must start after the last loss at 1.5 s.
        assert_eq!(n, 25);
    }

    proptest! {
        /// Whatever the samples, stops happen at the caps and the estimate is finite,
        /// non-negative and no larger than the fastest interval.
        #[test]
        fn caps_hold_and_estimate_is_bounded(
            steps in proptest::collection::vec((1u64..400, 0u64..10_000_000), 1..200),
            max_ms in 100u64..5000,
        ) {
            let c = EstimatorConfig { max_duration: Duration::from_millis(max_ms), max_bytes: 500_000_000, ..cfg() };
            let mut e = Estimator::new(c);
            let (mut t_ms, mut bytes, mut max_rate) = (0u64, 0u64, 0f64);
            for (dt, db) in steps {
                t_ms += dt;
                bytes += db;
                max_rate = max_rate.max(db as f64 * 8.0 / (dt as f64 / 1000.0));
                let d = e.push(Duration::from_millis(t_ms), bytes);
                if t_ms >= max_ms || bytes >= 500_000_000 {
                    prop_assert!(d.is_stop());
                }
                let est = e.estimate();
                prop_assert!(est.bits_per_second.is_finite());
                prop_assert!(est.bits_per_second >= 0.0);
                prop_assert!(est.bits_per_second <= max_rate * (1.0 + 1e-9) + 1e-9);
                if d.is_stop() { break; }
            }
        }

        /// A ramp of any shape followed by a steady rate with small noise ends converged
        /// within 1% of the steady rate, well before a 10 s cap.
        #[test]
        fn ramp_then_steady_converges_close(
            steady in 1e6f64..10e9,
            ramp_len in 0usize..15,
            noise in proptest::collection::vec(-0.004f64..0.004, 200),
        ) {
            let ramp = (0..ramp_len).map(move |i| steady * (i as f64 + 1.0) / (ramp_len as f64 + 1.0));
            let tail = noise.into_iter().map(move |n| steady * (1.0 + n));
            let (d, est, n) = run(cfg(), ramp.chain(tail));
            prop_assert_eq!(d, Decision::Converged);
            prop_assert!((est.bits_per_second - steady).abs() / steady < 0.01, "{:?}", est);
            prop_assert!(n <= ramp_len + 2 + 10 + 20);
        }
    }
}
