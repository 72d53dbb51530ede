//! Diktyo's `NetworkTopology` (`networktopology.diktyo.x-k8s.io/v1alpha1`), the object
//! the scheduler-plugins NetworkOverhead plugin reads. Only the fields of the v1.0.1-alpha
//! CRD that scheduler-plugins ships are here, with the same JSON names, so the plugin
//! reads what the aggregator writes unchanged.
//!
//! That CRD has no status subresource: status is written with the object.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the NetworkTopology kind.
pub const DIKTYO_GROUP: &str = "networktopology.diktyo.x-k8s.io";
/// `apiVersion` of a NetworkTopology.
pub const DIKTYO_API_VERSION: &str = "networktopology.diktyo.x-k8s.io/v1alpha1";
/// `weights[].name` the plugin reads by default (`weightsName` in its args).
pub const DEFAULT_WEIGHTS_NAME: &str = "UserDefined";

/// Network costs between the cluster's zones and regions.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networktopology.diktyo.x-k8s.io",
    version = "v1alpha1",
    kind = "NetworkTopology",
    doc = "Network costs between the cluster's zones and regions, as scheduler-plugins' NetworkOverhead plugin reads them.",
    plural = "networktopologies",
    singular = "networktopology",
    shortname = "nt",
    namespaced,
    status = "NetworkTopologyStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkTopologySpec {
    /// Name of a ConfigMap for cost calculation (required by the CRD; the plugin does
    /// not read it when the weights are given).
    pub configmap_name: String,
    /// Costs per algorithm name.
    pub weights: Vec<WeightInfo>,
}

/// Costs for one algorithm name (the plugin picks one by its `weightsName`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightInfo {
    /// Algorithm name, e.g. `UserDefined`.
    pub name: String,
    /// One entry per topology key, sorted by `topologyKey`.
    pub topology_list: Vec<TopologyInfo>,
}

/// Costs between the values of one topology key (regions, or zones).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologyInfo {
    /// `topology.kubernetes.io/region` or `topology.kubernetes.io/zone`.
    pub topology_key: String,
    /// One entry per origin, sorted by `origin` (the plugin binary-searches it).
    pub origin_list: Vec<OriginInfo>,
}

/// Costs from one origin.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OriginInfo {
    /// Region or zone name.
    pub origin: String,
    /// Costs to each destination, sorted by `destination`.
    #[serde(default)]
    pub cost_list: Vec<CostInfo>,
}

/// Cost from an origin to one destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostInfo {
    /// Region or zone name.
    pub destination: String,
    /// Non-negative cost: the plugin adds these up for a pod's dependencies.
    #[schemars(range(min = 0))]
    pub network_cost: i64,
    /// Bandwidth capacity origin → destination, a Quantity in bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub bandwidth_capacity: Option<String>,
    /// Bandwidth allocated origin → destination (the aggregator never sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub bandwidth_allocated: Option<String>,
}

/// Status as the CRD defines it (no subresource: written with the object).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkTopologyStatus {
    /// Nodes in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_count: Option<i64>,
    /// When the weights were calculated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_calculation_time: Option<String>,
}

/// A `resource.Quantity`: an integer or a string such as `38100k`, as the CRD declares it.
fn quantity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        "x-kubernetes-int-or-string": true
    })
}

/// A bandwidth in kbit/s as a Quantity of bits per second (`38100k`).
pub fn kbps_quantity(kbps: u64) -> String {
    format!("{kbps}k")
}
