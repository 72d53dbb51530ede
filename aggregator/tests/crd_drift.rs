//! The committed CRD YAML must be exactly what the Rust types generate; regenerate with
//! `cargo run -p linkmeter-aggregator --bin crdgen > manifests/crds/linkmeter.dev.yaml`
//! and `cargo run -p linkmeter-aggregator --bin crdgen -- --diktyo >
//! manifests/components/diktyo-crd/networktopology.yaml`.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};

fn assert_committed(relative: &str, generated: &str, command: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == generated,
        "{relative} is out of date: run `{command} > {relative}`"
    );
}

/// linkmeter's own CRD of `kind`.
fn linkmeter_crd(kind: &str) -> CustomResourceDefinition {
    linkmeter_aggregator::api::all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("{kind} CRD"))
}

/// Whether `version` has the status subresource.
fn has_status(version: &CustomResourceDefinitionVersion) -> bool {
    version
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some()
}

#[test]
fn committed_crds_match_the_generated_ones() {
    let generated = linkmeter_aggregator::api::crds_yaml().expect("CRDs render");
    assert_committed(
        "manifests/crds/linkmeter.dev.yaml",
        &generated,
        "cargo run -p linkmeter-aggregator --bin crdgen",
    );
    let diktyo = linkmeter_aggregator::api::diktyo_crd_yaml().expect("CRD renders");
    assert_committed(
        "manifests/components/diktyo-crd/networktopology.yaml",
        &diktyo,
        "cargo run -p linkmeter-aggregator --bin crdgen -- --diktyo",
    );
}

#[test]
fn cluster_topology_crd_is_cluster_scoped_with_status() {
    let crd = linkmeter_crd("ClusterTopology");
    assert_eq!(crd.spec.scope, "Cluster");
    assert!(has_status(&crd.spec.versions[0]));
}

/// The fields scheduler-plugins' v1.0.1-alpha NetworkTopology CRD declares, and only
/// those: the plugin must read what the aggregator writes, unchanged.
#[test]
fn diktyo_crd_has_the_upstream_shape() {
    let crd = linkmeter_aggregator::api::diktyo_crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("networktopologies.networktopology.diktyo.x-k8s.io")
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(
        v.subresources.is_none(),
        "upstream has no status subresource"
    );
    let schema = serde_json::to_value(
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref()),
    )
    .expect("schema");
    let spec = &schema["properties"]["spec"];
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    assert_eq!(keys(spec), ["configmapName", "weights"]);
    let weight = &spec["properties"]["weights"]["items"];
    assert_eq!(keys(weight), ["name", "topologyList"]);
    let topology = &weight["properties"]["topologyList"]["items"];
    assert_eq!(keys(topology), ["originList", "topologyKey"]);
    let origin = &topology["properties"]["originList"]["items"];
    assert_eq!(keys(origin), ["costList", "origin"]);
    let cost = &origin["properties"]["costList"]["items"];
    assert_eq!(
        keys(cost),
        [
            "bandwidthAllocated",
            "bandwidthCapacity",
            "destination",
            "networkCost"
        ]
    );
    assert_eq!(
        cost["properties"]["bandwidthCapacity"]["x-kubernetes-int-or-string"],
        true
    );
    assert_eq!(
        keys(&schema["properties"]["status"]),
        ["nodeCount", "weightCalculationTime"]
    );
}

#[test]
fn node_topology_crd_is_cluster_scoped_with_status_and_columns() {
    let crd = linkmeter_crd("NodeTopology");
    assert_eq!(crd.spec.group, "linkmeter.dev");
    assert_eq!(crd.spec.scope, "Cluster");
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(has_status(v), "status subresource");
    let cols: Vec<&str> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for want in ["Zone", "Peers", "GPUs", "Observed"] {
        assert!(
            cols.contains(&want),
            "printer column {want} missing from {cols:?}"
        );
    }
}
