//! The verdict and score of every candidate node for one pod.
//!
//! **Filter** (a node fits when every check passes; each failed check is one reason):
//! - the pod's annotations parse;
//! - the node is in the view;
//! - bandwidth reservations: the pod's egress reservation (`kubernetes.io/egress-bandwidth`,
//!   else `min-bandwidth`) is at most the node's free egress (measured uplink minus what
//!   bound pods reserve), and the same for ingress;
//! - with `peers`, `min-bandwidth` holds to and from every node running a matching pod
//!   (measured goodput, else estimated as the smaller of the two uplinks; co-located peers
//!   are node-local and pass);
//! - `max-latency` holds to every such node (to the pod's other replicas without
//!   `peers`; satisfied when there are none), by the measured RTT p50, else the predicted
//!   one; co-located is 0;
//! - with a GPU annotation, one GPU matches the model, has the free memory and is at most
//!   that busy.
//!
//! **Score** (0-10, for nodes that fit): `round(10 × Σ wᵢ·sᵢ / Σ wᵢ)` over the terms that
//! apply, each `sᵢ` in [0, 1] relative to the best and worst candidates that fit (all
//! equal: 1):
//! - latency, w = 4: the worst RTT to the peer (or replica) nodes, lower is better; applies
//!   when there are such nodes;
//! - bandwidth, w = 3: log₁₀ of the smallest bandwidth to the peer nodes, or of the free
//!   egress without `peers`, higher is better; applies when the pod asks for bandwidth or
//!   names peers;
//! - GPU memory, w = 2: the most free memory on a matching GPU, higher is better;
//! - GPU utilization, w = 1: `(100 − lowest utilization of a matching GPU) / 100`;
//!   both GPU terms apply when the pod has a GPU annotation.
//!
//! A pod with no linkmeter annotation fits everywhere with score 0, so the extender can
//! be configured for every pod.

use std::collections::{BTreeSet, HashMap};

use super::request::PodRequest;
use super::units;
use super::world::{GpuFacts, NodeFacts, PlacedPod, PodUnderPlacement, World};

/// Highest score (kube-scheduler's `MaxExtenderPriority`).
pub const MAX_SCORE: u8 = 10;

const W_LATENCY: f64 = 4.0;
const W_BANDWIDTH: f64 = 3.0;
const W_GPU_MEMORY: f64 = 2.0;
const W_GPU_UTIL: f64 = 1.0;

/// One node's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Node name.
    pub node: String,
    /// Every check passed.
    pub fits: bool,
    /// Why it does not fit, one reason per failed check, with the figures.
    pub reasons: Vec<String>,
    /// The figures of the checks that passed (only with [`Detail::Explain`]).
    pub notes: Vec<String>,
    /// 0-10; 0 for a node that does not fit.
    pub score: u8,
}

/// How much to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Reasons only (the extender).
    Reasons,
    /// Reasons and notes (`explain`).
    Explain,
}

/// Where the peers of the pod run, and what they are.
struct Targets<'a> {
    /// The nodes, by name, with their facts when the view has them (the candidate
    /// itself may be among them: co-located).
    nodes: Vec<(&'a str, Option<&'a NodeFacts>)>,
    /// "peer" or "replica".
    what: &'static str,
}

/// Raw figures of one fitting node, for the score.
#[derive(Default)]
struct Figures {
    worst_rtt_us: Option<u64>,
    min_bandwidth_bps: Option<u64>,
    gpu_free_bytes: Option<u64>,
    gpu_util_percent: Option<u32>,
}

