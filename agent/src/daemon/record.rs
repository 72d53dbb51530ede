//! The one write path of every measurement: each method here records what a probe, a
//! test or a collector produced in the state (what `/report` and the NodeTopology
//! show) and in the metrics (what `/metrics` shows) in one call, so the two cannot
//! drift apart and no loop writes either on its own.

use std::time::Duration;

use super::Shared;
use super::outcome::Outcome;
use crate::availability::Availability;
use crate::collect::gpu::GpuReport;
use crate::collect::system::SystemReport;
use crate::probe::{PeerSamples, PeerTarget};
use crate::state::ThroughputFigures;

/// How one client test (both directions, or as far as it got) ended.
#[derive(Clone, Debug)]
pub struct ClientTest {
    /// The figures measured, and the error when a direction failed.
    pub figures: ThroughputFigures,
    /// `ok`, `busy` or `error`: the `result` label of the test counter.
    pub result: &'static str,
    /// Bytes the test moved.
    pub bytes: u64,
    /// How long it took.
    pub took: Duration,
}

impl Shared {
    /// Records whether ICMP sockets could be opened.
    pub fn set_icmp_condition(&self, condition: Availability) {
        self.lock_state().icmp_condition = Some(condition);
    }

    /// Replaces the peer set in the state and the metrics; returns the names removed.
    pub fn set_peers(&self, peers: &[PeerTarget]) -> Vec<String> {
        let removed = self.lock_state().set_peers(peers);
        self.metrics
            .set_peers(peers.iter().map(|p| p.name.as_str()));
        removed
    }

    /// Records an ICMP round: the peers that did not resolve, every peer's samples,
    /// its window loss, how long the round took and how it went.
    pub fn record_round(
        &self,
        unresolved: Vec<(String, String)>,
        results: &[PeerSamples],
        took: Duration,
        outcome: Outcome,
    ) {
        {
            let mut st = self.lock_state();
            for (peer, error) in unresolved {
                st.record_unresolved(&peer, error);
            }
            st.record_round(results, jiff::Timestamp::now());
            self.metrics.record_round(results, |peer| {
                st.peer(peer)
                    .map(|p| f64::from(p.window.summary().loss_ppm) / 1e6)
            });
        }
        self.mark_round_done();
        self.metrics.observe_collector("icmp", took, outcome);
    }

    /// Records a client test to `peer`: its figures in the state and the throughput
    /// gauges, and the test in the counters.
    pub fn record_client_test(&self, peer: &str, test: ClientTest) {
        self.metrics.count_test("client", test.result, test.bytes);
        // A busy peer is a normal answer, not a failure, but nothing was measured.
        self.metrics
            .observe_collector("throughput", test.took, Outcome::of_test(test.result));
        self.record_figures(peer, test.figures);
    }

    /// Records a test this node's server answered: the counter always, the figures
    /// (`figures`) when the client was a known peer and sent its estimate.
    pub fn record_served(&self, ok: bool, bytes: u64, figures: Option<(&str, ThroughputFigures)>) {
        let result = if ok { "ok" } else { "error" };
        self.metrics.count_test("server", result, bytes);
        if let Some((peer, figures)) = figures {
            self.record_figures(peer, figures);
        }
    }

    /// Records a system collection.
    pub fn record_system(&self, report: SystemReport) {
        self.metrics.set_system(&report);
        self.lock_state().system = Some(report);
    }

    /// Records a GPU collection.
    pub fn record_gpu(&self, report: GpuReport) {
        self.metrics.set_gpu(&report);
        self.lock_state().gpu = Some(report);
    }

    /// Throughput figures for `peer`: the gauges of the directions they have, and the
    /// state.
    fn record_figures(&self, peer: &str, figures: ThroughputFigures) {
        let at = figures
            .measured_at
            .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0);
        if let Some(bps) = figures.tx_bps {
            self.metrics.record_throughput(peer, "tx", bps, at);
        }
        if let Some(bps) = figures.rx_bps {
            self.metrics.record_throughput(peer, "rx", bps, at);
        }
        self.lock_state().record_throughput(peer, figures);
    }
}
