//! `linkmeter-aggregator run`: the in-cluster controller.
//!
//! Watches Nodes and NodeTopologies ([`watch`] into [`store`]), recomputes the cluster
//! view when something changed, at most once per `--interval` ([`pacer`],
//! [`control_loop`]), and, on the replica that holds the Lease ([`leader`]), writes the
//! ClusterTopology and the Diktyo NetworkTopology by server-side apply when their content
//! changed ([`publish`] through [`writer`]). `/metrics`, `/healthz` and `/readyz` are
//! served by [`http`]. Pods are watched too: the leader writes each node's
//! NodeBandwidth and (with `--label-nodes`) its uplink label from them
//! ([`placement_loop`], [`placement_publish`]), and every replica serves the scheduler
//! extender from the last view and the pods ([`extender_http`]).
//!
//! Exit status: 0 after SIGTERM/SIGINT, 64 for bad flags or configuration, 1 when the
//! process cannot run (the port is taken, the HTTP server fails).

mod args;
mod control_loop;
mod extender_http;
#[cfg(test)]
mod fake_writer;
mod http;
mod leader;
mod metrics;
mod objects;
mod pacer;
mod placement_loop;
mod placement_publish;
mod publish;
mod shared;
mod store;
mod watch;
mod writer;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use linkmeter_runtime::exit::{FAILURE, USAGE};
use linkmeter_runtime::kube_client;
use linkmeter_runtime::logging::{self, Colour};
use tokio_util::sync::CancellationToken;

pub use args::RunArgs;
pub use linkmeter_runtime::logging::LogFormat;

use args::Settings;
use control_loop::{ControlLoop, LoopConfig};
use placement_publish::PlacementPublisher;
use publish::Publisher;
use shared::Shared;
use writer::KubeWriter;

/// How long shutdown waits for open HTTP connections.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

/// Runs the controller until SIGTERM or SIGINT; returns the process exit code.
pub fn run(args: RunArgs) -> ExitCode {
    let settings = match Settings::from_args(&args) {
        Ok(s) => s,
        Err(msg) => return fail(USAGE, &msg),
    };
    // kube's client builder logs every new connection at info.
    let filter = logging::quiet_kube_client(settings.log_level.trim());
    if let Err(e) = logging::init(settings.log_format, &filter, Colour::WhenTerminal) {
        return fail(USAGE, &format!("--log-level {:?}: {e}", settings.log_level));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("linkmeter-aggregator")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(FAILURE, &format!("cannot start the async runtime: {e}"));
        }
    };
    let code = runtime.block_on(serve(settings));
    // A computation still running on a blocking thread is not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}

/// Prints the one error line and gives the exit code.
fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("linkmeter-aggregator: {msg}");
    ExitCode::from(code)
}

