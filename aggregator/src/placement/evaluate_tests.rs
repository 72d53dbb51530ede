use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::cluster::{self, Options};
use crate::placement::request;
use crate::placement::seed;
use crate::placement::world::PlacedPod;

const NODES: [&str; 3] = ["home-1", "home-2", "vps"];

fn now() -> jiff::Timestamp {
    "2026-12-01T12:00:00Z".parse().expect("timestamp")
}

fn world_from(topologies: &[crate::api::NodeTopology]) -> World {
    let (infos, _) = seed::cluster(now());
    let out = cluster::compute(Some(&infos), topologies, &Options::at(now()));
    World::new(out, topologies)
}

fn seed_world() -> World {
    world_from(&seed::cluster(now()).1)
}

fn pod(annotations: &[(&str, &str)]) -> PodUnderPlacement {
    let map: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    PodUnderPlacement {
        namespace: "ns".into(),
        name: "new".into(),
        uid: "uid-new".into(),
        owner_uid: Some("rs-1".into()),
        request: PodRequest::from_annotations(&map)
            .map_err(|e| e.iter().map(ToString::to_string).collect()),
    }
}

fn placed(name: &str, node: &str, labels: &[(&str, &str)], egress: u64) -> Arc<PlacedPod> {
    Arc::new(PlacedPod {
        namespace: "ns".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        node: node.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        owner_uid: None,
        egress_bps: egress,
        ingress_bps: egress,
    })
}

fn run(world: &World, pods: &[Arc<PlacedPod>], p: &PodUnderPlacement) -> BTreeMap<String, Verdict> {
    evaluate(world, pods, p, &NODES, Detail::Explain)
        .into_iter()
        .map(|v| (v.node.clone(), v))
        .collect()
}

#[test]
fn a_pod_without_annotations_fits_everywhere_with_one_score() {
    let w = seed_world();
    let v = run(&w, &[], &pod(&[("unrelated", "x")]));
    assert!(
        v.values()
            .all(|v| v.fits && v.score == 0 && v.reasons.is_empty())
    );
}

#[test]
fn min_bandwidth_without_peers_is_checked_against_the_free_uplink() {
    let w = seed_world();
    let v = run(&w, &[], &pod(&[(request::MIN_BANDWIDTH, "100M")]));
    assert_eq!(
        v["vps"].reasons,
        ["uplink 9.6 Mbit/s measured < 100 Mbit/s requested"]
    );
    assert!(!v["vps"].fits);
    assert!(v["home-1"].fits && v["home-2"].fits, "{v:?}");
    assert!(
        v["home-1"].notes[0].contains("940 Mbit/s measured"),
        "{v:?}"
    );
}

#[test]
fn peers_bring_bandwidth_and_latency_to_the_nodes_they_run_on() {
    let w = seed_world();
    let pods = [placed("db", "home-1", &[("app", "db")], 0)];
    let p = pod(&[
        (request::MIN_BANDWIDTH, "100M"),
        (request::MAX_LATENCY, "10ms"),
        (request::PEERS, "app=db"),
    ]);
    let v = run(&w, &pods, &p);
    let vps = &v["vps"];
    assert!(!vps.fits);
    assert!(
        vps.reasons
            .contains(&"RTT 45 ms to home-1 measured > 10 ms allowed".to_owned()),
        "{vps:?}"
    );
    assert!(
        vps.reasons
            .contains(&"9.6 Mbit/s to home-1 measured < 100 Mbit/s requested".to_owned()),
        "{vps:?}"
    );
    assert!(v["home-1"].fits && v["home-2"].fits);
    assert!(
        v["home-1"].score > v["home-2"].score,
        "co-located is best: {v:?}"
    );
    assert_eq!(v["home-1"].score, MAX_SCORE);
    // A peer in another namespace does not count.
    let mut other = (*pods[0]).clone();
    other.namespace = "elsewhere".into();
    let v = run(&w, &[Arc::new(other)], &p);
    assert!(v["vps"].reasons.iter().all(|r| !r.contains("RTT")), "{v:?}");
}

#[test]
fn reservations_fill_an_uplink() {
    let w = seed_world();
    let pods = [placed("first", "home-1", &[], 600_000_000)];
    let v = run(&w, &pods, &pod(&[(request::EGRESS_BANDWIDTH, "600M")]));
    assert_eq!(
        v["home-1"].reasons,
        [
            "uplink 940 Mbit/s measured, 600 Mbit/s reserved by 1 pod, 340 Mbit/s free < 600 Mbit/s requested"
        ]
    );
    assert!(v["home-2"].fits);
    assert!(!v["vps"].fits);
    // The pod itself (rescheduled, same UID) does not hold its own reservation.
    let mut me = (*pods[0]).clone();
    me.uid = "uid-new".into();
    let v = run(
        &w,
        &[Arc::new(me)],
        &pod(&[(request::EGRESS_BANDWIDTH, "600M")]),
    );
    assert!(v["home-1"].fits, "{v:?}");
}

