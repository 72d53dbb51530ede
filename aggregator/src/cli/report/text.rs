//! The report as text for a person. Every list is cut so that a 5,000-node cluster
//! still fits on a screen or two; `--json` has everything.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::model::Report;
use super::table::{Align, joined, mbps, more, ms, percent, table, wrapped};
use crate::api::GroupPair;

/// Zones listed in "Nodes per zone".
const ZONES_LISTED: usize = 40;
/// Node names shown per zone, class, or the stale list.
const NAMES_SHOWN: usize = 6;
/// Stale node names shown.
const STALE_SHOWN: usize = 20;
/// Zones (or regions) in a matrix: about 100 columns of text.
const MATRIX_SIZE: usize = 8;
/// Width wrapped lists are kept to.
const WIDTH: usize = 100;
/// Nodes listed with their GPUs.
const GPU_NODES_LISTED: usize = 20;

/// The whole report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    header(&mut s, r);
    zones(&mut s, r);
    let zone_names = group_names(r.status.zones.iter().map(|z| z.zone.as_str()));
    let region_names = group_names(r.status.zones.iter().map(|z| z.region.as_str()));
    rtt_matrix(&mut s, "Zone", &zone_names, &r.status.zone_pairs);
    throughput_matrix(&mut s, "Zone", &zone_names, &r.status.zone_pairs);
    rtt_matrix(&mut s, "Region", &region_names, &r.status.region_pairs);
    worst_links(&mut s, r);
    stale(&mut s, r);
    gpus(&mut s, r);
    classes(&mut s, r);
    model(&mut s, r);
    skipped(&mut s, r);
    s
}

fn header(s: &mut String, r: &Report) {
    let st = &r.status;
    let at = st.calculated_at.as_deref().unwrap_or("an unknown time");
    let _ = writeln!(
        s,
        "linkmeter cluster report, calculated at {at} in {} ms",
        st.calculation_millis
    );
    let _ = writeln!(
        s,
        "{} nodes in {} zones, {} stale",
        st.node_count, st.zone_count, st.stale_node_count
    );
}

/// `""` (unlabelled) shown as `-`.
fn label(v: &str) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.to_owned()
    }
}

fn zones(s: &mut String, r: &Report) {
    s.push_str("\nNodes per zone\n");
    let mut rows = vec![vec![
        "REGION".to_owned(),
        "ZONE".to_owned(),
        "NODES".to_owned(),
        "NAMES".to_owned(),
    ]];
    for z in r.status.zones.iter().take(ZONES_LISTED) {
        let names: Vec<String> = z.nodes.iter().map(|n| n.name.clone()).collect();
        rows.push(vec![
            label(&z.region),
            label(&z.zone),
            z.nodes.len().to_string(),
            joined(&names, NAMES_SHOWN),
        ]);
    }
    s.push_str(&table(&rows, &[Align::Left, Align::Left, Align::Right]));
    s.push_str(&more(ZONES_LISTED, r.status.zones.len(), "zones"));
}

/// Distinct names in first-seen order (the zones come sorted by region, then zone).
fn group_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

/// A `from` × `to` matrix of `cell(pair)`, or `-` where the pair has no figure.
fn matrix(
    s: &mut String,
    names: &[String],
    pairs: &[GroupPair],
    cell: impl Fn(&GroupPair) -> Option<String>,
    what: &str,
) {
    let by_key: BTreeMap<(&str, &str), &GroupPair> = pairs
        .iter()
        .map(|p| ((p.from.as_str(), p.to.as_str()), p))
        .collect();
    let shown = &names[..names.len().min(MATRIX_SIZE)];
    let mut header = vec!["FROM \\ TO".to_owned()];
    header.extend(shown.iter().map(|n| label(n)));
    let mut rows = vec![header];
    for from in shown {
        let mut row = vec![label(from)];
        for to in shown {
            let text = by_key
                .get(&(from.as_str(), to.as_str()))
                .and_then(|p| cell(p))
                .unwrap_or_else(|| "-".to_owned());
            row.push(text);
        }
        rows.push(row);
    }
    let mut align = vec![Align::Left];
    align.extend(std::iter::repeat_n(Align::Right, shown.len()));
    s.push_str(&table(&rows, &align));
    if names.len() > shown.len() {
        let _ = writeln!(
            s,
            "  … and {} more {what} (see --json)",
            names.len() - shown.len()
        );
    }
}

fn rtt_matrix(s: &mut String, level: &str, names: &[String], pairs: &[GroupPair]) {
    let _ = writeln!(
        s,
        "\n{level} RTT p50/p90, ms (rows: from, columns: to; ~ predicted, nothing measured)"
    );
    if pairs.is_empty() {
        s.push_str("  no figures\n");
        return;
    }
    let what = format!("{}s", level.to_lowercase());
    matrix(
        s,
        names,
        pairs,
        |p| {
            let mark = if p.pairs == 0 { "~" } else { "" };
            Some(format!("{mark}{}/{}", ms(p.rtt_p50_us), ms(p.rtt_p90_us)))
        },
        &what,
    );
}

