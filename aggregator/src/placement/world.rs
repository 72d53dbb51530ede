//! What placement knows: every node's measured uplink and GPUs with the cluster view's
//! RTTs ([`World`]), and the pods already placed ([`PlacedPod`]).
//!
//! The world is rebuilt after each computation of the cluster view; the pods come from
//! the watch cache at every request, so a pod bound a moment ago already counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::api::NodeTopology;
use crate::cluster::{Output, Prediction};

use super::request::PodRequest;

/// One GPU as the node's agent last measured it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuFacts {
    /// NVML index.
    pub index: u32,
    /// NVML name ("NVIDIA A100-SXM4-40GB"); `""` when NVML gave none.
    pub name: String,
    /// Total minus used memory, bytes.
    pub memory_free_bytes: Option<u64>,
    /// GPU utilization, percent.
    pub utilization_percent: Option<u32>,
}

/// One node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Its position in the view (`Output::node_names`), for the RTT and goodput lookups.
    pub index: usize,
    /// Egress capacity, bit/s: the best goodput measured from the node, capped by its NIC.
    pub egress_capacity_bps: Option<u64>,
    /// Ingress capacity, bit/s: the best goodput measured to the node, capped by its NIC.
    pub ingress_capacity_bps: Option<u64>,
    /// GPUs from a fresh NodeTopology; empty when stale or none.
    pub gpus: Vec<GpuFacts>,
    /// No fresh NodeTopology: no figures of its own.
    pub stale: bool,
}

/// The network and the nodes, from one computation of the cluster view.
#[derive(Debug)]
pub struct World {
    view: Output,
    /// By position in the view (sorted by name).
    nodes: Vec<NodeFacts>,
    by_name: HashMap<String, usize>,
}

impl World {
    /// The world of one computed view; `topologies` give the GPUs.
    pub fn new(view: Output, topologies: &[NodeTopology]) -> World {
        let gpus: BTreeMap<&str, Vec<GpuFacts>> = topologies
            .iter()
            .filter_map(|t| {
                let name = t.metadata.name.as_deref()?;
                let status = t.status.as_ref()?;
                let gpus = status
                    .gpus
                    .iter()
                    .map(|g| GpuFacts {
                        index: g.index,
                        name: g.name.clone().unwrap_or_default(),
                        memory_free_bytes: g
                            .memory_total_bytes
                            .zip(g.memory_used_bytes)
                            .map(|(total, used)| total.saturating_sub(used)),
                        utilization_percent: g.utilization_gpu_percent.map(|u| u.min(100)),
                    })
                    .collect();
                Some((name, gpus))
            })
            .collect();
        let mut nodes: Vec<Option<NodeFacts>> = vec![None; view.node_names().len()];
        for zone in &view.cluster.zones {
            for n in &zone.nodes {
                let Some(index) = view.index_of(&n.name) else {
                    continue;
                };
                let facts = NodeFacts {
                    name: n.name.clone(),
                    index,
                    egress_capacity_bps: n.tx_kbps.map(|k| k.saturating_mul(1000)),
                    ingress_capacity_bps: n.rx_kbps.map(|k| k.saturating_mul(1000)),
                    gpus: if n.stale {
                        Vec::new()
                    } else {
                        gpus.get(n.name.as_str()).cloned().unwrap_or_default()
                    },
                    stale: n.stale,
                };
                nodes[index] = Some(facts);
            }
        }
        // Every node of the view is in some zone; the flatten only guards the type.
        let nodes: Vec<NodeFacts> = nodes.into_iter().flatten().collect();
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        World {
            view,
            nodes,
            by_name,
        }
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeFacts> {
        self.by_name.get(name).map(|&i| &self.nodes[i])
    }

    /// Every node, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeFacts> + '_ {
        self.nodes.iter()
    }

    /// RTT between two nodes, measured or predicted.
    pub fn rtt(&self, a: &NodeFacts, b: &NodeFacts) -> Option<Prediction> {
        self.view.predict_at(a.index, b.index)
    }

    /// Goodput `from` → `to` as measured, bit/s.
    pub fn goodput_bps(&self, from: &NodeFacts, to: &NodeFacts) -> Option<u64> {
        self.view
            .goodput_at_kbps(from.index, to.index)
            .map(|k| k.saturating_mul(1000))
    }

    /// The view this world was built from.
    pub fn view(&self) -> &Output {
        &self.view
    }
}

/// A pod bound to a node and not finished, as placement needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (the pod being scheduled is never its own peer).
    pub uid: String,
    /// `spec.nodeName`.
    pub node: String,
    /// Labels, for `peers` selectors.
    pub labels: BTreeMap<String, String>,
    /// UID of the controlling owner (a ReplicaSet …): pods with the same are replicas.
    pub owner_uid: Option<String>,
    /// Egress it reserves, bit/s.
    pub egress_bps: u64,
    /// Ingress it reserves, bit/s.
    pub ingress_bps: u64,
}

/// The pod being placed, read from its object.
#[derive(Clone, Debug, PartialEq)]
pub struct PodUnderPlacement {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// UID of the controlling owner.
    pub owner_uid: Option<String>,
    /// What it asks, or why its annotations cannot be read.
    pub request: Result<PodRequest, Vec<String>>,
}

impl PodUnderPlacement {
    /// Reads a pod object.
    pub fn from_pod(pod: &Pod) -> PodUnderPlacement {
        let meta = &pod.metadata;
        let empty = BTreeMap::new();
        let request = PodRequest::from_annotations(meta.annotations.as_ref().unwrap_or(&empty))
            .map_err(|errors| errors.iter().map(ToString::to_string).collect());
        PodUnderPlacement {
            namespace: meta
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            owner_uid: controller_uid(pod),
            request,
        }
    }
}

/// The pod as a placed pod, when it is bound and not finished. A pod whose annotations
/// do not parse reserves nothing (linkmeter never placed it).
pub fn placed(pod: &Pod) -> Option<PlacedPod> {
    let node = pod.spec.as_ref()?.node_name.clone()?;
    if node.is_empty() {
        return None;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let request = PodRequest::from_annotations(meta.annotations.as_ref().unwrap_or(&empty))
        .unwrap_or_default();
    Some(PlacedPod {
        namespace: meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        node,
        labels: meta.labels.clone().unwrap_or_default(),
        owner_uid: controller_uid(pod),
        egress_bps: request.egress_reservation_bps().unwrap_or(0),
        ingress_bps: request.ingress_reservation_bps().unwrap_or(0),
    })
}

fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

/// Pods shared cheaply between the watch cache and requests.
pub type Pods = [Arc<PlacedPod>];
