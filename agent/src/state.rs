//! What the agent knows right now (the daemon continuously, `snapshot` once): per-peer RTT windows, the latest throughput per
//! peer, the latest collector reports. Bounded whatever the uptime: one fixed-capacity
//! window per current peer, peers that leave are forgotten.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use linkmeter_aggregator::api::{Link, NodeAddress, NodeTopologyStatus};
use linkmeter_aggregator::summary::{RttWindow, quantize};

use crate::availability::Availability;
use crate::collect::gpu::GpuReport;
use crate::collect::system::SystemReport;
use crate::probe::{PeerSamples, PeerTarget};
use crate::status;

/// Latest throughput figures for one peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThroughputFigures {
    /// Goodput to the peer, bit/s.
    pub tx_bps: Option<f64>,
    /// Goodput from the peer, bit/s.
    pub rx_bps: Option<f64>,
    /// When these figures were measured.
    pub measured_at: Option<Timestamp>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// Everything kept about one peer.
#[derive(Clone, Debug)]
pub struct PeerState {
    /// The peer as configured or discovered.
    pub target: PeerTarget,
    /// Address probed in the last round.
    pub addr: Option<IpAddr>,
    /// RTT window.
    pub window: RttWindow,
    /// Error of the last round (resolution, socket), if any.
    pub last_error: Option<String>,
    /// Throughput figures.
    pub throughput: ThroughputFigures,
}

/// The daemon's shared state.
#[derive(Debug)]
pub struct AgentState {
    node_name: String,
    window_samples: usize,
    window_seconds: u64,
    peers: BTreeMap<String, PeerState>,
    /// Latest system report.
    pub system: Option<SystemReport>,
    /// Latest GPU report.
    pub gpu: Option<GpuReport>,
    /// ICMP socket availability.
    pub icmp_condition: Option<Availability>,
    rounds_completed: u64,
    last_observation: Option<Timestamp>,
    identity: Option<NodeIdentity>,
}

/// What the Node object says about this node (with `--kube`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `topology.kubernetes.io/zone` label.
    pub zone: Option<String>,
    /// `topology.kubernetes.io/region` label.
    pub region: Option<String>,
    /// `status.addresses` of the Node.
    pub addresses: Vec<NodeAddress>,
}

impl AgentState {
    /// Empty state for `node_name`, with RTT windows of `window_samples` outcomes
    /// covering `window_seconds`.
    pub fn new(node_name: &str, window_samples: usize, window_seconds: u64) -> Self {
        AgentState {
            node_name: node_name.to_owned(),
            window_samples,
            window_seconds,
            peers: BTreeMap::new(),
            system: None,
            gpu: None,
            icmp_condition: None,
            rounds_completed: 0,
            last_observation: None,
            identity: None,
        }
    }

    /// Replaces the peer set: new peers get empty windows, peers that left are dropped
    /// with their history. Returns the names removed (their metric series go too).
    pub fn set_peers(&mut self, peers: &[PeerTarget]) -> Vec<String> {
        let removed: Vec<String> = self
            .peers
            .keys()
            .filter(|k| !peers.iter().any(|p| &p.name == *k))
            .cloned()
            .collect();
        for name in &removed {
            self.peers.remove(name);
        }
        for p in peers {
            let entry = self
                .peers
                .entry(p.name.clone())
                .or_insert_with(|| PeerState {
                    target: p.clone(),
                    addr: None,
                    window: RttWindow::new(self.window_samples),
                    last_error: None,
                    throughput: ThroughputFigures::default(),
                });
            if entry.target.host != p.host {
                // Same name, new address: old samples describe another path.
                entry.window.clear();
                entry.throughput = ThroughputFigures::default();
                entry.target = p.clone();
            }
        }
        removed
    }

    /// Records a round: samples go into each peer's window, errors replace the last.
    pub fn record_round(&mut self, results: &[PeerSamples], at: Timestamp) {
        for r in results {
            if let Some(p) = self.peers.get_mut(&r.peer) {
                p.addr = Some(r.addr);
                for s in &r.samples {
                    p.window.push(*s);
                }
                p.last_error = r.error.clone();
            }
        }
        self.rounds_completed += 1;
        self.last_observation = Some(at);
    }