async fn serve(settings: Settings) -> u8 {
    let client = match kube_client::connect(settings.kubeconfig.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("linkmeter-aggregator: {e}");
            return USAGE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("linkmeter-aggregator: --listen {}: {e}", settings.listen);
            return FAILURE;
        }
    };
    let extender_listener = match settings.extender {
        Some((addr, _)) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("linkmeter-aggregator: --extender-listen {addr}: {e}");
                return FAILURE;
            }
        },
        None => None,
    };
    let shutdown = CancellationToken::new();
    if let Err(e) = linkmeter_runtime::shutdown::cancel_on_signals(shutdown.clone()) {
        eprintln!("linkmeter-aggregator: cannot install signal handlers: {e}");
        return FAILURE;
    }
    let identity = settings
        .election
        .as_ref()
        .map_or_else(args::default_identity, |e| e.identity.clone());
    log_startup(&settings, &identity);

    let shared = Arc::new(Shared::new());
    let watches = [
        watch::spawn_nodes(client.clone(), shared.clone(), shutdown.clone()),
        watch::spawn_topologies(client.clone(), shared.clone(), shutdown.clone()),
        watch::spawn_pods(client.clone(), shared.clone(), shutdown.clone()),
    ];
    // HTTP stops on its own token, after the loop and the Lease release, so that
    // `/healthz` answers until the process is really going.
    let http_stop = CancellationToken::new();
    let mut http = tokio::spawn(linkmeter_runtime::metrics_http::serve(
        listener,
        http::router(shared.clone()),
        http_stop.clone(),
    ));

    let mut extender = extender_listener.map(|listener| {
        let max_body = settings.extender.map_or(0, |(_, b)| b);
        tokio::spawn(linkmeter_runtime::metrics_http::serve(
            listener,
            extender_http::router(shared.clone(), max_body),
            http_stop.clone(),
        ))
    });

    // With election off the sender must live as long as the loop reads it.
    let (_always, leader_rx, election) = match settings.election.clone() {
        Some(e) => {
            let (rx, task) = leader::spawn(client.clone(), e, shutdown.clone());
            (None, rx, Some(task))
        }
        None => {
            let (tx, rx) = leader::always();
            tracing::info!(identity = %identity, "leader election off: this process writes");
            (Some(tx), rx, None)
        }
    };

    let placement = tokio::spawn(placement_loop::run(
        shared.clone(),
        PlacementPublisher::new(
            KubeWriter::new(client.clone()),
            settings.node_bandwidth,
            settings.label_threshold,
        ),
        leader_rx.clone(),
        shutdown.clone(),
    ));
    let publisher = Publisher::new(KubeWriter::new(client), settings.targets.clone());
    let config = LoopConfig {
        interval: settings.interval,
        refresh: settings.refresh,
        stale_after: settings.stale_after,
        weights_name: settings.targets.weights_name.clone(),
        configmap_name: settings.targets.configmap_name.clone(),
        identity,
    };
    let mut control = ControlLoop::new(shared.clone(), publisher, config);
    let mut code = 0;
    let mut http_done = false;
    tokio::select! {
        () = control.run(leader_rx, shutdown.clone()) => {}
        served = &mut http => {
            http_done = true;
            let why = match served {
                Ok(Ok(())) => "stopped".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::error!(error = %why, "the HTTP server failed; shutting down");
            shutdown.cancel();
            code = FAILURE;
        }
    }
    // Writes have stopped; give the Lease back so the other replica takes over now.
    if let Some(task) = election {
        let _ = task.await;
    }
    for w in watches {
        w.abort();
    }
    placement.abort();
    http_stop.cancel();
    if let Some(e) = extender.as_mut()
        && tokio::time::timeout(HTTP_DRAIN, &mut *e).await.is_err()
    {
        e.abort();
    }
    if !http_done && tokio::time::timeout(HTTP_DRAIN, &mut http).await.is_err() {
        http.abort();
    }
    tracing::info!(code, "stopped");
    code
}

fn log_startup(s: &Settings, identity: &str) {
    let network = s
        .targets
        .network_topology
        .as_ref()
        .map_or_else(|| "off".to_owned(), |(ns, n)| format!("{ns}/{n}"));
    let lease = s.election.as_ref().map_or_else(
        || "off".to_owned(),
        |e| format!("{}/{}", e.namespace, e.lease_name),
    );
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        interval = %humantime::format_duration(s.interval),
        refresh = %humantime::format_duration(s.refresh),
        stale_after = %humantime::format_duration(s.stale_after),
        cluster_topology = %s.targets.cluster_topology,
        network_topology = %network,
        weights_name = %s.targets.weights_name,
        configmap_name = %s.targets.configmap_name,
        listen = %s.listen,
        extender = %s.extender.map_or_else(|| "off".to_owned(), |(a, _)| a.to_string()),
        label_nodes = s.label_threshold.is_some(),
        node_bandwidth = s.node_bandwidth,
        lease = %lease,
        lease_duration_s = s.election.as_ref().map(|e| e.duration_secs),
        identity,
        "starting"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use args::tests::parse;

    #[test]
    fn bad_flags_exit_64() {
        assert_eq!(run(parse(&["--interval", "0s"])), ExitCode::from(USAGE));
        assert_eq!(
            run(parse(&["--lease-duration", "1s"])),
            ExitCode::from(USAGE)
        );
    }
}
