//! `ClusterTopology`: the aggregator's merged view of the cluster, one object (default
//! name `cluster`) written only by the elected `linkmeter-aggregator`.
//!
//! Sized for 5,000 nodes under 1 MiB: nodes are grouped by zone (so zone and region are
//! written once per zone, not per node), fields at their default are left out, and every
//! list is atomic (no `x-kubernetes-list-type: map`), so server-side apply records one
//! managed-fields entry per list rather than one per item.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `ClusterTopology`. Intentionally empty: the object is a report.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "linkmeter.dev",
    version = "v1alpha1",
    kind = "ClusterTopology",
    doc = "The cluster as linkmeter-aggregator sees it: nodes by zone with coordinates and uplinks, zone and region figures, stale nodes, model quality.",
    plural = "clustertopologies",
    singular = "clustertopology",
    shortname = "ctopo",
    status = "ClusterTopologyStatus",
    printcolumn = r#"{"name":"Nodes","type":"integer","jsonPath":".status.nodeCount"}"#,
    printcolumn = r#"{"name":"Stale","type":"integer","jsonPath":".status.staleNodeCount"}"#,
    printcolumn = r#"{"name":"Zones","type":"integer","jsonPath":".status.zoneCount"}"#,
    printcolumn = r#"{"name":"Model-Err-Permille","type":"integer","jsonPath":".status.model.medianErrorPermille"}"#,
    printcolumn = r#"{"name":"Calculated","type":"date","jsonPath":".status.calculatedAt"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTopologySpec {}

/// The merged view. Lists are sorted by their key; integers carry their unit in the name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTopologyStatus {
    /// When this view was calculated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculated_at: Option<String>,
    /// CPU time the calculation took, milliseconds.
    #[serde(default)]
    pub calculation_millis: u64,
    /// Nodes in the view (every Node, reported or not).
    #[serde(default)]
    pub node_count: u32,
    /// Nodes without a fresh NodeTopology (stale, or none at all).
    #[serde(default)]
    pub stale_node_count: u32,
    /// Distinct zones.
    #[serde(default)]
    pub zone_count: u32,
    /// Nodes grouped by (region, zone), sorted by region then zone.
    #[serde(default)]
    pub zones: Vec<ZoneNodes>,
    /// Zone × zone figures over measured node pairs, sorted by (`from`, `to`).
    #[serde(default)]
    pub zone_pairs: Vec<GroupPair>,
    /// Region × region figures, sorted by (`from`, `to`).
    #[serde(default)]
    pub region_pairs: Vec<GroupPair>,
    /// Names of the nodes without a fresh NodeTopology, sorted.
    #[serde(default)]
    pub stale_nodes: Vec<String>,
    /// How well the network coordinates predict measured pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelQuality>,
    /// Input the aggregator skipped or clipped, by reason: bounded, sorted by `reason`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedCount>,
}

/// The nodes of one zone. A node without a zone label is in zone `""`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneNodes {
    /// `topology.kubernetes.io/region`, `""` when unlabelled.
    pub region: String,
    /// `topology.kubernetes.io/zone`, `""` when unlabelled.
    pub zone: String,
    /// The zone's nodes, sorted by `name`.
    pub nodes: Vec<NodeSummary>,
}

/// One node in the cluster view.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// `slow-uplink` when the node's best measured throughput is under a quarter of the
    /// cluster's median best throughput; `unmeasured` when it has no throughput figure;
    /// absent (normal) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Age of its NodeTopology's `observedAt` at `calculatedAt`, whole seconds; absent
    /// when it has none. (An age rather than a timestamp: 19 bytes a node less, which at
    /// 5,000 nodes is what keeps the object under 1 MiB.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    /// True when its NodeTopology is older than `--stale-after`, or missing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stale: bool,
    /// Network coordinate, µs per dimension; absent when no measured pair touches it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coordinate_us: Vec<i64>,
    /// Coordinate height (access-link delay), µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height_us: Option<u64>,
    /// Median relative error of this node's measured pairs under the model, ‰.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_permille: Option<u32>,
    /// Uplink estimate, node → peers: the best measured goodput, capped by NIC speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_kbps: Option<u64>,
    /// Uplink estimate, peers → node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_kbps: Option<u64>,
    /// GPUs reported by the node's agent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpus: u32,
}

/// Figures for one ordered pair of zones (or regions), over the measured node pairs
/// between them. `from == to` is the figure inside one zone.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupPair {
    /// Origin zone or region.
    pub from: String,
    /// Destination zone or region.
    pub to: String,
    /// Median of the node pairs' RTT p50, µs.
    pub rtt_p50_us: u64,
    /// 90th percentile of the node pairs' RTT p90, µs. The cost derives from it.
    pub rtt_p90_us: u64,
    /// Median goodput `from` → `to` over measured node pairs, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_median_kbps: Option<u64>,
    /// Smallest goodput `from` → `to`, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_min_kbps: Option<u64>,
    /// The `networkCost` written to the NetworkTopology.
    pub cost: u64,
    /// Measured node pairs behind the figures; 0 when they are predicted from the
    /// network coordinates because no pair between the groups was measured.
    pub pairs: u32,
}

/// Quality of the network coordinates, cross-validated: a fixed tenth of the measured
/// pairs is held out of the fit and predicted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelQuality {
    /// Euclidean dimensions (plus a height).
    pub dimensions: u32,
    /// Measured node pairs the fit used.
    pub fitted_pairs: u32,
    /// Held-out pairs the errors are measured on.
    pub held_out_pairs: u32,
    /// Median relative error on the held-out pairs, ‰.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_error_permille: Option<u32>,
    /// 90th percentile relative error on the held-out pairs, ‰.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_error_permille: Option<u32>,
}

/// How many input items were skipped or clipped for one reason.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCount {
    /// One camelCase reason, e.g. `noStatus`, `unknownPeer`, `absurdRtt`.
    pub reason: String,
    /// Items skipped for it.
    pub count: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
