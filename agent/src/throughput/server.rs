//! The throughput server: iperf3's TCP server protocol, one test at a time.
//!
//! Safety properties, whatever clients do:
//! - one test at a time; a control connection arriving during a test gets iperf3's
//!   ACCESS_DENIED at once, without us reading from it (iperf3 semantics);
//! - every control read has a deadline (`control_timeout`) and every message a size
//!   limit, so a client that stalls, sends garbage or vanishes frees the server within
//!   one timeout;
//! - the server's own caps on duration and bytes end a test (with SERVER_TERMINATE)
//!   whatever the client asked for;
//! - memory is bounded: one fixed buffer per stream, a bounded number of streams and of
//!   connections waiting to present a cookie;
//! - an optional allowlist of client networks;
//! - fairness between the two halves of a linkmeter test: after a linkmeter client's
//!   forward test the server stays reserved for that client's address for
//!   `reverse_hold`, so its reverse test is not starved by other nodes that would
//!   otherwise slip into the gap between the two (with three or more agents testing
//!   each other, that gap was taken often enough to leave a direction unmeasured).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::ThroughputError;
use super::allow::{Cidr, is_allowed};
use super::control::{
    read_cookie, read_frame, read_state, read_state_untimed, with_timeout, write_frame,
    write_server_error, write_state,
};
use super::protocol::{
    Cookie, DEFAULT_BLOCK_LEN, DEFAULT_MAX_PARAMS_LEN, MAX_RESULTS_LEN, MAX_STREAMS, ProtocolError,
    State, StreamResult, TestParams, TestResults, stream_id,
};
use super::stream::{CpuMark, DataStream, Role};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Longest data phase the server allows, whatever the client asks.
    pub max_duration: Duration,
    /// Most bytes one test may move, whatever the client asks.
    pub max_bytes: u64,
    /// Deadline for each control-channel read and for the data streams to connect.
    pub control_timeout: Duration,
    /// Client networks allowed; empty allows all.
    pub allow: Vec<Cidr>,
    /// Most parallel streams per test.
    pub max_streams: u32,
    /// Largest parameter message accepted.
    pub max_params_len: usize,
    /// A permit shared with this node's own client tests: when the node is testing a
    /// peer, its server answers "busy", so one node never runs two tests at once and
    /// neither result is skewed by the other.
    pub gate: Option<Arc<Semaphore>>,
    /// How long the server stays reserved for a linkmeter client after its forward
    /// test, waiting for the reverse test that follows (zero: no reservation).
    pub reverse_hold: Duration,
}

impl ServerConfig {
    /// Defaults: 30 s and 50 GB caps, 10 s control timeout, 16 streams, 8 KiB params,
    /// 2 s reverse hold.
    pub fn new(listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen,
            max_duration: Duration::from_secs(30),
            max_bytes: 50_000_000_000,
            control_timeout: Duration::from_secs(10),
            allow: Vec::new(),
            max_streams: 16,
            max_params_len: DEFAULT_MAX_PARAMS_LEN,
            gate: None,
            reverse_hold: Duration::from_secs(2),
        }
    }
}

/// What the server measured in one completed test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerTestSummary {
    /// Whether the server sent (client's `-R`).
    pub reverse: bool,
    /// Parallel streams.
    pub streams: u32,
    /// Bytes the server read (forward) or wrote (reverse), after any omit period.
    pub bytes: u64,
    /// Counting period in seconds.
    pub seconds: f64,
    /// `bytes * 8 / seconds`.
    pub bits_per_second: f64,
    /// Bytes the client reported it sent (forward) or received (reverse).
    pub client_bytes: Option<u64>,
    /// Whether the server ended the test on its own caps.
    pub capped: bool,
    /// The version string the client sent (`client_version`), if any.
    pub client_version: Option<String>,
    /// A linkmeter client's adaptive estimate of the rate, when it is plausible
    /// against what this server counted (see [`plausible_estimate`]).
    pub client_estimate_bps: Option<f64>,
}