/// Verdicts for `candidates`, in their order. `pods`: every bound pod that has not
/// finished (the pod itself is skipped wherever it is).
pub fn evaluate<P: AsRef<PlacedPod>>(
    world: &World,
    pods: &[P],
    pod: &PodUnderPlacement,
    candidates: &[&str],
    detail: Detail,
) -> Vec<Verdict> {
    let request = match &pod.request {
        Err(errors) => {
            return candidates
                .iter()
                .map(|n| verdict(n, errors.clone(), Vec::new()))
                .collect();
        }
        Ok(r) => r,
    };
    if request.is_empty() {
        return candidates
            .iter()
            .map(|n| Verdict {
                node: (*n).to_owned(),
                fits: true,
                reasons: Vec::new(),
                notes: match detail {
                    Detail::Explain => vec!["no linkmeter annotation: every node fits".to_owned()],
                    Detail::Reasons => Vec::new(),
                },
                score: 0,
            })
            .collect();
    }
    let others: Vec<&PlacedPod> = pods
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| !is_itself(p, pod))
        .collect();
    let reserved = reservations(&others);
    let targets = targets(request, pod, &others, world);
    let mut figures = Vec::with_capacity(candidates.len());
    let mut verdicts = Vec::with_capacity(candidates.len());
    for &name in candidates {
        let mut check = Check {
            reasons: Vec::new(),
            notes: Vec::new(),
            explain: detail == Detail::Explain,
        };
        let Some(node) = world.node(name) else {
            check.fail("not in linkmeter's view (no Node or NodeTopology seen)".to_owned());
            verdicts.push(verdict(name, check.reasons, check.notes));
            figures.push(None);
            continue;
        };
        let mut fig = Figures::default();
        let held = reserved.get(name).copied().unwrap_or_default();
        check_uplink(&mut check, node, request, held, &mut fig);
        if let Some(t) = &targets {
            check_targets(&mut check, world, node, request, t, &mut fig);
        }
        if request.wants_gpu() {
            check_gpus(&mut check, node, request, &mut fig);
        }
        let fits = check.reasons.is_empty();
        figures.push(fits.then_some(fig));
        verdicts.push(verdict(name, check.reasons, check.notes));
    }
    score(request, targets.as_ref(), &figures, &mut verdicts);
    verdicts
}

/// The pod being placed may already be in the cache (rescheduled, or bound meanwhile).
fn is_itself(p: &PlacedPod, pod: &PodUnderPlacement) -> bool {
    if pod.uid.is_empty() {
        p.namespace == pod.namespace && p.name == pod.name
    } else {
        p.uid == pod.uid
    }
}

fn verdict(node: &str, reasons: Vec<String>, notes: Vec<String>) -> Verdict {
    Verdict {
        node: node.to_owned(),
        fits: reasons.is_empty(),
        reasons,
        notes,
        score: 0,
    }
}

struct Check {
    reasons: Vec<String>,
    notes: Vec<String>,
    explain: bool,
}

impl Check {
    fn fail(&mut self, why: String) {
        self.reasons.push(why);
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.explain {
            self.notes.push(what());
        }
    }
}

/// Per node: (egress, ingress) reserved, bit/s, and the pods reserving.
#[derive(Clone, Copy, Default)]
struct Held {
    egress: u64,
    ingress: u64,
    pods: u32,
}

fn reservations<'a>(pods: &[&'a PlacedPod]) -> HashMap<&'a str, Held> {
    let mut map: HashMap<&str, Held> = HashMap::new();
    for p in pods {
        if p.egress_bps == 0 && p.ingress_bps == 0 {
            continue;
        }
        let h = map.entry(p.node.as_str()).or_default();
        h.egress = h.egress.saturating_add(p.egress_bps);
        h.ingress = h.ingress.saturating_add(p.ingress_bps);
        h.pods += 1;
    }
    map
}

fn targets<'a>(
    request: &PodRequest,
    pod: &PodUnderPlacement,
    others: &[&'a PlacedPod],
    world: &'a World,
) -> Option<Targets<'a>> {
    let resolve = |names: BTreeSet<&'a str>| -> Vec<(&'a str, Option<&'a NodeFacts>)> {
        names.into_iter().map(|n| (n, world.node(n))).collect()
    };
    if let Some(selector) = &request.peers {
        let nodes = others
            .iter()
            .filter(|p| p.namespace == pod.namespace && selector.matches(&p.labels))
            .map(|p| p.node.as_str())
            .collect();
        return Some(Targets {
            nodes: resolve(nodes),
            what: "peer",
        });
    }
    if request.max_latency_us.is_some()
        && let Some(owner) = &pod.owner_uid
    {
        let nodes = others
            .iter()
            .filter(|p| p.owner_uid.as_ref() == Some(owner))
            .map(|p| p.node.as_str())
            .collect();
        return Some(Targets {
            nodes: resolve(nodes),
            what: "replica",
        });
    }
    None
}

