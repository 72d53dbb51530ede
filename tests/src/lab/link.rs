//! Link specifications and the commands that build each kind of link.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Node;
use super::netns::{ip_in, run, tc_in};
use super::relay::Relay;

/// Bytes tbf adds to its queue limit per Mbit/s for each millisecond of
/// queue, i.e. 125 bytes per Mbit per ms.
const BYTES_PER_MBIT_MS: u64 = 125;

/// What kind of link to build between two nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkSpec {
    /// A veth pair, optionally rate-limited with tbf.
    Veth(VethSpec),
    /// Two TUN devices joined by a `lab-relay` that delays packets.
    Delay(DelaySpec),
}

/// A veth pair. With `rate_mbit`, a tbf qdisc on BOTH ends' egress limits
/// each direction to that rate (at layer 2: TCP goodput at 1500 MTU is about
/// 95.6 % of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    /// Rate of each direction in Mbit/s; `None` leaves the veth unshaped.
    pub rate_mbit: Option<u32>,
    /// tbf queue, in milliseconds of traffic at the rate. Shorter queues
    /// keep latency under load lower but cost goodput: 20 ms gives ~95.6 %
    /// of the rate from 10 to 1000 Mbit/s, 5 ms dropped 200 Mbit/s to ~93 %.
    pub queue_ms: u32,
}

impl VethSpec {
    /// An unshaped veth pair.
    pub fn plain() -> Self {
        Self {
            rate_mbit: None,
            queue_ms: 20,
        }
    }

    /// A veth pair limited to `rate_mbit` in each direction.
    pub fn shaped(rate_mbit: u32) -> Self {
        Self {
            rate_mbit: Some(rate_mbit),
            ..Self::plain()
        }
    }
}

impl Default for VethSpec {
    fn default() -> Self {
        Self::plain()
    }
}

/// Which direction of a delay link loses packets under `drop_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DropDirection {
    /// Only packets from the first node given to [`super::Lab::link`] to
    /// the second. Pinging from the first node then loses exactly one echo
    /// in N (the request is lost; replies are never dropped).
    #[default]
    AToB,
    /// Only packets from the second node to the first.
    BToA,
    /// Both directions, each with its own counter. A ping then loses about
    /// 2/N - 1/N² of its echoes, and which ones depends on phase.
    Both,
}

/// A delay link: the relay holds every packet for `one_way` before passing
/// it on, so the RTT between the two nodes is `2 * one_way` plus a few tens
/// of microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelaySpec {
    /// Delay added to each packet in each direction.
    pub one_way: Duration,
    /// Drop every Nth IPv4 packet (the Nth, 2Nth, ...) in `drop_direction`.
    pub drop_every: Option<u32>,
    /// Direction(s) `drop_every` applies to.
    pub drop_direction: DropDirection,
    /// Optional serialisation rate per direction, in Mbit/s (IP bytes).
    pub rate_mbit: Option<u32>,
    /// Queue length per direction in packets; arrivals beyond it are
    /// dropped (this also bounds the relay's memory).
    pub queue_packets: usize,
}

impl DelaySpec {
    /// A delay link with `one_way` delay in each direction and no loss.
    pub fn new(one_way: Duration) -> Self {
        Self {
            one_way,
            drop_every: None,
            drop_direction: DropDirection::AToB,
            rate_mbit: None,
            queue_packets: 1000,
        }
    }

    /// Also drop every `n`th packet from a to b.
    pub fn drop_every(mut self, n: u32) -> Self {
        self.drop_every = Some(n);
        self
    }

    /// Choose which direction(s) `drop_every` applies to.
    pub fn drop_direction(mut self, direction: DropDirection) -> Self {
        self.drop_direction = direction;
        self
    }

    /// Also limit each direction to `mbit` Mbit/s.
    pub fn rate_mbit(mut self, mbit: u32) -> Self {
        self.rate_mbit = Some(mbit);
        self
    }
}

impl From<VethSpec> for LinkSpec {
    fn from(spec: VethSpec) -> Self {
        Self::Veth(spec)
    }
}

impl From<DelaySpec> for LinkSpec {
    fn from(spec: DelaySpec) -> Self {
        Self::Delay(spec)
    }
}

/// What [`super::Lab::link`] built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Name of the first node.
    pub a: String,
    /// Name of the second node.
    pub b: String,
    /// Interface at a's end (inside a's namespace).
    pub a_if: String,
    /// Interface at b's end (inside b's namespace).
    pub b_if: String,
    /// Point-to-point address at a's end.
    pub a_addr: Ipv4Addr,
    /// Point-to-point address at b's end.
    pub b_addr: Ipv4Addr,
    /// The relay's pid for a delay link.
    pub relay_pid: Option<u32>,
}

/// The /30 of link number `index` in 10.78.0.0/16: (.1 for a, .2 for b).
pub(crate) fn link_addrs(index: usize) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let base = u32::try_from(index)
        .ok()
        .filter(|i| *i < 16_384)
        .context("a lab supports at most 16384 links")?
        * 4;
    let net = u32::from(Ipv4Addr::new(10, 78, 0, 0)) + base;
    Ok((Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2)))
}

/// The /30 of host link number `index` in 10.79.0.0/16: (.1 for the root
/// namespace's end, .2 for the node's).
pub(crate) fn host_link_addrs(index: usize) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let base = u32::try_from(index)
        .ok()
        .filter(|i| *i < 16_384)
        .context("a lab supports at most 16384 host links")?
        * 4;
    let net = u32::from(Ipv4Addr::new(10, 79, 0, 0)) + base;
    Ok((Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2)))
}

