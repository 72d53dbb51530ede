//! The extender with a real kube-scheduler 1.20.2 against the real test apiserver: the
//! seed cluster of DESIGN.md §9 (`vps` behind 10 Mbit/s and 45 ms RTT, `home-1` and
//! `home-2` on a 1 Gbit/s LAN, a 24 GiB GPU on home-1) as Node objects with the
//! NodeTopologies its agents would write (`placement::seed`), one
//! `linkmeter-aggregator run --extender-listen`, and two scheduler profiles: one
//! `nodeCacheCapable` (node names), one not (whole Nodes).
//!
//! Shown: a pod with `min-bandwidth: 100M` and `peers` of a pod on home-1 lands on a
//! home node; a pod that fits nowhere stays Pending and its FailedScheduling event
//! carries our reasons; two 600 Mbit/s egress pods go to different home nodes; a
//! 16 GiB-GPU pod lands on home-1 (through the whole-Nodes profile); the NodeBandwidth
//! objects and the uplink labels follow; `explain` reads the cluster.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use linkmeter_aggregator::api::{NodeBandwidth, REGION_LABEL, UPLINK_CLASS_LABEL, ZONE_LABEL};
use linkmeter_aggregator::placement::{request, seed};
use linkmeter_tests::agent::{AgentProcess, free_port, http_get, wait_for};
use linkmeter_tests::aggregator::{self as agg, admin_get, request as api_request};
use linkmeter_tests::bins;
use linkmeter_tests::kube_env::KubeEnv;
use linkmeter_tests::kube_scheduler::{
    ExtenderConfig, KubeScheduler, SchedulerConfig, create_node, create_pod, pod_manifest,
    wait_for_binding, wait_for_failed_scheduling,
};
use serde_json::{Value, json};

const NS: &str = "shop";
/// The profile that sends node names.
const BY_NAME: &str = "linkmeter-scheduler";
/// The profile that sends whole Nodes.
const BY_NODE: &str = "linkmeter-scheduler-nodes";
const BIND_TIMEOUT: Duration = Duration::from_secs(30);

fn start_aggregator(kube: &KubeEnv, extender: SocketAddr) -> Result<(AgentProcess, SocketAddr)> {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let proc = agg::start_with_extender(
        kube.kubeconfig_path(),
        "extender-test",
        listen,
        extender,
        Duration::from_millis(500),
    )?;
    Ok((proc, listen))
}

/// The seed's Nodes and NodeTopologies, written as the agents would (object, then the
/// status by server-side apply).
fn load_seed(kube: &KubeEnv) -> Result<()> {
    let (infos, topologies) = seed::cluster(jiff::Timestamp::now());
    for n in &infos {
        let zone = n.zone.clone().unwrap_or_default();
        let region = n.region.clone().unwrap_or_default();
        create_node(
            kube,
            &n.name,
            &[(ZONE_LABEL, &zone), (REGION_LABEL, &region)],
            "8",
            "32Gi",
            "110",
        )?;
    }
    let token = kube.admin_token().to_owned();
    for t in &topologies {
        let name = t.metadata.name.clone().unwrap_or_default();
        let object = json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                            "metadata": {"name": name}, "spec": {}});
        kube.kubectl_stdin(&["create", "-f", "-"], &object.to_string())?;
        let mut with_status = object.clone();
        with_status["status"] = serde_json::to_value(&t.status)?;
        let resp = api_request(
            kube,
            &token,
            "PATCH",
            &format!(
                "/apis/linkmeter.dev/v1alpha1/nodetopologies/{name}/status?fieldManager=linkmeter-agent&force=true"
            ),
            Some(("application/apply-patch+yaml", &with_status)),
        )?;
        ensure!(resp.status == 200, "status apply {name}: {resp:?}");
    }
    Ok(())
}

fn annotated(name: &str, scheduler: &str, annotations: Value) -> Value {
    let mut pod = pod_manifest(NS, name, scheduler, &[("cpu", "100m")]);
    pod["metadata"]["annotations"] = annotations;
    pod
}

