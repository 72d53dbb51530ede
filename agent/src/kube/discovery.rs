//! Peers from the cluster's Node objects.
//!
//! One watch on all Nodes (a list, then a watch; relisted with back-off after any
//! error) keeps a small map: node name → InternalIP and zone. Whenever a node is
//! added, removed, or changes address or zone, and at each rotation epoch, the peer
//! set is recomputed with `select_peers` and published on a watch channel that the
//! ICMP loop reads every round. Only what selection needs is kept per node (not the
//! Node objects), so memory grows with the cluster by ~100 bytes a node.
//!
//! During an API outage the last known peer set stays in force: measuring goes on.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::{WatchStreamExt, watcher as watch_nodes};
use ::kube::{Api, Client, ResourceExt};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use linkmeter_aggregator::peers::{Candidate, select_peers};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ApiHealth;
use super::{REGION_LABEL, ZONE_LABEL};
use crate::daemon::PeerSource;
use crate::probe::PeerTarget;

/// What selection needs of one Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// The address to probe: the first IPv4 InternalIP, else the first InternalIP.
    pub internal_ip: Option<IpAddr>,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// `topology.kubernetes.io/region`.
    pub region: Option<String>,
}

impl NodeEntry {
    /// Extracts the entry from a Node object.
    pub fn from_node(node: &Node) -> Self {
        let labels = node.labels();
        NodeEntry {
            internal_ip: internal_ip(node),
            zone: labels.get(ZONE_LABEL).cloned(),
            region: labels.get(REGION_LABEL).cloned(),
        }
    }
}

/// The address peers probe: InternalIP, IPv4 preferred (ICMP and the lab are
/// IPv4-first and a dual-stack node lists both); unparsable entries are skipped.
pub fn internal_ip(node: &Node) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = node
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.trim().parse().ok())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

/// Peer selection settings.
#[derive(Clone, Debug)]
pub struct Selection {
    /// This node's name (never its own peer; its zone comes from its Node).
    pub node_name: String,
    /// Most peers.
    pub max_peers: usize,
    /// Epoch length of the rotating sample.
    pub rotation: Duration,
}

impl Selection {
    /// The peers for `nodes` in `epoch`, sorted by name; nodes without an InternalIP
    /// cannot be probed and are left out.
    pub fn peers(&self, nodes: &BTreeMap<String, NodeEntry>, epoch: u64) -> Vec<PeerTarget> {
        let me_zone = nodes.get(&self.node_name).and_then(|n| n.zone.as_deref());
        let candidates: Vec<Candidate> = nodes
            .iter()
            .filter(|(_, e)| e.internal_ip.is_some())
            .map(|(name, e)| Candidate {
                name: name.clone(),
                zone: e.zone.clone(),
            })
            .collect();
        select_peers(&self.node_name, me_zone, &candidates, self.max_peers, epoch)
            .into_iter()
            .filter_map(|name| {
                let ip = nodes.get(&name)?.internal_ip?;
                Some(PeerTarget {
                    name,
                    host: ip.to_string(),
                })
            })
            .collect()
    }

    /// The epoch `now` falls in (whole rotations since the Unix epoch, so every node
    /// agrees on it without talking to the others).
    pub fn epoch(&self, now: SystemTime) -> u64 {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        secs / self.rotation.as_secs().max(1)
    }

    /// Time from `now` to the start of the next epoch.
    pub fn until_next_epoch(&self, now: SystemTime) -> Duration {
        let rot = self.rotation.as_secs().max(1);
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let next = (since.as_secs() / rot + 1).saturating_mul(rot);
        Duration::from_secs(next).saturating_sub(since)
    }
}

/// A [`PeerSource`] backed by a watch on the cluster's Nodes.
#[derive(Debug)]
pub struct KubePeers {
    tx: watch::Sender<Arc<[PeerTarget]>>,
}

