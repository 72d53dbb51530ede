//! The `linkmeter.dev/v1alpha1` topology API: the contract with scheduler plugins.
//!
//! Conventions (Kubernetes API conventions): integers with the unit in the field name,
//! no floating point, lists sorted by their key, camelCase field names.

mod crd;
mod node_topology;

pub use crd::{all_crds, crds_yaml};
pub use node_topology::*;

/// API group of every linkmeter resource.
pub const GROUP: &str = "linkmeter.dev";
/// API version of every linkmeter resource.
pub const VERSION: &str = "v1alpha1";
