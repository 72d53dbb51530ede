//! The committed CRD YAML must be exactly what the Rust types generate; regenerate with
//! `cargo run -p linkmeter-aggregator --bin crdgen > manifests/crds/linkmeter.dev.yaml`.

use std::path::PathBuf;

#[test]
fn committed_crds_match_the_generated_ones() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds/linkmeter.dev.yaml");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let generated = linkmeter_aggregator::api::crds_yaml().expect("CRDs render");
    assert!(
        committed == generated,
        "{} is out of date: run `cargo run -p linkmeter-aggregator --bin crdgen > manifests/crds/linkmeter.dev.yaml`",
        path.display()
    );
}

#[test]
fn node_topology_crd_is_cluster_scoped_with_status_and_columns() {
    let crds = linkmeter_aggregator::api::all_crds();
    let crd = crds
        .iter()
        .find(|c| c.spec.names.kind == "NodeTopology")
        .expect("NodeTopology CRD");
    assert_eq!(crd.spec.group, "linkmeter.dev");
    assert_eq!(crd.spec.scope, "Cluster");
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(
        v.subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some(),
        "status subresource"
    );
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
