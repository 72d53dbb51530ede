//! Rendering of the CustomResourceDefinitions from the Rust types.
//!
//! The rendered YAML is committed and a test fails when a committed file drifts from
//! what this code produces: `manifests/crds/linkmeter.dev.yaml` (linkmeter's own kinds;
//! `cargo run -p linkmeter-aggregator --bin crdgen > manifests/crds/linkmeter.dev.yaml`)
//! and `manifests/components/diktyo-crd/networktopology.yaml` (Diktyo's NetworkTopology,
//! for clusters without scheduler-plugins; `crdgen --diktyo`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{ClusterTopology, NetworkTopology, NodeBandwidth, NodeTopology};

/// Every CRD linkmeter owns, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        NodeTopology::crd(),
        ClusterTopology::crd(),
        NodeBandwidth::crd(),
    ]
}

/// Diktyo's NetworkTopology CRD as scheduler-plugins ships it: namespaced, and without
/// a status subresource (status is written with the object).
pub fn diktyo_crd() -> CustomResourceDefinition {
    let mut crd = NetworkTopology::crd();
    for version in &mut crd.spec.versions {
        version.subresources = None;
    }
    crd
}

/// All of linkmeter's CRDs as one multi-document YAML string, each introduced by `---`.
pub fn crds_yaml() -> Result<String, serde_norway::Error> {
    render(&all_crds())
}

/// The Diktyo NetworkTopology CRD as YAML.
pub fn diktyo_crd_yaml() -> Result<String, serde_norway::Error> {
    render(&[diktyo_crd()])
}

fn render(crds: &[CustomResourceDefinition]) -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(crd)?);
    }
    Ok(out)
}
