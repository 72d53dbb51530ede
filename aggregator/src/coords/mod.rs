//! Network coordinates fitted centrally from every measured link, so the RTT of any
//! pair can be predicted although each node measures only a few peers.
//!
//! The model is Vivaldi's (Euclidean coordinates plus a non-negative "height" per node
//! for its access link): `rtt(a, b) ≈ |x_a − x_b| + h_a + h_b`. Vivaldi fits it
//! decentrally, each node from its own samples; the aggregator sees every measurement
//! at once and fits all coordinates together, minimising the relative error of every
//! measured pair (Huber-clipped, so a detour or a bad sample pulls with bounded force)
//! by full-batch Adam. That is deterministic: the same samples give the same
//! coordinates bit for bit (fixed initial positions from a hash of the node index,
//! fixed iteration count, samples in a canonical order), so published objects do not
//! churn when nothing changed.

pub mod synthetic;

use std::collections::BTreeMap;

/// One measured RTT between two nodes (by index), in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// One node.
    pub a: usize,
    /// The other node.
    pub b: usize,
    /// Round-trip time, µs.
    pub rtt_us: f64,
}

/// How the fit runs.
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// Euclidean dimensions (the height comes on top).
    pub dims: usize,
    /// Full-batch Adam steps.
    pub iterations: usize,
    /// First step size, in units of the 95th-percentile RTT.
    pub learning_rate: f64,
    /// Relative errors beyond this pull no harder (Huber clip).
    pub clip: f64,
    /// Most pair updates (pairs × iterations) one fit may spend: a large cluster runs
    /// fewer iterations (never under [`MIN_ITERATIONS`]) so a fit stays near a second
    /// of CPU. Each iteration sees every pair, so a large cluster needs fewer of them.
    pub pair_step_budget: usize,
}

/// Fewest iterations a fit runs, whatever the budget.
pub const MIN_ITERATIONS: usize = 300;

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            dims: 3,
            iterations: 1500,
            // 0.1 rather than 0.05: the same error on the synthetic Internet, and the
            // far pairs of a LAN-heavy cluster converge (see `spread_tests`).
            learning_rate: 0.1,
            clip: 0.5,
            pair_step_budget: 45_000_000,
        }
    }
}

/// One node's fitted coordinate.
#[derive(Clone, Debug, PartialEq)]
pub struct Coordinate {
    /// Position, µs.
    pub position: Vec<f64>,
    /// Height (access-link delay), µs, ≥ 0.
    pub height_us: f64,
    /// Median relative error of this node's measured pairs under the fit; `None` for a
    /// node with no samples (its coordinate predicts nothing).
    pub error: Option<f64>,
}

/// Fitted coordinates of every node.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// By node index.
    pub coords: Vec<Coordinate>,
}

impl Model {
    /// Predicted RTT between `a` and `b`, µs; `None` when either index is unknown or
    /// had no samples.
    pub fn predict(&self, a: usize, b: usize) -> Option<f64> {
        let (ca, cb) = (self.coords.get(a)?, self.coords.get(b)?);
        if ca.error.is_none() || cb.error.is_none() {
            return None;
        }
        // Heights summed first: a + b == b + a exactly, so predict(a, b) == predict(b, a).
        Some(distance(&ca.position, &cb.position) + (ca.height_us + cb.height_us))
    }
}

fn distance(x: &[f64], y: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        .sqrt()
}

