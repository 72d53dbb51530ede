//! ICMP echo prober: one socket per address family shared by every peer.
//!
//! Unprivileged ICMP ("ping") sockets are tried first and raw sockets second, so the
//! agent works without CAP_NET_RAW wherever `net.ipv4.ping_group_range` allows it. The
//! kernel rewrites the identifier of unprivileged echo requests, so replies are matched
//! by (address, sequence): every target keeps its own sequence counter, and each round
//! reserves a block of sequence numbers so rounds never reuse one in flight.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkmeter_aggregator::api::{CONDITION_ICMP_AVAILABLE, Condition};
use socket2::Type as SockType;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Largest echo payload accepted (bytes). Larger buys nothing for latency and risks
/// fragmentation.
pub const MAX_PAYLOAD_BYTES: usize = 8192;

/// How one round of probes is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpConfig {
    /// Echo requests per peer per round (≥ 1).
    pub count: u32,
    /// Time between two requests to the same peer.
    pub interval: Duration,
    /// How long to wait for a reply before counting the request as lost.
    pub timeout: Duration,
    /// Echo payload size in bytes (≤ [`MAX_PAYLOAD_BYTES`]).
    pub payload_bytes: usize,
}

impl Default for IcmpConfig {
    fn default() -> Self {
        IcmpConfig {
            count: 10,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            payload_bytes: 56,
        }
    }
}

/// Outcome of one round for one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSamples {
    /// Peer name, as given.
    pub peer: String,
    /// Probed address.
    pub addr: IpAddr,
    /// One entry per request in send order: the RTT, or `None` when no reply came.
    pub samples: Vec<Option<Duration>>,
    /// Why requests failed other than by timing out (socket unavailable, send error).
    pub error: Option<String>,
}

/// A family's socket, or why it could not be opened.
type FamilySocket = Result<(Client, SockType), String>;

/// Sends ICMP echo to many peers concurrently over one socket per address family.
pub struct IcmpProber {
    v4: FamilySocket,
    v6: FamilySocket,
    ident: PingIdentifier,
    next_seq: Arc<Mutex<HashMap<IpAddr, u16>>>,
}

impl std::fmt::Debug for IcmpProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcmpProber")
            .field("v4", &self.v4.as_ref().map(|(_, t)| *t))
            .field("v6", &self.v6.as_ref().map(|(_, t)| *t))
            .finish_non_exhaustive()
    }
}

