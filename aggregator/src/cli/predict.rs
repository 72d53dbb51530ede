//! `predict`: the RTT of node pairs, measured where some end measured the pair, else
//! predicted from the network coordinates; one JSON object per line.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::calculate::{calculate, print_warnings};
use super::exit::Failure;
use super::inputs::Inputs;
use super::stdout::with_stdout;
use super::view_args::ViewArgs;
use crate::cluster::Output;

/// Options of `predict`.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// NodeTopologies: what `kubectl get nodetopologies -o json` (or -o yaml) prints; `-`
    /// reads stdin
    #[arg(long, value_name = "FILE")]
    pub nodetopologies: PathBuf,
    /// Nodes: what `kubectl get nodes -o json` prints; `-` reads stdin. Without it every
    /// NodeTopology is a node and Nodes that are gone are not recognised
    #[arg(long, value_name = "FILE")]
    pub nodes: Option<PathBuf>,
    /// Print only the pair from this node (needs --to)
    #[arg(long, value_name = "NODE", requires = "to")]
    pub from: Option<String>,
    /// Print only the pair to this node (needs --from)
    #[arg(long, value_name = "NODE", requires = "from")]
    pub to: Option<String>,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// One output line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    from: &'a str,
    to: &'a str,
    rtt_us: u64,
    measured: bool,
}

/// Runs `predict`.
pub fn run(args: &PredictArgs) -> Result<(), Failure> {
    if let (Some(from), Some(to)) = (&args.from, &args.to)
        && from == to
    {
        return Err(Failure::usage(format!(
            "--from and --to name the same node ({from})"
        )));
    }
    let inputs = Inputs::from_files(&args.nodetopologies, args.nodes.as_deref())?;
    inputs.print_warnings();
    let out = calculate(&inputs, &args.view.options());
    print_warnings(&out);
    match (&args.from, &args.to) {
        (Some(from), Some(to)) => one_pair(&out, from, to),
        _ => with_stdout(|w| every_pair(&out, w)),
    }
}

fn one_pair(out: &Output, from: &str, to: &str) -> Result<(), Failure> {
    for name in [from, to] {
        if out
            .node_names()
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_err()
        {
            return Err(Failure::usage(format!(
                "unknown node {name:?}: not among the {} nodes of the view",
                out.node_names().len()
            )));
        }
    }
    let Some(p) = out.predict(from, to) else {
        return Err(Failure::runtime(format!(
            "no RTT for {from} -> {to}: the pair was not measured and the coordinates know \
             nothing about one of them"
        )));
    };
    with_stdout(|w| write_line(w, from, to, p.rtt_us, p.measured))
}

/// Every ordered pair with a figure, sorted by `from` then `to` (the names are sorted).
fn every_pair(out: &Output, w: &mut dyn Write) -> std::io::Result<()> {
    let names = out.node_names();
    for from in names {
        for to in names {
            if let Some(p) = out.predict(from, to) {
                write_line(w, from, to, p.rtt_us, p.measured)?;
            }
        }
    }
    Ok(())
}

fn write_line(
    w: &mut dyn Write,
    from: &str,
    to: &str,
    rtt_us: u64,
    measured: bool,
) -> std::io::Result<()> {
    let line = Line {
        from,
        to,
        rtt_us,
        measured,
    };
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}