fn bound(kube: &KubeEnv, pod: &Value) -> Result<String> {
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let start = Instant::now();
    create_pod(kube, pod)?;
    let node = wait_for_binding(kube, NS, &name, BIND_TIMEOUT)?;
    println!("{name}: bound to {node} in {:?}", start.elapsed());
    Ok(node)
}

fn node_bandwidth(kube: &KubeEnv, node: &str) -> Result<Option<NodeBandwidth>> {
    admin_get(
        kube,
        &format!("/apis/linkmeter.dev/v1alpha1/nodebandwidths/{node}"),
    )?
    .map(serde_json::from_value)
    .transpose()
    .context("a NodeBandwidth that does not read")
}

/// Waits until `node`'s NodeBandwidth reserves `egress` bit/s.
fn wait_reserved(kube: &KubeEnv, node: &str, egress: u64) -> Result<NodeBandwidth> {
    let mut last = None;
    let got = wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
        let nb = node_bandwidth(kube, node).ok().flatten()?;
        let reserved = nb.status.as_ref().map(|s| s.egress.reserved_bps);
        last = Some(nb.clone());
        (reserved == Some(egress)).then_some(nb)
    });
    got.with_context(|| format!("NodeBandwidth {node} never reserved {egress}: {last:?}"))
}

#[test]
fn the_scheduler_places_pods_on_the_measured_network() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    agg::apply_manifests(&kube, "extender-test")?;
    kube.kubectl_ok(&["create", "namespace", NS])?;
    load_seed(&kube)?;
    let extender: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let (aggregator, metrics) = start_aggregator(&kube, extender)?;
    let url = format!("http://{extender}");
    let by_name = KubeScheduler::start(
        &kube,
        &SchedulerConfig {
            scheduler_name: BY_NAME.into(),
            ..SchedulerConfig::with_extender(ExtenderConfig {
                url_prefix: url.clone(),
                node_cache_capable: true,
                weight: 5,
                ignorable: false,
            })
        },
    )?;
    let by_node = KubeScheduler::start(
        &kube,
        &SchedulerConfig {
            scheduler_name: BY_NODE.into(),
            ..SchedulerConfig::with_extender(ExtenderConfig {
                url_prefix: url,
                node_cache_capable: false,
                weight: 5,
                ignorable: false,
            })
        },
    )?;
    let result = scenarios(&kube, metrics);
    if result.is_err() {
        eprintln!("--- aggregator log\n{}", aggregator.log());
        eprintln!("--- scheduler (names) log\n{}", by_name.log_tail(60));
        eprintln!("--- scheduler (nodes) log\n{}", by_node.log_tail(60));
    }
    result
}

