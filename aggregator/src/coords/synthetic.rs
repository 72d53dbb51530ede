//! A synthetic Internet-like topology with a known truth, for the coordinate fit's
//! tests and bench: nodes in six regions on a plane spanning ~150 ms, access-link
//! heights with a heavy tail (a few home links add 10-30 ms), per-pair detours that
//! break the triangle inequality, measurement noise, each node measuring a fixed
//! number of random peers, and a few measured links lost.

use std::collections::BTreeSet;

use super::Sample;

/// A topology and what its nodes measured.
#[derive(Clone, Debug)]
pub struct Synthetic {
    /// Nodes.
    pub n: usize,
    /// True RTT of every ordered pair, µs, row-major (`truth[a * n + b]`).
    pub truth: Vec<f64>,
    /// The measured samples (one per measured unordered pair).
    pub measured: Vec<Sample>,
    /// The measured unordered pairs, `(low, high)`.
    pub measured_pairs: BTreeSet<(usize, usize)>,
}

/// splitmix64: a small, stable, seeded generator (the topology must not change with
/// a dependency's version).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// Region centres, ms on a plane (distance ≈ RTT between them).
const REGIONS: [(f64, f64); 6] = [
    (0.0, 0.0),
    (30.0, 10.0),
    (80.0, 20.0),
    (140.0, 60.0),
    (100.0, -40.0),
    (20.0, -70.0),
];

/// `n` nodes, each measuring `peers` random others; `seed` picks the instance.
pub fn internet_like(n: usize, peers: usize, seed: u64) -> Synthetic {
    let mut rng = Rng(seed);
    let mut pos = Vec::with_capacity(n);
    let mut height = Vec::with_capacity(n);
    for _ in 0..n {
        let (cx, cy) = REGIONS[rng.below(REGIONS.len())];
        pos.push((cx + 4.0 * rng.normal(), cy + 4.0 * rng.normal()));
        // Access delay: log-normal around 0.5 ms; one node in twenty on a slow home
        // uplink with 10-30 ms more.
        let mut h = 0.5 * (1.0 * rng.normal()).exp();
        if rng.unit() < 0.05 {
            h += 10.0 + 20.0 * rng.unit();
        }
        height.push(h);
    }
    let mut truth = vec![0.0; n * n];
    for a in 0..n {
        for b in a + 1..n {
            let (dx, dy) = (pos[a].0 - pos[b].0, pos[a].1 - pos[b].1);
            let base = (dx * dx + dy * dy).sqrt() + height[a] + height[b] + 0.1;
            // Routing: a few percent either way for every pair, and a detour of 30-100%
            // for one pair in thirty (triangle-inequality violations).
            let mut factor = (0.05 * rng.normal()).exp();
            if rng.unit() < 1.0 / 30.0 {
                factor *= 1.3 + 0.7 * rng.unit();
            }
            let rtt_us = base * factor * 1000.0;
            truth[a * n + b] = rtt_us;
            truth[b * n + a] = rtt_us;
        }
    }
    let mut measured_pairs = BTreeSet::new();
    for a in 0..n {
        let mut chosen = BTreeSet::new();
        let want = peers.min(n.saturating_sub(1));
        while chosen.len() < want {
            let b = rng.below(n);
            if b != a {
                chosen.insert(b);
            }
        }
        for b in chosen {
            measured_pairs.insert((a.min(b), a.max(b)));
        }
    }
    let mut measured = Vec::with_capacity(measured_pairs.len());
    let mut kept = BTreeSet::new();
    for &(a, b) in &measured_pairs {
        // Lost or too lossy to give a p50: 3% of the links.
        if rng.unit() < 0.03 {
            continue;
        }
        let noise = (0.01 * rng.normal()).exp();
        measured.push(Sample {
            a,
            b,
            rtt_us: truth[a * n + b] * noise,
        });
        kept.insert((a, b));
    }
    Synthetic {
        n,
        truth,
        measured,
        measured_pairs: kept,
    }
}

impl Synthetic {
    /// Relative errors of `predict` on every pair that was not measured.
    pub fn unmeasured_errors(&self, predict: impl Fn(usize, usize) -> Option<f64>) -> Vec<f64> {
        let mut errs = Vec::new();
        for a in 0..self.n {
            for b in a + 1..self.n {
                if self.measured_pairs.contains(&(a, b)) {
                    continue;
                }
                if let Some(p) = predict(a, b) {
                    let t = self.truth[a * self.n + b];
                    errs.push((p - t).abs() / t);
                }
            }
        }
        errs
    }
}
