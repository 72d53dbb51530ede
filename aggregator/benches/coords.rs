//! Coordinate fit on the synthetic 1,000-node topology (32 measured peers per node):
//! median and p90 relative error on the pairs nobody measured, and the fit's time.
//!
//!   cargo bench -p linkmeter-aggregator --bench coords [-- NODES PEERS [ITERATIONS [LR]]]

use std::time::Instant;

use linkmeter_aggregator::coords::{self, FitConfig, synthetic};

fn main() {
    // Numbers only: cargo adds `--bench`.
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().map_or(1000, |&v| v as usize);
    let peers = args.get(1).map_or(32, |&v| v as usize);
    let mut cfg = FitConfig::default();
    if let Some(&it) = args.get(2) {
        cfg.iterations = it as usize;
    }
    if let Some(&lr) = args.get(3) {
        cfg.learning_rate = lr;
    }
    for seed in [1u64, 2, 3] {
        let topo = synthetic::internet_like(n, peers, seed);
        let started = Instant::now();
        let model = coords::fit(n, &topo.measured, &cfg);
        let took = started.elapsed();
        let mut errs = topo.unmeasured_errors(|a, b| model.predict(a, b));
        let pairs = errs.len();
        let Some((median, p90)) = coords::median_p90(&mut errs) else {
            println!("seed {seed}: no unmeasured pairs");
            continue;
        };
        println!(
            "coords: {n} nodes, {} measured pairs, seed {seed}: unmeasured pairs {pairs}, \
             median relative error {:.1}%, p90 {:.1}%, fit {:.2}s ({} iterations, lr {})",
            topo.measured.len(),
            median * 100.0,
            p90 * 100.0,
            took.as_secs_f64(),
            cfg.iterations,
            cfg.learning_rate
        );
    }
}
