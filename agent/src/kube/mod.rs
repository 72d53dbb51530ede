//! `run --kube`: peers from the cluster's Node objects, results to a NodeTopology.
//!
//! - [`discovery`]: [`KubePeers`], a [`PeerSource`](crate::daemon::PeerSource) fed by a
//!   watch on all Nodes; peers are chosen with the aggregator's pure `select_peers`.
//! - [`publisher`]: writes this node's NodeTopology (object, then status) with
//!   server-side apply, only when [`Hysteresis`](linkmeter_aggregator::publish::Hysteresis)
//!   says so.
//! - [`health`]: one view of "is the API server reachable", shared by both, so an
//!   outage is logged once (not once per request) and exported as a gauge.
//! - The client itself comes from `linkmeter_runtime::kube_client` (`--kubeconfig`, or
//!   the in-cluster config), shared with the aggregator.
//!
//! Nothing here stops measuring: when the API server is away the agent keeps probing
//! and serving /metrics, and the publisher keeps only the latest status in memory.

pub mod backoff;
pub mod discovery;
pub mod health;
pub mod publisher;
pub mod writer;

pub use discovery::KubePeers;
pub use health::ApiHealth;

use std::sync::Arc;

/// The API contract's names, defined once in the shared library.
pub use linkmeter_aggregator::api::{
    AGENT_FIELD_MANAGER as FIELD_MANAGER, API_VERSION, REGION_LABEL, ZONE_LABEL,
};

/// What the daemon needs to publish: a client and the shared reachability state.
#[derive(Clone)]
pub struct KubeHandles {
    /// Client for the API server.
    pub client: ::kube::Client,
    /// Reachability, shared with discovery.
    pub health: Arc<ApiHealth>,
}

/// With `--kube`, the daemon runs the NodeTopology publisher as an addon; the daemon
/// itself never names this module.
impl crate::daemon::Addon for KubeHandles {
    fn register(&self, metrics: &mut crate::daemon::Metrics) {
        metrics.register_kube(self.health.gauge());
    }

    fn start(
        self: Box<Self>,
        shared: Arc<crate::daemon::Shared>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let Some(settings) = shared.config.kube.clone() else {
                tracing::error!("NodeTopology publisher started without --kube settings");
                return;
            };
            publisher::Publisher::new(
                shared,
                writer::KubeWriter::new(self.client),
                self.health,
                &settings,
            )
            .run(shutdown)
            .await;
        })
    }
}

impl std::fmt::Debug for KubeHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeHandles")
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}
