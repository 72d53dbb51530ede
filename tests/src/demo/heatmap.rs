//! The measured matrix as a picture a person reads at a glance: two heatmaps side by
//! side, RTT p50 and throughput, a row per source node and a column per destination,
//! each cell coloured on a log scale (green good, red bad) and labelled with its
//! figure. Written as SVG, which every browser shows.

use std::fmt::Write as _;

use super::matrix::figures;
use super::progress::Measured;

const CELL: f64 = 96.0;
const LABEL_W: f64 = 80.0;
const TOP: f64 = 86.0;
const GAP: f64 = 60.0;

/// Log-scale position of `v` in `[lo, hi]`, clamped to 0..1.
fn position(v: f64, lo: f64, hi: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    ((v.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0)
}

/// Green (0) through yellow to red (1).
fn colour(bad: f64) -> String {
    let bad = bad.clamp(0.0, 1.0);
    let (r, g) = if bad < 0.5 {
        (bad * 2.0, 1.0)
    } else {
        (1.0, (1.0 - bad) * 2.0)
    };
    format!(
        "rgb({},{},{})",
        (60.0 + 180.0 * r).round(),
        (60.0 + 150.0 * g).round(),
        70
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A cell's label and how bad (0..1) its figure is, for (from, to).
type CellValue<'a> = &'a dyn Fn(&str, &str) -> Option<(String, f64)>;

/// One heatmap at `x0`: `value(from, to)` gives the label and how bad (0..1) it is.
fn panel(svg: &mut String, x0: f64, title: &str, names: &[&str], value: CellValue<'_>) {
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{:.0}" font-size="16" font-weight="bold">{}</text>"#,
        x0 + LABEL_W,
        TOP - 44.0,
        escape(title)
    );
    for (j, to) in names.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.0}" y="{:.0}" font-size="13" text-anchor="middle">to {}</text>"#,
            x0 + LABEL_W + CELL * (j as f64 + 0.5),
            TOP - 10.0,
            escape(to)
        );
    }
    for (i, from) in names.iter().enumerate() {
        let y = TOP + CELL * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{:.0}" y="{:.0}" font-size="13" text-anchor="end">{}</text>"#,
            x0 + LABEL_W - 8.0,
            y + CELL / 2.0 + 4.0,
            escape(from)
        );
        for (j, to) in names.iter().enumerate() {
            let x = x0 + LABEL_W + CELL * j as f64;
            let (fill, label) = if from == to {
                ("#e8e8e8".to_owned(), String::new())
            } else {
                match value(from, to) {
                    Some((label, bad)) => (colour(bad), label),
                    None => ("#bbbbbb".to_owned(), "not yet".to_owned()),
                }
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.0}" y="{y:.0}" width="{CELL:.0}" height="{CELL:.0}" fill="{fill}" stroke="white" stroke-width="2"/>"#
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.0}" y="{:.0}" font-size="15" text-anchor="middle">{}</text>"#,
                x + CELL / 2.0,
                y + CELL / 2.0 + 5.0,
                escape(&label)
            );
        }
    }
}

/// The SVG document for `measured` over `names` (rows and columns in this order).
pub fn svg(measured: &Measured, names: &[&str], caption: &str) -> String {
    let figures = figures(measured);
    let get = |from: &str, to: &str| figures.get(&(from.to_owned(), to.to_owned())).copied();
    let n = names.len() as f64;
    let panel_w = LABEL_W + CELL * n;
    let width = 2.0 * panel_w + GAP + 40.0;
    let height = TOP + CELL * n + 60.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // RTT: 0.1 ms is green, 100 ms red.
    let rtt = |from: &str, to: &str| {
        let us = get(from, to)?.rtt_p50_us?;
        Some((
            format!("{:.2} ms", us / 1e3),
            position(us, 100.0, 100_000.0),
        ))
    };
    panel(&mut svg, 10.0, "RTT p50 (row → column)", names, &rtt);
    // Throughput: 10 Gbit/s is green, 1 Mbit/s red.
    let tput = |from: &str, to: &str| {
        let mbit = get(from, to)?.tx_mbit?;
        let label = if mbit >= 100.0 {
            format!("{mbit:.0} Mbit/s")
        } else {
            format!("{mbit:.1} Mbit/s")
        };
        Some((label, 1.0 - position(mbit, 1.0, 10_000.0)))
    };
    panel(
        &mut svg,
        10.0 + panel_w + GAP,
        "throughput (row → column)",
        names,
        &tput,
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{:.0}" font-size="12" fill="gray">{}</text>"#,
        height - 34.0,
        escape(caption)
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{:.0}" font-size="12" fill="gray">colour: log scale, green = near/fast (0.1 ms, 10 Gbit/s), red = far/slow (100 ms, 1 Mbit/s)</text>"#,
        height - 16.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkmeter_aggregator::api::Link;

    #[test]
    fn cells_carry_the_figures_and_colours_follow_them() {
        let mut m = Measured::new();
        let link = |peer: &str, rtt: u64, kbps: u64| Link {
            peer: peer.into(),
            rtt_p50_us: Some(rtt),
            throughput_tx_kbps: Some(kbps),
            ..Default::default()
        };
        m.insert(
            ("vps".into(), "home-1".into()),
            link("home-1", 45_100, 9_600),
        );
        m.insert(("home-1".into(), "vps".into()), link("vps", 45_200, 9_500));
        let s = svg(&m, &["vps", "home-1"], "caption & more");
        assert!(s.starts_with("<svg"), "{s}");
        assert!(
            s.contains(">45.10 ms<") && s.contains(">9.6 Mbit/s<"),
            "{s}"
        );
        assert!(s.contains("caption &amp; more"));
        // Slow and far is red-ish; fast and near green-ish.
        assert!(position(45_000.0, 100.0, 100_000.0) > 0.8);
        assert_eq!(colour(0.0), "rgb(60,210,70)");
        assert_eq!(colour(1.0), "rgb(240,60,70)");
    }
}
