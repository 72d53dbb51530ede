//! The throughput client: one iperf3-protocol TCP test per direction, stopped as soon
//! as the estimate converged.
//!
//! Against a stock `iperf3 -s` the client asks for a test as long as its duration cap
//! (iperf3 needs a `time`) and ends it early with TEST_END, which iperf3 accepts
//! because in its protocol the client always decides when a test is over.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::ThroughputError;
use super::control::{
    read_frame, read_server_error, read_state, read_state_untimed, with_timeout, write_frame,
    write_state,
};
use super::estimator::{Decision, Estimator, EstimatorConfig};
use super::protocol::{
    Cookie, DEFAULT_BLOCK_LEN, MAX_RESULTS_LEN, ProtocolError, State, StreamResult, TestParams,
    TestResults, stream_id,
};
use super::stream::{CpuMark, DataStream, Role};

/// Which way a test moves data, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to server (iperf3's default).
    Send,
    /// Server to client (iperf3's `-R`).
    Receive,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Send => "send",
            Direction::Receive => "receive",
        })
    }
}

/// Why a test stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The estimate converged.
    Converged,
    /// The duration cap was reached.
    DurationCap,
    /// The byte cap was reached.
    ByteCap,
    /// The server ended the test (its own caps).
    ServerTerminated,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's control address.
    pub server: SocketAddr,
    /// Parallel TCP streams.
    pub streams: u32,
    /// Deadline for each control-channel step (connect, each message).
    pub control_timeout: Duration,
    /// Adaptive stop and caps (`max_duration`, `max_bytes`).
    pub estimator: EstimatorConfig,
    /// Interval between samples.
    pub sample_interval: Duration,
    /// How long to retry a refused, reset or busy control connection (0: no retry).
    pub setup_retry: Duration,
}

impl ClientConfig {
    /// Defaults: one stream, 5 s control timeout, 10 s / unlimited caps, 100 ms samples.
    pub fn new(server: SocketAddr) -> ClientConfig {
        ClientConfig {
            server,
            streams: 1,
            control_timeout: Duration::from_secs(5),
            estimator: EstimatorConfig::default(),
            sample_interval: Duration::from_millis(100),
            setup_retry: Duration::ZERO,
        }
    }
}

/// Progress of a running test, for a live display.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Direction under test.
    pub direction: Direction,
    /// Time since data started.
    pub elapsed: Duration,
    /// Bytes delivered so far.
    pub bytes: u64,
    /// Current estimate in bit/s.
    pub bits_per_second: f64,
}

/// The result of one direction.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DirectionReport {
    /// Direction measured.
    pub direction: Direction,
    /// Goodput estimate, bit/s.
    pub bits_per_second: f64,
    /// Whether the estimate converged before a cap.
    pub converged: bool,
    /// Why the test stopped.
    pub stop: StopReason,
    /// Bytes delivered during the data phase, counted by our kernel (acknowledged by
    /// the peer when sending, received when receiving).
    pub bytes: u64,
    /// Bytes our application wrote (sending) or read (receiving).
    pub app_bytes: u64,
    /// Bytes the server reported it received (sending) or sent (receiving).
    pub peer_bytes: Option<u64>,
    /// Length of the data phase.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Time discarded as warm-up.
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// Retransmitted segments on the sending side (ours or the server's report).
    pub retransmits: Option<u64>,
    /// Smoothed RTT in microseconds at the end of the test (sender's view when we
    /// send; when we receive, the kernel's receive-side RTT estimate).
    pub rtt_us: Option<u32>,
    /// Parallel streams used.
    pub streams: u32,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Reads the next state byte and checks it is `want`; busy and server errors become
/// their own errors.
async fn expect_state(
    ctrl: &mut TcpStream,
    want: State,
    limit: Duration,
    what: &'static str,
) -> Result<(), ThroughputError> {
    match read_state(ctrl, limit, what).await? {
        s if s == want => Ok(()),
        State::AccessDenied => Err(ThroughputError::Busy),
        State::ServerError => Err(read_server_error(ctrl, limit).await),
        State::ServerTerminate => Err(ThroughputError::ServerTerminated),
        other => Err(ProtocolError::UnexpectedState(other).into()),
    }
}

