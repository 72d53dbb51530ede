//! Throughput tests to peers, within the budget the [`Planner`] enforces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::budget::{Attempt, Plan, Planner};
use super::peers::PeerSource;
use super::record::ClientTest;
use crate::probe::resolve_peers;
use crate::state::ThroughputFigures;
use crate::throughput::ThroughputError;
use crate::throughput::client::{ClientConfig, Direction, run_test};
use crate::throughput::estimator::EstimatorConfig;

/// How long a refused or busy control connection is retried within one attempt.
const SETUP_RETRY: Duration = Duration::from_secs(1);

/// Runs client tests until `shutdown`. Each test measures sending then receiving; at
/// most one test runs on this node at a time, as client or server (the shared gate).
pub async fn run(shared: Arc<Shared>, source: Arc<dyn PeerSource>, shutdown: CancellationToken) {
    let cfg = shared.config.throughput.clone();
    let mut planner = Planner::new(
        cfg.period,
        cfg.bytes_per_hour,
        cfg.max_bytes.saturating_mul(2),
    );
    let mut peers_rx = source.watch();
    // Nodes started together (a DaemonSet rollout) must not all test at once.
    let first = cfg
        .period
        .min(Duration::from_secs(60))
        .mul_f64(rand::rng().random_range(0.05..0.5));
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(first) => {}
    }
    loop {
        for (name, mark) in shared.served.take() {
            let served = Attempt::Served {
                bytes: mark.bytes,
                both: mark.both,
            };
            planner.record(&name, mark.at, served, 0.0);
        }
        let names: Vec<String> = peers_rx
            .borrow_and_update()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let now = Instant::now();
        let plan = planner.next(now.into_std(), &names);
        tracing::debug!(?plan, peers = names.len(), "throughput plan");
        match plan {
            Plan::Idle => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = peers_rx.changed() => {}
                }
            }
            Plan::WaitUntil(t) => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = peers_rx.changed() => {}
                    _ = tokio::time::sleep_until(Instant::from_std(t)) => {}
                }
            }
            Plan::Test(name) => {
                let Some(addr) = peer_address(&shared, &source, &name).await else {
                    planner.record(
                        &name,
                        Instant::now().into_std(),
                        Attempt::Failed { bytes: 0 },
                        jitter(),
                    );
                    continue;
                };
                let server = SocketAddr::new(addr, cfg.port);
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    p = shared.test_gate.clone().acquire_owned() => p,
                };
                let Ok(_permit) = permit else { return };
                let attempt = tokio::select! {
                    // Dropping the test future closes its sockets at once.
                    _ = shutdown.cancelled() => return,
                    a = test_peer(&shared, &name, server) => a,
                };
                planner.record(&name, Instant::now().into_std(), attempt, jitter());
            }
        }
    }
}

fn jitter() -> f64 {
    rand::rng().random_range(0.0..1.0)
}

/// The peer's address: the one the last ICMP round used, else a fresh lookup.
async fn peer_address(
    shared: &Shared,
    source: &Arc<dyn PeerSource>,
    name: &str,
) -> Option<std::net::IpAddr> {
    if let Some(a) = shared.lock_state().peer(name).and_then(|p| p.addr) {
        return Some(a);
    }
    let target = source
        .watch()
        .borrow()
        .iter()
        .find(|p| p.name == name)
        .cloned()?;
    resolve_peers(&[target]).await.into_iter().next()?.addr.ok()
}

/// Sends, then receives; records what was measured and how the attempt ended.
async fn test_peer(shared: &Shared, name: &str, server: SocketAddr) -> Attempt {
    let cfg = &shared.config.throughput;
    let mut client = ClientConfig::new(server);
    // The peer's server is also "busy" for the second or so of its own ICMP round and
    // while it holds itself for another client's second direction: worth a short retry
    // before a whole back-off.
    client.setup_retry = SETUP_RETRY;
    client.estimator = EstimatorConfig {
        max_duration: cfg.max_duration,
        max_bytes: cfg.max_bytes,
        ..EstimatorConfig::default()
    };
    let mut bytes = 0u64;
    let mut figures = ThroughputFigures::default();
    let started = Instant::now();
    for dir in [Direction::Send, Direction::Receive] {
        match run_test(&client, dir, &mut |_| {}).await {
            Ok(r) => {
                bytes = bytes.saturating_add(r.bytes);
                let unix = jiff::Timestamp::now();
                match dir {
                    Direction::Send => figures.tx_bps = Some(r.bits_per_second),
                    Direction::Receive => figures.rx_bps = Some(r.bits_per_second),
                }
                figures.measured_at = Some(unix);
                tracing::info!(peer = name, direction = %dir, mbps = r.bits_per_second / 1e6, bytes = r.bytes, stop = ?r.stop, "throughput measured");
            }
            Err(e) => {
                let busy = matches!(e, ThroughputError::Busy);
                let result = if busy { "busy" } else { "error" };
                if busy {
                    tracing::debug!(
                        peer = name,
                        "peer's throughput server is busy; retrying later"
                    );
                } else {
                    tracing::warn!(peer = name, error = %e, "throughput test failed");
                    figures.last_error = Some(format!("throughput: {e}"));
                }
                shared.record_client_test(
                    name,
                    ClientTest {
                        figures,
                        result,
                        bytes,
                        took: started.elapsed(),
                    },
                );
                return if busy {
                    Attempt::Busy
                } else {
                    Attempt::Failed { bytes }
                };
            }
        }
    }
    shared.record_client_test(
        name,
        ClientTest {
            figures,
            result: "ok",
            bytes,
            took: started.elapsed(),
        },
    );
    Attempt::Done { bytes }
}