fn scenarios(kube: &KubeEnv, metrics: SocketAddr) -> Result<()> {
    // A database on home-1, bound by hand (as if placed earlier).
    let mut db = pod_manifest(NS, "db-0", BY_NAME, &[("cpu", "100m")]);
    db["metadata"]["labels"] = json!({"app": "db"});
    db["spec"]["nodeName"] = json!("home-1");
    create_pod(kube, &db)?;

    // 1. 100 Mbit/s and < 10 ms to the database: a home node, never vps.
    let api = annotated(
        "api",
        BY_NAME,
        json!({request::MIN_BANDWIDTH: "100M", request::MAX_LATENCY: "10ms", request::PEERS: "app=db"}),
    );
    let node = bound(kube, &api)?;
    ensure!(node.starts_with("home-"), "api went to {node}");
    let api_node = node;

    // 2. Fits nowhere: Pending, with our reasons in the event.
    let greedy = annotated("greedy", BY_NAME, json!({request::MIN_BANDWIDTH: "5G"}));
    create_pod(kube, &greedy)?;
    let events = wait_for_failed_scheduling(kube, NS, "greedy", Duration::from_secs(30))?;
    let event = events.last().cloned().unwrap_or_default();
    println!("greedy: FailedScheduling: {event}");
    ensure!(
        event.contains("uplink 9.6 Mbit/s measured < 5 Gbit/s requested"),
        "event without the vps reason: {event}"
    );
    ensure!(
        event.contains("940 Mbit/s measured") && event.contains("< 5 Gbit/s requested"),
        "event without the home reasons: {event}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let still = admin_get(kube, &format!("/api/v1/namespaces/{NS}/pods/greedy"))?
        .context("greedy is gone")?;
    ensure!(
        still.pointer("/spec/nodeName").is_none(),
        "greedy was bound: {still}"
    );

    // 3. Two pods of 600 Mbit/s egress on 940 Mbit/s uplinks: one per home node. The
    // second is created once the first one's reservation shows.
    let first = annotated(
        "stream-1",
        BY_NAME,
        json!({request::EGRESS_BANDWIDTH: "600M"}),
    );
    let first_node = bound(kube, &first)?;
    ensure!(
        first_node.starts_with("home-"),
        "stream-1 went to {first_node}"
    );
    let held = if first_node == api_node {
        700_000_000
    } else {
        600_000_000
    };
    let nb = wait_reserved(kube, &first_node, held)?;
    println!("NodeBandwidth {first_node}: {:?}", nb.status);
    let second = annotated(
        "stream-2",
        BY_NAME,
        json!({request::EGRESS_BANDWIDTH: "600M"}),
    );
    let second_node = bound(kube, &second)?;
    ensure!(
        second_node.starts_with("home-") && second_node != first_node,
        "stream-2 went to {second_node}, stream-1 to {first_node}"
    );

    // 4. 16 GiB of free GPU memory: home-1, through the profile that sends whole Nodes.
    let gpu = annotated(
        "ollama",
        BY_NODE,
        json!({request::MIN_GPU_MEMORY_FREE: "16Gi"}),
    );
    let node = bound(kube, &gpu)?;
    ensure!(node == "home-1", "ollama went to {node}");

    // 5. The uplink labels.
    for (node, want) in [("vps", "slow"), ("home-1", "fast"), ("home-2", "fast")] {
        let got = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            let n = admin_get(kube, &format!("/api/v1/nodes/{node}"))
                .ok()
                .flatten()?;
            let v = n.pointer(&format!(
                "/metadata/labels/{}",
                UPLINK_CLASS_LABEL.replace('/', "~1")
            ))?;
            (v == want).then_some(())
        });
        ensure!(
            got.is_some(),
            "{node} never got {UPLINK_CLASS_LABEL}={want}"
        );
    }

    // 6. explain from the cluster says what the event said.
    let explain = |pod: &str| -> Result<String> {
        let out = Command::new(bins::aggregator())
            .args(["explain", &format!("{NS}/{pod}"), "--kubeconfig"])
            .arg(kube.kubeconfig_path())
            .env_remove("KUBECONFIG")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("explain {NS}/{pod}:\n{text}");
        ensure!(
            out.status.success(),
            "explain {pod}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(text)
    };
    let text = explain("api")?;
    ensure!(text.contains("co-located with a peer"), "{text}");
    ensure!(
        text.contains("RTT 45 ms to home-1 measured > 10 ms allowed"),
        "{text}"
    );
    let text = explain("greedy")?;
    ensure!(text.contains("0 of 3 nodes fit"), "{text}");
    ensure!(
        text.contains("uplink 9.6 Mbit/s measured < 5 Gbit/s requested"),
        "{text}"
    );

    // The extender served both verbs without an error answer.
    let m = http_get(None, &format!("http://{metrics}/metrics"), None)?;
    let served = |verb: &str, result: &str| {
        agg::sum_samples(
            &m,
            "linkmeter_aggregator_extender_requests_total",
            &[("verb", verb), ("result", result)],
        )
    };
    println!(
        "extender requests: filter ok {}, prioritize ok {}, errors {}",
        served("filter", "ok"),
        served("prioritize", "ok"),
        served("filter", "error") + served("prioritize", "error")
    );
    ensure!(served("filter", "ok") >= 5.0, "{m}");
    // Prioritize is skipped when a single node passes the filter (stream-2, ollama).
    ensure!(served("prioritize", "ok") >= 2.0, "{m}");
    ensure!(
        served("filter", "error") + served("prioritize", "error") == 0.0,
        "{m}"
    );
    Ok(())
}
