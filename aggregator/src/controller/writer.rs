//! The three writes the controller makes, behind [`TopologyWriter`] so that every
//! decision around them (when to write, what a 404 means) is unit-tested with a fake;
//! [`KubeWriter`] makes them on a real API server.

use std::future::Future;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::api::{AGGREGATOR_FIELD_MANAGER, ClusterTopology, NetworkTopology};

/// Forced server-side applies under the field manager `linkmeter-aggregator`.
pub trait TopologyWriter: Send + Sync + 'static {
    /// Applies the ClusterTopology object itself (name, empty spec).
    fn apply_cluster_topology(
        &self,
        obj: &ClusterTopology,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
    /// Applies the ClusterTopology status through its `/status` subresource.
    fn apply_cluster_topology_status(
        &self,
        obj: &ClusterTopology,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
    /// Applies the whole NetworkTopology (spec and status) to the main resource.
    fn apply_network_topology(
        &self,
        obj: &NetworkTopology,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
}

/// [`TopologyWriter`] on a real API server.
#[derive(Clone)]
pub struct KubeWriter {
    client: Client,
}

impl std::fmt::Debug for KubeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWriter").finish_non_exhaustive()
    }
}

impl KubeWriter {
    /// A writer using `client`.
    pub fn new(client: Client) -> Self {
        KubeWriter { client }
    }
}

fn forced_apply() -> PatchParams {
    PatchParams::apply(AGGREGATOR_FIELD_MANAGER).force()
}

fn name_of(meta: &kube::api::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

impl TopologyWriter for KubeWriter {
    async fn apply_cluster_topology(&self, obj: &ClusterTopology) -> Result<(), kube::Error> {
        let api: Api<ClusterTopology> = Api::all(self.client.clone());
        api.patch(name_of(&obj.metadata), &forced_apply(), &Patch::Apply(obj))
            .await
            .map(drop)
    }

    async fn apply_cluster_topology_status(
        &self,
        obj: &ClusterTopology,
    ) -> Result<(), kube::Error> {
        let api: Api<ClusterTopology> = Api::all(self.client.clone());
        api.patch_status(name_of(&obj.metadata), &forced_apply(), &Patch::Apply(obj))
            .await
            .map(drop)
    }

    async fn apply_network_topology(&self, obj: &NetworkTopology) -> Result<(), kube::Error> {
        let namespace = obj.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<NetworkTopology> = Api::namespaced(self.client.clone(), namespace);
        api.patch(name_of(&obj.metadata), &forced_apply(), &Patch::Apply(obj))
            .await
            .map(drop)
    }
}

/// True for the API server's 404 (the object, its namespace or its CRD is missing).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl super::placement_publish::PlacementWriter for KubeWriter {
    async fn apply_node_bandwidth(
        &self,
        obj: &crate::api::NodeBandwidth,
    ) -> Result<(), kube::Error> {
        let api: Api<crate::api::NodeBandwidth> = Api::all(self.client.clone());
        api.patch(name_of(&obj.metadata), &forced_apply(), &Patch::Apply(obj))
            .await
            .map(drop)
    }

    async fn apply_node_bandwidth_status(
        &self,
        obj: &crate::api::NodeBandwidth,
    ) -> Result<(), kube::Error> {
        let api: Api<crate::api::NodeBandwidth> = Api::all(self.client.clone());
        api.patch_status(name_of(&obj.metadata), &forced_apply(), &Patch::Apply(obj))
            .await
            .map(drop)
    }

    async fn label_node(&self, node: &str, key: &str, value: &str) -> Result<(), kube::Error> {
        let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node, "labels": {key: value}},
        });
        // A field manager of its own: the label is the only field it owns on the Node.
        let params = PatchParams::apply(LABEL_FIELD_MANAGER).force();
        api.patch(node, &params, &Patch::Apply(&patch))
            .await
            .map(drop)
    }
}

/// Field manager of the Node label writes.
pub const LABEL_FIELD_MANAGER: &str = "linkmeter-aggregator-labels";
