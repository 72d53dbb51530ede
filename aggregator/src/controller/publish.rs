//! What the leader writes after a computation, and when: only content that changed since
//! this process last wrote it, everything once after it becomes leader, a failed write
//! again at the next computation, and a NetworkTopology whose CRD is missing (404) only
//! now and then.

use std::time::Duration;

use tokio::time::Instant;

use crate::api::{ClusterTopologyStatus, NetworkTopologySpec, NetworkTopologyStatus};

use super::args::Targets;
use super::objects::{self, View};
use super::writer::{TopologyWriter, is_not_found};

/// How long a first NetworkTopology 404 (no Diktyo CRD, or no namespace) holds off the
/// next try; each further 404 in a row doubles it, up to [`NOT_FOUND_RETRY_MAX`]. The
/// CRD may be installed later, so the writes never stop for good.
pub const NOT_FOUND_RETRY: Duration = Duration::from_secs(30);
/// The longest hold-off after 404s.
pub const NOT_FOUND_RETRY_MAX: Duration = Duration::from_secs(300);

/// What became of one object's write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written; the body's size.
    Written {
        /// Bytes of the applied body.
        bytes: usize,
    },
    /// Content as last written: nothing sent.
    Unchanged,
    /// The write failed; it is tried again at the next computation.
    Failed,
    /// The NetworkTopology is not found (CRD missing); the next try waits
    /// [`NOT_FOUND_RETRY`] or longer.
    NotFound,
    /// Nothing sent: a recent 404 holds the write off.
    HeldOff,
}

impl Outcome {
    /// The `result` label of `writes_total`; `None` when nothing was attempted.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Outcome::Written { .. } => Some("ok"),
            Outcome::Unchanged => Some("unchanged"),
            Outcome::Failed | Outcome::NotFound => Some("error"),
            Outcome::HeldOff => None,
        }
    }

    /// True when the write should be retried at the next computation.
    pub fn wants_retry(self) -> bool {
        self == Outcome::Failed
    }
}

/// What one [`Publisher::publish`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The ClusterTopology.
    pub cluster: Outcome,
    /// The NetworkTopology; `None` with `--no-network-topology`.
    pub network: Option<Outcome>,
}

impl Report {
    /// True when some write failed and should be retried soon.
    pub fn wants_retry(&self) -> bool {
        self.cluster.wants_retry() || self.network.is_some_and(Outcome::wants_retry)
    }
}

/// The leader's writes, with what it last wrote successfully.
#[derive(Debug)]
pub struct Publisher<W> {
    writer: W,
    targets: Targets,
    /// The ClusterTopology object was applied (since the last leadership change).
    cluster_exists: bool,
    last_cluster: Option<ClusterTopologyStatus>,
    last_network: Option<(NetworkTopologySpec, NetworkTopologyStatus)>,
    network_held_until: Option<Instant>,
    /// 404s in a row.
    network_not_found: u32,
    /// The CRD-missing warning was logged (once per process).
    warned_not_found: bool,
}

impl<W: TopologyWriter> Publisher<W> {
    /// A publisher that has written nothing yet.
    pub fn new(writer: W, targets: Targets) -> Self {
        Publisher {
            writer,
            targets,
            cluster_exists: false,
            last_cluster: None,
            last_network: None,
            network_held_until: None,
            network_not_found: 0,
            warned_not_found: false,
        }
    }

    /// The writer (tests inspect their fake through it).
    #[cfg(test)]
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// Forgets what was written: leadership changed, so another replica may have
    /// written since, and the next publish writes everything.
    pub fn reset(&mut self) {
        self.cluster_exists = false;
        self.last_cluster = None;
        self.last_network = None;
        self.network_held_until = None;
        self.network_not_found = 0;
    }

    /// Writes what changed in `view`. `now` decides whether a 404 still holds the
    /// NetworkTopology off.
    pub async fn publish(&mut self, view: &View, now: Instant) -> Report {
        let cluster = self.publish_cluster(view).await;
        let network = match self.targets.network_topology.clone() {
            Some((namespace, name)) => {
                Some(self.publish_network(&namespace, &name, view, now).await)
            }
            None => None,
        };
        Report { cluster, network }
    }