/// Connects the control channel and waits for PARAM_EXCHANGE. Within
/// `cfg.setup_retry`, a refused, reset or busy attempt is retried: a stock iperf3
/// server closes and re-opens its listener between tests, so a test that follows
/// another closely can meet a refused or reset connection, or a busy answer.
async fn open_control(cfg: &ClientConfig, cookie: &Cookie) -> Result<TcpStream, ThroughputError> {
    let t = cfg.control_timeout;
    let give_up = Instant::now() + cfg.setup_retry;
    loop {
        let attempt = async {
            let mut ctrl = with_timeout(t, "connect", async {
                Ok(TcpStream::connect(cfg.server).await?)
            })
            .await?;
            ctrl.set_nodelay(true)?;
            with_timeout(t, "write cookie", async {
                Ok(ctrl.write_all(cookie.as_bytes()).await?)
            })
            .await?;
            expect_state(&mut ctrl, State::ParamExchange, t, "PARAM_EXCHANGE").await?;
            Ok(ctrl)
        };
        let r: Result<TcpStream, ThroughputError> = attempt.await;
        let transient = match &r {
            Err(ThroughputError::Busy | ThroughputError::Closed) => true,
            Err(ThroughputError::Io(e)) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
            ),
            _ => false,
        };
        if !transient || Instant::now() >= give_up {
            return r;
        }
        tracing::debug!(error = ?r.err(), "control connection not ready; retrying");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one test in `direction` against `cfg.server`, calling `progress` after every
/// sample.
pub async fn run_test(
    cfg: &ClientConfig,
    direction: Direction,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<DirectionReport, ThroughputError> {
    if cfg.streams == 0 || cfg.streams > super::protocol::MAX_STREAMS {
        return Err(ThroughputError::Config(format!(
            "streams must be 1..={}",
            super::protocol::MAX_STREAMS
        )));
    }
    let t = cfg.control_timeout;
    let cookie = Cookie::generate();
    let mut ctrl = open_control(cfg, &cookie).await?;

    // iperf3 needs a duration: ask for the cap (rounded up) and end early.
    let secs = cfg.estimator.max_duration.as_secs_f64().ceil().max(1.0);
    let time = if secs >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        secs as u32
    };
    let params = TestParams::tcp(time, cfg.streams, direction == Direction::Receive);
    write_frame(&mut ctrl, &params.to_json(), t).await?;
    expect_state(&mut ctrl, State::CreateStreams, t, "CREATE_STREAMS").await?;

    let mut socks = Vec::with_capacity(cfg.streams as usize);
    for _ in 0..cfg.streams {
        let mut s = with_timeout(t, "data connect", async {
            Ok(TcpStream::connect(cfg.server).await?)
        })
        .await?;
        with_timeout(t, "write stream cookie", async {
            Ok(s.write_all(cookie.as_bytes()).await?)
        })
        .await?;
        socks.push(s);
    }
    expect_state(&mut ctrl, State::TestStart, t, "TEST_START").await?;
    expect_state(&mut ctrl, State::TestRunning, t, "TEST_RUNNING").await?;

    let role = match direction {
        Direction::Send => Role::Send,
        Direction::Receive => Role::Receive,
    };
    let stop = CancellationToken::new();
    let mut streams: Vec<DataStream> = socks
        .into_iter()
        .map(|s| DataStream::start(s, role, DEFAULT_BLOCK_LEN, stop.child_token()))
        .collect();
    let cpu = CpuMark::now();
    let start = Instant::now();
    let mut est = Estimator::new(cfg.estimator.clone());
    let interval = cfg.sample_interval.max(Duration::from_millis(10));
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::from_std(start) + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let outcome: Result<StopReason, ThroughputError> = loop {
        tokio::select! {
            _ = tick.tick() => {
                let bytes: u64 = streams.iter().map(DataStream::delivered_bytes).sum();
                let lossy: u64 = streams.iter().map(DataStream::disturbance_bytes).sum();
                let elapsed = start.elapsed();
                let d = est.push_sample(elapsed, bytes, lossy);
                let e = est.estimate();
                tracing::trace!(
                    %direction,
                    elapsed_ms = elapsed.as_millis() as u64,
                    bytes,
                    lossy,
                    mbit_per_s = e.bits_per_second / 1e6,
                    spread = e.spread.unwrap_or(f64::NAN),
                    "sample"
                );
                progress(&Progress {
                    direction,
                    elapsed,
                    bytes,
                    bits_per_second: e.bits_per_second,
                });
                match d {
                    Decision::Continue => {}
                    Decision::Converged => break Ok(StopReason::Converged),
                    Decision::DurationCap => break Ok(StopReason::DurationCap),
                    Decision::ByteCap => break Ok(StopReason::ByteCap),
                }
            }
            st = read_state_untimed(&mut ctrl) => {
                break match st {
                    Ok(State::ServerTerminate) => Ok(StopReason::ServerTerminated),
                    Ok(State::ServerError) => Err(read_server_error(&mut ctrl, t).await),
                    Ok(other) => Err(ProtocolError::UnexpectedState(other).into()),
                    Err(e) => Err(e),
                };
            }
        }
    };
    let duration = start.elapsed();
    if matches!(outcome, Ok(StopReason::ServerTerminated)) {
        // The server may end a test before our first sample (a fast link against a
        // small cap); the bytes moved so far over a known time are still a measurement,
        // so the end counts as a last sample rather than leaving the estimate at 0.
        let bytes: u64 = streams.iter().map(DataStream::delivered_bytes).sum();
        let lossy: u64 = streams.iter().map(DataStream::disturbance_bytes).sum();
        let _ = est.push_sample(duration, bytes, lossy);
    }
    stop.cancel();
    let stop_reason = outcome?;
    for s in &mut streams {
        if let Err(e) = s.join().await {
            tracing::debug!(error = %e, "data stream ended with an error");
        }
    }
    let bytes: u64 = streams.iter().map(DataStream::delivered_bytes).sum();
    let app_bytes: u64 = streams.iter().map(DataStream::app_bytes).sum();
    let infos: Vec<_> = streams.iter().filter_map(DataStream::info).collect();
    let rtt_us = match direction {
        Direction::Send => infos.iter().map(|i| i.rtt_us).max(),
        Direction::Receive => infos
            .iter()
            .map(|i| {
                if i.rcv_rtt_us > 0 {
                    i.rcv_rtt_us
                } else {
                    i.rtt_us
                }
            })
            .max(),
    };
    let our_retrans = match direction {
        Direction::Send => streams
            .iter()
            .map(DataStream::retransmits)
            .sum::<Option<u64>>(),
        Direction::Receive => None,
    };
    let estimate = est.estimate();
    let mut report = DirectionReport {
        direction,
        bits_per_second: estimate.bits_per_second,
        converged: estimate.converged,
        stop: stop_reason,
        bytes,
        app_bytes,
        peer_bytes: None,
        duration,
        warmup: estimate.warmup,
        retransmits: our_retrans,
        rtt_us,
        streams: cfg.streams,
    };
    if stop_reason == StopReason::ServerTerminated {
        tracing::info!(%direction, "server ended the test early; reporting what was measured");
        return Ok(report);
    }

    write_state(&mut ctrl, State::TestEnd, t).await?;
    match expect_state(&mut ctrl, State::ExchangeResults, t, "EXCHANGE_RESULTS").await {
        Ok(()) => {}
        // The server's cap fired as our own ended the test (equal caps race): the data
        // phase was complete on our side, so what we measured stands.
        Err(ThroughputError::ServerTerminated) => {
            tracing::info!(%direction, "server ended the test as we did; reporting what was measured");
            return Ok(report);
        }
        Err(e) => return Err(e),
    }
    let (cpu_total, cpu_user, cpu_system) = cpu.since();
    let ours = TestResults {
        cpu_util_total: cpu_total,
        cpu_util_user: cpu_user,
        cpu_util_system: cpu_system,
        sender_has_retransmits: if direction == Direction::Send { 1 } else { -1 },
        congestion_used: None,
        streams: streams
            .iter()
            .enumerate()
            .map(|(i, s)| StreamResult {
                id: stream_id(i),
                bytes: s.app_bytes(),
                retransmits: match direction {
                    Direction::Send => s
                        .retransmits()
                        .and_then(|r| i64::try_from(r).ok())
                        .unwrap_or(0),
                    Direction::Receive => -1,
                },
                start_time: 0.0,
                end_time: duration.as_secs_f64(),
            })
            .collect(),
        server_output_text: None,
        estimate_bps: Some(estimate.bits_per_second).filter(|b| b.is_finite() && *b > 0.0),
    };
    write_frame(&mut ctrl, &ours.to_json(), t).await?;
    let body = read_frame(&mut ctrl, MAX_RESULTS_LEN, t, "server results").await?;
    let theirs = TestResults::from_json(&body)?;
    report.peer_bytes = Some(theirs.total_bytes());
    if direction == Direction::Receive {
        report.retransmits = theirs.total_retransmits();
    }
    expect_state(&mut ctrl, State::DisplayResults, t, "DISPLAY_RESULTS").await?;
    // Close the data streams before saying we are done, as iperf3's client does.
    drop(streams);
    write_state(&mut ctrl, State::IperfDone, t).await?;
    let _ = ctrl.shutdown().await;
    tracing::debug!(?report, "throughput test done");
    Ok(report)
}
