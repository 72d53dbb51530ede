//! `linkmeter-agent run`: the long-running agent the DaemonSet runs.
//!
//! Independent tasks share one [`Shared`]: ICMP rounds ([`icmp_loop`]), throughput
//! tests ([`throughput_loop`]) and the throughput server, the system and GPU collectors
//! ([`collect_loop`]), and the HTTP endpoints ([`http`]). None waits for another, so a
//! slow or failing one never delays the rest. A [`CancellationToken`] stops them all.

pub mod budget;
pub mod collect_loop;
pub mod config;
pub mod http;
pub mod icmp_loop;
pub mod metrics;
pub mod outcome;
pub mod peers;
pub mod record;
pub mod served;
pub mod throughput_loop;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use linkmeter_aggregator::api::NodeTopologyStatus;
use linkmeter_runtime::metrics_http;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::collect::gpu::{GpuCollector, GpuConfig};
use crate::collect::system::{SystemCollector, SystemConfig};
use crate::state::AgentState;
use crate::throughput::server::{Server, ServerConfig};
pub use config::{ConfigError, RunArgs, RunConfig};
pub use metrics::Metrics;
use outcome::Outcome;
pub use peers::{PeerSource, StaticPeers};

/// How much longer than our own client tests the server lets a peer's test run.
const SERVER_CAP_SLACK: Duration = Duration::from_secs(2);

/// State shared by the daemon's tasks.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub config: RunConfig,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// One throughput test at a time on this node, as client or server.
    pub test_gate: Arc<Semaphore>,
    /// Peers' tests this node served, for the throughput planner.
    pub served: served::ServedLog,
    state: Mutex<AgentState>,
    started: Instant,
    /// Milliseconds since `started` at the end of the last ICMP round; `u64::MAX` none.
    last_round_ms: AtomicU64,
}

impl Shared {
    /// Fresh shared state for `config`.
    pub fn new(config: RunConfig) -> Self {
        let state = AgentState::new(
            &config.node_name,
            config.window_samples,
            config.window.as_secs(),
        );
        Shared {
            metrics: Metrics::new(config.max_peer_series),
            test_gate: Arc::new(Semaphore::new(1)),
            served: served::ServedLog::default(),
            state: Mutex::new(state),
            started: Instant::now(),
            last_round_ms: AtomicU64::new(u64::MAX),
            config,
        }
    }

    /// Locks the state. A panic in another task while holding it leaves plain data,
    /// so a poisoned lock is used as is rather than taking the agent down.
    pub fn lock_state(&self) -> MutexGuard<'_, AgentState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that an ICMP round just finished.
    pub fn mark_round_done(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_round_ms.store(ms, Ordering::Relaxed);
    }

    /// Ready once the first ICMP round is done.
    pub fn is_ready(&self) -> bool {
        self.last_round_ms.load(Ordering::Relaxed) != u64::MAX
    }

    /// Why the agent is unhealthy (the ICMP loop stopped making rounds), if it is.
    pub fn health_problem(&self) -> Option<String> {
        let c = &self.config;
        let round = c.icmp.interval.saturating_mul(c.icmp.count) + c.icmp.timeout;
        let limit = (c.ping_interval + round).saturating_mul(3);
        let now = self.started.elapsed();
        let last = self.last_round_ms.load(Ordering::Relaxed);
        let since = if last == u64::MAX {
            now
        } else {
            now.saturating_sub(Duration::from_millis(last))
        };
        (since > limit).then(|| format!("no ICMP round finished for {}s", since.as_secs()))
    }

    /// The current report in the NodeTopology status shape.
    pub fn status(&self) -> NodeTopologyStatus {
        self.lock_state().status()
    }
}

/// Addresses the daemon bound, for logs and tests.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// HTTP endpoints.
    pub http: SocketAddr,
    /// Throughput server, when running.
    pub throughput: Option<SocketAddr>,
}

