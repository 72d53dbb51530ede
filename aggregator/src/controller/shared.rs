//! What the watches, the recompute loop and the HTTP server share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use crate::api::NodeTopology;
use crate::cluster::NodeInfo;
use crate::placement::{PlacedPod, World};

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
    /// Every pod bound to a node and not finished, keyed `namespace/name`.
    pub pods: Store<Option<Arc<PlacedPod>>>,
    /// Woken when the pods change (placement writes; the view does not read pods).
    pub pods_changed: Arc<Notify>,
    /// Woken when a new world is installed.
    pub world_changed: Notify,
    world: RwLock<Option<Arc<World>>>,
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
        let pods_changed = Arc::new(Notify::new());
        Shared {
            nodes: Store::new(changed.clone(), same_node),
            topologies: Store::new(changed.clone(), same_topology),
            changed,
            pods: Store::new(pods_changed.clone(), |a, b| a == b),
            pods_changed,
            world_changed: Notify::new(),
            world: RwLock::new(None),
            metrics: Metrics::new(),
            computed: AtomicBool::new(false),
        }
    }

    /// True once both watches finished their first list.
    pub fn inputs_ready(&self) -> bool {
        self.nodes.is_ready() && self.topologies.is_ready()
    }

    /// The world of the last computation (`None` before the first).
    pub fn world(&self) -> Option<Arc<World>> {
        self.world.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs the world of a new computation.
    pub fn set_world(&self, world: World) {
        *self.world.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(world));
        self.world_changed.notify_one();
    }

    /// The placed pods now (cheap: the pods are shared).
    pub fn placed_pods(&self) -> Vec<Arc<PlacedPod>> {
        self.pods.snapshot().into_iter().flatten().collect()
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
