//! `NodeTopology`: one object per node, written only by that node's agent.
//!
//! The spec is empty on purpose: everything the agent knows is an observation, so it
//! lives in `status` and is written through the status subresource. `metadata.name` is the
//! node's name and an ownerReference to the Node makes the object go away with it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `NodeTopology`. Intentionally empty: the object is a report.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "linkmeter.dev",
    version = "v1alpha1",
    kind = "NodeTopology",
    doc = "One node as its linkmeter agent measured it: links to peers (RTT, loss, throughput), GPUs, system summary, conditions.",
    plural = "nodetopologies",
    singular = "nodetopology",
    shortname = "ntopo",
    status = "NodeTopologyStatus",
    printcolumn = r#"{"name":"Zone","type":"string","jsonPath":".status.zone"}"#,
    printcolumn = r#"{"name":"Peers","type":"integer","jsonPath":".status.peerCount"}"#,
    printcolumn = r#"{"name":"GPUs","type":"integer","jsonPath":".status.gpuCount"}"#,
    printcolumn = r#"{"name":"NIC-Mbps","type":"integer","jsonPath":".status.nicSpeedMbps"}"#,
    printcolumn = r#"{"name":"Observed","type":"date","jsonPath":".status.observedAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NodeTopologySpec {}

/// Everything the node's agent observed, summarised over a window.
///
/// Every list is sorted by its key (links by `peer`, GPUs by `index`, addresses by
/// `address`, conditions by `type`) so that an unchanged observation serialises to the
/// same bytes and server-side apply sees no change.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeTopologyStatus {
    /// When the newest sample in this report was taken (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// When this report was written to the API (RFC 3339). Unset in `snapshot` output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// Length of the window the percentiles summarise, in seconds.
    #[serde(default)]
    pub window_seconds: u64,
    /// `topology.kubernetes.io/zone` of the node, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `topology.kubernetes.io/region` of the node, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Addresses of the node (from the Node object, or the host's interfaces).
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
    /// Speed of the fastest physical NIC with a known link speed, in Mbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_speed_mbps: Option<u64>,
    /// Physical NICs with their link speed.
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// CPU, memory and load summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemSummary>,
    /// Number of GPUs NVML reported (also `gpus.len()`, kept for printer columns).
    #[serde(default)]
    pub gpu_count: u32,
    /// GPU inventory and utilisation, sorted by `index`.
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    /// Number of peers with a link entry (also `links.len()`, for printer columns).
    #[serde(default)]
    pub peer_count: u32,
    /// Measured links to peers, sorted by `peer`.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Conditions such as `IcmpAvailable` and `NvmlAvailable`, sorted by `type`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One address of the node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    /// `InternalIP`, `ExternalIP` or `Hostname`, as on the Node object.
    #[serde(rename = "type")]
    pub type_: String,
    /// The address itself.
    pub address: String,
}

/// A network interface with its negotiated link speed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Nic {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Link speed from `/sys/class/net/NAME/speed`, Mbit/s; absent when the driver does
    /// not say (virtual devices report -1 or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<u64>,
}

/// Host summary. Ratios are in parts per thousand so the object stays integer-only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemSummary {
    /// Logical CPUs.
    pub cpu_count: u32,
    /// CPU busy time over the sampling interval, parts per thousand of all CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_utilization_permille: Option<u32>,
    /// Total memory, bytes.
    pub memory_total_bytes: u64,
    /// Memory in use (total minus available), bytes.
    pub memory_used_bytes: u64,
    /// 1-minute load average × 1000.
    pub load1_milli: u64,
    /// 5-minute load average × 1000.
    pub load5_milli: u64,
    /// 15-minute load average × 1000.
    pub load15_milli: u64,
    /// Kernel release, e.g. `6.1.0-18-amd64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
}

/// One GPU as NVML reports it. Fields NVML could not provide are absent and named in
/// `errors`, so one unsupported query never hides the rest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    /// NVML device index.
    pub index: u32,
    /// `GPU-…` UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Framebuffer memory, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    /// Framebuffer memory in use, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// GPU utilisation over NVML's last sample period, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_gpu_percent: Option<u32>,
    /// Memory-controller utilisation, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_memory_percent: Option<u32>,
    /// Core temperature, degrees Celsius.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_celsius: Option<u32>,
    /// Power draw, milliwatts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_usage_mw: Option<u32>,
    /// Enforced power limit, milliwatts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_mw: Option<u32>,
    /// `Enabled`, `Disabled` or `Unsupported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_mode: Option<String>,
    /// Current PCIe link generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_generation: Option<u32>,
    /// Current PCIe link width (lanes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width: Option<u32>,
    /// `field: reason` for each query that failed on this device, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// How a link's latency was measured.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProbeMethod {
    /// ICMP echo.
    #[default]
    Icmp,
    /// TCP connect time to the peer's probe port (ICMP blocked).
    Tcp,
}

