//! The one parser of durations and byte sizes for every flag, variable and config key
//! (`10s`, `1500ms`, `2m`; `500M`, `2GiB`), so one spelling works everywhere and errors
//! read alike.

use std::time::Duration;

/// Parses `10s`, `1500ms`, `2m` (humantime), rejecting zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    if d.is_zero() {
        return Err("duration must be positive".into());
    }
    Ok(d)
}

/// Parses a byte count: a number with an optional decimal (K, M, G, T) or binary
/// (Ki, Mi, Gi, Ti) suffix and an optional `B`; rejects zero.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("invalid byte count {s:?} (e.g. 500M, 2G, 1GiB)")),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid byte count {s:?} (e.g. 500M, 2G, 1GiB)"))?;
    let v = n * mult;
    if !v.is_finite() || !(1.0..1.8e19).contains(&v) {
        return Err(format!("byte count {s:?} out of range"));
    }
    Ok(v as u64)
}

/// Like [`parse_duration`], but also within `min..=max`; the error names both bounds.
pub fn parse_duration_in(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (expected e.g. 100ms, 2s, 1m)"))?;
    if d < min || d > max {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("500M"), Ok(500_000_000));
        assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("1gi"), Ok(1 << 30));
        for bad in ["", "0", "-1", "1X", "G", "1e9", "nanM"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn bounded_durations() {
        let (min, max) = (Duration::from_millis(1), Duration::from_secs(60));
        assert_eq!(
            parse_duration_in(" 2s ", min, max),
            Ok(Duration::from_secs(2))
        );
        assert!(
            parse_duration_in("2m", min, max)
                .expect_err("2m is above 60s")
                .contains("between")
        );
        assert!(parse_duration_in("soon", min, max).is_err());
    }
}
