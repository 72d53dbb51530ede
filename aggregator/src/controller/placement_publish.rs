//! What the leader writes for placement: a `NodeBandwidth` per node (only when its
//! content changed since this process last wrote it) and, with `--label-nodes`, the
//! `linkmeter.dev/uplink-class` Node label (only when the hysteresis rule wants a
//! change). Behind [`PlacementWriter`] so the decisions are unit-tested with a fake.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;

use crate::api::{NodeBandwidth, NodeBandwidthSpec, NodeBandwidthStatus, UPLINK_CLASS_LABEL};
use crate::cluster::NodeInfo;
use crate::placement::{self, PlacedPod, World};

/// The writes, on a real API server or a fake.
pub trait PlacementWriter: Send + Sync + 'static {
    /// Applies the NodeBandwidth object itself (name, ownerReference, empty spec).
    fn apply_node_bandwidth(
        &self,
        obj: &NodeBandwidth,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
    /// Applies its status through the `/status` subresource.
    fn apply_node_bandwidth_status(
        &self,
        obj: &NodeBandwidth,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
    /// Sets one label on a Node (server-side apply of that label only).
    fn label_node(
        &self,
        node: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
}

/// What one publish did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlacementReport {
    /// NodeBandwidth statuses written.
    pub bandwidth_written: usize,
    /// NodeBandwidth writes that failed (retried at the next publish).
    pub bandwidth_failed: usize,
    /// Node labels set.
    pub labels_written: usize,
    /// Label writes that failed.
    pub labels_failed: usize,
}

impl PlacementReport {
    /// True when something failed and should be tried again soon.
    pub fn wants_retry(&self) -> bool {
        self.bandwidth_failed > 0 || self.labels_failed > 0
    }
}

/// The leader's placement writes, with what it last wrote.
#[derive(Debug)]
pub struct PlacementPublisher<W> {
    writer: W,
    /// Write NodeBandwidths (not with `--no-node-bandwidth`).
    bandwidth: bool,
    /// `--slow-uplink-below` with `--label-nodes`; `None`: no labels.
    label_threshold: Option<u64>,
    /// Node → status last written; an entry also means the object exists.
    written: HashMap<String, NodeBandwidthStatus>,
    /// Node → label value set by this process (the Node watch may lag behind).
    labelled: HashMap<String, &'static str>,
}

impl<W: PlacementWriter> PlacementPublisher<W> {
    /// A publisher that has written nothing.
    pub fn new(writer: W, bandwidth: bool, label_threshold: Option<u64>) -> Self {
        PlacementPublisher {
            writer,
            bandwidth,
            label_threshold,
            written: HashMap::new(),
            labelled: HashMap::new(),
        }
    }

    /// Forgets what was written (leadership changed).
    pub fn reset(&mut self) {
        self.written.clear();
        self.labelled.clear();
    }

    /// Writes what changed.
    pub async fn publish(
        &mut self,
        world: &World,
        pods: &[Arc<PlacedPod>],
        nodes: &[NodeInfo],
    ) -> PlacementReport {
        let mut report = PlacementReport::default();
        let uids: BTreeMap<&str, &str> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.uid.as_str()))
            .collect();
        let statuses = if self.bandwidth {
            placement::bandwidth::statuses(world, pods)
        } else {
            BTreeMap::new()
        };
        for (node, status) in statuses {
            if self.written.get(&node) == Some(&status) {
                continue;
            }
            let obj = node_bandwidth(&node, uids.get(node.as_str()).copied(), status.clone());
            let exists = self.written.contains_key(&node);
            let result = if exists {
                Ok(())
            } else {
                self.writer.apply_node_bandwidth(&obj).await
            };
            let result = match result {
                Ok(()) => self.writer.apply_node_bandwidth_status(&obj).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    report.bandwidth_written += 1;
                    self.written.insert(node, status);
                }
                Err(e) => {
                    report.bandwidth_failed += 1;
                    tracing::warn!(node = %node, error = %e, "writing the NodeBandwidth failed");
                }
            }
        }
        if let Some(threshold) = self.label_threshold {
            for n in nodes {
                let egress = world.node(&n.name).and_then(|f| f.egress_capacity_bps);
                let current = self
                    .labelled
                    .get(&n.name)
                    .copied()
                    .or(n.uplink_class.as_deref());
                let Some(want) = placement::labels::uplink_class(current, egress, threshold) else {
                    continue;
                };
                match self
                    .writer
                    .label_node(&n.name, UPLINK_CLASS_LABEL, want)
                    .await
                {
                    Ok(()) => {
                        report.labels_written += 1;
                        self.labelled.insert(n.name.clone(), want);
                        tracing::info!(node = %n.name, label = UPLINK_CLASS_LABEL, value = want, "labelled the node");
                    }
                    Err(e) => {
                        report.labels_failed += 1;
                        tracing::warn!(node = %n.name, error = %e, "labelling the node failed");
                    }
                }
            }
        }
        report
    }
}

fn node_bandwidth(node: &str, uid: Option<&str>, status: NodeBandwidthStatus) -> NodeBandwidth {
    let owner = uid.filter(|u| !u.is_empty()).map(|uid| OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Node".to_owned(),
        name: node.to_owned(),
        uid: uid.to_owned(),
        ..Default::default()
    });
    NodeBandwidth {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: NodeBandwidthSpec {},
        status: Some(status),
    }
}

#[cfg(test)]
#[path = "placement_publish_tests.rs"]
mod tests;
