//! ICMP echo prober: one socket per address family shared by every peer.
//!
//! Unprivileged ICMP ("ping") sockets are tried first and raw sockets second, so the
//! agent works without CAP_NET_RAW wherever `net.ipv4.ping_group_range` allows it. The
//! kernel rewrites the identifier of unprivileged echo requests, so replies are matched
//! by (address, sequence): every target keeps its own sequence counter, and each round
//! reserves a block of sequence numbers so rounds never reuse one in flight.
//!
//! RTTs come from kernel receive timestamps ([`super::echo`]), as ping(8) takes them, so
//! the runtime's wake-up after a reply never counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use socket2::Type as SockType;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::echo::{self, EchoSocket, Family};
use crate::availability::Availability;

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

/// Most echo requests one round sends to one peer.
pub const MAX_ROUND_COUNT: u32 = 10_000;

/// The flag each command uses for the fields of [`IcmpConfig`] (`run` says
/// `--ping-count`, `snapshot` says `--count`), so the one rule set names the caller's.
#[derive(Clone, Copy, Debug)]
pub struct IcmpFlags {
    /// For [`IcmpConfig::count`].
    pub count: &'static str,
    /// For [`IcmpConfig::interval`].
    pub interval: &'static str,
    /// For [`IcmpConfig::timeout`].
    pub timeout: &'static str,
    /// For [`IcmpConfig::payload_bytes`].
    pub payload: &'static str,
}

impl IcmpConfig {
    /// The one rule set for a round's settings, shared by every command that sends
    /// rounds. The error names the flag (from `flags`) and the rule it breaks.
    pub fn validate(&self, flags: &IcmpFlags) -> Result<(), String> {
        let ms = Duration::from_millis(1);
        if !(1..=MAX_ROUND_COUNT).contains(&self.count) {
            return Err(format!(
                "{} must be between 1 and {MAX_ROUND_COUNT}",
                flags.count
            ));
        }
        if self.interval < ms || self.interval > Duration::from_secs(3600) {
            return Err(format!("{} must be between 1ms and 1h", flags.interval));
        }
        if self.timeout < ms || self.timeout > Duration::from_secs(60) {
            return Err(format!("{} must be between 1ms and 60s", flags.timeout));
        }
        if self.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(format!(
                "{} must be at most {MAX_PAYLOAD_BYTES}",
                flags.payload
            ));
        }
        Ok(())
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
type FamilySocket = Result<(Arc<EchoClient>, SockType), String>;

/// What the reply reader hands a waiting echo: the kernel's receive stamp (if any) and
/// when user space read the reply.
type Received = (Option<SystemTime>, Instant);

/// Echoes in flight on one socket, by (peer address, sequence).
type Pending = Mutex<HashMap<(IpAddr, u16), oneshot::Sender<Received>>>;

/// One family's socket shared by every peer, and the task that reads its replies.
struct EchoClient {
    shared: Arc<ClientShared>,
    reader: JoinHandle<()>,
}

struct ClientShared {
    socket: EchoSocket,
    family: Family,
    ident: u16,
    pending: Pending,
}

/// Why one echo got no RTT.
enum EchoError {
    /// No reply within the timeout: a lost probe.
    Timeout,
    /// The request could not be sent (no route, socket error): the peer's error.
    Send(std::io::Error),
}

impl ClientShared {
    fn pending(&self) -> MutexGuard<'_, HashMap<(IpAddr, u16), oneshot::Sender<Received>>> {
        // A poisoned lock only means a task panicked mid-insert; the map is still valid.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EchoClient {
    fn open(family: Family, ident: u16) -> std::io::Result<Self> {
        let shared = Arc::new(ClientShared {
            socket: EchoSocket::open(family)?,
            family,
            ident,
            pending: Mutex::new(HashMap::new()),
        });
        let reader = tokio::spawn(read_replies(Arc::clone(&shared)));
        Ok(Self { shared, reader })
    }

