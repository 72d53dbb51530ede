//! `linkmeter-aggregator run` against a real kube-apiserver, end to end: four
//! `linkmeter-agent run --kube` in lab namespaces measure the lab's links and publish
//! NodeTopologies; two aggregator replicas, with the manifests' ServiceAccount token
//! (not admin), elect a leader on a Lease and write the ClusterTopology and the Diktyo
//! NetworkTopology. Then:
//!
//! - the NetworkTopology's zone costs order exactly as the lab's delays, its lists are
//!   sorted as the NetworkOverhead plugin needs, no cost between different zones is 0;
//! - the ClusterTopology lists the four nodes with network coordinates, and its zone
//!   figures agree with the lab and with the NetworkTopology;
//! - SIGKILL of the leader: the other replica writes within 20 s (measured and printed);
//! - the aggregator's token is refused what it does not need (real requests, 403).
//!
//! The lab: n1 and n3 in zone `za`, n2 in `zb` (both region `r1`), n4 in `zc` (region
//! `r2`). Same-zone n1–n3 is a plain veth; the rest are delay relays, one way za–zb
//! 2 ms, za–zc 6 ms, zb–zc 10 ms, so the zone RTTs are ~0.05, 4, 12 and 20 ms. Links are
//! rate-limited to 50 Mbit/s so the agents' (short, rare) throughput tests are cheap.
//!
//! The API server listens on 10.76.255.2 (kube_agents.rs uses .1, so both can run at
//! once), reached by the agents over their veths to the root namespace and by the
//! aggregators, which run in the root namespace, directly.
//!
//! Fails when the lab or the API server cannot start, unless `LINKMETER_SKIP_LAB=1` or
//! `LINKMETER_SKIP_KUBE=1`. Needs `cargo build --workspace --bins` first.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use linkmeter_aggregator::api::{ClusterTopology, NetworkTopology, REGION_LABEL, ZONE_LABEL};
use linkmeter_tests::agent::{
    AgentProcess, create_node, free_port, http_get, kube_agent_command, start_kube_at, wait_for,
};
use linkmeter_tests::aggregator::{self as agg, NT_NAME, NT_NAMESPACE};
use linkmeter_tests::bins;
use linkmeter_tests::kube_env::KubeEnv;
use linkmeter_tests::lab::{DelaySpec, Lab, Node, VethSpec};
use serde_json::{Value, json};

/// Where the API server listens: a lab-only address on a device of its own.
const API_ADDR: Ipv4Addr = Ipv4Addr::new(10, 76, 255, 2);
/// The aggregators' `--interval` (production: 30 s).
const INTERVAL: Duration = Duration::from_secs(5);
/// What the issue asks of a failover: the other replica writes within this.
const FAILOVER_BOUND: Duration = Duration::from_secs(20);
/// `weights[].name` the aggregator writes by default (the plugin's default).
const WEIGHTS: &str = "UserDefined";
/// Rate of every lab link, Mbit/s: bounds what a throughput test costs and reads.
const LINK_MBIT: u32 = 50;
/// The aggregator's ServiceAccount as the API server names it.
const SA_USER: &str = "system:serviceaccount:linkmeter:linkmeter-aggregator";
/// Field manager of the test's own applies.
const FIELD_MANAGER: &str = "linkmeter-tests";

/// The lab's nodes: name, zone, region.
const NODES: [(&str, &str, &str); 4] = [
    ("n1", "za", "r1"),
    ("n2", "zb", "r1"),
    ("n3", "za", "r1"),
    ("n4", "zc", "r2"),
];

/// One-way delay between two zones, ms; 0 within a zone (a plain veth, no relay).
fn one_way_ms(x: &str, y: &str) -> u64 {
    match (x.min(y), x.max(y)) {
        (a, b) if a == b => 0,
        ("za", "zb") => 2,
        ("za", "zc") => 6,
        ("zb", "zc") => 10,
        other => panic!("no zone pair {other:?}"),
    }
}

fn zone_of(node: &str) -> &'static str {
    NODES
        .iter()
        .find(|(n, _, _)| *n == node)
        .map(|(_, z, _)| *z)
        .unwrap_or_else(|| panic!("no lab node {node}"))
}