#[test]
fn gpu_requests_need_a_matching_gpu() {
    let w = seed_world();
    let v = run(&w, &[], &pod(&[(request::MIN_GPU_MEMORY_FREE, "16Gi")]));
    assert!(v["home-1"].fits, "{v:?}");
    assert_eq!(v["home-2"].reasons, ["no GPU measured"]);
    let v = run(&w, &[], &pod(&[(request::MIN_GPU_MEMORY_FREE, "32Gi")]));
    assert_eq!(
        v["home-1"].reasons,
        ["GPU 0 (NVIDIA GeForce RTX 4090): 23.5 GiB free < 32 GiB requested"]
    );
    let v = run(&w, &[], &pod(&[(request::GPU_MODEL, "a100")]));
    assert_eq!(
        v["home-1"].reasons,
        ["no GPU matches model \"a100\" (has NVIDIA GeForce RTX 4090)"]
    );
    let v = run(
        &w,
        &[],
        &pod(&[
            (request::GPU_MODEL, "rtx 4090"),
            (request::MAX_GPU_UTILIZATION, "2"),
        ]),
    );
    assert_eq!(
        v["home-1"].reasons,
        ["GPU 0 (NVIDIA GeForce RTX 4090): 3% busy > 2% allowed"]
    );
}

#[test]
fn a_bad_annotation_fails_every_node_naming_it() {
    let w = seed_world();
    let v = run(&w, &[], &pod(&[(request::MIN_BANDWIDTH, "fast")]));
    for verdict in v.values() {
        assert!(!verdict.fits);
        assert!(
            verdict.reasons[0].contains(request::MIN_BANDWIDTH),
            "{verdict:?}"
        );
    }
}

#[test]
fn unknown_nodes_fail_for_annotated_pods_only() {
    let w = seed_world();
    let p = pod(&[(request::MIN_BANDWIDTH, "1M")]);
    let v = evaluate(
        &w,
        &[] as &[Arc<PlacedPod>],
        &p,
        &["nowhere"],
        Detail::Reasons,
    );
    assert!(!v[0].fits && v[0].reasons[0].contains("not in linkmeter's view"));
    let v = evaluate(
        &w,
        &[] as &[Arc<PlacedPod>],
        &pod(&[]),
        &["nowhere"],
        Detail::Reasons,
    );
    assert!(v[0].fits);
}

#[test]
fn max_latency_without_peers_applies_to_replicas() {
    let w = seed_world();
    let p = pod(&[(request::MAX_LATENCY, "10ms")]);
    // No replica yet: satisfied everywhere.
    assert!(run(&w, &[], &p).values().all(|v| v.fits));
    let mut replica = (*placed("r0", "home-1", &[], 0)).clone();
    replica.owner_uid = Some("rs-1".into());
    let v = run(&w, &[Arc::new(replica)], &p);
    assert!(!v["vps"].fits, "{v:?}");
    assert!(v["home-2"].fits && v["home-1"].fits);
}

#[test]
fn an_unmeasured_pair_uses_the_prediction_and_says_so() {
    let (_, mut topologies) = seed::cluster(now());
    // Nobody measured vps ↔ home-2.
    for t in &mut topologies {
        let name = t.metadata.name.clone().unwrap_or_default();
        if let Some(s) = t.status.as_mut() {
            s.links.retain(|l| {
                !(name == "vps" && l.peer == "home-2" || name == "home-2" && l.peer == "vps")
            });
            s.normalize();
        }
    }
    let w = world_from(&topologies);
    let pods = [placed("db", "home-2", &[("app", "db")], 0)];
    let p = pod(&[(request::MAX_LATENCY, "10ms"), (request::PEERS, "app=db")]);
    let v = run(&w, &pods, &p);
    assert!(
        v["vps"]
            .reasons
            .iter()
            .any(|r| r.contains("to home-2 predicted > 10 ms allowed")),
        "{v:?}"
    );
}

#[test]
fn the_score_orders_by_bandwidth_when_nothing_else_differs() {
    let w = seed_world();
    let v = run(&w, &[], &pod(&[(request::MIN_BANDWIDTH, "1M")]));
    assert!(v["vps"].fits);
    assert_eq!(v["home-1"].score, MAX_SCORE);
    assert_eq!(v["vps"].score, 0);
}