/// A task the daemon runs beside its own, handed in by whoever starts it (the CLI
/// hands in the NodeTopology publisher with `--kube`), so the daemon never names what
/// runs on top of it and its imports point one way.
pub trait Addon: Send {
    /// Registers the addon's metrics, before the shared state is frozen.
    fn register(&self, metrics: &mut Metrics);
    /// The addon's task, run until `shutdown` is cancelled.
    fn start(
        self: Box<Self>,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Runs the daemon until `shutdown` is cancelled. Fails only when a listening socket
/// cannot be bound; everything after that is logged and kept running. Each of
/// `addons` runs as one more task with the shared state.
pub async fn run(
    config: RunConfig,
    source: Arc<dyn PeerSource>,
    addons: Vec<Box<dyn Addon>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} for HTTP", config.listen))?;
    // One test at a time on this node, as client or server: both sides share this.
    let test_gate = Arc::new(Semaphore::new(1));
    let server =
        if config.throughput.serve {
            let t = &config.throughput;
            let mut sc = ServerConfig::new(SocketAddr::new(config.listen.ip(), t.port));
            // Our caps as a server sit above our caps as a client: a peer with the same
            // settings stops its test on its own cap first, where equal caps race its
            // TEST_END and a reverse test ended in SERVER_TERMINATE (seen with 1 s).
            sc.max_duration = t.max_duration + SERVER_CAP_SLACK;
            sc.max_bytes = t.max_bytes.saturating_add(t.max_bytes / 4);
            sc.allow = t.allow.clone();
            sc.gate = Some(test_gate.clone());
            Some(Server::bind(sc).await.with_context(|| {
                format!("cannot listen on port {} for throughput tests", t.port)
            })?)
        } else {
            None
        };
    let bound = Bound {
        http: listener.local_addr().context("HTTP listener address")?,
        throughput: server.as_ref().and_then(|s| s.local_addr().ok()),
    };
    let mut shared = Shared::new(config);
    shared.test_gate = test_gate;
    for addon in &addons {
        addon.register(&mut shared.metrics);
    }
    let shared = Arc::new(shared);
    tracing::info!(
        node = %shared.config.node_name,
        http = %bound.http,
        throughput = ?bound.throughput,
        peers = shared.config.peers.len(),
        addons = addons.len(),
        "linkmeter agent started"
    );

    let mut tasks = JoinSet::new();
    tasks.spawn(icmp_loop::run(
        shared.clone(),
        source.clone(),
        shutdown.clone(),
    ));
    if shared.config.throughput.client {
        tasks.spawn(throughput_loop::run(
            shared.clone(),
            source.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(server) = server {
        let sh = shared.clone();
        let mut outcomes = server.subscribe();
        let token = shutdown.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    o = outcomes.recv() => match o {
                        Ok(o) => served::record(&sh, &o),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    }
                }
            }
        });
        let token = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = server.run(token).await {
                tracing::error!(error = %e, "throughput server stopped");
            }
        });
    }
    if let Some(interval) = shared.config.system_interval {
        let h = &shared.config.host;
        let collector = SystemCollector::new(SystemConfig {
            proc_root: h.host_proc.clone(),
            sys_root: h.host_sys.clone(),
            root_fs: h.host_root.clone(),
            ..SystemConfig::default()
        });
        tasks.spawn(collect_loop::run(
            shared.clone(),
            collector,
            interval,
            |r| {
                if r.condition.available {
                    Outcome::Working
                } else {
                    Outcome::Failing
                }
            },
            Shared::record_system,
            shutdown.clone(),
        ));
    }
    if let Some(interval) = shared.config.gpu_interval {
        let collector = GpuCollector::new(GpuConfig {
            library_path: shared.config.nvml_library.clone(),
        });
        tasks.spawn(collect_loop::run(
            shared.clone(),
            collector,
            interval,
            // No driver is a normal state for a node without GPUs: nothing to do, not a
            // failure, and not a success either.
            |r| match (r.condition.available, r.condition.reason.as_str()) {
                (true, _) => Outcome::Working,
                (false, "LibraryNotFound") => Outcome::Idle,
                (false, _) => Outcome::Failing,
            },
            Shared::record_gpu,
            shutdown.clone(),
        ));
    }
    for addon in addons {
        tasks.spawn(addon.start(shared.clone(), shutdown.clone()));
    }
    {
        let sh = shared.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = metrics_http::serve(listener, http::router(sh), token).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
    }

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    // Every task watches the token; give them a second to close sockets, then abort
    // whatever is left (a blocking collector cannot be interrupted and is abandoned).
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop within 1s; aborting them");
        tasks.abort_all();
    }
    Ok(())
}
