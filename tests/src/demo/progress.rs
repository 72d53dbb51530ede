//! What the demo tells while it works: a line per step with its time, and the
//! measurements as they come in from the NodeTopologies the agents publish.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use linkmeter_aggregator::api::{Link, NodeTopology};

use super::interrupt;
use super::truth::NODES;
use crate::aggregator::admin_get;
use crate::kube_env::KubeEnv;

/// Prints a line per finished step with the time it took.
pub struct Steps {
    start: Instant,
    last: Instant,
}

impl Default for Steps {
    fn default() -> Self {
        Self::new()
    }
}

impl Steps {
    /// Starts the clock.
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
        }
    }

    /// Prints `what` with the time since the previous step and since the start.
    pub fn done(&mut self, what: &str) {
        let now = Instant::now();
        println!(
            "[{:>6.1}s] {what} ({:.1}s)",
            now.duration_since(self.start).as_secs_f64(),
            now.duration_since(self.last).as_secs_f64()
        );
        self.last = now;
    }

    /// Prints a line that is not a step (progress within one).
    pub fn note(&self, what: &str) {
        println!("[{:>6.1}s]   {what}", self.start.elapsed().as_secs_f64());
    }
}

/// What each node reported of each peer: `(node, peer) → link`.
pub type Measured = BTreeMap<(String, String), Link>;

/// The links of every NodeTopology in the cluster.
pub fn read_measured(kube: &KubeEnv) -> Result<Measured> {
    let list = admin_get(kube, "/apis/linkmeter.dev/v1alpha1/nodetopologies")?
        .context("no NodeTopology API (are the CRDs applied?)")?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let mut out = Measured::new();
    for item in items {
        let t: NodeTopology =
            serde_json::from_value(item).context("a NodeTopology that does not read")?;
        let node = t.metadata.name.clone().unwrap_or_default();
        for link in t.status.map(|s| s.links).unwrap_or_default() {
            out.insert((node.clone(), link.peer.clone()), link);
        }
    }
    Ok(out)
}

/// Every ordered pair of demo nodes.
pub fn directed_pairs() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for x in &NODES {
        for y in &NODES {
            if x.name != y.name {
                pairs.push((x.name.to_owned(), y.name.to_owned()));
            }
        }
    }
    pairs
}

fn has_rtt(link: &Link) -> bool {
    link.rtt_p50_us.is_some()
}

fn has_throughput(link: &Link) -> bool {
    link.throughput_tx_kbps.is_some() && link.throughput_rx_kbps.is_some()
}

/// The pairs for which `has` holds.
fn pairs_with(measured: &Measured, has: fn(&Link) -> bool) -> usize {
    directed_pairs()
        .iter()
        .filter(|p| measured.get(p).is_some_and(has))
        .count()
}

/// Counts of what has come in: (pairs with an RTT, pairs with throughput both ways,
/// pairs in all).
pub fn counts(measured: &Measured) -> (usize, usize, usize) {
    (
        pairs_with(measured, has_rtt),
        pairs_with(measured, has_throughput),
        directed_pairs().len(),
    )
}

/// Waits until every node has published RTT and throughput (both ways) for every peer,
/// printing a line whenever the counts change. Fails after `timeout` naming what is
/// missing.
pub fn wait_for_measurements(steps: &Steps, kube: &KubeEnv, timeout: Duration) -> Result<Measured> {
    let end = Instant::now() + timeout;
    let mut shown = None;
    println!(
        "           measuring: ICMP RTT every second, a throughput test of each link both \
         ways (iperf3 protocol), GPU and system every 5 s"
    );
    loop {
        interrupt::check()?;
        let measured = read_measured(kube).unwrap_or_default();
        let (rtt, tput, all) = counts(&measured);
        if shown != Some((rtt, tput)) {
            steps.note(&format!(
                "published: RTT {rtt}/{all} node→peer pairs, throughput {tput}/{all}"
            ));
            shown = Some((rtt, tput));
        }
        if rtt == all && tput == all {
            return Ok(measured);
        }
        if Instant::now() >= end {
            let missing: Vec<String> = directed_pairs()
                .into_iter()
                .filter(|p| {
                    measured
                        .get(p)
                        .is_none_or(|l| !has_rtt(l) || !has_throughput(l))
                })
                .map(|(a, b)| format!("{a}→{b}"))
                .collect();
            bail!(
                "measurements incomplete after {}s: missing {}",
                timeout.as_secs(),
                missing.join(", ")
            );
        }
        interrupt::sleep(Duration::from_secs(2))?;
    }
}
