//! The two watches (kube-runtime watchers with their default backoff) feeding the
//! stores: Nodes, typed; NodeTopologies as untyped objects, each converted on its own so
//! that one malformed object is set aside (counted and logged once per version) instead
//! of breaking the watch for all.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{NodeTopology, NodeTopologySpec, NodeTopologyStatus};
use crate::cluster::NodeInfo;
use crate::placement::{self, PlacedPod};

use super::metrics::Metrics;
use super::shared::Shared;
use super::store::{Converted, Put, Store};

/// Longest error text kept in a log line about a malformed object.
const MAX_ERROR_CHARS: usize = 300;

/// Watches every Node into `shared.nodes`.
pub fn spawn_nodes(
    client: Client,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Node> = Api::all(client);
        let stream = watch_all(api);
        pump(
            stream,
            &shared.nodes,
            &shared.metrics,
            node_info,
            "Node",
            shutdown,
        )
        .await;
    })
}

/// Watches every pod bound to a node and not finished into `shared.pods` (a field
/// selector: a pod that finishes leaves the selection, which the watch reports as a
/// deletion).
pub fn spawn_pods(
    client: Client,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::all(client);
        let config = watcher::Config::default()
            .any_semantic()
            .fields("spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed");
        let stream = watcher::watcher(api, config).default_backoff();
        pump(
            stream,
            &shared.pods,
            &shared.metrics,
            to_placed,
            "Pod",
            shutdown,
        )
        .await;
    })
}

fn to_placed(pod: Pod) -> Converted<Option<Arc<PlacedPod>>> {
    Converted {
        name: key(&pod),
        version: pod.resource_version().unwrap_or_default(),
        value: Ok(placement::placed(&pod).map(Arc::new)),
    }
}

/// Watches every NodeTopology into `shared.topologies`.
pub fn spawn_topologies(
    client: Client,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let resource = ApiResource::erase::<NodeTopology>(&());
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let stream = watch_all(api);
        pump(
            stream,
            &shared.topologies,
            &shared.metrics,
            to_topology,
            "NodeTopology",
            shutdown,
        )
        .await;
    })
}

fn watch_all<K>(api: Api<K>) -> impl futures_util::Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    // Any resource version: the initial list may come from the API server's watch
    // cache instead of etcd, which matters at 5,000 nodes and costs us nothing.
    watcher::watcher(api, watcher::Config::default().any_semantic()).default_backoff()
}

async fn pump<K, T, S>(
    stream: S,
    store: &Store<T>,
    metrics: &Metrics,
    convert: fn(K) -> Converted<T>,
    resource: &'static str,
    shutdown: CancellationToken,
) where
    S: futures_util::Stream<Item = watcher::Result<Event<K>>>,
    K: kube::Resource,
    T: Clone,
{
    let mut stream = std::pin::pin!(stream);
    let mut listed_once = false;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        let Some(event) = next else {
            // The watcher's stream does not end; if it ever does, stop quietly.
            tracing::warn!(resource, "watch ended");
            return;
        };
        match event {
            Ok(Event::Init) => store.begin_relist(),
            Ok(Event::InitApply(obj) | Event::Apply(obj)) => {
                let c = convert(obj);
                let (name, version) = (c.name.clone(), c.version.clone());
                if let Put::NewlyMalformed(why) = store.put(c) {
                    metrics.skip("malformed", 1);
                    log_malformed(resource, &name, &version, &why);
                }
            }
            Ok(Event::Delete(obj)) => store.delete(&key(&obj)),
            Ok(Event::InitDone) => {
                store.finish_relist();
                if !listed_once {
                    listed_once = true;
                    tracing::info!(resource, objects = store.len(), "listed");
                }
            }
            Err(e) => {
                metrics.watch_error(resource);
                tracing::warn!(resource, error = %e, "watch failed; retrying with backoff");
            }
        }
    }
}

/// The store key: `namespace/name` for namespaced objects, the name otherwise.
fn key<K: kube::Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

fn node_info(node: Node) -> Converted<NodeInfo> {
    Converted {
        name: node.metadata.name.clone().unwrap_or_default(),
        version: node.metadata.resource_version.clone().unwrap_or_default(),
        value: Ok(NodeInfo::from_node(&node)),
    }
}

/// A NodeTopology from an untyped object. The spec is empty by design, so a missing
/// one is not an error; anything in `status` that does not fit the type is.
pub fn to_topology(obj: DynamicObject) -> Converted<NodeTopology> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let version = obj.metadata.resource_version.clone().unwrap_or_default();
    let value = convert_topology(obj, &name);
    Converted {
        name,
        version,
        value,
    }
}

fn convert_topology(obj: DynamicObject, name: &str) -> Result<NodeTopology, String> {
    let Value::Object(mut data) = obj.data else {
        return Err("not a JSON object".to_owned());
    };
    let spec: NodeTopologySpec = match data.remove("spec") {
        None | Some(Value::Null) => NodeTopologySpec {},
        Some(v) => serde_json::from_value(v).map_err(|e| format!("spec: {e}"))?,
    };
    let status: Option<NodeTopologyStatus> = match data.remove("status") {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_json::from_value(v).map_err(|e| format!("status: {e}"))?),
    };
    let mut metadata = obj.metadata;
    // Server-side apply's bookkeeping: the largest part of the metadata, never read.
    metadata.managed_fields = None;
    let mut nt = NodeTopology::new(name, spec);
    nt.metadata = metadata;
    nt.status = status;
    Ok(nt)
}

/// Logs one malformed object (once per name and resourceVersion: the store says when).
fn log_malformed(resource: &str, name: &str, version: &str, why: &str) {
    let why: String = why.chars().take(MAX_ERROR_CHARS).collect();
    tracing::warn!(
        resource,
        name,
        resource_version = version,
        error = %why,
        "skipping a malformed object"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(v: Value) -> DynamicObject {
        serde_json::from_value(v).expect("a DynamicObject")
    }

    #[test]
    fn a_good_topology_converts() {
        let c = to_topology(dynamic(serde_json::json!({
            "apiVersion": "linkmeter.dev/v1alpha1",
            "kind": "NodeTopology",
            "metadata": {"name": "n1", "resourceVersion": "7", "managedFields": [{"manager": "x"}]},
            "spec": {},
            "status": {"observedAt": "2026-01-01T00:00:00Z", "windowSeconds": 300}
        })));
        assert_eq!((c.name.as_str(), c.version.as_str()), ("n1", "7"));
        let nt = c.value.expect("converts");
        assert_eq!(nt.metadata.name.as_deref(), Some("n1"));
        assert!(nt.metadata.managed_fields.is_none());
        let status = nt.status.expect("status");
        assert_eq!(status.window_seconds, 300);
    }

    #[test]
    fn no_spec_and_no_status_are_fine() {
        let c = to_topology(dynamic(serde_json::json!({
            "apiVersion": "linkmeter.dev/v1alpha1",
            "kind": "NodeTopology",
            "metadata": {"name": "n1", "resourceVersion": "1"}
        })));
        assert!(c.value.expect("converts").status.is_none());
    }

    #[test]
    fn a_bad_status_is_malformed() {
        let c = to_topology(dynamic(serde_json::json!({
            "apiVersion": "linkmeter.dev/v1alpha1",
            "kind": "NodeTopology",
            "metadata": {"name": "n1", "resourceVersion": "2"},
            "status": {"windowSeconds": "a lot"}
        })));
        let err = c.value.expect_err("malformed");
        assert!(err.starts_with("status: "), "{err}");
    }
}