/// The measured link from this node to one peer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Peer node name (or the address when the peer has no name, as in `snapshot`).
    pub peer: String,
    /// Address that was probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// How latency was measured.
    #[serde(default)]
    pub method: ProbeMethod,
    /// Median round-trip time, µs (3 significant digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p50_us: Option<u64>,
    /// 90th percentile round-trip time, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p90_us: Option<u64>,
    /// 99th percentile round-trip time, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p99_us: Option<u64>,
    /// Mean absolute difference of consecutive round-trip times, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_us: Option<u64>,
    /// Share of probes without a reply, parts per million.
    #[serde(default)]
    pub loss_ppm: u32,
    /// Probes sent in the window.
    #[serde(default)]
    pub samples: u32,
    /// Goodput from this node to the peer, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_tx_kbps: Option<u64>,
    /// Goodput from the peer to this node, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_rx_kbps: Option<u64>,
    /// When the throughput figures were measured (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_measured_at: Option<String>,
    /// Why the peer could not be measured, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A condition in the usual Kubernetes shape.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `IcmpAvailable`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    /// A condition with `status` `True` or `False` and the given reason and message.
    pub fn new(type_: &str, ok: bool, reason: &str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Condition {
            type_: type_.to_owned(),
            status: if ok { "True" } else { "False" }.to_owned(),
            reason: Some(reason.to_owned()),
            message: (!message.is_empty()).then_some(message),
            last_transition_time: None,
        }
    }
}

/// Condition type: ICMP echo can be sent from this node.
pub const CONDITION_ICMP_AVAILABLE: &str = "IcmpAvailable";
/// Condition type: NVML loaded and answered.
pub const CONDITION_NVML_AVAILABLE: &str = "NvmlAvailable";
/// Condition type: host system figures could be read.
pub const CONDITION_SYSTEM_AVAILABLE: &str = "SystemAvailable";

impl NodeTopologyStatus {
    /// Sorts every list by its key and fills the derived counts, so equal observations
    /// serialise to equal bytes.
    pub fn normalize(&mut self) {
        self.addresses.sort();
        self.addresses.dedup();
        self.nics.sort();
        self.nic_speed_mbps = self.nics.iter().filter_map(|n| n.speed_mbps).max();
        self.gpus.sort_by_key(|g| g.index);
        self.gpu_count = u32::try_from(self.gpus.len()).unwrap_or(u32::MAX);
        self.links.sort_by(|a, b| a.peer.cmp(&b.peer));
        self.peer_count = u32::try_from(self.links.len()).unwrap_or(u32::MAX);
        self.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_sorts_and_counts() {
        let mut s = NodeTopologyStatus {
            links: vec![
                Link {
                    peer: "b".into(),
                    ..Default::default()
                },
                Link {
                    peer: "a".into(),
                    ..Default::default()
                },
            ],
            nics: vec![
                Nic {
                    name: "eth1".into(),
                    speed_mbps: Some(1000),
                },
                Nic {
                    name: "eth0".into(),
                    speed_mbps: Some(10000),
                },
                Nic {
                    name: "lo".into(),
                    speed_mbps: None,
                },
            ],
            ..Default::default()
        };
        s.normalize();
        assert_eq!(s.links[0].peer, "a");
        assert_eq!(s.peer_count, 2);
        assert_eq!(s.nic_speed_mbps, Some(10000));
        assert_eq!(s.nics[0].name, "eth0");
    }

    #[test]
    fn status_uses_camel_case_integer_fields() {
        let s = NodeTopologyStatus {
            links: vec![Link {
                peer: "n1".into(),
                rtt_p50_us: Some(141),
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = serde_json::to_value(&s).expect("serialises");
        assert_eq!(v["links"][0]["rttP50Us"], 141);
        assert_eq!(v["links"][0]["method"], "icmp");
    }
}
