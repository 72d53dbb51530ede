//! The inputs of one calculation: NodeTopologies and (optionally) Nodes, read from
//! files or from the cluster, with what had to be skipped on the way.

use std::path::Path;

use k8s_openapi::api::core::v1::Node;

use super::exit::Failure;
use super::files::{self, Input, Items};
use super::warnings::Warnings;
use crate::api::NodeTopology;
use crate::cluster::NodeInfo;

/// What a calculation reads.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Every NodeTopology that could be read.
    pub topologies: Vec<NodeTopology>,
    /// The Nodes; `None` when none were given (every NodeTopology is then a node).
    pub nodes: Option<Vec<NodeInfo>>,
    /// NodeTopology items that could not be read.
    pub unreadable_topologies: u64,
    /// Node items that could not be read.
    pub unreadable_nodes: u64,
    /// Warnings about the items skipped, one set per source.
    pub warnings: Vec<Warnings>,
}

impl Inputs {
    /// Collects read lists into inputs.
    pub fn from_items(topologies: Items<NodeTopology>, nodes: Option<Items<Node>>) -> Inputs {
        let mut warnings = vec![topologies.warnings];
        let (nodes, unreadable_nodes) = match nodes {
            Some(n) => {
                warnings.push(n.warnings);
                let infos = n.items.iter().map(NodeInfo::from_node).collect();
                (Some(infos), n.skipped)
            }
            None => (None, 0),
        };
        Inputs {
            topologies: topologies.items,
            nodes,
            unreadable_topologies: topologies.skipped,
            unreadable_nodes,
            warnings,
        }
    }

    /// Reads both files (`-` is stdin; only one of them may be). Nothing is printed: the
    /// warnings wait in [`Inputs::warnings`].
    pub fn from_files(topologies: &Path, nodes: Option<&Path>) -> Result<Inputs, Failure> {
        let topologies = Input::from_path(topologies);
        let nodes = nodes.map(Input::from_path);
        if topologies == Input::Stdin && nodes.as_ref() == Some(&Input::Stdin) {
            return Err(Failure::usage(
                "--nodetopologies and --nodes cannot both read stdin (-)",
            ));
        }
        let topologies = files::read_list::<NodeTopology>(&topologies)?;
        let nodes = nodes.map(|n| files::read_list::<Node>(&n)).transpose()?;
        Ok(Inputs::from_items(topologies, nodes))
    }

    /// Prints the warnings about skipped items (bounded per source).
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            w.print();
        }
    }
}