    async fn publish_cluster(&mut self, view: &View) -> Outcome {
        let content = objects::cluster_content(&view.cluster);
        if self.cluster_exists && self.last_cluster.as_ref() == Some(&content) {
            return Outcome::Unchanged;
        }
        if !self.cluster_exists && !self.apply_cluster_object().await {
            return Outcome::Failed;
        }
        let body = objects::cluster_status(&self.targets, view);
        let mut result = self.writer.apply_cluster_topology_status(&body).await;
        if let Err(e) = &result
            && is_not_found(e)
        {
            // Deleted under us: make it exist again, then write the status.
            self.cluster_exists = false;
            if !self.apply_cluster_object().await {
                return Outcome::Failed;
            }
            result = self.writer.apply_cluster_topology_status(&body).await;
        }
        match result {
            Ok(()) => {
                let bytes = body_len(&body);
                tracing::info!(
                    kind = "ClusterTopology",
                    name = %self.targets.cluster_topology,
                    bytes,
                    nodes = view.cluster.node_count,
                    "wrote ClusterTopology status"
                );
                self.last_cluster = Some(content);
                Outcome::Written { bytes }
            }
            Err(e) => {
                tracing::warn!(
                    kind = "ClusterTopology",
                    name = %self.targets.cluster_topology,
                    error = %e,
                    "writing the ClusterTopology status failed; retrying after the next computation"
                );
                Outcome::Failed
            }
        }
    }

    /// Applies the object without status; true on success.
    async fn apply_cluster_object(&mut self) -> bool {
        let obj = objects::cluster_object(&self.targets);
        match self.writer.apply_cluster_topology(&obj).await {
            Ok(()) => {
                tracing::debug!(
                    kind = "ClusterTopology",
                    name = %self.targets.cluster_topology,
                    "applied the ClusterTopology object"
                );
                self.cluster_exists = true;
                true
            }
            Err(e) => {
                tracing::warn!(
                    kind = "ClusterTopology",
                    name = %self.targets.cluster_topology,
                    error = %e,
                    "applying the ClusterTopology failed; retrying after the next computation"
                );
                false
            }
        }
    }

    async fn publish_network(
        &mut self,
        namespace: &str,
        name: &str,
        view: &View,
        now: Instant,
    ) -> Outcome {
        if self.network_held_until.is_some_and(|until| now < until) {
            return Outcome::HeldOff;
        }
        let content = objects::network_content(view);
        if self.last_network.as_ref() == Some(&content) {
            return Outcome::Unchanged;
        }
        let body = objects::network_object(namespace, name, view);
        match self.writer.apply_network_topology(&body).await {
            Ok(()) => {
                let bytes = body_len(&body);
                self.network_not_found = 0;
                if self.network_held_until.take().is_some() {
                    tracing::info!(
                        kind = "NetworkTopology",
                        namespace,
                        name,
                        "the NetworkTopology can be written again"
                    );
                }
                tracing::info!(
                    kind = "NetworkTopology",
                    namespace,
                    name,
                    bytes,
                    "wrote NetworkTopology"
                );
                self.last_network = Some(content);
                Outcome::Written { bytes }
            }
            Err(e) if is_not_found(&e) => {
                let hold = NOT_FOUND_RETRY
                    .saturating_mul(1 << self.network_not_found.min(8))
                    .min(NOT_FOUND_RETRY_MAX);
                self.network_not_found = self.network_not_found.saturating_add(1);
                if !self.warned_not_found {
                    self.warned_not_found = true;
                    tracing::warn!(
                        kind = "NetworkTopology",
                        namespace,
                        name,
                        error = %e,
                        retry_in_s = hold.as_secs(),
                        "NetworkTopology not found: is the Diktyo CRD installed and the \
                         namespace there? (pass --no-network-topology to stop writing it)"
                    );
                }
                self.network_held_until = Some(now + hold);
                Outcome::NotFound
            }
            Err(e) => {
                tracing::warn!(
                    kind = "NetworkTopology",
                    namespace,
                    name,
                    error = %e,
                    "writing the NetworkTopology failed; retrying after the next computation"
                );
                Outcome::Failed
            }
        }
    }
}

fn body_len<T: serde::Serialize>(body: &T) -> usize {
    serde_json::to_vec(body).map(|v| v.len()).unwrap_or(0)
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod tests;
