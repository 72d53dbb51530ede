//! The demo's cluster as configured: the seed of DESIGN.md §9. A VPS control plane
//! behind a 10 Mbit/s link with 22.5 ms each way to two home PCs that share a
//! 1 Gbit/s LAN (0.5 ms each way); home-1 has a 24 GiB GPU.

use std::time::Duration;

/// One node of the demo cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeTruth {
    /// Node name (Node object, lab namespace, NodeTopology).
    pub name: &'static str,
    /// `topology.kubernetes.io/zone`.
    pub zone: &'static str,
    /// `topology.kubernetes.io/region`.
    pub region: &'static str,
    /// Whether the node has the (fake-NVML) GPU.
    pub gpu: bool,
}

/// One link as configured in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTruth {
    /// One end.
    pub a: &'static str,
    /// The other end.
    pub b: &'static str,
    /// Delay added each way by the lab relay.
    pub one_way: Duration,
    /// Rate of each direction, Mbit/s (IP bytes, as the relay counts).
    pub rate_mbit: u32,
}

impl LinkTruth {
    /// The RTT the configuration implies, µs (the relay adds a little on top).
    pub fn rtt_us(&self) -> f64 {
        2.0 * self.one_way.as_secs_f64() * 1e6
    }

    /// The TCP goodput the rate implies, Mbit/s: 1448 payload bytes per 1500-byte
    /// IP packet (with TCP timestamps).
    pub fn goodput_mbit(&self) -> f64 {
        f64::from(self.rate_mbit) * 1448.0 / 1500.0
    }

    /// Whether this link joins `x` and `y`, in either order.
    pub fn joins(&self, x: &str, y: &str) -> bool {
        (self.a == x && self.b == y) || (self.a == y && self.b == x)
    }
}

/// The GPU on home-1: memory, bytes.
pub const GPU_MEMORY: u64 = 24 << 30;
/// Memory in use on it, bytes.
pub const GPU_USED: u64 = 1 << 30;
/// Its NVML name.
pub const GPU_NAME: &str = "NVIDIA GeForce RTX 4090";

/// The nodes, control plane first.
pub const NODES: [NodeTruth; 3] = [
    NodeTruth {
        name: "vps",
        zone: "vps",
        region: "cloud",
        gpu: false,
    },
    NodeTruth {
        name: "home-1",
        zone: "home",
        region: "home",
        gpu: true,
    },
    NodeTruth {
        name: "home-2",
        zone: "home",
        region: "home",
        gpu: false,
    },
];

/// The links: every pair of nodes.
pub const LINKS: [LinkTruth; 3] = [
    LinkTruth {
        a: "vps",
        b: "home-1",
        one_way: Duration::from_micros(22_500),
        rate_mbit: 10,
    },
    LinkTruth {
        a: "vps",
        b: "home-2",
        one_way: Duration::from_micros(22_500),
        rate_mbit: 10,
    },
    LinkTruth {
        a: "home-1",
        b: "home-2",
        one_way: Duration::from_micros(500),
        rate_mbit: 1000,
    },
];

/// The configured link between `x` and `y`.
pub fn link(x: &str, y: &str) -> Option<&'static LinkTruth> {
    LINKS.iter().find(|l| l.joins(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_nodes_has_one_link() {
        for (i, x) in NODES.iter().enumerate() {
            for y in &NODES[i + 1..] {
                assert_eq!(
                    LINKS.iter().filter(|l| l.joins(x.name, y.name)).count(),
                    1,
                    "{} - {}",
                    x.name,
                    y.name
                );
            }
        }
        assert_eq!(link("home-2", "vps").map(LinkTruth::rtt_us), Some(45_000.0));
        assert!((LINKS[0].goodput_mbit() - 9.65).abs() < 0.01);
    }
}
