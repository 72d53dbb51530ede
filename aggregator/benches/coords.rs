//! Coordinate fit on the synthetic 1,000-node topology (32 measured peers per node):
//! median and p90 relative error on the pairs nobody measured, and the fit's time.
//!
//!   cargo bench -p linkmeter-aggregator --bench coords [-- NODES PEERS]

use std::time::Instant;

use linkmeter_aggregator::coords::{self, FitConfig, synthetic};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let peers = args.get(1).copied().unwrap_or(32);
    for seed in [1u64, 2, 3] {
        let topo = synthetic::internet_like(n, peers, seed);
        let started = Instant::now();
        let model = coords::fit(n, &topo.measured, &FitConfig::default());
        let took = started.elapsed();
        let mut errs = topo.unmeasured_errors(|a, b| model.predict(a, b));
        let pairs = errs.len();
        let Some((median, p90)) = coords::median_p90(&mut errs) else {
            println!("seed {seed}: no unmeasured pairs");
            continue;
        };
        println!(
            "coords: {n} nodes, {} measured pairs, seed {seed}: unmeasured pairs {pairs}, \
             median relative error {:.1}%, p90 {:.1}%, fit {:.2}s",
            topo.measured.len(),
            median * 100.0,
            p90 * 100.0,
            took.as_secs_f64()
        );
    }
}