/// The distinct zones.
fn zones() -> Vec<&'static str> {
    let mut z: Vec<&str> = NODES.iter().map(|(_, z, _)| *z).collect();
    z.sort_unstable();
    z.dedup();
    z
}

/// Pairs of different zones (each once, `from < to`), in increasing lab delay: the
/// order their costs must have.
fn zone_pairs_by_delay() -> Vec<(&'static str, &'static str)> {
    let zs = zones();
    let mut pairs: Vec<(&str, &str)> = zs
        .iter()
        .flat_map(|a| zs.iter().filter(move |b| a < *b).map(move |b| (*a, *b)))
        .collect();
    pairs.sort_by_key(|(a, b)| one_way_ms(a, b));
    // The lab is built so the order is strict; a tie would make the check vacuous.
    assert!(
        pairs
            .windows(2)
            .all(|w| one_way_ms(w[0].0, w[0].1) < one_way_ms(w[1].0, w[1].1)),
        "lab delays must differ per zone pair"
    );
    pairs
}

/// The agent as the DaemonSet runs it, with short intervals ([`kube_agent_command`]),
/// and one throughput test (at most 3 s a direction) per peer per minute. (With a 1 s cap the server's cap ends a reverse test as the client's
/// ends and the client drops it: "the server terminated the test".)
fn agent_cmd(lab: &Lab, node: &Node, kubeconfig: &Path) -> Command {
    let mut cmd = kube_agent_command(lab, node, kubeconfig);
    cmd.args([
        "--throughput-period",
        "60s",
        "--throughput-max-duration",
        "3s",
    ])
    .args(["--throughput-max-bytes", "16MiB"]);
    cmd
}

/// A named process (agent or aggregator) for logs and exit checks.
struct Named {
    name: String,
    proc: AgentProcess,
}