impl IcmpProber {
    /// Opens the IPv4 and IPv6 sockets. Must run inside a Tokio runtime (each socket
    /// gets a receive task). Never fails: a family that cannot be opened is reported by
    /// [`IcmpProber::condition`] and by an error on every peer of that family.
    pub fn new() -> Self {
        IcmpProber {
            v4: open_socket(ICMP::V4),
            v6: open_socket(ICMP::V6),
            ident: PingIdentifier(rand::random()),
            next_seq: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// `IcmpAvailable`: True when at least IPv4 or IPv6 echo can be sent, with the
    /// socket kinds in the message; False with both reasons otherwise.
    pub fn condition(&self) -> Condition {
        let describe = |fam: &str, s: &FamilySocket| match s {
            Ok((_, t)) if *t == SockType::RAW => format!("{fam}: raw socket"),
            Ok(_) => format!("{fam}: unprivileged socket"),
            Err(e) => format!("{fam}: {e}"),
        };
        let msg = format!(
            "{}; {}",
            describe("IPv4", &self.v4),
            describe("IPv6", &self.v6)
        );
        match (&self.v4, &self.v6) {
            (Err(_), Err(_)) => {
                Condition::new(CONDITION_ICMP_AVAILABLE, false, "SocketDenied", msg)
            }
            _ => Condition::new(CONDITION_ICMP_AVAILABLE, true, "SocketOpen", msg),
        }
    }

    /// Probes every peer concurrently: `cfg.count` requests each, `cfg.interval` apart.
    /// Peers' first requests are spread evenly over one interval so that the round does
    /// not send a burst (which would queue behind itself and inflate RTTs). A failing
    /// peer never delays the others; the round ends at most one timeout after the last
    /// request.
    pub async fn probe(&self, peers: &[(String, IpAddr)], cfg: &IcmpConfig) -> Vec<PeerSamples> {
        let count = cfg.count.max(1);
        let payload: Arc<[u8]> = payload_bytes(cfg.payload_bytes.min(MAX_PAYLOAD_BYTES)).into();
        let start = Instant::now();
        let spread = cfg.interval / u32::try_from(peers.len().max(1)).unwrap_or(u32::MAX);
        let mut tasks = JoinSet::new();
        for (i, (name, addr)) in peers.iter().enumerate() {
            let socket = match addr {
                IpAddr::V4(_) => &self.v4,
                IpAddr::V6(_) => &self.v6,
            };
            let client = match socket {
                Ok((client, _)) => client.clone(),
                Err(e) => {
                    let failed = PeerSamples {
                        peer: name.clone(),
                        addr: *addr,
                        samples: vec![None; count as usize],
                        error: Some(e.clone()),
                    };
                    tasks.spawn(async move { (i, failed) });
                    continue;
                }
            };
            let first_seq = self.reserve_sequences(*addr, count);
            let offset = spread * u32::try_from(i).unwrap_or(0);
            let job = PeerJob {
                client,
                name: name.clone(),
                addr: *addr,
                ident: self.ident,
                first_seq,
                first_send: start + offset,
                cfg: IcmpConfig {
                    count,
                    ..cfg.clone()
                },
                payload: payload.clone(),
            };
            tasks.spawn(async move { (i, job.run().await) });
        }
        let mut out: Vec<Option<PeerSamples>> = vec![None; peers.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .zip(peers)
            .map(|(r, (name, addr))| {
                r.unwrap_or_else(|| PeerSamples {
                    peer: name.clone(),
                    addr: *addr,
                    samples: vec![None; count as usize],
                    error: Some("probe task failed".to_owned()),
                })
            })
            .collect()
    }

    /// Reserves `count` consecutive sequence numbers for `addr` and returns the first.
    fn reserve_sequences(&self, addr: IpAddr, count: u32) -> u16 {
        // A poisoned lock only means another round panicked mid-update; the counter
        // is still a valid u16, so carry on with it.
        let mut map = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
        let seq = map.entry(addr).or_insert(0);
        let first = *seq;
        *seq = seq.wrapping_add(u16::try_from(count % 65_536).unwrap_or(0));
        first
    }
}

impl Default for IcmpProber {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything one peer's task needs for a round.
struct PeerJob {
    client: Client,
    name: String,
    addr: IpAddr,
    ident: PingIdentifier,
    first_seq: u16,
    first_send: Instant,
    cfg: IcmpConfig,
    payload: Arc<[u8]>,
}

impl PeerJob {
    async fn run(self) -> PeerSamples {
        let count = self.cfg.count as usize;
        let mut pings = JoinSet::new();
        for n in 0..count {
            tokio::time::sleep_until(self.first_send + self.cfg.interval * n as u32).await;
            let seq = PingSequence(self.first_seq.wrapping_add(n as u16));
            let mut pinger = self.client.pinger(self.addr, self.ident).await;
            pinger.timeout(self.cfg.timeout);
            let payload = self.payload.clone();
            pings.spawn(async move { (n, pinger.ping(seq, &payload).await) });
        }
        let mut samples = vec![None; count];
        let mut error = None;
        while let Some(joined) = pings.join_next().await {
            let Ok((n, result)) = joined else { continue };
            match result {
                Ok((_, rtt)) => samples[n] = Some(rtt),
                Err(SurgeError::Timeout { .. }) => {}
                Err(e) => {
                    error.get_or_insert_with(|| format!("echo to {}: {e}", self.addr));
                }
            }
        }
        PeerSamples {
            peer: self.name,
            addr: self.addr,
            samples,
            error,
        }
    }
}

/// Opens an ICMP socket of the family, unprivileged first, raw second.
fn open_socket(kind: ICMP) -> FamilySocket {
    let (family, sysctl) = match kind {
        ICMP::V4 => ("ICMPv4", "net.ipv4.ping_group_range"),
        ICMP::V6 => ("ICMPv6", "net.ipv6.ping_group_range"),
    };
    let dgram = Config::builder()
        .kind(kind)
        .sock_type_hint(SockType::DGRAM)
        .build();
    let open = |cfg: &Config| {
        Client::new(cfg).map(|c| {
            let t = c.get_socket().get_type();
            (c, t)
        })
    };
    // surge-ping falls back from DGRAM to RAW by itself; its error when both fail is
    // multi-line, so replace it with one line that names both remedies.
    open(&dgram).map_err(|e| {
        format!(
            "cannot open an {family} socket ({}): unprivileged ICMP needs this group in \
             sysctl {sysctl}, raw ICMP needs CAP_NET_RAW; allow either",
            os_reason(&e.to_string())
        )
    })
}

/// The last line of surge-ping's multi-line error, which carries the OS reason.
fn os_reason(s: &str) -> &str {
    let last = s.lines().last().unwrap_or(s);
    last.trim().trim_start_matches("Original error: ")
}

/// Echo payload: a recognisable repeating pattern, as ping(8) uses.
fn payload_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 256) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_blocks_do_not_overlap_and_wrap() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let rt = rt.expect("runtime");
        rt.block_on(async {
            let p = IcmpProber::new();
            let a: IpAddr = "192.0.2.1".parse().expect("literal");
            let b: IpAddr = "192.0.2.2".parse().expect("literal");
            assert_eq!(p.reserve_sequences(a, 20), 0);
            assert_eq!(p.reserve_sequences(a, 20), 20);
            assert_eq!(
                p.reserve_sequences(b, 5),
                0,
                "each target has its own counter"
            );
            assert_eq!(p.reserve_sequences(a, 65_500), 40);
            assert_eq!(p.reserve_sequences(a, 1), 4, "wraps modulo 2^16");
        });
    }

    #[test]
    fn error_text_keeps_the_os_reason_on_one_line() {
        let e = "Permission denied creating ICMP socket. On Linux:\n1. x\nOriginal error: Operation not permitted (os error 1)";
        assert_eq!(os_reason(e), "Operation not permitted (os error 1)");
    }

    #[tokio::test]
    async fn loopback_echo_gets_replies() {
        let p = IcmpProber::new();
        if p.v4.is_err() {
            // Neither ping sockets nor raw sockets here: the condition must say so.
            let c = p.condition();
            assert_eq!(c.status, "False");
            assert!(c.message.unwrap_or_default().contains("CAP_NET_RAW"));
            return;
        }
        let cfg = IcmpConfig {
            count: 3,
            interval: Duration::from_millis(10),
            ..Default::default()
        };
        let r = p
            .probe(
                &[("lo".into(), "127.0.0.1".parse().expect("literal"))],
                &cfg,
            )
            .await;
        assert_eq!(r[0].samples.len(), 3);
        assert!(r[0].samples.iter().all(Option::is_some), "{r:?}");
        assert_eq!(p.condition().status, "True");
    }
}
