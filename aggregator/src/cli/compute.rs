//! `compute`: the controller's calculation, offline, from `kubectl get -o json` lists;
//! prints the ClusterTopology and the NetworkTopology as a `v1` `List` for
//! `kubectl apply -f -`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::calculate::{calculate, print_warnings};
use super::exit::Failure;
use super::inputs::Inputs;
use super::stdout::with_stdout;
use super::view_args::{ViewArgs, non_empty};
use crate::api::{
    CLUSTER_TOPOLOGY_NAME, ClusterTopology, ClusterTopologySpec, DEFAULT_WEIGHTS_NAME,
    NetworkTopology,
};
use crate::cluster::{Options, Output};

/// Options of `compute`.
#[derive(Debug, Clone, Args)]
pub struct ComputeArgs {
    /// NodeTopologies: what `kubectl get nodetopologies -o json` (or -o yaml) prints; `-`
    /// reads stdin
    #[arg(long, value_name = "FILE")]
    pub nodetopologies: PathBuf,
    /// Nodes: what `kubectl get nodes -o json` (or -o yaml) prints; `-` reads stdin
    #[arg(long, value_name = "FILE")]
    pub nodes: PathBuf,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Json)]
    pub output: Format,
    #[command(flatten)]
    pub view: ViewArgs,
    /// `weights[].name` of the NetworkTopology (the plugin's `weightsName`)
    #[arg(long, value_name = "NAME", default_value = DEFAULT_WEIGHTS_NAME, value_parser = non_empty)]
    pub weights_name: String,
    /// `spec.configmapName` of the NetworkTopology (the CRD requires one)
    #[arg(long, value_name = "NAME", default_value = "linkmeter-aggregator", value_parser = non_empty)]
    pub configmap_name: String,
    /// Namespace of the NetworkTopology
    #[arg(long, value_name = "NAMESPACE", default_value = "default", value_parser = non_empty)]
    pub network_topology_namespace: String,
    /// Name of the NetworkTopology
    #[arg(long, value_name = "NAME", default_value = "nt-default", value_parser = non_empty)]
    pub network_topology_name: String,
    /// Name of the ClusterTopology
    #[arg(long, value_name = "NAME", default_value = CLUSTER_TOPOLOGY_NAME, value_parser = non_empty)]
    pub cluster_topology_name: String,
}

/// How `compute` prints its List.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Indented JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Where the two objects go.
#[derive(Debug, Clone)]
pub struct ObjectNames {
    /// ClusterTopology name.
    pub cluster_topology: String,
    /// NetworkTopology name.
    pub network_topology: String,
    /// NetworkTopology namespace.
    pub network_topology_namespace: String,
}

/// A `v1` `List` of the two objects, in the order `kubectl apply` should see them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyList {
    api_version: &'static str,
    kind: &'static str,
    items: (ClusterTopology, NetworkTopology),
}

impl ApplyList {
    /// The ClusterTopology and the NetworkTopology of `out`.
    pub fn new(out: &Output, names: &ObjectNames) -> ApplyList {
        let mut cluster = ClusterTopology::new(&names.cluster_topology, ClusterTopologySpec {});
        cluster.status = Some(out.cluster.clone());
        let mut network = NetworkTopology::new(&names.network_topology, out.network.clone());
        network.metadata.namespace = Some(names.network_topology_namespace.clone());
        network.status = Some(out.network_status.clone());
        ApplyList {
            api_version: "v1",
            kind: "List",
            items: (cluster, network),
        }
    }

    /// The list as text in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> Result<String, Failure> {
        let text = match format {
            Format::Json => serde_json::to_string_pretty(self)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| e.to_string()),
            Format::Yaml => serde_norway::to_string(self).map_err(|e| e.to_string()),
        };
        text.map_err(|e| Failure::runtime(format!("cannot serialise the objects: {e}")))
    }
}

/// Runs `compute`.
pub fn run(args: &ComputeArgs) -> Result<(), Failure> {
    let mut opts: Options = args.view.options();
    opts.weights_name = args.weights_name.clone();
    opts.configmap_name = args.configmap_name.clone();
    let inputs = Inputs::from_files(&args.nodetopologies, Some(&args.nodes))?;
    inputs.print_warnings();
    let out = calculate(&inputs, &opts);
    print_warnings(&out);
    let names = ObjectNames {
        cluster_topology: args.cluster_topology_name.clone(),
        network_topology: args.network_topology_name.clone(),
        network_topology_namespace: args.network_topology_namespace.clone(),
    };
    let text = ApplyList::new(&out, &names).render(args.output)?;
    with_stdout(|w| w.write_all(text.as_bytes()))
}
