//! The recompute loop: wait for a change (or the refresh), compute the view off the
//! async threads, and, while leader, hand it to the publisher. Every replica computes,
//! so a follower that becomes leader has a view to write at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{self, Options};
use crate::placement::World;

use super::objects::View;
use super::pacer::{Pacer, sleep_until};
use super::publish::{Outcome, Publisher, Report};
use super::shared::Shared;
use super::writer::TopologyWriter;

/// Compute warnings logged per computation (new ones only; the rest are counted).
const MAX_WARNINGS_LOGGED: usize = 10;

/// What the loop needs from the flags.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Shortest time between computations.
    pub interval: Duration,
    /// Longest time between computations.
    pub refresh: Duration,
    /// Staleness threshold.
    pub stale_after: Duration,
    /// `weights[].name`.
    pub weights_name: String,
    /// `spec.configmapName`.
    pub configmap_name: String,
    /// This replica's identity, for the leadership log lines.
    pub identity: String,
}

/// The loop's state.
#[derive(Debug)]
pub struct ControlLoop<W> {
    shared: Arc<Shared>,
    publisher: Publisher<W>,
    config: LoopConfig,
    pacer: Pacer,
    leader: bool,
    last_view: Option<View>,
    last_warnings: BTreeSet<String>,
}

impl<W: TopologyWriter> ControlLoop<W> {
    /// A loop that has computed nothing and is not leader.
    pub fn new(shared: Arc<Shared>, publisher: Publisher<W>, config: LoopConfig) -> Self {
        ControlLoop {
            pacer: Pacer::new(config.interval, config.refresh),
            shared,
            publisher,
            config,
            leader: false,
            last_view: None,
            last_warnings: BTreeSet::new(),
        }
    }

    /// Runs until `shutdown`; `leader` says whether this replica writes.
    pub async fn run(&mut self, mut leader: watch::Receiver<bool>, shutdown: CancellationToken) {
        let mut leader_open = true;
        let changes = self.shared.changed.clone();
        let initially = *leader.borrow_and_update();
        self.set_leader(initially, &shutdown).await;
        loop {
            let due = if self.shared.inputs_ready() {
                self.pacer.due()
            } else {
                None
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                changed = leader.changed(), if leader_open => {
                    let now = match changed {
                        Ok(()) => *leader.borrow_and_update(),
                        Err(_) => {
                            // The election task is gone (shutting down): stop writing.
                            leader_open = false;
                            false
                        }
                    };
                    self.set_leader(now, &shutdown).await;
                }
                _ = changes.notified() => self.pacer.mark_dirty(),
                _ = sleep_until(due), if due.is_some() => self.compute_and_publish(&shutdown).await,
            }
        }
        if self.leader {
            self.leader = false;
            self.shared.metrics.set_leader(false);
            tracing::info!(identity = %self.config.identity, "stopped writing: shutting down");
        }
    }

    async fn set_leader(&mut self, now: bool, shutdown: &CancellationToken) {
        if now == self.leader {
            return;
        }
        self.leader = now;
        self.shared.metrics.set_leader(now);
        // Another replica may have written since this one last did: forget, and write
        // everything at the next chance.
        self.publisher.reset();
        if now {
            tracing::info!(identity = %self.config.identity, "became leader");
            self.pacer.mark_dirty();
            if let Some(view) = self.last_view.take() {
                // The view computed as a follower is written at once: a takeover does
                // not wait for the next computation.
                self.publish(&view, shutdown).await;
                self.last_view = Some(view);
            }
        } else {
            tracing::info!(identity = %self.config.identity, "lost leadership");
        }
    }

    async fn compute_and_publish(&mut self, shutdown: &CancellationToken) {
        let nodes = self.shared.nodes.snapshot();
        let topologies = self.shared.topologies.snapshot();
        let now = jiff::Timestamp::now();
        let opts = Options {
            stale_after: self.config.stale_after,
            weights_name: self.config.weights_name.clone(),
            configmap_name: self.config.configmap_name.clone(),
            ..Options::at(now)
        };
        self.pacer.ran(Instant::now());
        let topology_count = topologies.len();
        // About a second at 5,000 nodes: off the async threads.
        let task = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let out = cluster::compute(Some(&nodes), &topologies, &opts);
            let elapsed = started.elapsed();
            // The extender's world: this view plus the GPUs of the same NodeTopologies.
            (World::new(out, &topologies), elapsed)
        });
        let joined = tokio::select! {
            _ = shutdown.cancelled() => return,
            joined = task => joined,
        };
        let (world, elapsed) = match joined {
            Ok(done) => done,
            Err(e) => {
                // A bug, or input that trips one: the next computation may do better.
                tracing::error!(error = %e, "the computation failed");
                return;
            }
        };
        let out = world.view();
        let mut cluster_status = out.cluster.clone();
        cluster_status.calculation_millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.shared.metrics.computed(
            &cluster_status,
            elapsed.as_secs_f64(),
            now.as_millisecond() as f64 / 1000.0,
        );
        tracing::debug!(
            nodes = cluster_status.node_count,
            topologies = topology_count,
            stale = cluster_status.stale_node_count,
            duration_ms = cluster_status.calculation_millis,
            "computed the cluster view"
        );
        self.log_warnings(out.warnings.clone());
        let (network, network_status) = (out.network.clone(), out.network_status.clone());
        self.shared.set_world(world);
        self.shared.mark_computed();
        let view = View {
            cluster: cluster_status,
            network,
            network_status,
        };
        if self.leader {
            let report = self.publish(&view, shutdown).await;
            if report.is_some_and(|r| r.wants_retry()) {
                self.pacer.mark_dirty();
            }
        }
        self.last_view = Some(view);
    }

    async fn publish(&mut self, view: &View, shutdown: &CancellationToken) -> Option<Report> {
        let report = tokio::select! {
            // Stop writing at once on shutdown; an unfinished apply is simply not sent.
            _ = shutdown.cancelled() => return None,
            report = self.publisher.publish(view, Instant::now()) => report,
        };
        self.count(report);
        Some(report)
    }

    fn count(&self, report: Report) {
        let metrics = &self.shared.metrics;
        if let Some(result) = report.cluster.label() {
            metrics.write("ClusterTopology", result);
        }
        if let Some(result) = report.network.and_then(Outcome::label) {
            metrics.write("NetworkTopology", result);
        }
    }

    /// Logs the warnings not logged after the previous computation, a bounded number.
    fn log_warnings(&mut self, warnings: Vec<String>) {
        let current: BTreeSet<String> = warnings.into_iter().collect();
        let fresh: Vec<&String> = current.difference(&self.last_warnings).collect();
        for w in fresh.iter().take(MAX_WARNINGS_LOGGED) {
            tracing::warn!(warning = %w, "input skipped or clipped");
        }
        if fresh.len() > MAX_WARNINGS_LOGGED {
            tracing::warn!(
                more = fresh.len() - MAX_WARNINGS_LOGGED,
                "more input skipped or clipped (see skipped_objects_total and the \
                 ClusterTopology's status.skipped)"
            );
        }
        self.last_warnings = current;
    }
}

#[cfg(test)]
#[path = "control_loop_tests.rs"]
mod tests;
