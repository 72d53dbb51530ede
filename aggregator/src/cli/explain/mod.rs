//! `explain`: every node's verdict for one pod, with the reasons and the score, as the
//! extender would decide now; from the cluster or from files (`--pod` with the files
//! `compute` reads, and `--pods` for the pods already placed).

mod text;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use super::calculate::{calculate, print_warnings};
use super::exit::Failure;
use super::files::{self, Input};
use super::inputs::Inputs;
use super::stdout::with_stdout;
use super::view_args::ViewArgs;
use crate::placement::{self, Detail, PodRequest, PodUnderPlacement, Verdict, World};

/// Options of `explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The pod, `[NAMESPACE/]NAME` (namespace `default` when left out), read from the
    /// cluster with everything else
    #[arg(
        value_name = "POD",
        required_unless_present = "pod_file",
        conflicts_with = "pod_file"
    )]
    pub pod: Option<String>,
    /// Read the pod from this file (YAML or JSON, one Pod) instead; needs --nodetopologies
    #[arg(long = "pod", value_name = "FILE", requires = "nodetopologies")]
    pub pod_file: Option<PathBuf>,
    /// With --pod: NodeTopologies (`kubectl get nodetopologies -o json`)
    #[arg(long, value_name = "FILE")]
    pub nodetopologies: Option<PathBuf>,
    /// With --pod: Nodes (`kubectl get nodes -o json`)
    #[arg(long, value_name = "FILE", requires = "pod_file")]
    pub nodes: Option<PathBuf>,
    /// With --pod: the pods already running (`kubectl get pods -A -o json`), for peers,
    /// replicas and bandwidth reservations
    #[arg(long, value_name = "FILE", requires = "pod_file")]
    pub pods: Option<PathBuf>,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
    /// Kubeconfig to read the cluster with [default: the in-cluster config, else
    /// $KUBECONFIG or ~/.kube/config]
    #[arg(long, value_name = "PATH", conflicts_with = "pod_file")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// `namespace/name`.
    pub pod: String,
    /// What the pod asks, one line per annotation read.
    pub request: Vec<String>,
    /// Why its annotations cannot be read (then no node fits).
    pub errors: Vec<String>,
    /// Every node: fitting ones by score (best first), then the others by name.
    pub nodes: Vec<NodeVerdict>,
}

/// One node in [`Explanation`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVerdict {
    /// Node name.
    pub node: String,
    /// Every check passed.
    pub fits: bool,
    /// 0-10 (0 when it does not fit).
    pub score: u8,
    /// Why not.
    pub reasons: Vec<String>,
    /// The figures of the checks that passed.
    pub notes: Vec<String>,
}

/// Runs `explain`.
pub fn run(args: &ExplainArgs) -> Result<(), Failure> {
    let (inputs, pod, pods) = read(args)?;
    inputs.print_warnings();
    let out = calculate(&inputs, &args.view.options());
    print_warnings(&out);
    let world = World::new(out, &inputs.topologies);
    let explanation = explain(&world, &pod, &pods);
    with_stdout(|w| {
        if args.json {
            serde_json::to_writer_pretty(&mut *w, &explanation)?;
            writeln!(w)
        } else {
            text::write(w, &explanation)
        }
    })
}

/// The explanation of `pod` in `world` with `placed` already running.
pub fn explain(world: &World, pod: &Pod, placed: &[Pod]) -> Explanation {
    let under = PodUnderPlacement::from_pod(pod);
    let placed: Vec<Arc<placement::PlacedPod>> = placed
        .iter()
        .filter_map(placement::placed)
        .map(Arc::new)
        .collect();
    let names: Vec<&str> = world.nodes().map(|n| n.name.as_str()).collect();
    let mut verdicts = placement::evaluate(world, &placed, &under, &names, Detail::Explain);
    verdicts.sort_by(|a, b| {
        b.fits
            .cmp(&a.fits)
            .then(b.score.cmp(&a.score))
            .then(a.node.cmp(&b.node))
    });
    let (request, errors) = match &under.request {
        Ok(r) => (describe(r), Vec::new()),
        Err(e) => (Vec::new(), e.clone()),
    };
    Explanation {
        pod: format!("{}/{}", under.namespace, under.name),
        request,
        errors,
        nodes: verdicts.into_iter().map(node_verdict).collect(),
    }
}

