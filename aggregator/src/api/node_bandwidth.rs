//! `NodeBandwidth`: one object per node (cluster-scoped, named after the node), written
//! only by the elected `linkmeter-aggregator`: the node's measured uplink as capacity,
//! what bound pods reserve of it, and what is left — the reservation model the
//! extender's `filter` applies.
//!
//! Capacity is the best goodput measured from (egress) and to (ingress) the node,
//! capped by its NIC speed. A pod reserves `kubernetes.io/egress-bandwidth` (else
//! `linkmeter.dev/min-bandwidth`) of egress and `kubernetes.io/ingress-bandwidth` of
//! ingress while it is bound and not finished.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `NodeBandwidth`. Intentionally empty: the object is a report.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "linkmeter.dev",
    version = "v1alpha1",
    kind = "NodeBandwidth",
    doc = "One node's bandwidth as linkmeter schedules it: measured capacity, what bound pods reserve, what is available.",
    plural = "nodebandwidths",
    singular = "nodebandwidth",
    shortname = "nbw",
    status = "NodeBandwidthStatus",
    printcolumn = r#"{"name":"Egress-Capacity-bps","type":"integer","jsonPath":".status.egress.capacityBps"}"#,
    printcolumn = r#"{"name":"Egress-Reserved-bps","type":"integer","jsonPath":".status.egress.reservedBps"}"#,
    printcolumn = r#"{"name":"Egress-Available-bps","type":"integer","jsonPath":".status.egress.availableBps"}"#,
    printcolumn = r#"{"name":"Ingress-Available-bps","type":"integer","jsonPath":".status.ingress.availableBps"}"#,
    printcolumn = r#"{"name":"Pods","type":"integer","jsonPath":".status.podCount"}"#,
    printcolumn = r#"{"name":"Summary","type":"string","jsonPath":".status.summary","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NodeBandwidthSpec {}

/// Capacity, reservations and what is left, both directions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeBandwidthStatus {
    /// From the node.
    pub egress: BandwidthFigures,
    /// To the node.
    pub ingress: BandwidthFigures,
    /// Pods holding a reservation.
    #[serde(default)]
    pub pod_count: u32,
    /// The reservations, sorted by (namespace, pod); at most 256 listed (the sums count
    /// every pod).
    #[serde(default)]
    pub reservations: Vec<Reservation>,
    /// One line for people, e.g. "egress 340 Mbit/s free of 940 Mbit/s".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
}

/// One direction.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BandwidthFigures {
    /// Measured capacity, bit/s; absent until a throughput test ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bps: Option<u64>,
    /// Sum of the reservations, bit/s.
    #[serde(default)]
    pub reserved_bps: u64,
    /// Capacity minus reserved (never below 0), bit/s; absent without a capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bps: Option<u64>,
}

/// One pod's reservation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// Egress reserved, bit/s.
    #[serde(default)]
    pub egress_bps: u64,
    /// Ingress reserved, bit/s.
    #[serde(default)]
    pub ingress_bps: u64,
}