impl KubePeers {
    /// Starts watching Nodes (on the current Tokio runtime) until `shutdown`. The peer
    /// set is empty until the first complete list arrives.
    pub fn start(
        client: Client,
        selection: Selection,
        health: Arc<ApiHealth>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (tx, _) = watch::channel(Arc::from(Vec::new()));
        let peers = Arc::new(KubePeers { tx });
        let task = Watch {
            peers: peers.clone(),
            selection,
            health,
            nodes: BTreeMap::new(),
            synced: false,
            last_error: None,
        };
        tokio::spawn(task.run(Api::<Node>::all(client), shutdown));
        peers
    }
}

impl PeerSource for KubePeers {
    fn watch(&self) -> watch::Receiver<Arc<[PeerTarget]>> {
        self.tx.subscribe()
    }
}

/// The watching task's state.
struct Watch {
    peers: Arc<KubePeers>,
    selection: Selection,
    health: Arc<ApiHealth>,
    nodes: BTreeMap<String, NodeEntry>,
    /// A complete list has been seen (before that, a partial map would make peers
    /// flicker in and out).
    synced: bool,
    /// The last non-outage error, so a repeating one is logged once.
    last_error: Option<String>,
}

impl Watch {
    async fn run(mut self, api: Api<Node>, shutdown: CancellationToken) {
        // default_backoff: 0.8 s doubling to 30 s with jitter, reset after 2 min of
        // success, so a fleet of agents does not hammer a recovering server.
        let start = || watch_nodes(api.clone(), watcher::Config::default()).default_backoff();
        let mut stream = Box::pin(start());
        let mut recoveries = self.health.recoveries();
        // The last item was an error: the stream is (or will be) sleeping off its
        // back-off.
        let mut failing = false;
        // Nodes seen since the last relist began; swapped in at InitDone, so nodes
        // deleted while the watch was down disappear.
        let mut relist: Option<BTreeMap<String, NodeEntry>> = None;
        let mut epoch = self.selection.epoch(SystemTime::now());
        loop {
            let rotate = tokio::time::sleep(self.selection.until_next_epoch(SystemTime::now()));
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                Ok(()) = recoveries.changed() => {
                    if failing {
                        // The publisher got through: the server is back. After an
                        // outage the back-off sits at its 30 s cap (it resets only
                        // after 2 min without errors), and the first re-watch after a
                        // restart fails anyway (410: the new server's watch cache has
                        // no history). Start over with a fresh back-off and relist now
                        // instead of up to a minute later.
                        tracing::debug!("Kubernetes API back; relisting Nodes now");
                        stream = Box::pin(start());
                        relist = None;
                        failing = false;
                    }
                    continue;
                }
                _ = rotate => {
                    let now = self.selection.epoch(SystemTime::now());
                    if now != epoch {
                        epoch = now;
                        self.recompute(epoch, "rotation");
                    }
                    continue;
                }
                e = stream.next() => e,
            };
            let Some(event) = event else {
                // The watcher never ends by itself; if it does, keep the last peers.
                tracing::warn!("Node watch ended; keeping the current peers");
                shutdown.cancelled().await;
                return;
            };
            failing = event.is_err();
            match event {
                Ok(Event::Init) => relist = Some(BTreeMap::new()),
                Ok(Event::InitApply(node)) => {
                    self.health.reachable("discovery");
                    relist
                        .get_or_insert_with(BTreeMap::new)
                        .insert(node.name_any(), NodeEntry::from_node(&node));
                }
                Ok(Event::InitDone) => {
                    self.health.reachable("discovery");
                    self.last_error = None;
                    if let Some(listed) = relist.take() {
                        self.nodes = listed;
                    }
                    let first = !self.synced;
                    self.synced = true;
                    if first {
                        tracing::info!(nodes = self.nodes.len(), "Node list received");
                    }
                    self.recompute(epoch, "list");
                }
                Ok(Event::Apply(node)) => {
                    self.health.reachable("discovery");
                    let entry = NodeEntry::from_node(&node);
                    // Nodes are rewritten often (conditions, images); only an address
                    // or zone change can change the selection.
                    if self.nodes.get(node.name_any().as_str()) != Some(&entry) {
                        self.nodes.insert(node.name_any(), entry);
                        self.recompute(epoch, "node changed");
                    }
                }
                Ok(Event::Delete(node)) => {
                    self.health.reachable("discovery");
                    if self.nodes.remove(node.name_any().as_str()).is_some() {
                        self.recompute(epoch, "node deleted");
                    }
                }
                Err(e) => self.watch_error(&e),
            }
        }
    }

    fn watch_error(&mut self, e: &watcher::Error) {
        let inner = match e {
            watcher::Error::InitialListFailed(k)
            | watcher::Error::WatchStartFailed(k)
            | watcher::Error::WatchFailed(k) => Some(k),
            watcher::Error::WatchError(_) | watcher::Error::NoResourceVersion => None,
        };
        if let Some(k) = inner
            && self.health.record_error("discovery", k)
        {
            // An outage: ApiHealth logged it once.
            return;
        }
        let text = e.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "Node watch failed; retrying with back-off");
            self.last_error = Some(text);
        } else {
            tracing::debug!(error = %text, "Node watch failed again");
        }
    }

    fn recompute(&mut self, epoch: u64, why: &'static str) {
        if !self.synced {
            return;
        }
        let new = self.selection.peers(&self.nodes, epoch);
        let mut added = Vec::new();
        let mut removed = Vec::new();
        self.peers.tx.send_if_modified(|cur| {
            if cur.as_ref() == new.as_slice() {
                return false;
            }
            added = new
                .iter()
                .filter(|p| !cur.contains(p))
                .map(|p| p.name.clone())
                .collect();
            removed = cur
                .iter()
                .filter(|p| !new.contains(p))
                .map(|p| p.name.clone())
                .collect();
            *cur = Arc::from(new);
            true
        });
        if !added.is_empty() || !removed.is_empty() {
            tracing::info!(
                why,
                nodes = self.nodes.len(),
                added = ?added,
                removed = ?removed,
                "peer set changed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, zone: &str, addrs: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(ZONE_LABEL.to_owned(), zone.to_owned())].into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                addresses: Some(
                    addrs
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: (*t).into(),
                            address: (*a).into(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn internal_ip_prefers_ipv4() {
        let n = node(
            "a",
            "z",
            &[
                ("Hostname", "a"),
                ("InternalIP", "fd00::1"),
                ("InternalIP", "192.0.2.1"),
            ],
        );
        assert_eq!(internal_ip(&n), "192.0.2.1".parse().ok());
        let v6 = node("b", "z", &[("InternalIP", "fd00::2")]);
        assert_eq!(internal_ip(&v6), "fd00::2".parse().ok());
        assert_eq!(
            internal_ip(&node("c", "z", &[("ExternalIP", "192.0.2.3")])),
            None
        );
    }

    #[test]
    fn selection_skips_self_and_nodes_without_an_address() {
        let sel = Selection {
            node_name: "a".into(),
            max_peers: 32,
            rotation: Duration::from_secs(3600),
        };
        let mut nodes = BTreeMap::new();
        for n in [
            node("a", "z1", &[("InternalIP", "192.0.2.1")]),
            node("b", "z1", &[("InternalIP", "192.0.2.2")]),
            node("c", "z2", &[("Hostname", "c")]),
            node("d", "z2", &[("InternalIP", "192.0.2.4")]),
        ] {
            nodes.insert(n.name_any(), NodeEntry::from_node(&n));
        }
        let peers = sel.peers(&nodes, 0);
        assert_eq!(
            peers,
            vec![
                PeerTarget {
                    name: "b".into(),
                    host: "192.0.2.2".into()
                },
                PeerTarget {
                    name: "d".into(),
                    host: "192.0.2.4".into()
                },
            ]
        );
    }

    #[test]
    fn epochs_follow_the_rotation() {
        let sel = Selection {
            node_name: "a".into(),
            max_peers: 1,
            rotation: Duration::from_secs(60),
        };
        let t = UNIX_EPOCH + Duration::from_secs(125);
        assert_eq!(sel.epoch(t), 2);
        assert_eq!(sel.until_next_epoch(t), Duration::from_secs(55));
    }
}