fn node_verdict(v: Verdict) -> NodeVerdict {
    NodeVerdict {
        node: v.node,
        fits: v.fits,
        score: v.score,
        reasons: v.reasons,
        notes: v.notes,
    }
}

/// One line per thing the pod asks.
fn describe(r: &PodRequest) -> Vec<String> {
    use placement::request as a;
    use placement::units;
    let mut lines = Vec::new();
    let mut add = |key: &str, value: String| lines.push(format!("{key}: {value}"));
    if let Some(v) = r.min_bandwidth_bps {
        add(a::MIN_BANDWIDTH, units::bps(v));
    }
    if let Some(v) = r.max_latency_us {
        add(a::MAX_LATENCY, format!("{} RTT", units::rtt(v)));
    }
    if let Some(v) = &r.peers {
        add(a::PEERS, v.to_string());
    }
    if let Some(v) = r.min_gpu_memory_free_bytes {
        add(a::MIN_GPU_MEMORY_FREE, units::bytes(v));
    }
    if let Some(v) = &r.gpu_model {
        add(a::GPU_MODEL, format!("{v:?}"));
    }
    if let Some(v) = r.max_gpu_utilization_percent {
        add(a::MAX_GPU_UTILIZATION, format!("{v}%"));
    }
    if let Some(v) = r.egress_bps {
        add(a::EGRESS_BANDWIDTH, units::bps(v));
    }
    if let Some(v) = r.ingress_bps {
        add(a::INGRESS_BANDWIDTH, units::bps(v));
    }
    lines
}

fn read(args: &ExplainArgs) -> Result<(Inputs, Pod, Vec<Pod>), Failure> {
    match (&args.pod_file, &args.nodetopologies) {
        (Some(pod_file), Some(topologies)) => {
            let inputs = Inputs::from_files(topologies, args.nodes.as_deref())?;
            let pod = read_pod(&Input::from_path(pod_file))?;
            let pods = match &args.pods {
                Some(p) => {
                    let items = files::read_list::<Pod>(&Input::from_path(p))?;
                    items.warnings.print();
                    items.items
                }
                None => Vec::new(),
            };
            Ok((inputs, pod, pods))
        }
        (Some(_), None) => Err(Failure::usage("--pod needs --nodetopologies")),
        (None, _) => {
            let target = args.pod.as_deref().unwrap_or_default();
            let (namespace, name) = target.split_once('/').unwrap_or(("default", target));
            if namespace.is_empty() || name.is_empty() || name.contains('/') {
                return Err(Failure::usage(format!(
                    "POD {target:?}: expected [NAMESPACE/]NAME"
                )));
            }
            let (inputs, pod, pods) =
                super::cluster_read::read_for_pod(args.kubeconfig.as_deref(), namespace, name)?;
            pods.warnings.print();
            Ok((inputs, pod, pods.items))
        }
    }
}

/// One Pod from a file: JSON when it starts with `{`, else YAML.
fn read_pod(input: &Input) -> Result<Pod, Failure> {
    let bytes = input.read()?;
    let label = input.label();
    let bad = |e: &dyn std::fmt::Display| Failure::data(format!("{label}: not a Pod: {e}"));
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let value: serde_json::Value = if first == Some(&b'{') {
        serde_json::from_slice(&bytes).map_err(|e| bad(&e))?
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(&e))?;
        serde_norway::from_str(text).map_err(|e| bad(&e))?
    };
    if let Some(kind) = value.get("kind").and_then(|k| k.as_str())
        && kind != "Pod"
    {
        return Err(bad(&format!("kind {kind:?}")));
    }
    serde_json::from_value(value).map_err(|e| bad(&e))
}
