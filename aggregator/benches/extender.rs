//! The extender's `filter` and `prioritize` at scale: a synthetic cluster of NODES nodes
//! (default 5,000 × 32 links, 20 zones) with PODS bound pods (default 20,000, a tenth of
//! them reserving egress), and a pod that asks `min-bandwidth: 100M`,
//! `max-latency: 50ms` and `peers: app=db` (the db on three nodes). Each verb is called
//! with every node as candidate, both ways the scheduler sends them: node names
//! (`nodeCacheCapable: true`) and whole Node objects (about 2 KB each, like a real
//! Node's JSON without its image list). Prints p50 and p99 wall time per call, request
//! parsing and the answer's JSON included; the goal is p99 ≤ 10 ms with node names.
//!
//!   cargo bench -p linkmeter-aggregator --bench extender [-- NODES PODS]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use linkmeter_aggregator::cluster::{self, Options};
use linkmeter_aggregator::extender;
use linkmeter_aggregator::placement::{PlacedPod, World, request};
use serde_json::{Value, json};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(5000);
    let pod_count = args.get(1).copied().unwrap_or(20_000);
    let now = jiff::Timestamp::now();
    let (infos, topologies) = cluster::synthetic::cluster(n, 32, 20, 1, now);
    let world = World::new(
        cluster::compute(Some(&infos), &topologies, &Options::at(now)),
        &topologies,
    );
    let names: Vec<String> = infos.iter().map(|i| i.name.clone()).collect();
    let pods: Vec<Arc<PlacedPod>> = (0..pod_count)
        .map(|i| {
            let app = if i < 3 {
                "db".to_owned()
            } else {
                format!("app-{}", i % 500)
            };
            Arc::new(PlacedPod {
                namespace: format!("ns-{}", i % 20),
                name: format!("pod-{i}"),
                uid: format!("uid-{i}"),
                node: names[(i * 7919) % n].clone(),
                labels: BTreeMap::from([("app".to_owned(), app)]),
                owner_uid: Some(format!("rs-{}", i % 2000)),
                egress_bps: if i % 10 == 0 { 50_000_000 } else { 0 },
                ingress_bps: 0,
            })
        })
        .collect();
    let pod = json!({
        "metadata": {"name": "api", "namespace": "ns-0", "uid": "uid-api",
                     "annotations": {request::MIN_BANDWIDTH: "100M",
                                     request::MAX_LATENCY: "50ms",
                                     request::PEERS: "app=db"}},
        "spec": {"containers": [{"name": "api", "image": "api:1"}]}
    });
    let plain = json!({"metadata": {"name": "plain", "namespace": "ns-0", "uid": "uid-plain"},
                       "spec": {"containers": [{"name": "c", "image": "c:1"}]}});
    let by_name = |pod: &Value| {
        serde_json::to_vec(&json!({"Pod": pod, "Nodes": null, "NodeNames": names})).expect("json")
    };
    let nodes: Vec<Value> = names.iter().map(|name| node_object(name)).collect();
    let by_node = serde_json::to_vec(&json!({
        "Pod": pod, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": null
    }))
    .expect("json");
    let names_body = by_name(&pod);
    let plain_body = by_name(&plain);
    println!(
        "extender: {n} nodes, {pod_count} bound pods; request {:.0} KiB with node names, \
         {:.1} MiB with whole Nodes",
        names_body.len() as f64 / 1024.0,
        by_node.len() as f64 / 1048576.0
    );
    let fits = extender::filter(Some(&world), &pods, &names_body)
        .node_names
        .map_or(0, |v| v.len());
    println!("extender: {fits} of {n} nodes fit the annotated pod");

    let runs = [
        ("filter, node names", &names_body, 200, Verb::Filter),
        ("prioritize, node names", &names_body, 200, Verb::Prioritize),
        ("filter, unannotated pod", &plain_body, 200, Verb::Filter),
        ("filter, whole Nodes", &by_node, 30, Verb::Filter),
        ("prioritize, whole Nodes", &by_node, 30, Verb::Prioritize),
    ];
    for (what, body, calls, verb) in runs {
        let mut ms: Vec<f64> = (0..calls)
            .map(|_| {
                let t = Instant::now();
                match verb {
                    // The answer's JSON is part of the call, as in the HTTP handler.
                    Verb::Filter => {
                        let r = extender::filter(Some(&world), &pods, body);
                        assert!(r.error.is_empty(), "{}", r.error);
                        std::hint::black_box(serde_json::to_vec(&r).expect("json"));
                    }
                    Verb::Prioritize => {
                        let r = extender::prioritize(Some(&world), &pods, body).expect("served");
                        std::hint::black_box(serde_json::to_vec(&r).expect("json"));
                    }
                }
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        println!(
            "extender: {what:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  ({calls} calls)",
            at(0.5),
            at(0.99)
        );
    }
}

#[derive(Clone, Copy)]
enum Verb {
    Filter,
    Prioritize,
}

/// A Node as the scheduler sends it: labels, addresses, capacity, conditions, node info.
fn node_object(name: &str) -> Value {
    let condition = |t: &str, s: &str| {
        json!({"type": t, "status": s, "lastHeartbeatTime": "2026-12-01T12:00:00Z",
               "lastTransitionTime": "2026-11-01T08:00:00Z", "reason": format!("Kubelet{t}"),
               "message": "kubelet is posting ready status"})
    };
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "123456",
                     "creationTimestamp": "2026-11-01T08:00:00Z",
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64",
                                "node.kubernetes.io/instance-type": "m6i.4xlarge",
                                "topology.kubernetes.io/zone": "eu-west-1a",
                                "topology.kubernetes.io/region": "eu-west-1"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                     "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": "10.244.1.0/24", "providerID": format!("aws:///eu-west-1a/{name}")},
        "status": {
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "15900m", "memory": "63Gi", "pods": "110", "ephemeral-storage": "95Gi"},
            "conditions": [condition("MemoryPressure", "False"), condition("DiskPressure", "False"),
                           condition("PIDPressure", "False"), condition("Ready", "True")],
            "addresses": [{"type": "InternalIP", "address": "10.0.1.23"},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2",
                         "containerRuntimeVersion": "containerd://1.6.20",
                         "kernelVersion": "6.1.0-13-amd64", "osImage": "Debian GNU/Linux 12",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "machineID": "0123456789abcdef", "systemUUID": "ec2-0123", "bootID": "b00t"}
        }
    })
}