fn check_uplink(
    check: &mut Check,
    node: &NodeFacts,
    request: &PodRequest,
    held: Held,
    fig: &mut Figures,
) {
    let directions = [
        (
            "uplink",
            request.egress_reservation_bps(),
            node.egress_capacity_bps,
            held.egress,
        ),
        (
            "downlink",
            request.ingress_reservation_bps(),
            node.ingress_capacity_bps,
            held.ingress,
        ),
    ];
    for (i, (what, asked, capacity, reserved)) in directions.into_iter().enumerate() {
        let Some(asked) = asked else { continue };
        let Some(capacity) = capacity else {
            let why = if node.stale {
                "no fresh NodeTopology"
            } else {
                "no throughput test yet"
            };
            check.fail(format!(
                "{what} not measured ({why}); {} requested",
                units::bps(asked)
            ));
            continue;
        };
        let free = capacity.saturating_sub(reserved);
        if i == 0 && request.peers.is_none() {
            fig.min_bandwidth_bps = Some(free);
        }
        // Built only when it is said: most nodes pass most checks silently.
        let figures = || {
            if reserved == 0 {
                format!("{what} {} measured", units::bps(capacity))
            } else {
                format!(
                    "{what} {} measured, {} reserved by {} pod{}, {} free",
                    units::bps(capacity),
                    units::bps(reserved),
                    held.pods,
                    if held.pods == 1 { "" } else { "s" },
                    units::bps(free)
                )
            }
        };
        if free < asked {
            check.fail(format!("{} < {} requested", figures(), units::bps(asked)));
        } else {
            check.note(|| format!("{} ≥ {} requested", figures(), units::bps(asked)));
        }
    }
}

