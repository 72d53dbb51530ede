//! Checks what the agents wrote before anything is computed from it.
//!
//! A NodeTopology is written by a node's agent, so it is only as trustworthy as that
//! node: it may have no status, absurd figures, links to nodes that do not exist, the
//! same peer twice, or a million links. Each such item is skipped (or clipped) under a
//! named reason, counted, and described in a bounded list of warnings; nothing here
//! fails. Staleness is decided here too: a stale node stays in the view (listed as
//! stale) but every link from or to it is left out of the figures and the fit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;

use crate::api::{
    ClusterTopologyStatus, NodeTopology, REGION_LABEL, SkippedCount, UPLINK_CLASS_LABEL, ZONE_LABEL,
};

/// Links read from one NodeTopology at most; the agent writes up to its peer limit (32
/// by default), so this only bites on a broken or hostile object.
pub const MAX_LINKS_PER_NODE: usize = 512;
/// RTTs above this (60 s) are not measurements.
pub const MAX_RTT_US: u64 = 60_000_000;
/// Goodput above this (10 Tbit/s) is not a measurement.
pub const MAX_THROUGHPUT_KBPS: u64 = 10_000_000_000;
/// Longest node name Kubernetes allows (a DNS subdomain).
const MAX_NAME_LEN: usize = 253;
/// Longest label value Kubernetes allows.
const MAX_LABEL_LEN: usize = 63;
/// Warning lines kept per calculation; the rest are only counted.
const MAX_WARNINGS: usize = 20;

/// A Node as the view needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// `topology.kubernetes.io/region`.
    pub region: Option<String>,
    /// `metadata.uid`, for the ownerReference of objects written about the node.
    pub uid: String,
    /// The `linkmeter.dev/uplink-class` label it carries now (`--label-nodes`).
    pub uplink_class: Option<String>,
}

impl NodeInfo {
    /// The name and topology labels of a Node object.
    pub fn from_node(node: &Node) -> NodeInfo {
        let label = |key: &str| {
            node.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
        };
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            zone: label(ZONE_LABEL),
            region: label(REGION_LABEL),
            uid: node.metadata.uid.clone().unwrap_or_default(),
            uplink_class: label(UPLINK_CLASS_LABEL),
        }
    }
}

/// Items skipped or clipped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped(BTreeMap<&'static str, u64>);

impl Skipped {
    /// Counts `n` items under `reason`.
    pub fn add(&mut self, reason: &'static str, n: u64) {
        *self.0.entry(reason).or_default() += n;
    }

    /// Counts by reason, sorted by reason.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(r, n)| (*r, *n))
    }

    /// All items skipped, every reason together.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The counts as the ClusterTopology carries them.
    pub fn to_counts(&self) -> Vec<SkippedCount> {
        self.iter()
            .map(|(reason, count)| SkippedCount {
                reason: reason.to_owned(),
                count,
            })
            .collect()
    }
}

/// One checked link from a node to a peer (by index in [`Checked::nodes`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckedLink {
    pub peer: usize,
    pub rtt_p50_us: Option<u64>,
    pub rtt_p90_us: Option<u64>,
    pub tx_kbps: Option<u64>,
    pub rx_kbps: Option<u64>,
    /// When the throughput was measured; orders the two ends' figures.
    pub throughput_at: Option<jiff::Timestamp>,
}

/// One node of the view.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckedNode {
    pub name: String,
    /// `""` when unlabelled.
    pub zone: String,
    /// `""` when unlabelled.
    pub region: String,
    pub observed: Option<jiff::Timestamp>,
    /// No fresh report: none at all, unreadable time, or older than `stale_after`.
    pub stale: bool,
    pub gpus: u32,
    pub nic_speed_mbps: Option<u64>,
    /// Empty for a stale node.
    pub links: Vec<CheckedLink>,
}

/// The checked input: nodes sorted by name, plus what was skipped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Checked {
    pub nodes: Vec<CheckedNode>,
    pub skipped: Skipped,
    pub warnings: Vec<String>,
}