    /// Records a peer whose name did not resolve this round.
    pub fn record_unresolved(&mut self, peer: &str, error: String) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_error = Some(error);
        }
    }

    /// Records a throughput result (either direction may be missing).
    pub fn record_throughput(&mut self, peer: &str, figures: ThroughputFigures) {
        if let Some(p) = self.peers.get_mut(peer) {
            let old = std::mem::take(&mut p.throughput);
            p.throughput = ThroughputFigures {
                tx_bps: figures.tx_bps.or(old.tx_bps),
                rx_bps: figures.rx_bps.or(old.rx_bps),
                measured_at: figures.measured_at.or(old.measured_at),
                last_error: figures.last_error,
            };
        }
    }

    /// Sets the zone, region and addresses from the Node object; they replace the
    /// host-name-only address the status carries without one.
    pub fn set_identity(&mut self, identity: NodeIdentity) {
        self.identity = Some(identity);
    }

    /// Number of completed ICMP rounds.
    pub fn rounds_completed(&self) -> u64 {
        self.rounds_completed
    }

    /// The peer whose last probed address is `ip`, if any.
    pub fn peer_name_by_addr(&self, ip: IpAddr) -> Option<String> {
        self.peers
            .iter()
            .find(|(_, p)| p.addr.map(|a| a.to_canonical()) == Some(ip))
            .map(|(name, _)| name.clone())
    }

    /// Current peers, by name.
    pub fn peers(&self) -> impl Iterator<Item = &PeerState> {
        self.peers.values()
    }

    /// One peer.
    pub fn peer(&self, name: &str) -> Option<&PeerState> {
        self.peers.get(name)
    }

    /// The state in the NodeTopology status shape (what `/report` serves and the
    /// publisher writes).
    pub fn status(&self) -> NodeTopologyStatus {
        let mut st = NodeTopologyStatus {
            observed_at: self
                .last_observation
                .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string()),
            window_seconds: self.window_seconds,
            ..Default::default()
        };
        match &self.identity {
            Some(id) if !id.addresses.is_empty() => {
                st.addresses.clone_from(&id.addresses);
            }
            // `snapshot` on a host whose name is unknown has no address to give.
            _ if self.node_name.is_empty() => {}
            _ => st.addresses.push(NodeAddress {
                type_: "Hostname".into(),
                address: self.node_name.clone(),
            }),
        }
        if let Some(id) = &self.identity {
            st.zone.clone_from(&id.zone);
            st.region.clone_from(&id.region);
        }
        for p in self.peers.values() {
            let mut link = Link {
                peer: p.target.name.clone(),
                address: p.addr.map(|a| a.to_string()),
                error: p
                    .last_error
                    .clone()
                    .or_else(|| p.throughput.last_error.clone()),
                ..Default::default()
            };
            p.window.summary().apply_to(&mut link);
            link.throughput_tx_kbps = p.throughput.tx_bps.map(bps_to_quantized_kbps);
            link.throughput_rx_kbps = p.throughput.rx_bps.map(bps_to_quantized_kbps);
            link.throughput_measured_at = p
                .throughput
                .measured_at
                .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string());
            st.links.push(link);
        }
        if let Some(c) = &self.icmp_condition {
            st.conditions.push(status::icmp_condition(c));
        }
        if let Some(s) = &self.system {
            status::apply_system(&mut st, s);
        }
        if let Some(g) = &self.gpu {
            status::apply_gpu(&mut st, g);
        }
        st.normalize();
        st
    }
}

/// bit/s to kbit/s, 3 significant digits.
fn bps_to_quantized_kbps(bps: f64) -> u64 {
    if !bps.is_finite() || bps <= 0.0 {
        return 0;
    }
    quantize((bps / 1000.0).round().min(u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn peer(name: &str, host: &str) -> PeerTarget {
        PeerTarget {
            name: name.into(),
            host: host.into(),
        }
    }

    fn samples(peer: &str, v: &[Option<u64>]) -> PeerSamples {
        PeerSamples {
            peer: peer.into(),
            addr: "192.0.2.1".parse().expect("literal"),
            samples: v.iter().map(|x| x.map(Duration::from_micros)).collect(),
            error: None,
        }
    }

    #[test]
    fn windows_are_bounded_and_peers_come_and_go() {
        let mut s = AgentState::new("me", 4, 40);
        s.set_peers(&[peer("a", "192.0.2.1"), peer("b", "192.0.2.2")]);
        for _ in 0..100 {
            s.record_round(&[samples("a", &[Some(100), None])], Timestamp::now());
        }
        assert_eq!(s.peer("a").map(|p| p.window.len()), Some(4));
        let removed = s.set_peers(&[peer("a", "192.0.2.1")]);
        assert_eq!(removed, vec!["b".to_owned()]);
        let st = s.status();
        assert_eq!(st.peer_count, 1);
        assert_eq!(st.links[0].loss_ppm, 500_000);
        assert_eq!(st.links[0].rtt_p50_us, Some(100));
    }

    #[test]
    fn identity_from_the_node_object_goes_into_the_status() {
        let mut s = AgentState::new("me", 10, 10);
        assert_eq!(s.status().addresses[0].type_, "Hostname");
        s.set_identity(NodeIdentity {
            zone: Some("z1".into()),
            region: Some("r1".into()),
            addresses: vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "192.0.2.7".into(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: "me".into(),
                },
            ],
        });
        let st = s.status();
        assert_eq!(st.zone.as_deref(), Some("z1"));
        assert_eq!(st.region.as_deref(), Some("r1"));
        assert_eq!(st.addresses.len(), 2);
        assert!(
            st.addresses
                .iter()
                .any(|a| a.type_ == "InternalIP" && a.address == "192.0.2.7")
        );
    }

    #[test]
    fn a_peer_whose_address_changes_starts_over() {
        let mut s = AgentState::new("me", 10, 10);
        s.set_peers(&[peer("a", "192.0.2.1")]);
        s.record_round(&[samples("a", &[Some(100)])], Timestamp::now());
        s.set_peers(&[peer("a", "192.0.2.9")]);
        assert!(s.peer("a").is_some_and(|p| p.window.is_empty()));
    }

    #[test]
    fn throughput_is_quantized_kbps_and_directions_merge() {
        let mut s = AgentState::new("me", 10, 10);
        s.set_peers(&[peer("a", "192.0.2.1")]);
        s.record_throughput(
            "a",
            ThroughputFigures {
                tx_bps: Some(38_123_456.0),
                ..Default::default()
            },
        );
        s.record_throughput(
            "a",
            ThroughputFigures {
                rx_bps: Some(9_561_000.0),
                ..Default::default()
            },
        );
        let l = &s.status().links[0];
        assert_eq!(l.throughput_tx_kbps, Some(38_100));
        assert_eq!(l.throughput_rx_kbps, Some(9_560));
    }
}
