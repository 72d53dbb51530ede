//! Tests peers ran against this node's server, kept as this node's own figures.
//!
//! A linkmeter client measures a pair both ways and tells the server its estimate in
//! the results exchange, so the serving node learns the same figures without running
//! a test of its own: half the test traffic, and half the contention for the one test a
//! node runs at a time. Stock iperf3 clients send no estimate and are not recorded.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::Shared;
use crate::state::ThroughputFigures;
use crate::throughput::TestOutcome;

/// Served tests per peer since the throughput planner last looked.
#[derive(Debug, Default)]
pub struct ServedLog {
    marks: Mutex<HashMap<String, ServedMark>>,
}

/// What peers' tests against this node moved since the planner last looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedMark {
    /// When the latest one ended.
    pub at: Instant,
    /// Bytes they moved.
    pub bytes: u64,
    /// Whether a second direction (the client's reverse test) completed.
    pub both: bool,
}

impl ServedLog {
    /// Notes a served test of `peer`. Keys are peer names, so the map stays as small as
    /// the peer set.
    pub fn note(&self, peer: &str, at: Instant, bytes: u64, reverse: bool) {
        let mut m = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let mark = m.entry(peer.to_owned()).or_insert(ServedMark {
            at,
            bytes: 0,
            both: false,
        });
        mark.at = at;
        mark.bytes = mark.bytes.saturating_add(bytes);
        // A linkmeter client runs its reverse test after its forward one.
        mark.both |= reverse;
    }

    /// Everything noted so far, forgotten here.
    pub fn take(&self) -> Vec<(String, ServedMark)> {
        let mut m = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        m.drain().collect()
    }
}

/// Records a finished served test: counted always, and kept as this node's figure for
/// the client's node when the client is a known peer and sent a plausible estimate.
pub fn record(shared: &Shared, outcome: &TestOutcome) {
    let summary = match &outcome.result {
        Ok(s) => s,
        Err(_) => return shared.record_served(false, 0, None),
    };
    let Some(bps) = summary.client_estimate_bps else {
        return shared.record_served(true, summary.bytes, None);
    };
    let ip = outcome.peer.ip().to_canonical();
    // The client's forward test is what this node received; its reverse, what it sent.
    let mut figures = ThroughputFigures {
        measured_at: Some(jiff::Timestamp::now()),
        ..ThroughputFigures::default()
    };
    let label = if summary.reverse {
        figures.tx_bps = Some(bps);
        "tx"
    } else {
        figures.rx_bps = Some(bps);
        "rx"
    };
    let Some(name) = shared.lock_state().peer_name_by_addr(ip) else {
        tracing::debug!(%ip, "served a test for an address that is not a peer");
        return shared.record_served(true, summary.bytes, None);
    };
    shared.record_served(true, summary.bytes, Some((&name, figures)));
    shared
        .served
        .note(&name, Instant::now(), summary.bytes, summary.reverse);
    tracing::info!(
        peer = name,
        direction = label,
        mbps = bps / 1e6,
        "throughput measured by the peer's test"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_add_up_per_peer_and_are_taken_once() {
        let log = ServedLog::default();
        let t0 = Instant::now();
        log.note("a", t0, 100, false);
        log.note("a", t0, 50, true);
        log.note("b", t0, 7, false);
        let mut got = log.take();
        got.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            got,
            vec![
                (
                    "a".to_owned(),
                    ServedMark {
                        at: t0,
                        bytes: 150,
                        both: true
                    }
                ),
                (
                    "b".to_owned(),
                    ServedMark {
                        at: t0,
                        bytes: 7,
                        both: false
                    }
                ),
            ]
        );
        assert!(log.take().is_empty());
    }
}