fn logs(procs: &[&Named]) -> String {
    procs
        .iter()
        .map(|p| format!("---- {} ----\n{}", p.name, p.proc.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn all_running(procs: &mut [&mut Named]) -> Result<()> {
    for p in procs.iter_mut() {
        if let Some(status) = p.proc.wait_timeout(Duration::ZERO)? {
            bail!("{} exited: {status}\n{}", p.name, p.proc.log());
        }
    }
    Ok(())
}

/// One aggregator replica and where its HTTP server listens.
struct Replica {
    named: Named,
    listen: SocketAddr,
}

impl Replica {
    fn metrics(&self) -> Option<String> {
        http_get(None, &format!("http://{}/metrics", self.listen), None).ok()
    }

    /// Successful writes so far (over both objects), from its `/metrics`.
    fn writes_ok(&self) -> Option<f64> {
        let text = self.metrics()?;
        Some(agg::sum_samples(&text, WRITES_METRIC, &[("result", "ok")]))
    }
}

/// The aggregator's write counter (labels `object`, `result`).
const WRITES_METRIC: &str = "linkmeter_aggregator_writes_total";
/// The aggregator's leader gauge (1 while it holds the Lease).
const LEADER_METRIC: &str = "linkmeter_aggregator_is_leader";

/// `(origin, destination) → networkCost`.
type Costs = BTreeMap<(String, String), i64>;

/// Everything the NetworkTopology must satisfy once the agents' windows are full.
/// Returns the zone and region costs between different groups.
fn check_network_topology(nt: &NetworkTopology) -> Result<(Costs, Costs)> {
    let spec = &nt.spec;
    ensure!(
        !spec.configmap_name.is_empty(),
        "spec.configmapName is empty"
    );
    let names: Vec<&str> = spec.weights.iter().map(|w| w.name.as_str()).collect();
    ensure!(
        names == [WEIGHTS],
        "weights names {names:?}, want [{WEIGHTS}]"
    );
    agg::check_sorted(spec)?;
    let keys: Vec<&str> = spec.weights[0]
        .topology_list
        .iter()
        .map(|t| t.topology_key.as_str())
        .collect();
    ensure!(
        keys == [REGION_LABEL, ZONE_LABEL],
        "topologyList keys {keys:?}"
    );
    let mut zone_costs = agg::costs(spec, WEIGHTS, ZONE_LABEL);
    let mut region_costs = agg::costs(spec, WEIGHTS, REGION_LABEL);
    let zs = zones();
    for ((from, to), cost) in &zone_costs {
        ensure!(
            zs.contains(&from.as_str()) && zs.contains(&to.as_str()),
            "zone cost for unknown zones {from} -> {to}"
        );
        ensure!(
            from == to || *cost > 0,
            "zone cost {from} -> {to} is {cost}"
        );
    }
    // A group's cost to itself is not needed (the plugin gives the same zone 1 without
    // reading it); where written it must be below every cost to another zone.
    let own: Vec<i64> = zone_costs
        .iter()
        .filter(|((f, t), _)| f == t)
        .map(|(_, c)| *c)
        .collect();
    zone_costs.retain(|(f, t), _| f != t);
    region_costs.retain(|(f, t), _| f != t);
    if let (Some(own_max), Some(other_min)) = (own.iter().max(), zone_costs.values().min()) {
        ensure!(
            own_max < other_min,
            "a zone's cost to itself ({own_max}) is not below every other ({other_min})"
        );
    }
    // Both directions of every pair of different zones, in the lab's order: the most
    // expensive direction of a nearer pair below the cheapest of the next one.
    let order = zone_pairs_by_delay();
    let both = |a: &str, b: &str| -> Result<(i64, i64)> {
        let get = |x: &str, y: &str| {
            zone_costs
                .get(&(x.to_owned(), y.to_owned()))
                .copied()
                .with_context(|| format!("no zone cost {x} -> {y}: {zone_costs:?}"))
        };
        let (ab, ba) = (get(a, b)?, get(b, a)?);
        Ok((ab.min(ba), ab.max(ba)))
    };
    for w in order.windows(2) {
        let (near, far) = (w[0], w[1]);
        let (_, near_max) = both(near.0, near.1)?;
        let (far_min, _) = both(far.0, far.1)?;
        ensure!(
            near_max < far_min,
            "zone costs do not follow the lab's delays: {}-{} ({} ms one way) costs up to \
             {near_max}, {}-{} ({} ms) from {far_min}: {zone_costs:?}",
            near.0,
            near.1,
            one_way_ms(near.0, near.1),
            far.0,
            far.1,
            one_way_ms(far.0, far.1)
        );
    }
    ensure!(
        zone_costs.len() == order.len() * 2,
        "zone costs beyond the lab's pairs: {zone_costs:?}"
    );
    // Regions: r1 <-> r2 both ways, above the dearest pair inside r1 (za-zb): every
    // node pair between the regions is at least za-zc's 12 ms.
    let r12 = region_costs.get(&("r1".to_owned(), "r2".to_owned()));
    let r21 = region_costs.get(&("r2".to_owned(), "r1".to_owned()));
    let (Some(&r12), Some(&r21)) = (r12, r21) else {
        bail!("region costs r1 <-> r2 missing: {region_costs:?}");
    };
    let (_, inside_r1) = both("za", "zb")?;
    ensure!(
        r12 > inside_r1 && r21 > inside_r1,
        "region cost r1<->r2 ({r12}, {r21}) not above za-zb ({inside_r1})"
    );
    ensure!(
        region_costs.len() == 2,
        "region costs beyond r1<->r2: {region_costs:?}"
    );
    Ok((zone_costs, region_costs))
}

/// Everything the ClusterTopology must satisfy, given the NetworkTopology's zone costs
/// from the same calculation.
fn check_cluster_topology(ct: &ClusterTopology, zone_costs: &Costs) -> Result<()> {
    let st = ct
        .status
        .as_ref()
        .context("ClusterTopology has no status")?;
    ensure!(st.calculated_at.is_some(), "no calculatedAt");
    ensure!(
        st.node_count == 4 && st.zone_count == 3,
        "nodeCount {} zoneCount {}",
        st.node_count,
        st.zone_count
    );
    ensure!(
        st.stale_node_count == 0 && st.stale_nodes.is_empty(),
        "stale nodes: {:?}",
        st.stale_nodes
    );
    let layout: Vec<(&str, &str, Vec<&str>)> = st
        .zones
        .iter()
        .map(|z| {
            (
                z.region.as_str(),
                z.zone.as_str(),
                z.nodes.iter().map(|n| n.name.as_str()).collect(),
            )
        })
        .collect();
    ensure!(
        layout
            == [
                ("r1", "za", vec!["n1", "n3"]),
                ("r1", "zb", vec!["n2"]),
                ("r2", "zc", vec!["n4"]),
            ],
        "zones {layout:?}"
    );
    for n in st.zones.iter().flat_map(|z| &z.nodes) {
        ensure!(
            !n.coordinate_us.is_empty(),
            "{}: no network coordinate",
            n.name
        );
        ensure!(
            !n.stale && n.age_seconds.is_some(),
            "{}: stale or unobserved",
            n.name
        );
    }
    // Zone figures against the lab: every zone pair measured, p50 at least the lab's
    // RTT and within 10% + 0.5 ms of it (relays on a loaded 2-core machine), and the
    // cost the NetworkTopology carries.
    for p in &st.zone_pairs {
        let want_ms = 2.0 * one_way_ms(&p.from, &p.to) as f64;
        let p50_ms = p.rtt_p50_us as f64 / 1000.0;
        ensure!(p.pairs > 0, "{} -> {}: not measured", p.from, p.to);
        ensure!(
            p50_ms >= want_ms && p50_ms < want_ms * 1.1 + 0.5,
            "{} -> {}: p50 {p50_ms} ms, lab RTT {want_ms} ms",
            p.from,
            p.to
        );
        if p.from != p.to {
            let nt = zone_costs.get(&(p.from.clone(), p.to.clone()));
            ensure!(
                nt == Some(&i64::try_from(p.cost)?),
                "{} -> {}: ClusterTopology cost {}, NetworkTopology {nt:?}",
                p.from,
                p.to,
                p.cost
            );
        }
    }
    // Every pair of different zones both ways, and za with itself (n1-n3); zb and zc
    // have one node each, so nothing inside them is measured.
    let mut want: Vec<(String, String)> = zone_pairs_by_delay()
        .iter()
        .flat_map(|(a, b)| {
            [
                (a.to_string(), b.to_string()),
                (b.to_string(), a.to_string()),
            ]
        })
        .collect();
    want.push(("za".to_owned(), "za".to_owned()));
    want.sort();
    let got: Vec<(String, String)> = st
        .zone_pairs
        .iter()
        .map(|p| (p.from.clone(), p.to.clone()))
        .collect();
    ensure!(got == want, "zone pairs {got:?}, want {want:?}");
    Ok(())
}

/// A request body and its content type, if the request has one.
type Body = Option<(&'static str, Value)>;

/// The NetworkTopology as `kubectl get -o yaml` prints it, for the test's output.
fn network_topology_yaml(kube: &KubeEnv) -> Result<String> {
    kube.kubectl_ok(&[
        "get",
        "networktopology",
        NT_NAME,
        "-n",
        NT_NAMESPACE,
        "-o",
        "yaml",
    ])
}

#[test]
fn aggregator_replicas_write_the_topologies_and_fail_over() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let nodes: Vec<Node> = NODES
        .iter()
        .map(|(n, _, _)| lab.add_node(n))
        .collect::<Result<_>>()?;
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            let ms = one_way_ms(zone_of(a.name()), zone_of(b.name()));
            if ms == 0 {
                lab.link(a, b, VethSpec::shaped(LINK_MBIT))?;
            } else {
                let spec = DelaySpec::new(Duration::from_millis(ms)).rate_mbit(LINK_MBIT);
                lab.link(a, b, spec)?;
            }
        }
    }
    lab.host_address(API_ADDR)?;
    for n in &nodes {
        lab.link_to_host(n, API_ADDR)?;
    }
    let Some(kube) = start_kube_at(API_ADDR)? else {
        return Ok(());
    };
    let t0 = Instant::now();

    // ---- The manifests: CRDs (linkmeter's and Diktyo's), namespace, ServiceAccounts,
    // RBAC. The Deployment and DaemonSet are applied too but nothing runs them here.
    agg::apply_manifests(&kube, FIELD_MANAGER)?;
    for (n, (_, zone, region)) in nodes.iter().zip(NODES) {
        create_node(&kube, n.name(), n.addr(), zone, region)?;
    }
    let agent_token = kube.service_account_token("linkmeter", "linkmeter-agent", 3600)?;
    let agent_kubeconfig = kube.kubeconfig_for_token(&agent_token)?;
    let agg_token = kube.service_account_token(agg::NAMESPACE, agg::SERVICE_ACCOUNT, 3600)?;
    let agg_kubeconfig = kube.kubeconfig_for_token(&agg_token)?;

    let mut agents: Vec<Named> = nodes
        .iter()
        .map(|n| {
            Ok(Named {
                name: format!("agent {}", n.name()),
                proc: AgentProcess::spawn(agent_cmd(&lab, n, &agent_kubeconfig))?,
            })
        })
        .collect::<Result<_>>()?;
    let mut replicas: Vec<Replica> = ["agg-1", "agg-2"]
        .iter()
        .map(|id| {
            let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            Ok(Replica {
                named: Named {
                    name: format!("aggregator {id}"),
                    proc: AgentProcess::spawn(agg::run_command(
                        &agg_kubeconfig,
                        id,
                        listen,
                        INTERVAL,
                    ))?,
                },
                listen,
            })
        })
        .collect::<Result<_>>()?;
    let all_logs = |agents: &[Named], replicas: &[Replica]| {
        let mut v: Vec<&Named> = agents.iter().collect();
        v.extend(replicas.iter().map(|r| &r.named));
        logs(&v)
    };

    // ---- Phase 1: the objects appear, and the costs follow the lab.
    let mut last_problem = String::from("no NetworkTopology yet");
    let settled = wait_for(Duration::from_secs(150), Duration::from_secs(2), || {
        let attempt = || -> Result<_> {
            let (nt, nt_json) = agg::network_topology(&kube, NT_NAMESPACE, NT_NAME)?
                .context("no NetworkTopology default/nt-default yet")?;
            let (zone_costs, region_costs) = check_network_topology(&nt)?;
            let (ct, ct_json) = agg::cluster_topology(&kube, "cluster")?
                .context("no ClusterTopology cluster yet")?;
            check_cluster_topology(&ct, &zone_costs)?;
            Ok((nt_json, ct_json, zone_costs, region_costs))
        };
        match attempt() {
            Ok(v) => Some(v),
            Err(e) => {
                last_problem = format!("{e:#}");
                None
            }
        }
    });
    let Some((nt_json, ct_json, zone_costs, region_costs)) = settled else {
        bail!(
            "the topologies never settled: {last_problem}\nNetworkTopology: {:#?}\n\
             ClusterTopology: {:#?}\n{}",
            agg::network_topology(&kube, NT_NAMESPACE, NT_NAME).ok(),
            agg::cluster_topology(&kube, "cluster").ok(),
            all_logs(&agents, &replicas)
        );
    };
    println!(
        "phase 1: topologies settled {:.1}s after the agents started",
        t0.elapsed().as_secs_f64()
    );
    println!("zone costs: {zone_costs:?}\nregion costs: {region_costs:?}");
    // Written by the aggregator's field manager only. `before-first-apply` is no writer:
    // it is the API server's own entry for fields it found without an owner when an
    // apply came (1.20 records it on the ClusterTopology's first status apply).
    for (what, obj) in [("NetworkTopology", &nt_json), ("ClusterTopology", &ct_json)] {
        let managers = agg::managers(obj);
        ensure!(
            managers.iter().any(|m| m == "linkmeter-aggregator")
                && managers
                    .iter()
                    .all(|m| m == "linkmeter-aggregator" || m == "before-first-apply"),
            "{what}: field managers {managers:?}"
        );
    }
    println!(
        "---- NetworkTopology {NT_NAMESPACE}/{NT_NAME} ----\n{}",
        network_topology_yaml(&kube)?
    );
    println!(
        "---- ClusterTopology cluster ----\n{}",
        kube.kubectl_ok(&["get", "clustertopology", "cluster", "-o", "yaml"])?
    );
    println!("{}", kube.kubectl_ok(&["get", "clustertopologies"])?);

    // ---- Phase 2: one leader; only it writes.
    let holder = wait_for(Duration::from_secs(20), Duration::from_millis(500), || {
        agg::lease_holder(&kube).ok().flatten()
    })
    .context("nobody holds the Lease")?;
    let leader_index = match holder.as_str() {
        "agg-1" => 0,
        "agg-2" => 1,
        other => bail!("Lease held by {other:?}, not by a replica"),
    };
    let follower_index = 1 - leader_index;
    let (leader_writes, follower_writes) = (
        replicas[leader_index].writes_ok(),
        replicas[follower_index].writes_ok(),
    );
    let leader_gauge = |r: &Replica| {
        r.metrics()
            .map(|t| agg::sum_samples(&t, LEADER_METRIC, &[]))
    };
    println!(
        "phase 2: leader {holder}: writes {leader_writes:?}, {LEADER_METRIC} {:?}; follower \
         writes {follower_writes:?}, {LEADER_METRIC} {:?}",
        leader_gauge(&replicas[leader_index]),
        leader_gauge(&replicas[follower_index])
    );
    ensure!(
        leader_writes.is_some_and(|w| w >= 2.0),
        "the leader's {WRITES_METRIC}{{result=\"ok\"}} is {leader_writes:?}"
    );
    ensure!(
        follower_writes == Some(0.0),
        "the follower wrote: {WRITES_METRIC}{{result=\"ok\"}} {follower_writes:?}"
    );
    ensure!(
        leader_gauge(&replicas[leader_index]) == Some(1.0)
            && leader_gauge(&replicas[follower_index]) == Some(0.0),
        "{LEADER_METRIC} does not say who leads"
    );

    // ---- Phase 3: SIGKILL the leader; the other one writes within 20 s.
    // A killed leader cannot release its Lease, so the follower waits it out. The kill
    // comes right after the leader renewed the Lease, the worst moment: the follower
    // then waits the whole lease duration (15 s). A new leader writes both objects once
    // whatever their content, so its first write shows as its writes counter leaving 0
    // and a new calculatedAt on the object.
    let ct_before = agg::cluster_topology(&kube, "cluster")?
        .context("ClusterTopology vanished")?
        .0;
    let calculated_before = ct_before
        .status
        .as_ref()
        .and_then(|s| s.calculated_at.clone());
    let renew_time = || -> Option<String> {
        let lease = agg::admin_get(&kube, &agg::lease_path()).ok()??;
        Some(lease.pointer("/spec/renewTime")?.as_str()?.to_owned())
    };
    let renewed_before = renew_time();
    let renewed = wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        renew_time().filter(|t| Some(t) != renewed_before.as_ref())
    })
    .with_context(|| {
        format!("the leader never renewed the Lease (renewTime {renewed_before:?})")
    })?;
    replicas[leader_index].named.proc.signal(libc::SIGKILL)?;
    let killed = Instant::now();
    println!("phase 3: SIGKILL {holder} just after its renewal at {renewed}");
    replicas[leader_index]
        .named
        .proc
        .wait_timeout(Duration::from_secs(5))?
        .context("the killed leader is still running")?;
    let survivor = &replicas[follower_index];
    let survivor_id = if follower_index == 0 {
        "agg-1"
    } else {
        "agg-2"
    };
    let mut acquired: Option<Duration> = None;
    let mut rewritten: Option<Duration> = None;
    let deadline = killed + FAILOVER_BOUND + Duration::from_secs(20);
    while Instant::now() < deadline && rewritten.is_none() {
        if acquired.is_none()
            && agg::lease_holder(&kube).ok().flatten().as_deref() == Some(survivor_id)
        {
            acquired = Some(killed.elapsed());
        }
        let wrote = survivor.writes_ok().is_some_and(|w| w > 0.0);
        let recalculated = agg::cluster_topology(&kube, "cluster")
            .ok()
            .flatten()
            .and_then(|(ct, _)| ct.status?.calculated_at)
            .is_some_and(|at| Some(at) != calculated_before);
        if wrote && recalculated {
            rewritten = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let Some(rewritten) = rewritten else {
        bail!(
            "after SIGKILL of leader {holder}, {survivor_id} did not write within {:?} \
             (Lease acquired after {acquired:?}, holder now {:?})\n{}",
            deadline - killed,
            agg::lease_holder(&kube).ok().flatten(),
            all_logs(&agents, &replicas)
        );
    };
    println!(
        "phase 3: failover: leader {holder} killed; {survivor_id} held the Lease after {}, \
         wrote after {:.1}s (bound {FAILOVER_BOUND:?})",
        acquired.map_or("?".to_owned(), |a| format!("{:.1}s", a.as_secs_f64())),
        rewritten.as_secs_f64()
    );
    ensure!(
        rewritten <= FAILOVER_BOUND,
        "failover took {rewritten:?} (bound {FAILOVER_BOUND:?})"
    );
    ensure!(
        agg::lease_holder(&kube)?.as_deref() == Some(survivor_id),
        "the Lease is not {survivor_id}'s"
    );
    // The new leader's view agrees with the old one's.
    let (ct_after, _) = agg::cluster_topology(&kube, "cluster")?.context("ClusterTopology")?;
    let names = |ct: &ClusterTopology| -> Vec<String> {
        ct.status
            .iter()
            .flat_map(|s| &s.zones)
            .flat_map(|z| &z.nodes)
            .map(|n| n.name.clone())
            .collect()
    };
    ensure!(
        names(&ct_after) == names(&ct_before),
        "the new leader's nodes {:?}, the old one's {:?}",
        names(&ct_after),
        names(&ct_before)
    );

    // ---- Phase 4: the aggregator's own token is refused what it does not need.
    let nodetopology = "/apis/linkmeter.dev/v1alpha1/nodetopologies/n1";
    let merge = |body| Some(("application/merge-patch+json", body));
    let nt_other_ns = agg::network_topology_path("kube-system", NT_NAME);
    let checks: Vec<(&str, String, Body)> = vec![
        ("DELETE", "/api/v1/nodes/n1".into(), None),
        (
            "PATCH",
            "/api/v1/nodes/n1".into(),
            merge(json!({"metadata": {"labels": {"x": "y"}}})),
        ),
        (
            "PATCH",
            nodetopology.into(),
            merge(json!({"metadata": {"labels": {"x": "y"}}})),
        ),
        (
            "PATCH",
            format!("{nodetopology}/status"),
            merge(json!({"status": {"zone": "elsewhere"}})),
        ),
        ("DELETE", nodetopology.into(), None),
        ("GET", "/api/v1/secrets".into(), None),
        ("GET", "/api/v1/namespaces/linkmeter/secrets".into(), None),
        // Pods are read (placement), never written.
        ("DELETE", "/api/v1/namespaces/default/pods/any".into(), None),
        ("GET", "/api/v1/namespaces/default/configmaps".into(), None),
        (
            "PATCH",
            format!("{nt_other_ns}?fieldManager=linkmeter-aggregator"),
            Some((
                "application/apply-patch+yaml",
                json!({"apiVersion": "networktopology.diktyo.x-k8s.io/v1alpha1",
                       "kind": "NetworkTopology",
                       "metadata": {"name": NT_NAME, "namespace": "kube-system"},
                       "spec": {"configmapName": "x", "weights": []}}),
            )),
        ),
        ("GET", nt_other_ns.clone(), None),
        (
            "DELETE",
            agg::network_topology_path(NT_NAMESPACE, NT_NAME),
            None,
        ),
        ("DELETE", agg::cluster_topology_path("cluster"), None),
        (
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases".into(),
            Some((
                "application/json",
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "x", "namespace": "default"}}),
            )),
        ),
        ("DELETE", agg::lease_path(), None),
    ];
    for (method, path, body) in checks {
        let body = body.as_ref().map(|(content_type, v)| (*content_type, v));
        agg::expect_denied(&kube, &agg_token, SA_USER, method, &path, body)?;
    }
    // Still there after the attempts.
    for what in ["node/n1", "nodetopology/n1", "clustertopology/cluster"] {
        kube.kubectl_ok(&["get", what])?;
    }
    kube.kubectl_ok(&["get", "networktopology", NT_NAME, "-n", NT_NAMESPACE])?;

    // ---- Phase 5: after the failover the costs still follow the lab, and measured
    // throughput shows as bandwidthCapacity (every pair tested within a minute).
    let mut last_problem = String::new();
    let after = wait_for(Duration::from_secs(90), Duration::from_secs(2), || {
        let attempt = || -> Result<_> {
            let (nt, _) = agg::network_topology(&kube, NT_NAMESPACE, NT_NAME)?
                .context("NetworkTopology gone")?;
            let (zone_costs, _) = check_network_topology(&nt)?;
            let bw = agg::bandwidths(&nt.spec, WEIGHTS, ZONE_LABEL);
            ensure!(
                bw.len() == zone_costs.len(),
                "bandwidthCapacity for {} of {} zone pairs: {bw:?}",
                bw.len(),
                zone_costs.len()
            );
            for ((from, to), q) in &bw {
                let bps = agg::quantity_bps(q)
                    .with_context(|| format!("{from} -> {to}: bandwidthCapacity {q:?}"))?;
                // Goodput stays under the link's IP rate; 5% for a short test's timing.
                ensure!(
                    bps >= 1_000_000 && bps <= u64::from(LINK_MBIT) * 1_050_000,
                    "{from} -> {to}: bandwidthCapacity {q} on a {LINK_MBIT} Mbit/s link"
                );
            }
            Ok(bw)
        };
        match attempt() {
            Ok(v) => Some(v),
            Err(e) => {
                last_problem = format!("{e:#}");
                None
            }
        }
    });
    let Some(bandwidths) = after else {
        bail!(
            "after the failover: {last_problem}\n{}",
            all_logs(&agents, &replicas)
        );
    };
    println!("phase 5: zone bandwidthCapacity {bandwidths:?}");
    println!(
        "---- NetworkTopology after the failover ----\n{}",
        network_topology_yaml(&kube)?
    );

    // ---- Phase 5b: the survivor's /metrics passes promtool and serves every family
    // README documents; `report` reads the same view from the cluster.
    let text = replicas[follower_index]
        .metrics()
        .context("the survivor's /metrics")?;
    promtool_check(&text)?;
    for family in documented_families()? {
        ensure!(
            // A sample, or (for a labelled family nothing has touched yet) its TYPE.
            text.lines().any(|l| {
                let l = l.strip_prefix("# TYPE ").unwrap_or(l);
                l.starts_with(&family) && l[family.len()..].starts_with(['{', ' ', '_'])
            }),
            "README documents {family}, /metrics does not serve it"
        );
    }
    let report = Command::new(bins::aggregator())
        .args(["report", "--kubeconfig"])
        .arg(kube.kubeconfig_path())
        .env_remove("KUBECONFIG")
        .output()
        .context("report")?;
    let report_text = String::from_utf8_lossy(&report.stdout);
    ensure!(
        report.status.success(),
        "report exited {}: {}",
        report.status,
        String::from_utf8_lossy(&report.stderr)
    );
    for word in zones().into_iter().chain(["n1", "n2", "n3", "n4"]) {
        ensure!(
            report_text.contains(word),
            "report from the cluster does not name {word}:\n{report_text}"
        );
    }
    println!("phase 5b: promtool passed; report from the cluster:\n{report_text}");

    // ---- Phase 6: SIGTERM stops the survivor cleanly.
    {
        let mut live: Vec<&mut Named> = agents.iter_mut().collect();
        all_running(&mut live)?;
    }
    let survivor = &mut replicas[follower_index].named.proc;
    survivor.signal(libc::SIGTERM)?;
    let status = survivor
        .wait_timeout(Duration::from_secs(5))?
        .context("the aggregator did not exit within 5 s of SIGTERM")?;
    ensure!(
        status.success(),
        "the aggregator exited {status} on SIGTERM"
    );
    let holder_after = agg::lease_holder(&kube)?;
    println!("phase 6: SIGTERM: exit {status}; Lease holder after it: {holder_after:?}");
    ensure!(
        holder_after.is_none(),
        "the Lease is still held ({holder_after:?}) after the leader stopped"
    );
    println!(
        "---- aggregator {survivor_id}'s log ----\n{}",
        replicas[follower_index].named.proc.log()
    );
    println!("total {:.0}s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// `promtool check metrics` on `text`: it must pass without a complaint.
fn promtool_check(text: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("promtool (apt-get install prometheus)")?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
    Ok(())
}

/// The metric families README's aggregator table lists (`linkmeter_aggregator_` + each
/// backticked name of the first column).
fn documented_families() -> Result<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))?;
    let start = readme
        .find("Its families, all prefixed `linkmeter_aggregator_`")
        .context("README: the aggregator's metric table")?;
    let mut families = Vec::new();
    let rows = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .map_while(|l| l.strip_prefix("| `"));
    for row in rows {
        let first = row.split(" |").next().unwrap_or("");
        for name in first.split('`').filter(|n| !n.is_empty() && *n != ", ") {
            families.push(format!("linkmeter_aggregator_{name}"));
        }
    }
    ensure!(families.len() >= 10, "README lists only {families:?}");
    Ok(families)
}
