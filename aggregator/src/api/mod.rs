//! The `linkmeter.dev/v1alpha1` topology API: the contract with scheduler plugins.
//!
//! Conventions (Kubernetes API conventions): integers with the unit in the field name,
//! no floating point, lists sorted by their key, camelCase field names.

mod cluster_topology;
mod crd;
mod network_topology;
mod node_bandwidth;
mod node_topology;

pub use cluster_topology::*;
pub use crd::{all_crds, crds_yaml, diktyo_crd, diktyo_crd_yaml};
pub use network_topology::*;
pub use node_bandwidth::*;
pub use node_topology::*;

/// API group of every linkmeter resource.
pub const GROUP: &str = "linkmeter.dev";
/// API version of every linkmeter resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every linkmeter object: `GROUP/VERSION`.
pub const API_VERSION: &str = "linkmeter.dev/v1alpha1";

/// Field manager of every server-side apply the node agent makes.
pub const AGENT_FIELD_MANAGER: &str = "linkmeter-agent";
/// Field manager of every server-side apply the cluster aggregator makes.
pub const AGGREGATOR_FIELD_MANAGER: &str = "linkmeter-aggregator";
/// Default name of the one ClusterTopology.
pub const CLUSTER_TOPOLOGY_NAME: &str = "cluster";

/// Well-known Node label with the node's zone: read into the NodeTopology status, used
/// to pick peers, and (upstream) the only topology the NetworkOverhead plugin sees.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Well-known Node label with the node's region.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Node label the aggregator keeps with `--label-nodes`: `slow` or `fast` by the
/// measured uplink, with hysteresis.
pub const UPLINK_CLASS_LABEL: &str = "linkmeter.dev/uplink-class";

#[cfg(test)]
mod tests {
    #[test]
    fn api_version_is_group_and_version() {
        assert_eq!(
            super::API_VERSION,
            format!("{}/{}", super::GROUP, super::VERSION)
        );
    }
}
