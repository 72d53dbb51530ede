//! ICMP rounds to every peer, on an interval with jitter.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::peers::PeerSource;
use crate::probe::{IcmpProber, resolve_peers};

/// Runs rounds until `shutdown`. The first round starts within half a second (so the
/// agent becomes ready quickly); later rounds are `interval` apart ± 10%, so agents
/// started together drift apart instead of probing each other in lockstep.
pub async fn run(shared: Arc<Shared>, source: Arc<dyn PeerSource>, shutdown: CancellationToken) {
    let prober = IcmpProber::new();
    let condition = prober.condition();
    if condition.status != "True" {
        tracing::warn!(
            message = condition.message.as_deref().unwrap_or(""),
            "ICMP is unavailable"
        );
    }
    shared.lock_state().icmp_condition = Some(condition);
    let mut peers_rx = source.watch();
    let interval = shared.config.ping_interval;
    let mut next = Instant::now() + Duration::from_millis(rand::rng().random_range(0..500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = Instant::now();
        let peers = peers_rx.borrow_and_update().clone();
        let removed = shared.lock_state().set_peers(&peers);
        if !removed.is_empty() {
            tracing::info!(removed = ?removed, "peers removed");
        }
        shared
            .metrics
            .set_peers(peers.iter().map(|p| p.name.as_str()));

        let resolved = resolve_peers(&peers).await;
        let mut targets = Vec::with_capacity(resolved.len());
        {
            let mut st = shared.lock_state();
            for r in resolved {
                match r.addr {
                    Ok(a) => targets.push((r.target.name, a)),
                    Err(e) => st.record_unresolved(&r.target.name, e),
                }
            }
        }
        let results = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = prober.probe(&targets, &shared.config.icmp) => r,
        };
        let any_reply = results
            .iter()
            .any(|r| r.samples.iter().any(Option::is_some));
        {
            let mut st = shared.lock_state();
            st.record_round(&results, jiff::Timestamp::now());
            shared.metrics.record_round(&results, |peer| {
                st.peer(peer)
                    .map(|p| f64::from(p.window.summary().loss_ppm) / 1e6)
            });
        }
        shared.mark_round_done();
        shared.metrics.observe_collector(
            "icmp",
            started.elapsed(),
            any_reply || targets.is_empty(),
        );

        let jitter = rand::rng().random_range(0.9..1.1);
        next = started + interval.mul_f64(jitter);
        // A round that overran (it cannot by config, but a stalled runtime can) starts
        // the next one now rather than trying to catch up with a burst.
        next = next.max(Instant::now());
    }
}
