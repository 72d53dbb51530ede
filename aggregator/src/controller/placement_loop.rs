//! The placement writes' own loop, beside the recompute loop: after a new world or a
//! change of the bound pods (debounced), the leader writes the NodeBandwidths and node
//! labels that changed. Pods change far more often than the network view, and a
//! reservation must show within a second, not at the next computation.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pacer::sleep_until;
use super::placement_publish::{PlacementPublisher, PlacementWriter};
use super::shared::Shared;

/// Changes arriving within this are written together.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// A failed write is tried again after this.
const RETRY: Duration = Duration::from_secs(5);

/// Runs until `shutdown`.
pub async fn run<W: PlacementWriter>(
    shared: Arc<Shared>,
    mut publisher: PlacementPublisher<W>,
    mut leader: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let mut is_leader = *leader.borrow_and_update();
    let mut leader_open = true;
    // When the pending changes are written: set by the first change after a write and
    // not moved by later ones, so steady pod churn delays a write by DEBOUNCE at most.
    let mut due: Option<Instant> = Some(Instant::now() + DEBOUNCE);
    let mark = |due: &mut Option<Instant>| {
        due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
    };
    loop {
        let wait = due.filter(|_| is_leader);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            changed = leader.changed(), if leader_open => {
                let now = match changed {
                    Ok(()) => *leader.borrow_and_update(),
                    Err(_) => {
                        leader_open = false;
                        false
                    }
                };
                if now != is_leader {
                    // Another replica may have written meanwhile.
                    publisher.reset();
                    is_leader = now;
                    mark(&mut due);
                }
            }
            _ = shared.pods_changed.notified() => {
                // Every replica serves the gauge; the field selector keeps only bound,
                // unfinished pods in the store, so its length is the count.
                shared.metrics.set_placed_pods(shared.pods.len());
                mark(&mut due);
            }
            _ = shared.world_changed.notified() => mark(&mut due),
            _ = sleep_until(wait), if wait.is_some() => {
                due = None;
                let Some(world) = shared.world() else {
                    // Nothing computed yet: the first world will wake us.
                    continue;
                };
                let pods = shared.placed_pods();
                let nodes = shared.nodes.snapshot();
                let report = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = publisher.publish(&world, &pods, &nodes) => r,
                };
                let m = &shared.metrics;
                for _ in 0..report.bandwidth_written { m.write("NodeBandwidth", "ok"); }
                for _ in 0..report.bandwidth_failed { m.write("NodeBandwidth", "error"); }
                for _ in 0..report.labels_written { m.write("NodeLabel", "ok"); }
                for _ in 0..report.labels_failed { m.write("NodeLabel", "error"); }
                if report.wants_retry() {
                    due = Some(Instant::now() + RETRY);
                }
            }
        }
    }
}