/// A reproducible number in `[-1, 1)` for (node, dimension): the initial positions.
fn initial(node: usize, dim: usize) -> f64 {
    let mut z = (node as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((dim as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Merges samples of the same unordered pair (either end, repeated) into their mean,
/// drops unusable ones (self-pairs, indices ≥ `n`, non-positive or non-finite RTTs),
/// and returns the pairs in canonical order.
pub fn merge_pairs(n: usize, samples: &[Sample]) -> Vec<Sample> {
    let mut sums: BTreeMap<(usize, usize), (f64, u32)> = BTreeMap::new();
    for s in samples {
        if s.a == s.b || s.a >= n || s.b >= n || !s.rtt_us.is_finite() || s.rtt_us <= 0.0 {
            continue;
        }
        let key = (s.a.min(s.b), s.a.max(s.b));
        let e = sums.entry(key).or_insert((0.0, 0));
        e.0 += s.rtt_us;
        e.1 += 1;
    }
    sums.into_iter()
        .map(|((a, b), (sum, k))| Sample {
            a,
            b,
            rtt_us: sum / f64::from(k),
        })
        .collect()
}

/// Fits coordinates for `n` nodes to `samples` (see the module docs).
pub fn fit(n: usize, samples: &[Sample], cfg: &FitConfig) -> Model {
    let pairs = merge_pairs(n, samples);
    let dims = cfg.dims.max(1);
    if pairs.is_empty() {
        return Model {
            coords: (0..n)
                .map(|_| Coordinate {
                    position: vec![0.0; dims],
                    height_us: 0.0,
                    error: None,
                })
                .collect(),
        };
    }
    // Work in units of a high RTT (the 95th percentile), so the step size means the
    // same at any scale and the fit can travel the whole spread: Adam moves a parameter
    // about one step size per iteration, and in units of the median a cluster of LANs
    // with a few far links (0.2 ms next to 30 ms) never reaches the far positions.
    let mut rtts: Vec<f64> = pairs.iter().map(|p| p.rtt_us).collect();
    rtts.sort_by(f64::total_cmp);
    let scale = rtts[((rtts.len() - 1) as f64 * 0.95).round() as usize];
    let m: Vec<f64> = pairs.iter().map(|p| p.rtt_us / scale).collect();

    // Parameters: dims positions then one height per node.
    let width = dims + 1;
    let mut theta = vec![0.0; n * width];
    for i in 0..n {
        for d in 0..dims {
            theta[i * width + d] = 0.5 * initial(i, d);
        }
        theta[i * width + dims] = 0.05;
    }
    let mut first = vec![0.0; theta.len()];
    let mut second = vec![0.0; theta.len()];
    let mut grad = vec![0.0; theta.len()];
    let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-9);
    let affordable = (cfg.pair_step_budget / pairs.len()).max(MIN_ITERATIONS);
    let iterations = cfg.iterations.min(affordable).max(1);
    for step in 0..iterations {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (p, &target) in pairs.iter().zip(&m) {
            let (ia, ib) = (p.a * width, p.b * width);
            let mut dist2 = 0.0;
            for d in 0..dims {
                let diff = theta[ia + d] - theta[ib + d];
                dist2 += diff * diff;
            }
            let dist = dist2.sqrt().max(1e-9);
            let pred = dist + theta[ia + dims] + theta[ib + dims];
            let rel = ((pred - target) / target).clamp(-cfg.clip, cfg.clip);
            let g = rel / target;
            for d in 0..dims {
                let diff = theta[ia + d] - theta[ib + d];
                let gd = g * diff / dist;
                grad[ia + d] += gd;
                grad[ib + d] -= gd;
            }
            grad[ia + dims] += g;
            grad[ib + dims] += g;
        }
        // Cosine decay to 2% of the first step: large moves early, fine ones late.
        let progress = step as f64 / iterations as f64;
        let lr = cfg.learning_rate
            * (0.02 + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        let t = (step + 1) as i32;
        let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        for k in 0..theta.len() {
            first[k] = beta1 * first[k] + (1.0 - beta1) * grad[k];
            second[k] = beta2 * second[k] + (1.0 - beta2) * grad[k] * grad[k];
            theta[k] -= lr * (first[k] / c1) / ((second[k] / c2).sqrt() + eps);
        }
        for i in 0..n {
            let h = &mut theta[i * width + dims];
            *h = h.max(0.0);
        }
    }

    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut coords: Vec<Coordinate> = (0..n)
        .map(|i| Coordinate {
            position: theta[i * width..i * width + dims]
                .iter()
                .map(|v| v * scale)
                .collect(),
            height_us: theta[i * width + dims] * scale,
            error: None,
        })
        .collect();
    for p in &pairs {
        let pred = distance(&coords[p.a].position, &coords[p.b].position)
            + coords[p.a].height_us
            + coords[p.b].height_us;
        let rel = (pred - p.rtt_us).abs() / p.rtt_us;
        errors[p.a].push(rel);
        errors[p.b].push(rel);
    }
    for (c, mut e) in coords.iter_mut().zip(errors) {
        if !e.is_empty() {
            e.sort_by(f64::total_cmp);
            c.error = Some(e[e.len() / 2]);
        }
    }
    Model { coords }
}

/// Median and 90th percentile of `values` (sorted in place); `None` when empty.
pub fn median_p90(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.9)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Points on a line with heights: exactly embeddable.
    fn line(n: usize) -> (Vec<f64>, Vec<Sample>) {
        let pos: Vec<f64> = (0..n).map(|i| 1000.0 * i as f64).collect();
        let h: Vec<f64> = (0..n).map(|i| 100.0 + 50.0 * (i % 3) as f64).collect();
        let rtt = |a: usize, b: usize| (pos[a] - pos[b]).abs() + h[a] + h[b];
        let mut samples = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if (a + b) % 3 != 0 {
                    samples.push(Sample {
                        a,
                        b,
                        rtt_us: rtt(a, b),
                    });
                }
            }
        }
        let truth = (0..n * n).map(|k| rtt(k / n, k % n)).collect();
        (truth, samples)
    }

    #[test]
    fn an_embeddable_topology_is_predicted_closely_off_sample() {
        let n = 12;
        let (truth, samples) = line(n);
        let model = fit(n, &samples, &FitConfig::default());
        let measured: std::collections::BTreeSet<(usize, usize)> =
            samples.iter().map(|s| (s.a, s.b)).collect();
        let mut errs = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if !measured.contains(&(a, b)) {
                    let p = model.predict(a, b).expect("both fitted");
                    errs.push((p - truth[a * n + b]).abs() / truth[a * n + b]);
                }
            }
        }
        let (median, p90) = median_p90(&mut errs).expect("unmeasured pairs");
        assert!(
            median < 0.05 && p90 < 0.15,
            "median {median:.3}, p90 {p90:.3}"
        );
    }

    #[test]
    fn the_same_samples_give_the_same_coordinates() {
        let (_, samples) = line(9);
        let cfg = FitConfig {
            iterations: 200,
            ..FitConfig::default()
        };
        let mut reversed = samples.clone();
        reversed.reverse();
        for s in &mut reversed {
            std::mem::swap(&mut s.a, &mut s.b);
        }
        assert_eq!(fit(9, &samples, &cfg), fit(9, &reversed, &cfg));
    }

    #[test]
    fn unusable_samples_are_dropped_and_ends_merged() {
        let raw = [
            Sample {
                a: 0,
                b: 1,
                rtt_us: 100.0,
            },
            Sample {
                a: 1,
                b: 0,
                rtt_us: 300.0,
            },
            Sample {
                a: 2,
                b: 2,
                rtt_us: 5.0,
            },
            Sample {
                a: 0,
                b: 9,
                rtt_us: 5.0,
            },
            Sample {
                a: 0,
                b: 2,
                rtt_us: f64::NAN,
            },
            Sample {
                a: 1,
                b: 2,
                rtt_us: -1.0,
            },
        ];
        assert_eq!(
            merge_pairs(3, &raw),
            vec![Sample {
                a: 0,
                b: 1,
                rtt_us: 200.0
            }]
        );
        let model = fit(3, &raw, &FitConfig::default());
        assert!(model.predict(0, 1).is_some());
        assert_eq!(model.predict(0, 2), None, "node 2 has no usable sample");
        assert_eq!(model.predict(0, 7), None);
    }

    /// The bench's topology, smaller: the fit must stay well inside the targets the
    /// 1,000-node bench is held to (median ≤ 8%, p90 ≤ 30% on unmeasured pairs).
    #[test]
    fn a_synthetic_internet_is_predicted_within_the_targets() {
        let topo = synthetic::internet_like(300, 24, 7);
        let model = fit(topo.n, &topo.measured, &FitConfig::default());
        let mut errs = topo.unmeasured_errors(|a, b| model.predict(a, b));
        let (median, p90) = median_p90(&mut errs).expect("unmeasured pairs");
        assert!(
            median <= 0.08 && p90 <= 0.30,
            "median {median:.3}, p90 {p90:.3}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn predictions_are_finite_symmetric_and_at_least_zero(
            raw in proptest::collection::vec((0usize..8, 0usize..8, 1.0f64..1e6), 0..40)
        ) {
            let samples: Vec<Sample> =
                raw.iter().map(|&(a, b, rtt_us)| Sample { a, b, rtt_us }).collect();
            let model = fit(8, &samples, &FitConfig { iterations: 100, ..FitConfig::default() });
            for a in 0..8 {
                for b in 0..8 {
                    if let Some(p) = model.predict(a, b) {
                        prop_assert!(p.is_finite() && p >= 0.0);
                        prop_assert_eq!(Some(p), model.predict(b, a));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod spread_tests {
    use super::*;

    /// Two sites 30 ms apart with 0.2 ms LANs: most pairs are local, so the median RTT
    /// is tiny next to the far pairs; the fit must still travel the whole distance.
    #[test]
    fn far_pairs_are_fitted_when_most_pairs_are_local() {
        let n = 12;
        let site = |i: usize| i % 2;
        let truth = |a: usize, b: usize| if site(a) == site(b) { 200.0 } else { 30_000.0 };
        let mut samples = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                // Every local pair, and only the far pairs of node 0 and node 1.
                if site(a) == site(b) || a < 2 {
                    samples.push(Sample {
                        a,
                        b,
                        rtt_us: truth(a, b),
                    });
                }
            }
        }
        let model = fit(n, &samples, &FitConfig::default());
        for a in 2..n {
            for b in a + 1..n {
                if site(a) != site(b) {
                    let p = model.predict(a, b).expect("predicted");
                    let err = (p - 30_000.0).abs() / 30_000.0;
                    assert!(err < 0.2, "{a}-{b}: predicted {p:.0} µs for 30000");
                }
            }
        }
    }
}
