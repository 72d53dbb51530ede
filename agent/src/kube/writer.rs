//! The publisher's narrow view of the API server: read this node's Node, apply the
//! NodeTopology object, apply its status, merge-patch its status. [`KubeWriter`] does
//! it with kube's `Api`; the publisher's unit tests use a fake, so every decision the
//! publisher makes around a write (outage, 404, recovery) is tested without a server,
//! and the real-apiserver tests prove the real one.

use std::future::Future;

use ::kube::api::{Patch, PatchParams};
use ::kube::{Api, Client};
use k8s_openapi::api::core::v1::Node;
use linkmeter_aggregator::api::NodeTopology;
use serde_json::Value;

use super::FIELD_MANAGER;

/// The four requests the publisher makes. Errors are kube's, so that outage and
/// not-found are told apart the same way for the real server and a fake.
pub trait TopologyWriter: Send + Sync + 'static {
    /// GETs the Node `name`; `None` when it does not exist.
    fn get_node(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Node>, ::kube::Error>> + Send;
    /// Forced server-side apply of the NodeTopology object (metadata and spec).
    fn apply_object(
        &self,
        name: &str,
        body: &Value,
    ) -> impl Future<Output = Result<(), ::kube::Error>> + Send;
    /// Forced server-side apply of the status subresource.
    fn apply_status(
        &self,
        name: &str,
        body: &Value,
    ) -> impl Future<Output = Result<(), ::kube::Error>> + Send;
    /// JSON merge patch of the status subresource (the light heartbeat).
    fn merge_status(
        &self,
        name: &str,
        body: &Value,
    ) -> impl Future<Output = Result<(), ::kube::Error>> + Send;
}

/// [`TopologyWriter`] on a real API server.
#[derive(Clone, Debug)]
pub struct KubeWriter {
    topologies: Api<NodeTopology>,
    nodes: Api<Node>,
}

impl KubeWriter {
    /// A writer using `client`.
    pub fn new(client: Client) -> Self {
        KubeWriter {
            topologies: Api::all(client.clone()),
            nodes: Api::all(client),
        }
    }
}

fn forced_apply() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

impl TopologyWriter for KubeWriter {
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ::kube::Error> {
        self.nodes.get_opt(name).await
    }

    async fn apply_object(&self, name: &str, body: &Value) -> Result<(), ::kube::Error> {
        self.topologies
            .patch(name, &forced_apply(), &Patch::Apply(body))
            .await
            .map(drop)
    }

    async fn apply_status(&self, name: &str, body: &Value) -> Result<(), ::kube::Error> {
        self.topologies
            .patch_status(name, &forced_apply(), &Patch::Apply(body))
            .await
            .map(drop)
    }

    async fn merge_status(&self, name: &str, body: &Value) -> Result<(), ::kube::Error> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.topologies
            .patch_status(name, &params, &Patch::Merge(body))
            .await
            .map(drop)
    }
}
