//! Figures as people read them in reasons: "9.6 Mbit/s", "24 GiB", "45.1 ms".

/// Bits per second with a decimal prefix and three significant digits at most.
pub fn bps(v: u64) -> String {
    scaled(
        v as f64,
        1000.0,
        &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s"],
    )
}

/// Bytes with a binary prefix.
pub fn bytes(v: u64) -> String {
    scaled(
        v as f64,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
    )
}

/// An RTT in µs as µs below 1 ms, else ms (three significant digits at most).
pub fn rtt(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else {
        format!("{} ms", three_digits(us as f64 / 1000.0))
    }
}

fn scaled(mut v: f64, step: f64, units: &[&str]) -> String {
    let mut unit = 0;
    while v >= step && unit + 1 < units.len() {
        v /= step;
        unit += 1;
    }
    format!("{} {}", three_digits(v), units[unit])
}

/// At most three significant digits, no trailing zeros: 9.6, 45.1, 1, 600, 1.25.
fn three_digits(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(bps(9_600_000), "9.6 Mbit/s");
        assert_eq!(bps(100_000_000), "100 Mbit/s");
        assert_eq!(bps(1_000_000_000), "1 Gbit/s");
        assert_eq!(bps(987), "987 bit/s");
        assert_eq!(bps(1_250_000), "1.25 Mbit/s");
        assert_eq!(bytes(24 << 30), "24 GiB");
        assert_eq!(bytes(16 * (1 << 30) + (1 << 29)), "16.5 GiB");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(rtt(980), "980 µs");
        assert_eq!(rtt(45_123), "45.1 ms");
        assert_eq!(rtt(1_000), "1 ms");
    }
}
