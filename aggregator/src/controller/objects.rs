//! The objects this process applies, built from one computation, and the "content" of
//! each (the object with its calculation times blanked) that decides whether a write
//! is needed at all.

use crate::api::{
    ClusterTopology, ClusterTopologySpec, ClusterTopologyStatus, NetworkTopology,
    NetworkTopologySpec, NetworkTopologyStatus,
};

use super::args::Targets;

/// What one computation gives to write.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The ClusterTopology status (with `calculationMillis` set).
    pub cluster: ClusterTopologyStatus,
    /// The NetworkTopology spec.
    pub network: NetworkTopologySpec,
    /// The NetworkTopology status.
    pub network_status: NetworkTopologyStatus,
}

/// The ClusterTopology without status: what is applied once to make it exist.
pub fn cluster_object(targets: &Targets) -> ClusterTopology {
    ClusterTopology::new(&targets.cluster_topology, ClusterTopologySpec {})
}

/// The body of the status apply: name, and the status (the spec is ignored there).
pub fn cluster_status(targets: &Targets, view: &View) -> ClusterTopology {
    let mut obj = cluster_object(targets);
    obj.status = Some(view.cluster.clone());
    obj
}

/// The whole NetworkTopology, status included: its CRD has no status subresource, so
/// the status travels in the one apply to the main resource.
pub fn network_object(namespace: &str, name: &str, view: &View) -> NetworkTopology {
    let mut obj = NetworkTopology::new(name, view.network.clone());
    obj.metadata.namespace = Some(namespace.to_owned());
    obj.status = Some(view.network_status.clone());
    obj
}

/// The ClusterTopology status less the fields that change at every computation. A
/// node's `ageSeconds` grows with the calculation time while its report stays the same,
/// so it is compared as the time it stands for (`calculatedAt` − age): time passing is
/// no change, a new report from the node is.
pub fn cluster_content(status: &ClusterTopologyStatus) -> ClusterTopologyStatus {
    let mut content = ClusterTopologyStatus {
        calculated_at: None,
        calculation_millis: 0,
        ..status.clone()
    };
    let at = status
        .calculated_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    if let Some(at) = at {
        for node in content.zones.iter_mut().flat_map(|z| &mut z.nodes) {
            node.age_seconds = node
                .age_seconds
                .and_then(|age| u64::try_from(at - i64::try_from(age).ok()?).ok());
        }
    }
    content
}

/// The NetworkTopology spec and status less the calculation time.
pub fn network_content(view: &View) -> (NetworkTopologySpec, NetworkTopologyStatus) {
    (
        view.network.clone(),
        NetworkTopologyStatus {
            weight_calculation_time: None,
            ..view.network_status.clone()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            cluster_topology: "cluster".into(),
            network_topology: Some(("default".into(), "nt-default".into())),
            weights_name: "UserDefined".into(),
            configmap_name: "linkmeter-aggregator".into(),
        }
    }

    fn view() -> View {
        View {
            cluster: ClusterTopologyStatus {
                calculated_at: Some("2026-01-01T00:00:00Z".into()),
                calculation_millis: 12,
                node_count: 4,
                ..Default::default()
            },
            network: NetworkTopologySpec {
                configmap_name: "linkmeter-aggregator".into(),
                weights: vec![],
            },
            network_status: NetworkTopologyStatus {
                node_count: Some(4),
                weight_calculation_time: Some("2026-01-01T00:00:00Z".into()),
            },
        }
    }

    #[test]
    fn the_cluster_object_is_name_and_empty_spec() {
        let v = serde_json::to_value(cluster_object(&targets())).expect("serialises");
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "linkmeter.dev/v1alpha1",
                "kind": "ClusterTopology",
                "metadata": {"name": "cluster"},
                "spec": {}
            })
        );
    }

    #[test]
    fn the_network_object_carries_its_status() {
        let v = serde_json::to_value(network_object("default", "nt-default", &view()))
            .expect("serialises");
        assert_eq!(v["apiVersion"], "networktopology.diktyo.x-k8s.io/v1alpha1");
        assert_eq!(v["kind"], "NetworkTopology");
        assert_eq!(
            v["metadata"],
            serde_json::json!({"name": "nt-default", "namespace": "default"})
        );
        assert_eq!(v["spec"]["configmapName"], "linkmeter-aggregator");
        assert_eq!(v["status"]["nodeCount"], 4);
        assert_eq!(v["status"]["weightCalculationTime"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn content_compares_ages_as_the_times_they_stand_for() {
        let status = |at: &str, age: u64| ClusterTopologyStatus {
            calculated_at: Some(at.into()),
            zones: vec![crate::api::ZoneNodes {
                nodes: vec![crate::api::NodeSummary {
                    name: "n1".into(),
                    age_seconds: Some(age),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let first = status("2026-01-01T00:00:00Z", 10);
        // A minute on, the same report is a minute older: no change.
        let later = status("2026-01-01T00:01:00Z", 70);
        assert_eq!(cluster_content(&first), cluster_content(&later));
        // A new report from the node: a change.
        let fresh = status("2026-01-01T00:01:00Z", 5);
        assert_ne!(cluster_content(&first), cluster_content(&fresh));
    }

    #[test]
    fn content_ignores_the_calculation_times() {
        let a = view();
        let mut b = view();
        b.cluster.calculated_at = Some("2026-01-01T00:01:00Z".into());
        b.cluster.calculation_millis = 40;
        b.network_status.weight_calculation_time = Some("2026-01-01T00:01:00Z".into());
        assert_eq!(cluster_content(&a.cluster), cluster_content(&b.cluster));
        assert_eq!(network_content(&a), network_content(&b));
        b.cluster.node_count = 5;
        assert_ne!(cluster_content(&a.cluster), cluster_content(&b.cluster));
    }
}
