//! kube-scheduler's HTTP extender messages (`k8s.io/kube-scheduler/extender/v1`).
//!
//! The Go types of `ExtenderArgs`, `ExtenderFilterResult` and `HostPriority` have no
//! JSON tags before 1.21, so their fields travel under the Go names (`Pod`, `NodeNames`,
//! …); Go's decoder matches names case-insensitively, so the lower-case spellings are
//! accepted too. The Pod and Node objects inside are ordinary API objects.
//!
//! Nodes (when the extender is not `nodeCacheCapable`) are kept as raw JSON: the
//! answer must return the very objects that passed, and a 5,000-node list decoded
//! into typed Nodes only to be encoded again would cost most of the request.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What the scheduler sends to `filter` and `prioritize`.
#[derive(Debug, Deserialize)]
pub struct ExtenderArgs {
    /// The pod being scheduled.
    #[serde(rename = "Pod", alias = "pod", default)]
    pub pod: Option<Pod>,
    /// The candidate Nodes, whole (`nodeCacheCapable: false`).
    #[serde(rename = "Nodes", alias = "nodes", default)]
    pub nodes: Option<RawNodeList>,
    /// The candidate node names (`nodeCacheCapable: true`).
    #[serde(
        rename = "NodeNames",
        alias = "nodeNames",
        alias = "nodenames",
        default
    )]
    pub node_names: Option<Vec<String>>,
}

/// A `v1.NodeList` whose items stay raw.
#[derive(Debug, Deserialize, Serialize)]
pub struct RawNodeList {
    /// The Node objects.
    #[serde(default)]
    pub items: Vec<Box<RawValue>>,
}

/// Just the name of a Node.
#[derive(Debug, Deserialize)]
struct NodeName {
    #[serde(default)]
    metadata: NameOnly,
}

#[derive(Debug, Default, Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

/// The name of a raw Node object.
pub fn node_name(raw: &RawValue) -> Result<String, serde_json::Error> {
    let n: NodeName = serde_json::from_str(raw.get())?;
    Ok(n.metadata.name)
}

/// `filter`'s answer.
#[derive(Debug, Default, Serialize)]
pub struct ExtenderFilterResult {
    /// The Nodes that fit, as received (`nodeCacheCapable: false`).
    #[serde(rename = "Nodes")]
    pub nodes: Option<RawNodeList>,
    /// The names of the nodes that fit (`nodeCacheCapable: true`).
    #[serde(rename = "NodeNames")]
    pub node_names: Option<Vec<String>>,
    /// Node → why it does not fit.
    #[serde(rename = "FailedNodes")]
    pub failed_nodes: BTreeMap<String, String>,
    /// Set when the request could not be served; the scheduler then fails the attempt.
    #[serde(rename = "Error")]
    pub error: String,
}

/// One node's score in `prioritize`'s answer (a `HostPriorityList` is a list of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPriority {
    /// Node name.
    #[serde(rename = "Host")]
    pub host: String,
    /// 0-10.
    #[serde(rename = "Score")]
    pub score: i64,
}
