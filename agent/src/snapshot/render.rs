//! Output of `snapshot`: JSON in the NodeTopology status shape, or text for people.

use std::fmt::Write as _;

use super::Snapshot;

/// The status as pretty JSON (what `NodeTopologyStatus` deserializes).
pub fn json(s: &Snapshot) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&s.status)
}

/// A compact human-readable report.
pub fn text(s: &Snapshot) -> String {
    let st = &s.status;
    let mut out = String::new();
    let host = st
        .addresses
        .iter()
        .find(|a| a.type_ == "Hostname")
        .map_or("-", |a| a.address.as_str());
    let _ = writeln!(
        out,
        "host {host}  observed {}",
        st.observed_at.as_deref().unwrap_or("-")
    );

    if let Some(sys) = &st.system {
        let cpu = sys
            .cpu_utilization_permille
            .map_or("-".to_owned(), |p| format!("{:.1}%", f64::from(p) / 10.0));
        let _ = writeln!(
            out,
            "system  {} CPUs, {cpu} busy, memory {} of {} used, load {:.2} {:.2} {:.2}, kernel {}",
            sys.cpu_count,
            bytes(sys.memory_used_bytes),
            bytes(sys.memory_total_bytes),
            milli(sys.load1_milli),
            milli(sys.load5_milli),
            milli(sys.load15_milli),
            sys.kernel_version.as_deref().unwrap_or("-"),
        );
    }
    if let Some(r) = &s.system {
        for n in r.nics.iter().filter(|n| n.name != "lo") {
            let speed = n
                .speed_mbps
                .map_or("speed unknown".to_owned(), |v| format!("{v} Mbit/s"));
            let _ = writeln!(
                out,
                "nic     {:<16} {speed:<16} rx {:>10}  tx {:>10}{}",
                n.name,
                bytes(n.rx_bytes),
                bytes(n.tx_bytes),
                if n.physical { "" } else { "  (virtual)" },
            );
        }
        for d in &r.disks {
            let _ = writeln!(
                out,
                "disk    {:<16} {:<8} {} free of {}",
                d.mount_point,
                d.fs_type,
                bytes(d.available_bytes),
                bytes(d.total_bytes),
            );
        }
    }
    if st.gpus.is_empty() {
        let _ = writeln!(out, "gpus    none");
    }
    for g in &st.gpus {
        let opt = |v: Option<u32>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v}{unit}"));
        let _ = writeln!(
            out,
            "gpu {:<3} {} {}  memory {} of {}  util {} mem-util {}  {}  power {} of {}  PCIe gen {} x{}  MIG {}",
            g.index,
            g.name.as_deref().unwrap_or("?"),
            g.uuid.as_deref().unwrap_or("?"),
            g.memory_used_bytes.map_or("-".to_owned(), bytes),
            g.memory_total_bytes.map_or("-".to_owned(), bytes),
            opt(g.utilization_gpu_percent, "%"),
            opt(g.utilization_memory_percent, "%"),
            opt(g.temperature_celsius, "°C"),
            g.power_usage_mw.map_or("-".to_owned(), watts),
            g.power_limit_mw.map_or("-".to_owned(), watts),
            opt(g.pcie_generation, ""),
            opt(g.pcie_width, ""),
            g.mig_mode.as_deref().unwrap_or("-"),
        );
        for e in &g.errors {
            let _ = writeln!(out, "        error: {e}");
        }
    }
    if !st.links.is_empty() {
        let _ = writeln!(
            out,
            "{:<24} {:<18} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7}",
            "PEER", "ADDRESS", "P50", "P90", "P99", "JITTER", "LOSS", "SENT"
        );
    }
    for l in &st.links {
        let ms =
            |v: Option<u64>| v.map_or("-".to_owned(), |us| format!("{:.3}ms", us as f64 / 1000.0));
        let _ = write!(
            out,
            "{:<24} {:<18} {:>10} {:>10} {:>10} {:>10} {:>6.1}% {:>7}",
            l.peer,
            l.address.as_deref().unwrap_or("-"),
            ms(l.rtt_p50_us),
            ms(l.rtt_p90_us),
            ms(l.rtt_p99_us),
            ms(l.jitter_us),
            f64::from(l.loss_ppm) / 10_000.0,
            l.samples,
        );
        if let Some(e) = &l.error {
            let _ = write!(out, "  error: {e}");
        }
        out.push('\n');
    }
    for c in &st.conditions {
        let _ = write!(
            out,
            "condition {}={} {}",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or("-")
        );
        if let Some(m) = &c.message {
            let _ = write!(out, ": {m}");
        }
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// Bytes with a binary unit, e.g. `1.5 GiB`.
fn bytes(v: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v} B")
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

fn milli(v: u64) -> f64 {
    v as f64 / 1000.0
}

fn watts(mw: u32) -> String {
    format!("{:.1} W", f64::from(mw) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(80 * 1024 * 1024 * 1024), "80.0 GiB");
    }
}