fn check_targets(
    check: &mut Check,
    world: &World,
    node: &NodeFacts,
    request: &PodRequest,
    targets: &Targets<'_>,
    fig: &mut Figures,
) {
    if targets.nodes.is_empty() {
        check.note(|| match &request.peers {
            Some(s) => format!("no running pod matches peers ({s}): no pair constraint"),
            None => "no other replica runs: no latency constraint".to_owned(),
        });
        return;
    }
    let mut worst_rtt = 0u64;
    let mut min_bw: Option<u64> = None;
    for &(other, facts) in &targets.nodes {
        if other == node.name {
            check.note(|| {
                format!(
                    "co-located with a {}: RTT 0, node-local bandwidth",
                    targets.what
                )
            });
            continue;
        }
        if let Some(limit) = request.max_latency_us {
            match facts.and_then(|f| world.rtt(node, f)) {
                None => check.fail(format!(
                    "no RTT to {other} ({}), measured or predicted",
                    targets.what
                )),
                Some(p) => {
                    worst_rtt = worst_rtt.max(p.rtt_us);
                    let how = if p.measured { "measured" } else { "predicted" };
                    if p.rtt_us > limit {
                        check.fail(format!(
                            "RTT {} to {other} {how} > {} allowed",
                            units::rtt(p.rtt_us),
                            units::rtt(limit)
                        ));
                    } else {
                        check.note(|| {
                            format!(
                                "RTT {} to {other} {how} ≤ {}",
                                units::rtt(p.rtt_us),
                                units::rtt(limit)
                            )
                        });
                    }
                }
            }
        } else if let Some(p) = facts.and_then(|f| world.rtt(node, f)) {
            worst_rtt = worst_rtt.max(p.rtt_us);
        }
        if request.peers.is_some() {
            let bw = pair_bandwidth(
                check,
                world,
                node,
                (other, facts),
                request.min_bandwidth_bps,
            );
            min_bw = match (min_bw, bw) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    fig.worst_rtt_us = Some(worst_rtt);
    if request.peers.is_some() {
        fig.min_bandwidth_bps = Some(min_bw.unwrap_or(u64::MAX));
    }
}

/// The smaller of the two directions' bandwidth between `node` and `other`, checked
/// against `min` when the pod asks.
fn pair_bandwidth(
    check: &mut Check,
    world: &World,
    node: &NodeFacts,
    (other, peer): (&str, Option<&NodeFacts>),
    min: Option<u64>,
) -> Option<u64> {
    let mut smallest = None::<u64>;
    for (dir, outbound) in [("to", true), ("from", false)] {
        let (from, to) = if outbound {
            (Some(node), peer)
        } else {
            (peer, Some(node))
        };
        let measured = from.zip(to).and_then(|(f, t)| world.goodput_bps(f, t));
        let (bw, how) = match measured {
            Some(b) => (Some(b), "measured"),
            None => (
                from.and_then(|f| f.egress_capacity_bps)
                    .zip(to.and_then(|t| t.ingress_capacity_bps))
                    .map(|(a, b)| a.min(b)),
                "estimated from uplinks",
            ),
        };
        let Some(bw) = bw else {
            if let Some(min) = min {
                check.fail(format!(
                    "no throughput figure {dir} {other}; {} requested",
                    units::bps(min)
                ));
            }
            continue;
        };
        smallest = Some(smallest.map_or(bw, |s| s.min(bw)));
        if let Some(min) = min {
            if bw < min {
                check.fail(format!(
                    "{} {dir} {other} {how} < {} requested",
                    units::bps(bw),
                    units::bps(min)
                ));
            } else {
                check.note(|| {
                    format!(
                        "{} {dir} {other} {how} ≥ {}",
                        units::bps(bw),
                        units::bps(min)
                    )
                });
            }
        }
    }
    smallest
}

fn check_gpus(check: &mut Check, node: &NodeFacts, request: &PodRequest, fig: &mut Figures) {
    if node.gpus.is_empty() {
        check.fail(if node.stale {
            "no fresh NodeTopology: no GPU figures".to_owned()
        } else {
            "no GPU measured".to_owned()
        });
        return;
    }
    let model = request.gpu_model.as_ref().map(|m| m.to_lowercase());
    let by_model: Vec<&GpuFacts> = node
        .gpus
        .iter()
        .filter(|g| {
            model
                .as_ref()
                .is_none_or(|m| g.name.to_lowercase().contains(m))
        })
        .collect();
    if by_model.is_empty() {
        let names: BTreeSet<&str> = node.gpus.iter().map(|g| g.name.as_str()).collect();
        check.fail(format!(
            "no GPU matches model {:?} (has {})",
            request.gpu_model.as_deref().unwrap_or_default(),
            names.into_iter().collect::<Vec<_>>().join(", ")
        ));
        return;
    }
    let mut first_failure = None;
    let mut best: Option<&GpuFacts> = None;
    let mut fitting = 0;
    for g in &by_model {
        match gpu_shortfall(g, request) {
            None => {
                fitting += 1;
                fig.gpu_free_bytes = fig.gpu_free_bytes.max(g.memory_free_bytes);
                let util = g.utilization_percent.unwrap_or(100);
                fig.gpu_util_percent = Some(fig.gpu_util_percent.map_or(util, |u| u.min(util)));
                if best.is_none_or(|b| g.memory_free_bytes > b.memory_free_bytes) {
                    best = Some(g);
                }
            }
            Some(why) => {
                first_failure.get_or_insert(why);
            }
        }
    }
    match (best, first_failure) {
        (Some(g), _) => check.note(|| {
            format!(
                "{fitting} of {} GPUs fit; most free: {}",
                node.gpus.len(),
                describe(g)
            )
        }),
        (None, Some(why)) => check.fail(why),
        (None, None) => check.fail("no GPU fits".to_owned()),
    }
}

fn gpu_shortfall(g: &GpuFacts, request: &PodRequest) -> Option<String> {
    if let Some(min) = request.min_gpu_memory_free_bytes {
        match g.memory_free_bytes {
            None => return Some(format!("{}: free memory not measured", label(g))),
            Some(free) if free < min => {
                return Some(format!(
                    "{}: {} free < {} requested",
                    label(g),
                    units::bytes(free),
                    units::bytes(min)
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(max) = request.max_gpu_utilization_percent {
        match g.utilization_percent {
            None => return Some(format!("{}: utilization not measured", label(g))),
            Some(u) if u > max => {
                return Some(format!("{}: {u}% busy > {max}% allowed", label(g)));
            }
            Some(_) => {}
        }
    }
    None
}

fn label(g: &GpuFacts) -> String {
    if g.name.is_empty() {
        format!("GPU {}", g.index)
    } else {
        format!("GPU {} ({})", g.index, g.name)
    }
}

fn describe(g: &GpuFacts) -> String {
    let free = g.memory_free_bytes.map_or_else(
        || "? free".to_owned(),
        |b| format!("{} free", units::bytes(b)),
    );
    let util = g
        .utilization_percent
        .map_or_else(|| "? busy".to_owned(), |u| format!("{u}% busy"));
    format!("{}: {free}, {util}", label(g))
}

fn score(
    request: &PodRequest,
    targets: Option<&Targets<'_>>,
    figures: &[Option<Figures>],
    verdicts: &mut [Verdict],
) {
    let fitting = || figures.iter().flatten();
    let latency = targets.is_some_and(|t| !t.nodes.is_empty());
    let bandwidth = request.peers.is_some()
        || request.egress_reservation_bps().is_some()
        || request.ingress_reservation_bps().is_some();
    let gpu = request.wants_gpu();
    let lat = Range::of(fitting().filter_map(|f| f.worst_rtt_us.map(|v| v as f64)));
    let bw = Range::of(fitting().filter_map(|f| f.min_bandwidth_bps.map(log_bps)));
    let mem = Range::of(fitting().filter_map(|f| f.gpu_free_bytes.map(|v| v as f64)));
    for (v, f) in verdicts.iter_mut().zip(figures) {
        let Some(f) = f else { continue };
        let mut sum = 0.0;
        let mut weights = 0.0;
        if latency {
            sum += W_LATENCY * f.worst_rtt_us.map_or(1.0, |r| 1.0 - lat.position(r as f64));
            weights += W_LATENCY;
        }
        if bandwidth {
            sum += W_BANDWIDTH * f.min_bandwidth_bps.map_or(0.0, |b| bw.position(log_bps(b)));
            weights += W_BANDWIDTH;
        }
        if gpu {
            sum += W_GPU_MEMORY * f.gpu_free_bytes.map_or(0.0, |b| mem.position(b as f64));
            sum += W_GPU_UTIL
                * f.gpu_util_percent
                    .map_or(0.0, |u| f64::from(100 - u.min(100)) / 100.0);
            weights += W_GPU_MEMORY + W_GPU_UTIL;
        }
        v.score = if weights > 0.0 {
            (f64::from(MAX_SCORE) * sum / weights)
                .round()
                .clamp(0.0, f64::from(MAX_SCORE)) as u8
        } else {
            0
        };
    }
}

fn log_bps(b: u64) -> f64 {
    (b.max(1) as f64).log10()
}

/// The smallest and largest of a figure over the fitting nodes.
#[derive(Clone, Copy)]
struct Range {
    min: f64,
    max: f64,
}

impl Range {
    fn of(values: impl Iterator<Item = f64>) -> Range {
        values.fold(
            Range {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            },
            |r, v| Range {
                min: r.min.min(v),
                max: r.max.max(v),
            },
        )
    }

    /// Where `v` lies, 0 at the smallest and 1 at the largest; 1 when all are equal.
    fn position(self, v: f64) -> f64 {
        let span = self.max - self.min;
        if span.is_finite() && span > 0.0 {
            ((v - self.min) / span).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