    /// One echo to `addr`: its RTT, or why there is none.
    async fn echo(
        &self,
        addr: IpAddr,
        seq: u16,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Duration, EchoError> {
        let s = &self.shared;
        let (tx, rx) = oneshot::channel();
        s.pending().insert((addr, seq), tx);
        let packet = echo::encode_request(s.family, s.ident, seq, payload);
        let sent = Instant::now();
        let sent_wall = match s.socket.send(addr, &packet).await {
            Ok(at) => at,
            Err(e) => {
                s.pending().remove(&(addr, seq));
                return Err(EchoError::Send(e));
            }
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok((stamp, read_at))) => Ok(echo::rtt(
                sent_wall,
                stamp,
                read_at.saturating_duration_since(sent),
            )),
            _ => {
                s.pending().remove(&(addr, seq));
                Err(EchoError::Timeout)
            }
        }
    }
}

impl Drop for EchoClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads replies off the socket for as long as the client lives and hands each to the
/// echo waiting for it. Anything else on the socket (other processes' replies on a raw
/// socket, requests, ICMP errors queued as socket errors) is skipped.
async fn read_replies(shared: Arc<ClientShared>) {
    let mut buf = vec![0u8; MAX_PAYLOAD_BYTES + 128];
    let mut errors_in_a_row = 0u32;
    loop {
        match shared.socket.recv(&mut buf).await {
            Ok((Some(reply), stamp)) => {
                errors_in_a_row = 0;
                let read_at = Instant::now();
                // Raw sockets see every echo reply to the host: keep only ours.
                if !shared.socket.kernel_ident() && reply.ident != shared.ident {
                    continue;
                }
                if let Some(tx) = shared.pending().remove(&(reply.from, reply.seq)) {
                    let _ = tx.send((stamp, read_at));
                }
            }
            Ok((None, _)) => errors_in_a_row = 0,
            Err(e) => {
                // An ICMP error for an earlier request is reported once on the next
                // read; a socket that fails every read is broken, so back off.
                errors_in_a_row += 1;
                tracing::debug!(error = %e, "ICMP socket read failed");
                if errors_in_a_row > 16 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Sends ICMP echo to many peers concurrently over one socket per address family.
pub struct IcmpProber {
    v4: FamilySocket,
    v6: FamilySocket,
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
        let ident: u16 = rand::random();
        IcmpProber {
            v4: open_socket(Family::V4, ident),
            v6: open_socket(Family::V6, ident),
            next_seq: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Available when at least IPv4 or IPv6 echo can be sent, with the socket kinds in
    /// the message; unavailable with both reasons otherwise.
    pub fn condition(&self) -> Availability {
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
            (Err(_), Err(_)) => Availability::down("SocketDenied", msg),
            _ => Availability::up("SocketOpen", msg),
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
                Ok((client, _)) => Arc::clone(client),
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
    client: Arc<EchoClient>,
    name: String,
    addr: IpAddr,
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
            let seq = self.first_seq.wrapping_add(n as u16);
            let (client, payload) = (Arc::clone(&self.client), self.payload.clone());
            let (addr, timeout) = (self.addr, self.cfg.timeout);
            pings.spawn(async move { (n, client.echo(addr, seq, &payload, timeout).await) });
        }
        let mut samples = vec![None; count];
        let mut error = None;
        while let Some(joined) = pings.join_next().await {
            let Ok((n, result)) = joined else { continue };
            match result {
                Ok(rtt) => samples[n] = Some(rtt),
                Err(EchoError::Timeout) => {}
                Err(EchoError::Send(e)) => {
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

/// Opens an ICMP socket of the family, unprivileged first, raw second; when neither
/// opens, one line that names both remedies.
fn open_socket(family: Family, ident: u16) -> FamilySocket {
    let (name, sysctl) = match family {
        Family::V4 => ("ICMPv4", "net.ipv4.ping_group_range"),
        Family::V6 => ("ICMPv6", "net.ipv6.ping_group_range"),
    };
    EchoClient::open(family, ident)
        .map(|c| {
            let kind = c.shared.socket.kind();
            (Arc::new(c), kind)
        })
        .map_err(|e| {
            format!(
                "cannot open an {name} socket ({e}): unprivileged ICMP needs this group in \
                 sysctl {sysctl}, raw ICMP needs CAP_NET_RAW; allow either"
            )
        })
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

    #[tokio::test]
    async fn loopback_echo_gets_replies() {
        let p = IcmpProber::new();
        if p.v4.is_err() {
            // Neither ping sockets nor raw sockets here: the condition must say so.
            let c = p.condition();
            assert!(!c.available);
            assert!(c.message.contains("CAP_NET_RAW"));
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
        assert!(p.condition().available);
    }
}
