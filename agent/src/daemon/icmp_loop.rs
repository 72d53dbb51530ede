//! ICMP rounds to every peer, on an interval with jitter.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::outcome::Outcome;
use super::peers::PeerSource;
use crate::probe::{IcmpProber, resolve_peers};

/// After waiting for a throughput test, the time given to the bytes it left in socket
/// buffers and queues to leave the link before the round starts.
const DRAIN: Duration = Duration::from_millis(250);

/// Waits for this node's throughput-test gate: `Some(Some(permit))` once it is free
/// (after [`DRAIN`] if a test had it), `Some(None)` when a test still holds it after
/// `wait`, `None` on shutdown.
async fn take_test_gate(
    shared: &Shared,
    wait: Duration,
    shutdown: &CancellationToken,
) -> Option<Option<OwnedSemaphorePermit>> {
    if let Ok(permit) = shared.test_gate.clone().try_acquire_owned() {
        return Some(Some(permit));
    }
    let waited = tokio::select! {
        _ = shutdown.cancelled() => return None,
        g = tokio::time::timeout(wait, shared.test_gate.clone().acquire_owned()) => g,
    };
    // The gate is never closed, so an error here is the timeout.
    let Ok(Ok(permit)) = waited else {
        tracing::info!("a throughput test is still running; probing anyway");
        return Some(None);
    };
    // A test just ended: let the link drain what it left queued.
    tokio::select! {
        _ = shutdown.cancelled() => None,
        _ = tokio::time::sleep(DRAIN) => Some(Some(permit)),
    }
}

/// Runs rounds until `shutdown`. The first round starts within half a second (so the
/// agent becomes ready quickly); later rounds are `interval` apart ± 10%, so agents
/// started together drift apart instead of probing each other in lockstep.
///
/// A round waits for, and holds, the node's throughput-test gate: a test this node
/// runs or serves fills the link it measures, and echoes sent meanwhile would report
/// that self-made queueing as latency, jitter and loss (in the lab, one ping in 60 lost
/// on a clean 40 Mbit/s link). Holding the gate also keeps a test from starting
/// mid-round; a peer asking for one then is told "busy" and retries later. The wait is
/// bounded by the longest test the caps allow (or an interval, if longer): a peer that
/// keeps this node's server busy cannot stop the probing, the round then goes ahead
/// without the gate.
pub async fn run(shared: Arc<Shared>, source: Arc<dyn PeerSource>, shutdown: CancellationToken) {
    let prober = IcmpProber::new();
    let condition = prober.condition();
    if !condition.available {
        tracing::warn!(message = condition.message.as_str(), "ICMP is unavailable");
    }
    shared.set_icmp_condition(condition);
    let mut peers_rx = source.watch();
    let interval = shared.config.ping_interval;
    // Both directions at their duration cap, plus handshakes and the server's hold for
    // a client's second direction.
    let gate_wait = interval.max(
        shared
            .config
            .throughput
            .max_duration
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(5)),
    );
    let mut next = Instant::now() + Duration::from_millis(rand::rng().random_range(0..500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let due = Instant::now();
        let Some(gate) = take_test_gate(&shared, gate_wait, &shutdown).await else {
            return;
        };
        let started = Instant::now();
        let peers = peers_rx.borrow_and_update().clone();
        let removed = shared.set_peers(&peers);
        if !removed.is_empty() {
            tracing::info!(removed = ?removed, "peers removed");
        }

        let resolved = resolve_peers(&peers).await;
        let mut targets = Vec::with_capacity(resolved.len());
        let mut unresolved = Vec::new();
        for r in resolved {
            match r.addr {
                Ok(a) => targets.push((r.target.name, a)),
                Err(e) => unresolved.push((r.target.name, e)),
            }
        }
        let results = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = prober.probe(&targets, &shared.config.icmp) => r,
        };
        drop(gate);
        let any_reply = results
            .iter()
            .any(|r| r.samples.iter().any(Option::is_some));
        shared.record_round(
            unresolved,
            &results,
            started.elapsed(),
            Outcome::of_round(targets.len(), any_reply),
        );

        let jitter = rand::rng().random_range(0.9..1.1);
        // The cadence counts from when the round was due, not from when a test let it
        // start, so waiting on tests does not stretch the interval.
        next = due + interval.mul_f64(jitter);
        // A round that overran (it cannot by config, but a stalled runtime can) starts
        // the next one now rather than trying to catch up with a burst.
        next = next.max(Instant::now());
    }
}
