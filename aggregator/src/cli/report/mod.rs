//! `report`: the cluster view for a person, as text or as one JSON document; from the
//! cluster or from the same files as `compute`.

mod model;
mod table;
mod text;

use std::path::PathBuf;

use clap::Args;

pub use model::{Report, WORST_LINKS, WorstLink};

use super::calculate::{calculate, print_warnings};
use super::exit::Failure;
use super::inputs::Inputs;
use super::stdout::with_stdout;
use super::view_args::ViewArgs;

/// Options of `report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Print one JSON document (the ClusterTopology status plus `worstLinks`) instead of
    /// text
    #[arg(long)]
    pub json: bool,
    /// Read NodeTopologies from this file (`kubectl get nodetopologies -o json`; `-` is
    /// stdin) instead of the cluster
    #[arg(long, value_name = "FILE", conflicts_with = "kubeconfig")]
    pub nodetopologies: Option<PathBuf>,
    /// Read Nodes from this file (`kubectl get nodes -o json`; `-` is stdin); needs
    /// --nodetopologies
    #[arg(long, value_name = "FILE", requires = "nodetopologies")]
    pub nodes: Option<PathBuf>,
    /// Kubeconfig to read the cluster with [default: the in-cluster config, else
    /// $KUBECONFIG or ~/.kube/config]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// Runs `report`.
pub fn run(args: &ReportArgs) -> Result<(), Failure> {
    let opts = args.view.options();
    let inputs = match &args.nodetopologies {
        Some(topologies) => Inputs::from_files(topologies, args.nodes.as_deref())?,
        None => super::cluster_read::read(args.kubeconfig.as_deref())?,
    };
    inputs.print_warnings();
    let out = calculate(&inputs, &opts);
    print_warnings(&out);
    let report = Report::new(&out);
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::runtime(format!("cannot serialise the report: {e}")))?;
        s.push('\n');
        s
    } else {
        text::render(&report)
    };
    with_stdout(|w| w.write_all(text.as_bytes()))
}
