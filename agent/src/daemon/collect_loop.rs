//! Runs one blocking collector on its own interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::outcome::Outcome;
use crate::collect::Collector;

/// A collection in flight on the blocking pool: when it started, and the task that
/// hands the collector back with its report.
type Running<C> = (Instant, JoinHandle<(C, <C as Collector>::Report)>);

/// Collects every `interval` on Tokio's blocking pool and hands each report to
/// `apply`. A collection that hangs (a stuck NVML call, a hung mount) is not started
/// again until it returns; meanwhile each missed tick counts as a failure, and the
/// other loops are never delayed.
pub async fn run<C, F>(
    shared: Arc<Shared>,
    collector: C,
    interval: Duration,
    outcome: fn(&C::Report) -> Outcome,
    apply: F,
    shutdown: CancellationToken,
) where
    C: Collector + 'static,
    C::Report: Send + 'static,
    F: Fn(&Shared, C::Report) + Send + 'static,
{
    let name = collector.name();
    let mut collector = Some(collector);
    let mut running: Option<Running<C>> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if running.is_none()
            && let Some(mut c) = collector.take()
        {
            running = Some((
                Instant::now(),
                tokio::task::spawn_blocking(move || {
                    let r = c.collect();
                    (c, r)
                }),
            ));
        }
        let Some((started, handle)) = running.as_mut() else {
            // The collector panicked earlier and is gone; nothing left to run.
            continue;
        };
        let started = *started;
        // Wait at most one interval; past that the run stays pending and is awaited
        // again at the next tick.
        let joined = tokio::select! {
            _ = shutdown.cancelled() => return,
            j = handle => Some(j),
            _ = tokio::time::sleep(interval) => None,
        };
        match joined {
            Some(Ok((c, report))) => {
                running = None;
                shared
                    .metrics
                    .observe_collector(name, started.elapsed(), outcome(&report));
                apply(&shared, report);
                collector = Some(c);
            }
            Some(Err(e)) => {
                running = None;
                tracing::error!(collector = name, error = %e, "collector panicked; it stays off");
                shared
                    .metrics
                    .observe_collector(name, started.elapsed(), Outcome::Failing);
            }
            None => {
                tracing::warn!(collector = name, running_for = ?started.elapsed(), "collector still running");
                shared
                    .metrics
                    .observe_collector(name, started.elapsed(), Outcome::Failing);
            }
        }
    }
}
