//! A real kube-scheduler 1.20 against the test kube-apiserver, through the
//! `linkmeter_tests::kube_scheduler` harness: the stock scheduler binds a pod onto one of
//! two kubelet-less Nodes, and with an extender that nobody serves (not ignorable) the
//! pod stays unbound with a FailedScheduling event naming the failed call.
//!
//! Skips with `LINKMETER_SKIP_KUBE=1`; needs kube-scheduler from
//! `scripts/kube-env.sh install`.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use linkmeter_tests::agent::free_port;
use linkmeter_tests::kube_env::KubeEnv;
use linkmeter_tests::kube_scheduler::{
    DEFAULT_SCHEDULER_NAME, ExtenderConfig, KubeScheduler, SchedulerConfig, create_node,
    create_pod, failed_scheduling_events, get_pod, pod_condition, pod_manifest, wait_for_binding,
    wait_for_failed_scheduling,
};

const NS: &str = "default";
const NODES: [&str; 2] = ["sched-n1", "sched-n2"];

/// Creates the two test Nodes, 4 CPUs, 8 GiB and 110 pods each.
fn create_nodes(kube: &KubeEnv) -> Result<()> {
    for name in NODES {
        create_node(
            kube,
            name,
            &[("linkmeter.dev/test", "scheduler")],
            "4",
            "8Gi",
            "110",
        )?;
    }
    Ok(())
}

/// Starts the scheduler and prints how long that took.
fn start_scheduler(kube: &KubeEnv, config: &SchedulerConfig) -> Result<KubeScheduler> {
    let started = Instant::now();
    let sched = KubeScheduler::start(kube, config)?;
    println!(
        "kube-scheduler (pid {}) ready in {:?}; config {}",
        sched.pid(),
        started.elapsed(),
        sched.config_path().display()
    );
    Ok(sched)
}

#[test]
fn stock_scheduler_binds_a_pod_without_extender() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    create_nodes(&kube)?;
    let sched = start_scheduler(&kube, &SchedulerConfig::default())?;

    let pod = pod_manifest(NS, "bind-me", DEFAULT_SCHEDULER_NAME, &[("cpu", "100m")]);
    let before = Instant::now();
    create_pod(&kube, &pod)?;
    let created = Instant::now();
    let node = wait_for_binding(&kube, NS, "bind-me", Duration::from_secs(30))
        .map_err(|e| e.context(format!("kube-scheduler log tail:\n{}", sched.log_tail(30))))?;
    println!(
        "pod {NS}/bind-me bound to {node} {:?} after create_pod returned ({:?} after it \
         was called; polled every 50 ms)",
        created.elapsed(),
        before.elapsed()
    );
    ensure!(
        NODES.contains(&node.as_str()),
        "bound to unknown node {node}"
    );

    // The scheduler, not only the binding, reports success on the pod.
    let scheduled = pod_condition(&kube, NS, "bind-me", "PodScheduled")?;
    ensure!(
        scheduled
            .as_ref()
            .and_then(|c| c.get("status"))
            .and_then(|s| s.as_str())
            == Some("True"),
        "PodScheduled of the bound pod: {scheduled:?}"
    );
    Ok(())
}

#[test]
fn unreachable_extender_leaves_pod_pending_with_event() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    create_nodes(&kube)?;
    // Bound and released at once: nobody listens there, so connecting is refused.
    let port = free_port()?;
    let url_prefix = format!("http://127.0.0.1:{port}/scheduler");
    let sched = start_scheduler(
        &kube,
        &SchedulerConfig::with_extender(ExtenderConfig {
            url_prefix: url_prefix.clone(),
            node_cache_capable: true,
            weight: 1,
            ignorable: false,
        }),
    )?;

    let pod = pod_manifest(NS, "stuck", DEFAULT_SCHEDULER_NAME, &[("cpu", "100m")]);
    create_pod(&kube, &pod)?;
    let created = Instant::now();
    let events = wait_for_failed_scheduling(&kube, NS, "stuck", Duration::from_secs(30))
        .map_err(|e| e.context(format!("kube-scheduler log tail:\n{}", sched.log_tail(30))))?;
    println!(
        "FailedScheduling {:?} after creation: {events:#?}",
        created.elapsed()
    );
    let filter_url = format!("{url_prefix}/filter");
    ensure!(
        events
            .iter()
            .any(|m| m.contains(&filter_url) && m.contains("connection refused")),
        "no FailedScheduling event names {filter_url} and `connection refused`: {events:?}"
    );

    // The scheduler retries with backoff; the pod must stay unbound meanwhile.
    std::thread::sleep(Duration::from_secs(2));
    let node = get_pod(&kube, NS, "stuck")?
        .and_then(|p| p.pointer("/spec/nodeName").cloned())
        .unwrap_or_default();
    ensure!(
        node.as_str().is_none_or(str::is_empty),
        "pod bound to {node} although the extender is down"
    );
    println!(
        "all FailedScheduling messages: {:?}",
        failed_scheduling_events(&kube, NS, "stuck")?
    );
    Ok(())
}