impl ServerTestSummary {
    /// Whether the client is a linkmeter agent that has just measured the forward
    /// direction, and so will ask for the reverse one next.
    pub fn reverse_follows(&self) -> bool {
        !self.reverse
            && self
                .client_version
                .as_deref()
                .is_some_and(|v| v.starts_with("linkmeter-"))
    }
}

/// One test's outcome, published to [`Server::subscribe`]rs (tests, logs).
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// Sequence number of the test on this server.
    pub id: u64,
    /// The client's control-connection address.
    pub peer: SocketAddr,
    /// What was measured, or why the test failed.
    pub result: Result<ServerTestSummary, String>,
}

/// Where a data connection goes while a test waits for its streams.
#[derive(Debug, Clone)]
struct StreamSink {
    cookie: Cookie,
    tx: mpsc::Sender<TcpStream>,
}

#[derive(Debug)]
enum Slot {
    Idle,
    Busy {
        sink: Option<StreamSink>,
    },
    /// Reserved for `ip`'s reverse test until `until`; `permit` is the node's gate,
    /// kept so that the node's own client does not start a test in the gap either.
    HeldFor {
        ip: IpAddr,
        until: Instant,
        permit: Option<OwnedSemaphorePermit>,
    },
}

type SharedSlot = Arc<Mutex<Slot>>;

fn lock(slot: &SharedSlot) -> std::sync::MutexGuard<'_, Slot> {
    // The slot holds no invariants a panic could break; keep serving.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frees the slot when a test task ends, however it ends: back to idle, or to the
/// state set with [`SlotGuard::then`].
struct SlotGuard {
    slot: SharedSlot,
    then: Option<Slot>,
}

impl SlotGuard {
    fn new(slot: SharedSlot) -> SlotGuard {
        SlotGuard { slot, then: None }
    }

    /// Leaves the slot in `next` instead of idle.
    fn then(mut self, next: Slot) {
        self.then = Some(next);
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        *lock(&self.slot) = self.then.take().unwrap_or(Slot::Idle);
    }
}

/// Ends a reservation at its deadline if nobody used it, giving back the gate.
async fn expire_hold(slot: SharedSlot, until: Instant, stop: CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep_until(until.into()) => {}
        _ = stop.cancelled() => {}
    }
    let mut s = lock(&slot);
    if matches!(&*s, Slot::HeldFor { until: u, .. } if *u == until) {
        *s = Slot::Idle;
    }
}

/// At most this many connections may be waiting to present a data-stream cookie.
const MAX_PENDING_COOKIES: usize = 64;

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    cfg: Arc<ServerConfig>,
    events: broadcast::Sender<TestOutcome>,
}

