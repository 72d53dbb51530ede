//! Where the daemon's peers come from.
//!
//! [`PeerSource`] is the seam between measuring and discovery: flags and config give a
//! [`StaticPeers`] list; Kubernetes discovery (Node objects) implements the same trait.

use std::sync::Arc;

use tokio::sync::watch;

use crate::probe::PeerTarget;

/// A changing set of peers.
pub trait PeerSource: Send + Sync + 'static {
    /// The current peer set; the receiver sees every later change.
    fn watch(&self) -> watch::Receiver<Arc<[PeerTarget]>>;
}

/// A fixed peer list.
#[derive(Debug)]
pub struct StaticPeers {
    tx: watch::Sender<Arc<[PeerTarget]>>,
}

impl StaticPeers {
    /// A source that always holds `peers`.
    pub fn new(peers: Vec<PeerTarget>) -> Self {
        let (tx, _) = watch::channel(Arc::from(peers));
        StaticPeers { tx }
    }
}

impl PeerSource for StaticPeers {
    fn watch(&self) -> watch::Receiver<Arc<[PeerTarget]>> {
        self.tx.subscribe()
    }
}
