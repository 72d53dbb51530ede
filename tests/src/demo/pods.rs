//! Three example pods for the linkmeter scheduler profile, where they went and why:
//! a GPU pod that needs 100 Mbit/s, a latency-sensitive pod that talks to it, and a pod
//! that fits nowhere.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use linkmeter_aggregator::placement::request;
use serde_json::{Value, json};

use super::interrupt;
use super::stack::SCHEDULER_NAME;
use crate::kube_env::KubeEnv;
use crate::kube_scheduler::{
    bound_node, create_pod, failed_scheduling_events, get_pod, pod_manifest,
};

/// Namespace of the example pods.
pub const NAMESPACE: &str = "demo";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One example pod and what it asks.
pub struct Example {
    /// Pod name.
    pub name: &'static str,
    /// What it stands for, in words.
    pub about: &'static str,
    /// Its labels.
    pub labels: Value,
    /// Its linkmeter annotations.
    pub annotations: Value,
    /// Where it must land: a node-name prefix, or `None` for "nowhere".
    pub expect: Option<&'static str>,
}

/// The examples, in the order they are created (the second talks to the first).
pub fn examples() -> Vec<Example> {
    vec![
        Example {
            name: "ollama",
            about: "a GPU pod: 16 GiB of free GPU memory and 100 Mbit/s of free uplink",
            labels: json!({"app": "ollama"}),
            annotations: json!({
                request::MIN_GPU_MEMORY_FREE: "16Gi",
                request::MIN_BANDWIDTH: "100M",
            }),
            expect: Some("home-1"),
        },
        Example {
            name: "webui",
            about: "latency-sensitive: under 5 ms and 100 Mbit/s to the pods labelled app=ollama",
            labels: json!({"app": "webui"}),
            annotations: json!({
                request::MAX_LATENCY: "5ms",
                request::MIN_BANDWIDTH: "100M",
                request::PEERS: "app=ollama",
            }),
            expect: Some("home-"),
        },
        Example {
            name: "backup",
            about: "fits nowhere: 2 Gbit/s of uplink, more than any node has",
            labels: json!({"app": "backup"}),
            annotations: json!({ request::MIN_BANDWIDTH: "2G" }),
            expect: None,
        },
    ]
}

/// Where one example went.
pub struct Placed {
    /// The node it was bound to, or `None` when it stayed Pending.
    pub node: Option<String>,
    /// The FailedScheduling event's message, for a pod that stayed Pending.
    pub event: Option<String>,
    /// `linkmeter-aggregator explain` for the pod.
    pub explain: String,
    /// How long until it was bound or failed.
    pub took: Duration,
}

/// Creates every example, waits for each to be bound or to fail, and explains it.
pub fn place_all(kube: &KubeEnv) -> Result<Vec<Placed>> {
    kube.kubectl_ok(&["create", "namespace", NAMESPACE])?;
    let mut out = Vec::new();
    for ex in examples() {
        let mut pod = pod_manifest(NAMESPACE, ex.name, SCHEDULER_NAME, &[("cpu", "100m")]);
        pod["metadata"]["labels"] = ex.labels.clone();
        pod["metadata"]["annotations"] = ex.annotations.clone();
        let start = Instant::now();
        create_pod(kube, &pod)?;
        let (node, event) = wait_for_outcome(kube, ex.name)?;
        let took = start.elapsed();
        let explain = explain(kube, ex.name)?;
        out.push(Placed {
            node,
            event,
            explain,
            took,
        });
    }
    Ok(out)
}

/// Bound (the node) or failed (the event), whichever comes first.
fn wait_for_outcome(kube: &KubeEnv, name: &str) -> Result<(Option<String>, Option<String>)> {
    let end = Instant::now() + TIMEOUT;
    loop {
        interrupt::check()?;
        let pod = get_pod(kube, NAMESPACE, name)?;
        if let Some(node) = pod.as_ref().and_then(bound_node) {
            return Ok((Some(node.to_owned()), None));
        }
        if let Some(event) = failed_scheduling_events(kube, NAMESPACE, name)?.pop() {
            return Ok((None, Some(event)));
        }
        ensure!(
            Instant::now() < end,
            "pod {NAMESPACE}/{name} neither bound nor failed within {TIMEOUT:?}"
        );
        interrupt::sleep(Duration::from_millis(200))?;
    }
}

/// `linkmeter-aggregator explain NAMESPACE/name` against the cluster.
fn explain(kube: &KubeEnv, name: &str) -> Result<String> {
    let out = Command::new(crate::bins::aggregator())
        .args(["explain", &format!("{NAMESPACE}/{name}"), "--kubeconfig"])
        .arg(kube.kubeconfig_path())
        .output()
        .context("running linkmeter-aggregator explain")?;
    ensure!(
        out.status.success(),
        "explain {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What went wrong with the placements, one line each (empty: as expected).
pub fn check(placed: &[Placed]) -> Vec<String> {
    let mut problems = Vec::new();
    for (ex, p) in examples().iter().zip(placed) {
        match (ex.expect, &p.node) {
            (Some(prefix), Some(node)) if node.starts_with(prefix) => {}
            (Some(prefix), got) => {
                problems.push(format!("{} went to {got:?}, expected {prefix}…", ex.name))
            }
            (None, Some(node)) => {
                problems.push(format!("{} was bound to {node}, expected Pending", ex.name))
            }
            (None, None) => {
                let event = p.event.as_deref().unwrap_or_default();
                if !event.contains("requested") {
                    problems.push(format!(
                        "{}'s FailedScheduling event does not carry linkmeter's reasons: {event:?}",
                        ex.name
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(node: Option<&str>, event: Option<&str>) -> Placed {
        Placed {
            node: node.map(str::to_owned),
            event: event.map(str::to_owned),
            explain: String::new(),
            took: Duration::ZERO,
        }
    }

    #[test]
    fn placements_are_held_to_what_the_truth_implies() {
        let reason = "0/3 nodes are available: 1 uplink 9.64 Mbit/s measured < 2 Gbit/s requested";
        let good = [
            placed(Some("home-1"), None),
            placed(Some("home-2"), None),
            placed(None, Some(reason)),
        ];
        assert!(check(&good).is_empty());
        let bad = [
            placed(Some("home-2"), None),
            placed(Some("vps"), None),
            placed(None, Some("0/3 nodes are available: 3 Insufficient cpu.")),
        ];
        let problems = check(&bad);
        assert_eq!(problems.len(), 3, "{problems:?}");
        let bound = [
            placed(Some("home-1"), None),
            placed(Some("home-1"), None),
            placed(Some("home-1"), None),
        ];
        assert_eq!(check(&bound).len(), 1);
    }
}