impl Checked {
    fn skip(&mut self, reason: &'static str, n: u64, what: impl FnOnce() -> String) {
        self.skipped.add(reason, n);
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(format!("{reason}: {}", what()));
        }
    }
}

/// Checks `topologies` against the node list (`None`: the NodeTopologies define the
/// nodes). Never fails; see the module docs for what is skipped.
pub(crate) fn check(
    nodes: Option<&[NodeInfo]>,
    topologies: &[NodeTopology],
    now: jiff::Timestamp,
    stale_after: Duration,
) -> Checked {
    let mut out = Checked::default();
    let infos: Vec<NodeInfo> = match nodes {
        Some(list) => list.to_vec(),
        None => topologies
            .iter()
            .filter_map(|t| t.metadata.name.clone())
            .map(|name| NodeInfo {
                name,
                ..Default::default()
            })
            .collect(),
    };
    let mut by_name: BTreeMap<String, NodeInfo> = BTreeMap::new();
    for info in infos {
        if info.name.is_empty() || info.name.len() > MAX_NAME_LEN {
            let shown = shorten(&info.name);
            out.skip("badNodeName", 1, || format!("node name {shown:?}"));
            continue;
        }
        by_name.entry(info.name.clone()).or_insert(info);
    }
    let index: BTreeMap<&str, usize> = by_name
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();

    // One report per node: the first object of each name.
    let mut reports: BTreeMap<usize, &NodeTopology> = BTreeMap::new();
    for t in topologies {
        let Some(name) = t.metadata.name.as_deref() else {
            out.skip("noName", 1, || "a NodeTopology without a name".to_owned());
            continue;
        };
        let Some(&i) = index.get(name) else {
            let shown = shorten(name);
            out.skip("nodeGone", 1, || format!("{shown}: no such Node"));
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = reports.entry(i) {
            slot.insert(t);
        } else {
            let shown = shorten(name);
            out.skip("duplicateObject", 1, || format!("{shown}: listed twice"));
        }
    }

    let oldest = now
        .checked_sub(
            jiff::SignedDuration::try_from(stale_after).unwrap_or(jiff::SignedDuration::MAX),
        )
        .unwrap_or(jiff::Timestamp::MIN);
    let mut checked_nodes = Vec::with_capacity(by_name.len());
    for (i, info) in by_name.values().enumerate() {
        let report = reports.get(&i).copied();
        let status = report.and_then(|t| t.status.as_ref());
        if report.is_some() && status.is_none() {
            out.skip("noStatus", 1, || format!("{}: no status yet", info.name));
        }
        let observed_at = status.and_then(|s| s.observed_at.clone());
        let observed = observed_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        if observed_at.is_some() && observed.is_none() {
            out.skip("badObservedAt", 1, || {
                format!("{}: observedAt unreadable", info.name)
            });
        }
        let stale = observed.is_none_or(|t| t < oldest);
        let label = |v: Option<&String>| {
            v.filter(|s| s.len() <= MAX_LABEL_LEN)
                .cloned()
                .unwrap_or_default()
        };
        let zone = label(info.zone.as_ref().or(status.and_then(|s| s.zone.as_ref())));
        let region = label(
            info.region
                .as_ref()
                .or(status.and_then(|s| s.region.as_ref())),
        );
        let links = match status {
            Some(s) if !stale => check_links(&mut out, &info.name, i, &s.links, &index),
            _ => Vec::new(),
        };
        checked_nodes.push(CheckedNode {
            name: info.name.clone(),
            zone,
            region,
            observed,
            stale,
            gpus: status.map_or(0, |s| u32::try_from(s.gpus.len()).unwrap_or(u32::MAX)),
            nic_speed_mbps: status.and_then(|s| {
                s.nics
                    .iter()
                    .filter_map(|n| n.speed_mbps)
                    .max()
                    .or(s.nic_speed_mbps)
            }),
            links,
        });
    }
    // A stale node is out of every figure and of the fit: the fresh nodes' links to it
    // go too (its agent may be gone with the node; a link to it is no evidence of the
    // node being usable).
    let stale: Vec<bool> = checked_nodes.iter().map(|n| n.stale).collect();
    let mut to_stale = 0u64;
    for node in &mut checked_nodes {
        let before = node.links.len();
        node.links.retain(|l| !stale[l.peer]);
        to_stale += (before - node.links.len()) as u64;
    }
    if to_stale > 0 {
        out.skip("linkToStaleNode", to_stale, || {
            format!("{to_stale} links to stale nodes left out")
        });
    }
    out.nodes = checked_nodes;
    out
}

fn check_links(
    out: &mut Checked,
    name: &str,
    me: usize,
    links: &[crate::api::Link],
    index: &BTreeMap<&str, usize>,
) -> Vec<CheckedLink> {
    if links.len() > MAX_LINKS_PER_NODE {
        let extra = links.len() - MAX_LINKS_PER_NODE;
        out.skip("tooManyLinks", extra as u64, || {
            format!(
                "{name}: {} links, the first {MAX_LINKS_PER_NODE} kept",
                links.len()
            )
        });
    }
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    for link in links.iter().take(MAX_LINKS_PER_NODE) {
        let Some(&peer) = index.get(link.peer.as_str()) else {
            let shown = shorten(&link.peer);
            out.skip("unknownPeer", 1, || {
                format!("{name}: link to unknown node {shown:?}")
            });
            continue;
        };
        if peer == me {
            out.skip("selfLink", 1, || format!("{name}: link to itself"));
            continue;
        }
        if !seen.insert(peer) {
            out.skip("duplicatePeer", 1, || {
                format!("{name}: {} listed twice", link.peer)
            });
            continue;
        }
        let rtt_ok = |v: u64| v > 0 && v <= MAX_RTT_US;
        let mut p50 = link.rtt_p50_us;
        if p50.is_some_and(|v| !rtt_ok(v)) {
            out.skip("absurdRtt", 1, || {
                format!("{name} -> {}: RTT {p50:?} µs", link.peer)
            });
            p50 = None;
        }
        // A p90 below the p50 (or without one) says nothing more than the p50.
        let p90 = p50.map(|m| link.rtt_p90_us.filter(|&v| rtt_ok(v)).unwrap_or(m).max(m));
        let kbps = |v: Option<u64>, out: &mut Checked| match v {
            Some(k) if k > MAX_THROUGHPUT_KBPS => {
                out.skip("absurdThroughput", 1, || {
                    format!("{name} -> {}: {k} kbit/s", link.peer)
                });
                None
            }
            other => other,
        };
        let tx_kbps = kbps(link.throughput_tx_kbps, out);
        let rx_kbps = kbps(link.throughput_rx_kbps, out);
        if p50.is_none() && tx_kbps.is_none() && rx_kbps.is_none() {
            continue;
        }
        kept.push(CheckedLink {
            peer,
            rtt_p50_us: p50,
            rtt_p90_us: p90,
            tx_kbps,
            rx_kbps,
            throughput_at: link
                .throughput_measured_at
                .as_deref()
                .and_then(|t| t.parse().ok()),
        });
    }
    kept
}

/// `s` cut to 64 bytes (on a char boundary) for a warning: names in warnings come from
/// the input, and a hostile one must not flood the log.
pub fn shorten(s: &str) -> String {
    if s.len() <= 64 {
        return s.to_owned();
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The skipped counts of a status, for callers that add their own (e.g. unparseable
/// objects the caller never handed to [`crate::cluster::compute`]).
pub fn add_skipped(status: &mut ClusterTopologyStatus, reason: &str, count: u64) {
    if count == 0 {
        return;
    }
    match status.skipped.iter_mut().find(|s| s.reason == reason) {
        Some(s) => s.count += count,
        None => {
            status.skipped.push(SkippedCount {
                reason: reason.to_owned(),
                count,
            });
            status.skipped.sort_by(|a, b| a.reason.cmp(&b.reason));
        }
    }
}
