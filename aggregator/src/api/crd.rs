//! Rendering of the CustomResourceDefinitions from the Rust types.
//!
//! The rendered YAML is committed under `manifests/crds/` and a test fails when the
//! committed file drifts from what this code produces (`cargo run -p
//! linkmeter-aggregator --bin crdgen > manifests/crds/linkmeter.dev.yaml` fixes it).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::NodeTopology;

/// Every CRD linkmeter owns, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![NodeTopology::crd()]
}

/// All CRDs as one multi-document YAML string, each document introduced by `---`.
pub fn crds_yaml() -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd)?);
    }
    Ok(out)
}
