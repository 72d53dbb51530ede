//! What the watches, the recompute loop and the HTTP server share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::api::NodeTopology;
use crate::cluster::NodeInfo;

use super::metrics::Metrics;
use super::store::Store;

/// The two caches, the metrics, and readiness.
#[derive(Debug)]
pub struct Shared {
    /// Every Node, reduced to what the view reads.
    pub nodes: Store<NodeInfo>,
    /// Every NodeTopology that could be read.
    pub topologies: Store<NodeTopology>,
    /// Woken by either store when its contents change.
    pub changed: Arc<Notify>,
    /// The metrics.
    pub metrics: Metrics,
    computed: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    /// Empty caches, nothing computed.
    pub fn new() -> Self {
        let changed = Arc::new(Notify::new());
        Shared {
            nodes: Store::new(changed.clone(), same_node),
            topologies: Store::new(changed.clone(), same_topology),
            changed,
            metrics: Metrics::new(),
            computed: AtomicBool::new(false),
        }
    }

    /// True once both watches finished their first list.
    pub fn inputs_ready(&self) -> bool {
        self.nodes.is_ready() && self.topologies.is_ready()
    }

    /// A computation finished.
    pub fn mark_computed(&self) {
        self.computed.store(true, Ordering::Release);
    }

    /// Why `/readyz` says 503; `None` when ready.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if !self.nodes.is_ready() {
            Some("waiting for the first list of Nodes")
        } else if !self.topologies.is_ready() {
            Some("waiting for the first list of NodeTopologies")
        } else if !self.computed.load(Ordering::Acquire) {
            Some("waiting for the first computation")
        } else {
            None
        }
    }
}

/// Node updates the view cannot see (a kubelet heartbeat) do not wake the loop.
fn same_node(a: &NodeInfo, b: &NodeInfo) -> bool {
    a == b
}

/// Every NodeTopology update carries new figures or a new heartbeat: both count.
fn same_topology(a: &NodeTopology, b: &NodeTopology) -> bool {
    a.status == b.status
}