/// Interface name `<kind><index>-<peer>`, cut to the kernel's 15 bytes
/// (node names are ASCII, so cutting at a byte is safe).
pub(crate) fn if_name(kind: char, index: usize, peer: &str) -> String {
    let mut name = format!("{kind}{index}-{peer}");
    name.truncate(15);
    name
}

/// One end of a link, as the route setup needs it.
pub(crate) struct End<'a> {
    pub(crate) node: &'a Node,
    pub(crate) ifname: &'a str,
    pub(crate) addr: Ipv4Addr,
}

/// Routes `from`'s traffic to `to`'s node address over this link, with
/// `from`'s node address as source so replies come back the same way.
fn route_to_peer(from: &End<'_>, to: &End<'_>) -> Result<()> {
    let (dst, src, via) = (
        format!("{}/32", to.node.addr()),
        from.node.addr().to_string(),
        to.addr.to_string(),
    );
    ip_in(
        from.node.netns(),
        &[
            "route",
            "add",
            &dst,
            "via",
            &via,
            "dev",
            from.ifname,
            "src",
            &src,
        ],
    )
    .with_context(|| {
        format!(
            "routing {} -> {} (is there already a link between them?)",
            from.node.name(),
            to.node.name()
        )
    })
    .map(drop)
}

/// Builds a veth pair with its ends created directly in the two namespaces
/// (so its names never meet in the root namespace), addresses, routes and
/// optional tbf shaping.
pub(crate) fn build_veth(a: &End<'_>, b: &End<'_>, spec: &VethSpec) -> Result<()> {
    run(
        "ip",
        &[
            "link",
            "add",
            a.ifname,
            "netns",
            a.node.netns(),
            "type",
            "veth",
            "peer",
            "name",
            b.ifname,
            "netns",
            b.node.netns(),
        ],
    )?;
    for (end, peer) in [(a, b), (b, a)] {
        let ns = end.node.netns();
        let peer_net = format!("{}/30", end.addr);
        ip_in(ns, &["addr", "add", &peer_net, "dev", end.ifname])?;
        ip_in(ns, &["link", "set", "dev", end.ifname, "up"])?;
        if let Some(rate) = spec.rate_mbit {
            shape_tbf(ns, end.ifname, rate, spec.queue_ms)?;
        }
        route_to_peer(end, peer)?;
    }
    Ok(())
}

/// Limits egress of `ifname` to `rate_mbit` with tbf. Burst is 1 ms of
/// traffic (at least 10 full frames) so the bucket refills smoothly at high
/// rates; the queue holds `queue_ms` of traffic on top, which TCP needs to
/// keep the link busy (measured: ~95.6 % goodput at 10–1000 Mbit/s).
fn shape_tbf(netns: &str, ifname: &str, rate_mbit: u32, queue_ms: u32) -> Result<()> {
    if rate_mbit == 0 {
        bail!("rate_mbit must be positive");
    }
    let per_ms = u64::from(rate_mbit) * BYTES_PER_MBIT_MS;
    let burst = per_ms.max(15_140);
    let limit = per_ms * u64::from(queue_ms) + burst;
    let (rate, burst, limit) = (
        format!("{rate_mbit}mbit"),
        burst.to_string(),
        limit.to_string(),
    );
    tc_in(
        netns,
        &[
            "qdisc", "replace", "dev", ifname, "root", "tbf", "rate", &rate, "burst", &burst,
            "limit", &limit,
        ],
    )
    .map(drop)
}

/// Moves the relay's TUN devices into the nodes' namespaces under their lab
/// names, then configures point-to-point addresses and routes.
pub(crate) fn build_delay(a: &End<'_>, b: &End<'_>, relay: &Relay) -> Result<()> {
    for (end, tun) in [(a, &relay.tun_a), (b, &relay.tun_b)] {
        run(
            "ip",
            &[
                "link",
                "set",
                "dev",
                tun,
                "netns",
                end.node.netns(),
                "name",
                end.ifname,
            ],
        )?;
    }
    for (end, peer) in [(a, b), (b, a)] {
        let ns = end.node.netns();
        let (local, remote) = (end.addr.to_string(), peer.addr.to_string());
        // No IPv6 link-local address: keeps router solicitations and MLD
        // reports off the relay.
        ip_in(
            ns,
            &["link", "set", "dev", end.ifname, "addrgenmode", "none"],
        )?;
        ip_in(
            ns,
            &["addr", "add", &local, "peer", &remote, "dev", end.ifname],
        )?;
        ip_in(ns, &["link", "set", "dev", end.ifname, "up"])?;
        route_to_peer(end, peer)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_subnets_do_not_overlap() {
        assert_eq!(
            link_addrs(0).ok(),
            Some((Ipv4Addr::new(10, 78, 0, 1), Ipv4Addr::new(10, 78, 0, 2)))
        );
        assert_eq!(
            link_addrs(64).ok(),
            Some((Ipv4Addr::new(10, 78, 1, 1), Ipv4Addr::new(10, 78, 1, 2)))
        );
        assert!(link_addrs(16_384).is_err());
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        assert_eq!(if_name('v', 3, "b"), "v3-b");
        assert_eq!(if_name('d', 12, "a-very-long-node").len(), 15);
    }
}
