//! One timed run of [`crate::cluster::compute`] over read inputs, shared by every
//! offline command.

use std::time::Instant;

use super::inputs::Inputs;
use super::warnings::Warnings;
use crate::cluster::{self, Options, Output};

/// `skipped` reasons for items that never reached the calculation.
pub const UNREADABLE_NODE_TOPOLOGY: &str = "unreadableNodeTopology";
/// See [`UNREADABLE_NODE_TOPOLOGY`].
pub const UNREADABLE_NODE: &str = "unreadableNode";

/// Runs the calculation. `calculationMillis` is the wall time of the call; items the
/// readers skipped are added to the status's skipped counts, so the ClusterTopology says
/// what was left out whichever layer left it out.
pub fn calculate(inputs: &Inputs, opts: &Options) -> Output {
    let start = Instant::now();
    let mut out = cluster::compute(inputs.nodes.as_deref(), &inputs.topologies, opts);
    out.cluster.calculation_millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    cluster::input::add_skipped(
        &mut out.cluster,
        UNREADABLE_NODE_TOPOLOGY,
        inputs.unreadable_topologies,
    );
    cluster::input::add_skipped(&mut out.cluster, UNREADABLE_NODE, inputs.unreadable_nodes);
    out
}

/// Prints the calculation's warnings (bounded) and one line with the skipped counts.
pub fn print_warnings(out: &Output) {
    let mut w = Warnings::new("input");
    for line in &out.warnings {
        w.push(line.as_str());
    }
    w.print();
    let counts: Vec<String> = out
        .skipped
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if !counts.is_empty() {
        eprintln!(
            "linkmeter-aggregator: warning: skipped or clipped: {}",
            counts.join(", ")
        );
    }
}