impl Server {
    /// Binds the listening socket. Refuses nonsensical settings with
    /// [`ThroughputError::Config`].
    pub async fn bind(cfg: ServerConfig) -> Result<Server, ThroughputError> {
        if cfg.max_streams == 0 || cfg.max_streams > MAX_STREAMS {
            return Err(ThroughputError::Config(format!(
                "max streams must be 1..={MAX_STREAMS}"
            )));
        }
        if cfg.max_duration.is_zero() || cfg.control_timeout.is_zero() || cfg.max_bytes == 0 {
            return Err(ThroughputError::Config(
                "max duration, max bytes and control timeout must be positive".into(),
            ));
        }
        let listener = TcpListener::bind(cfg.listen).await?;
        let (events, _) = broadcast::channel(16);
        Ok(Server {
            listener,
            cfg: Arc::new(cfg),
            events,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Outcomes of tests as they finish. Old ones are dropped if nobody reads.
    pub fn subscribe(&self) -> broadcast::Receiver<TestOutcome> {
        self.events.subscribe()
    }

    /// Serves until `shutdown` fires; a test in progress is then abandoned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ThroughputError> {
        let slot: SharedSlot = Arc::new(Mutex::new(Slot::Idle));
        let pending = Arc::new(Semaphore::new(MAX_PENDING_COOKIES));
        let next_id = AtomicU64::new(1);
        info!(listen = %self.local_addr()?, "throughput server listening");
        loop {
            let (sock, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Typically EMFILE: back off rather than spin.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if !is_allowed(&self.cfg.allow, peer.ip()) {
                warn!(%peer, "connection from a network not allowed; closed");
                continue;
            }
            enum Action {
                NewTest(Option<OwnedSemaphorePermit>),
                Stream(StreamSink),
                Deny,
            }
            let action = {
                let mut s = lock(&slot);
                if matches!(&*s, Slot::HeldFor { until, .. } if Instant::now() >= *until) {
                    // The reserved client never came back: gives the gate back too.
                    *s = Slot::Idle;
                }
                match &mut *s {
                    Slot::HeldFor { ip, permit, .. } if *ip == peer.ip() => {
                        let permit = permit.take();
                        *s = Slot::Busy { sink: None };
                        Action::NewTest(permit)
                    }
                    Slot::HeldFor { .. } => Action::Deny,
                    Slot::Idle => match &self.cfg.gate {
                        None => {
                            *s = Slot::Busy { sink: None };
                            Action::NewTest(None)
                        }
                        Some(gate) => match Arc::clone(gate).try_acquire_owned() {
                            Ok(permit) => {
                                *s = Slot::Busy { sink: None };
                                Action::NewTest(Some(permit))
                            }
                            // Our own client is testing a peer: busy, slot stays idle.
                            Err(_) => Action::Deny,
                        },
                    },
                    Slot::Busy { sink: Some(k) } => Action::Stream(k.clone()),
                    Slot::Busy { sink: None } => Action::Deny,
                }
            };
            match action {
                Action::NewTest(gate_permit) => {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    let guard = SlotGuard::new(Arc::clone(&slot));
                    let cfg = Arc::clone(&self.cfg);
                    let events = self.events.clone();
                    let stop = shutdown.child_token();
                    let span = info_span!("throughput_test", id, %peer);
                    tokio::spawn(
                        async move {
                            let slot = Arc::clone(&guard.slot);
                            let r = tokio::select! {
                                r = serve_test(sock, &cfg, &slot) => r,
                                _ = stop.cancelled() => Err(ThroughputError::Closed),
                            };
                            // Free (or reserve) the slot before publishing, so whoever
                            // waits on the outcome can start the next test at once.
                            let hold = !cfg.reverse_hold.is_zero()
                                && r.as_ref().is_ok_and(ServerTestSummary::reverse_follows);
                            if hold {
                                let until = Instant::now() + cfg.reverse_hold;
                                guard.then(Slot::HeldFor {
                                    ip: peer.ip(),
                                    until,
                                    permit: gate_permit,
                                });
                                tokio::spawn(expire_hold(slot, until, stop));
                            } else {
                                drop(guard);
                                drop(gate_permit);
                            }
                            let result = match r {
                                Ok(summary) => {
                                    info!(
                                        reverse = summary.reverse,
                                        streams = summary.streams,
                                        bytes = summary.bytes,
                                        mbit_per_s = summary.bits_per_second / 1e6,
                                        capped = summary.capped,
                                        "test finished"
                                    );
                                    Ok(summary)
                                }
                                Err(e) => {
                                    warn!(error = %e, "test failed");
                                    Err(e.to_string())
                                }
                            };
                            let _ = events.send(TestOutcome { id, peer, result });
                        }
                        .instrument(span),
                    );
                }
                Action::Stream(sink) => match Arc::clone(&pending).try_acquire_owned() {
                    Ok(permit) => {
                        let limit = self.cfg.control_timeout;
                        tokio::spawn(async move {
                            accept_stream(sock, sink, limit).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        warn!(%peer, "too many connections waiting to present a cookie; closed")
                    }
                },
                Action::Deny => {
                    // Don't read: the test in progress must not wait on a stranger.
                    // One byte into a fresh socket's empty buffer cannot block.
                    let _ = sock.try_write(&[State::AccessDenied.to_byte()]);
                    info!(%peer, "busy: refused a second client");
                }
            }
        }
        Ok(())
    }
}

/// Reads a data connection's cookie and hands it to the test waiting for it, or
/// refuses it the way iperf3 does.
async fn accept_stream(mut sock: TcpStream, sink: StreamSink, limit: Duration) {
    match read_cookie(&mut sock, limit).await {
        Ok(c) if c == sink.cookie => {
            if let Err(
                mpsc::error::TrySendError::Full(mut s) | mpsc::error::TrySendError::Closed(mut s),
            ) = sink.tx.try_send(sock)
            {
                debug!("data stream beyond the requested count; refused");
                let _ = s.write_all(&[State::AccessDenied.to_byte()]).await;
            }
        }
        Ok(_) => {
            info!("connection with a foreign cookie during stream setup; refused");
            let _ = sock.write_all(&[State::AccessDenied.to_byte()]).await;
        }
        Err(e) => debug!(error = %e, "data connection without a valid cookie; closed"),
    }
}

/// Sends SERVER_ERROR for a refused test and returns the error to log.
async fn refuse(ctrl: &mut TcpStream, e: ProtocolError, limit: Duration) -> ThroughputError {
    let _ = write_server_error(ctrl, e.iperf_errno(), limit).await;
    ThroughputError::Protocol(e)
}

/// Runs one test on an accepted control connection.
async fn serve_test(
    mut ctrl: TcpStream,
    cfg: &ServerConfig,
    slot: &SharedSlot,
) -> Result<ServerTestSummary, ThroughputError> {
    let t = cfg.control_timeout;
    ctrl.set_nodelay(true)?;
    let cookie = read_cookie(&mut ctrl, t).await?;
    write_state(&mut ctrl, State::ParamExchange, t).await?;
    let body = read_frame(&mut ctrl, cfg.max_params_len, t, "parameters").await?;
    let params = match TestParams::from_json(&body) {
        Ok(p) => p,
        Err(e) => return Err(refuse(&mut ctrl, e, t).await),
    };
    if let Err(e) = params.check_supported(cfg.max_streams) {
        return Err(refuse(&mut ctrl, e, t).await);
    }
    info!(
        reverse = params.reverse,
        streams = params.parallel,
        time = params.time,
        bytes = params.num,
        client_version = params.client_version.as_deref().unwrap_or("?"),
        "test requested"
    );

    // Collect the data streams.
    let n = params.parallel as usize;
    let (tx, mut rx) = mpsc::channel(n);
    *lock(slot) = Slot::Busy {
        sink: Some(StreamSink { cookie, tx }),
    };
    write_state(&mut ctrl, State::CreateStreams, t).await?;
    let collected = with_timeout(t, "data streams", async {
        let mut socks = Vec::with_capacity(n);
        while socks.len() < n {
            tokio::select! {
                s = rx.recv() => match s {
                    Some(s) => socks.push(s),
                    None => return Err(ThroughputError::Closed),
                },
                st = read_state_untimed(&mut ctrl) => {
                    return Err(match st {
                        Ok(State::ClientTerminate) => ThroughputError::ClientTerminated,
                        Ok(other) => ProtocolError::UnexpectedState(other).into(),
                        Err(e) => e,
                    });
                }
            }
        }
        Ok(socks)
    })
    .await;
    // From here on, new connections are strangers: refuse them as busy.
    *lock(slot) = Slot::Busy { sink: None };
    drop(rx);
    let socks = collected?;
    for s in &socks {
        configure_stream(s, &params);
    }

    write_state(&mut ctrl, State::TestStart, t).await?;
    write_state(&mut ctrl, State::TestRunning, t).await?;
    let role = if params.reverse {
        Role::Send
    } else {
        Role::Receive
    };
    let block = params.len.map_or(DEFAULT_BLOCK_LEN, |l| l as usize);
    let stop = CancellationToken::new();
    let mut streams: Vec<DataStream> = socks
        .into_iter()
        .map(|s| DataStream::start(s, role, block, stop.child_token()))
        .collect();
    let cpu = CpuMark::now();
    let start = Instant::now();
    let omit = Duration::from_secs(u64::from(params.omit));
    // The client ends the test; give it its requested time plus a grace period for a
    // slow TEST_END, but never more than our own cap.
    let deadline = if params.time > 0 {
        (Duration::from_secs(u64::from(params.time)) + omit + t).min(cfg.max_duration)
    } else {
        cfg.max_duration
    };
    let mut omitted: Option<Vec<u64>> = if omit.is_zero() {
        Some(vec![0; streams.len()])
    } else {
        None
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ended: Result<(), ThroughputError> = loop {
        tokio::select! {
            _ = tick.tick() => {
                let elapsed = start.elapsed();
                if omitted.is_none() && elapsed >= omit {
                    omitted = Some(streams.iter().map(DataStream::app_bytes).collect());
                }
                let moved: u64 = streams.iter().map(DataStream::app_bytes).sum();
                if elapsed >= deadline || moved >= cfg.max_bytes {
                    break Err(ThroughputError::ServerTerminated);
                }
            }
            st = read_state_untimed(&mut ctrl) => {
                break match st {
                    Ok(State::TestEnd) => Ok(()),
                    Ok(State::ClientTerminate) => Err(ThroughputError::ClientTerminated),
                    Ok(other) => Err(ProtocolError::UnexpectedState(other).into()),
                    Err(e) => Err(e),
                };
            }
        }
    };
    let end = Instant::now();
    let capped = matches!(ended, Err(ThroughputError::ServerTerminated));
    if capped {
        // Tell the client before touching the streams: closing a socket that still
        // holds unread data sends a reset, and a client writing into a reset stream
        // reports "connection reset" instead of our reason.
        let _ = write_state(&mut ctrl, State::ServerTerminate, t).await;
    }
    stop.cancel();
    for s in &mut streams {
        if let Err(e) = s.join().await {
            debug!(error = %e, "data stream ended with an error");
        }
    }
    // Figures as iperf3 reports them: bytes after the omit period, over the time from
    // the end of the omit period to TEST_END.
    let base = omitted.unwrap_or_else(|| streams.iter().map(DataStream::app_bytes).collect());
    let counted_from = start + omit;
    let seconds = end.saturating_duration_since(counted_from).as_secs_f64();
    let per_stream: Vec<StreamResult> = streams
        .iter()
        .zip(base.iter())
        .enumerate()
        .map(|(i, (s, b))| StreamResult {
            id: stream_id(i),
            bytes: s.app_bytes().saturating_sub(*b),
            retransmits: if params.reverse {
                s.retransmits()
                    .and_then(|r| i64::try_from(r).ok())
                    .unwrap_or(0)
            } else {
                -1
            },
            start_time: 0.0,
            end_time: seconds,
        })
        .collect();
    if capped {
        // Give the client a moment to read SERVER_TERMINATE and hang up first.
        let _ = tokio::time::timeout(Duration::from_secs(1), read_state_untimed(&mut ctrl)).await;
    }
    // iperf3 closes the data streams before exchanging results.
    drop(streams);
    let bytes: u64 = per_stream.iter().map(|s| s.bytes).sum();
    let bits_per_second = if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds
    } else {
        0.0
    };

    if let Err(e) = ended {
        if !matches!(e, ThroughputError::ServerTerminated) {
            return Err(e);
        }
        warn!(
            bytes,
            seconds = end.duration_since(start).as_secs_f64(),
            "test reached the server's caps; terminating it"
        );
        return Ok(ServerTestSummary {
            reverse: params.reverse,
            streams: params.parallel,
            bytes,
            seconds,
            bits_per_second,
            client_bytes: None,
            capped: true,
            client_version: params.client_version,
            client_estimate_bps: None,
        });
    }

    write_state(&mut ctrl, State::ExchangeResults, t).await?;
    let body = read_frame(&mut ctrl, MAX_RESULTS_LEN, t, "client results").await?;
    let client = TestResults::from_json(&body)?;
    let (cpu_total, cpu_user, cpu_system) = cpu.since();
    let ours = TestResults {
        cpu_util_total: cpu_total,
        cpu_util_user: cpu_user,
        cpu_util_system: cpu_system,
        sender_has_retransmits: if params.reverse { 1 } else { -1 },
        congestion_used: None,
        streams: per_stream,
        server_output_text: params.get_server_output.then(|| {
            format!(
                "linkmeter server: {} {bytes} bytes in {seconds:.2} s = {:.2} Mbit/s\n",
                if params.reverse { "sent" } else { "received" },
                bits_per_second / 1e6
            )
        }),
        estimate_bps: None,
    };
    write_frame(&mut ctrl, &ours.to_json(), t).await?;
    write_state(&mut ctrl, State::DisplayResults, t).await?;
    match read_state(&mut ctrl, t, "IPERF_DONE").await {
        Ok(State::IperfDone) => {}
        Ok(other) => debug!(state = ?other, "expected IPERF_DONE"),
        Err(e) => debug!(error = %e, "no IPERF_DONE"),
    }
    Ok(ServerTestSummary {
        reverse: params.reverse,
        streams: params.parallel,
        bytes,
        seconds,
        bits_per_second,
        client_bytes: Some(client.total_bytes()),
        capped: false,
        client_version: params.client_version,
        client_estimate_bps: client
            .estimate_bps
            .and_then(|e| plausible_estimate(e, bits_per_second)),
    })
}

/// A client's estimate, if it fits the server's own count: the estimate leaves slow
/// start out, so it may exceed the whole-test average, but not by more than 4×, and it
/// cannot be far below it. A peer's bytes can lie; a figure that does not fit is
/// dropped rather than recorded.
pub fn plausible_estimate(estimate_bps: f64, server_average_bps: f64) -> Option<f64> {
    let fits = estimate_bps.is_finite()
        && server_average_bps.is_finite()
        && server_average_bps > 0.0
        && estimate_bps >= server_average_bps * 0.5
        && estimate_bps <= server_average_bps * 4.0;
    fits.then_some(estimate_bps)
}

/// Applies the client's socket options to a data stream, best effort: iperf3 fails the
/// test when these fail, but none changes what is measured enough to refuse a test.
fn configure_stream(s: &TcpStream, p: &TestParams) {
    let sock = socket2::SockRef::from(s);
    if p.nodelay
        && let Err(e) = s.set_nodelay(true)
    {
        debug!(error = %e, "TCP_NODELAY");
    }
    if let Some(w) = p.window {
        let w = w as usize;
        if let Err(e) = sock
            .set_recv_buffer_size(w)
            .and_then(|()| sock.set_send_buffer_size(w))
        {
            debug!(error = %e, "socket buffer size");
        }
    }
    if let Some(c) = &p.congestion
        && let Err(e) = sock.set_tcp_congestion(c.as_bytes())
    {
        debug!(error = %e, congestion = %c, "congestion control not available");
    }
    if p.mss.is_some() {
        debug!("MSS requested; ignored (it must be set before the connection is made)");
    }
}

#[cfg(test)]
mod tests {
    use super::plausible_estimate;

    #[test]
    fn a_client_estimate_must_fit_the_servers_count() {
        // Slow start left out: a little above the whole-test average.
        assert_eq!(plausible_estimate(38.2e6, 37.9e6), Some(38.2e6));
        assert_eq!(plausible_estimate(3.9e6, 1e6), Some(3.9e6));
        // A peer claiming far more, or far less, than arrived is not believed.
        assert_eq!(plausible_estimate(1e12, 37.9e6), None);
        assert_eq!(plausible_estimate(1e6, 37.9e6), None);
        assert_eq!(plausible_estimate(f64::NAN, 37.9e6), None);
        assert_eq!(plausible_estimate(1e6, 0.0), None);
    }
}
