//! The `linkmeter.dev/uplink-class` Node label (`--label-nodes`): `slow` below a
//! threshold of measured egress, `fast` above it, with hysteresis so that a node whose
//! uplink hovers around the threshold keeps its label.
//!
//! The rule: a node becomes `slow` when its uplink is below `threshold`, and `fast`
//! when it is at or above `threshold × 5/4`; between the two it keeps the label it has.
//! A node without a label takes `slow` below the threshold and `fast` at or above it.
//! A node without a measured uplink keeps its label (and gets none).

/// Label value of a slow uplink.
pub const SLOW: &str = "slow";
/// Label value of a fast uplink.
pub const FAST: &str = "fast";

/// The label a node should have, given the one it has and its measured egress (bit/s);
/// `None`: leave it as it is.
pub fn uplink_class(
    current: Option<&str>,
    egress_bps: Option<u64>,
    threshold: u64,
) -> Option<&'static str> {
    let bps = egress_bps?;
    let up = threshold.saturating_add(threshold / 4);
    let want = match current {
        Some(SLOW) if bps < up => SLOW,
        Some(FAST) if bps >= threshold => FAST,
        Some(SLOW | FAST) => {
            if bps < threshold {
                SLOW
            } else {
                FAST
            }
        }
        _ if bps < threshold => SLOW,
        _ => FAST,
    };
    (current != Some(want)).then_some(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 50_000_000;

    #[test]
    fn fresh_nodes_take_the_side_of_the_threshold() {
        assert_eq!(uplink_class(None, Some(9_600_000), T), Some(SLOW));
        assert_eq!(uplink_class(None, Some(940_000_000), T), Some(FAST));
        assert_eq!(uplink_class(None, Some(T), T), Some(FAST));
        assert_eq!(uplink_class(None, None, T), None);
        assert_eq!(uplink_class(Some("bogus"), Some(1), T), Some(SLOW));
    }

    #[test]
    fn the_band_between_keeps_the_label() {
        // Between 50 and 62.5 Mbit/s: whatever it was.
        assert_eq!(uplink_class(Some(SLOW), Some(55_000_000), T), None);
        assert_eq!(uplink_class(Some(FAST), Some(55_000_000), T), None);
        assert_eq!(uplink_class(Some(SLOW), Some(62_500_000), T), Some(FAST));
        assert_eq!(uplink_class(Some(FAST), Some(49_999_999), T), Some(SLOW));
        assert_eq!(uplink_class(Some(SLOW), None, T), None);
    }

    #[test]
    fn a_hovering_uplink_never_flaps() {
        let mut label: Option<&str> = None;
        let mut changes = 0;
        for i in 0..1000u64 {
            // 48 … 60 Mbit/s back and forth: crosses the threshold, not the band's top.
            let bps = 48_000_000 + (i * 7_919_000) % 12_000_000;
            if let Some(new) = uplink_class(label, Some(bps), T) {
                label = Some(new);
                changes += 1;
            }
        }
        assert!(changes <= 2, "{changes} changes");
    }
}
