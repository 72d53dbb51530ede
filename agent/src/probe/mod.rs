//! Latency probes to peers.
//!
//! [`icmp`] sends ICMP echo from one socket per address family shared by all peers
//! ([`echo`]: the socket, packets and kernel receive timestamps);
//! [`target`] resolves what the user or the cluster named into addresses.

pub mod echo;
pub mod icmp;
pub mod target;

pub use icmp::{IcmpConfig, IcmpFlags, IcmpProber, PeerSamples};
pub use target::{PeerTarget, ResolvedPeer, resolve_peers};