fn throughput_matrix(s: &mut String, level: &str, names: &[String], pairs: &[GroupPair]) {
    let _ = writeln!(
        s,
        "\n{level} throughput median, Mbit/s (rows: from, columns: to)"
    );
    if pairs.iter().all(|p| p.throughput_median_kbps.is_none()) {
        s.push_str("  nothing measured\n");
        return;
    }
    let what = format!("{}s", level.to_lowercase());
    matrix(
        s,
        names,
        pairs,
        |p| p.throughput_median_kbps.map(mbps),
        &what,
    );
}

fn worst_links(s: &mut String, r: &Report) {
    s.push_str("\nWorst measured links, by RTT p50\n");
    if r.worst_links.is_empty() {
        s.push_str("  no measured links\n");
        return;
    }
    let dash = || "-".to_owned();
    let mut rows = vec![vec![
        "FROM".to_owned(),
        "TO".to_owned(),
        "P50 MS".to_owned(),
        "P90 MS".to_owned(),
        "TX MBIT/S".to_owned(),
        "RX MBIT/S".to_owned(),
    ]];
    for l in &r.worst_links {
        rows.push(vec![
            l.from.clone(),
            l.to.clone(),
            ms(l.rtt_p50_us),
            l.rtt_p90_us.map_or_else(dash, ms),
            l.tx_kbps.map_or_else(dash, mbps),
            l.rx_kbps.map_or_else(dash, mbps),
        ]);
    }
    let align = [
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
    ];
    s.push_str(&table(&rows, &align));
}

fn stale(s: &mut String, r: &Report) {
    let names = &r.status.stale_nodes;
    let _ = writeln!(
        s,
        "\nStale nodes (no NodeTopology newer than --stale-after): {}",
        names.len()
    );
    s.push_str(&wrapped(names, STALE_SHOWN, WIDTH));
}

fn gpus(s: &mut String, r: &Report) {
    let nodes: Vec<(&str, u32)> = r
        .status
        .zones
        .iter()
        .flat_map(|z| z.nodes.iter())
        .filter(|n| n.gpus > 0)
        .map(|n| (n.name.as_str(), n.gpus))
        .collect();
    let total: u64 = nodes.iter().map(|(_, g)| u64::from(*g)).sum();
    let _ = writeln!(
        s,
        "\nGPUs per node: {} nodes with GPUs, {total} GPUs",
        nodes.len()
    );
    if nodes.is_empty() {
        return;
    }
    let mut rows = vec![vec!["NODE".to_owned(), "GPUS".to_owned()]];
    for (name, g) in nodes.iter().take(GPU_NODES_LISTED) {
        rows.push(vec![(*name).to_owned(), g.to_string()]);
    }
    s.push_str(&table(&rows, &[Align::Left, Align::Right]));
    s.push_str(&more(GPU_NODES_LISTED, nodes.len(), "nodes with GPUs"));
}

fn classes(s: &mut String, r: &Report) {
    let mut by_class: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut normal = 0usize;
    for n in r.status.zones.iter().flat_map(|z| z.nodes.iter()) {
        match n.class.as_deref() {
            Some(c) => by_class.entry(c).or_default().push(n.name.clone()),
            None => normal += 1,
        }
    }
    s.push_str("\nNode classes\n");
    let mut rows = vec![vec![
        "CLASS".to_owned(),
        "NODES".to_owned(),
        "NAMES".to_owned(),
    ]];
    rows.push(vec!["normal".to_owned(), normal.to_string(), String::new()]);
    for (class, names) in &mut by_class {
        names.sort();
        rows.push(vec![
            (*class).to_owned(),
            names.len().to_string(),
            joined(names, NAMES_SHOWN),
        ]);
    }
    s.push_str(&table(&rows, &[Align::Left, Align::Right]));
}

fn model(s: &mut String, r: &Report) {
    s.push_str("\nModel quality (network coordinates, cross-validated on held-out pairs)\n");
    let Some(m) = &r.status.model else {
        s.push_str("  no model\n");
        return;
    };
    let _ = write!(
        s,
        "  {} dimensions + height, {} pairs fitted, {} held out",
        m.dimensions, m.fitted_pairs, m.held_out_pairs
    );
    match (m.median_error_permille, m.p90_error_permille) {
        (Some(med), Some(p90)) => {
            let _ = writeln!(
                s,
                "; median error {}, p90 error {}",
                percent(med),
                percent(p90)
            );
        }
        _ => s.push_str("; too few pairs held out to measure the error\n"),
    }
}

fn skipped(s: &mut String, r: &Report) {
    s.push_str("\nSkipped or clipped input\n");
    if r.status.skipped.is_empty() {
        s.push_str("  nothing\n");
        return;
    }
    let mut rows = vec![vec!["REASON".to_owned(), "ITEMS".to_owned()]];
    for c in &r.status.skipped {
        rows.push(vec![c.reason.clone(), c.count.to_string()]);
    }
    s.push_str(&table(&rows, &[Align::Left, Align::Right]));
}
