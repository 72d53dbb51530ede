//! From a window summary to the published, quantized link fields.

use super::{RttSummary, quantize};
use crate::api::Link;

/// Nanoseconds to microseconds, rounded to nearest, then to 3 significant digits.
fn ns_to_quantized_us(ns: u64) -> u64 {
    quantize(ns.saturating_add(500) / 1_000)
}

impl RttSummary {
    /// Writes the latency fields of `link` (percentiles, jitter, loss, samples) from this
    /// summary, quantized for publication. Throughput and identity fields are untouched.
    pub fn apply_to(&self, link: &mut Link) {
        link.rtt_p50_us = self.p50_ns.map(ns_to_quantized_us);
        link.rtt_p90_us = self.p90_ns.map(ns_to_quantized_us);
        link.rtt_p99_us = self.p99_ns.map(ns_to_quantized_us);
        link.jitter_us = self.jitter_ns.map(ns_to_quantized_us);
        // Loss in ppm is quantized too, so one extra lost probe in a long window does
        // not count as a change worth publishing.
        link.loss_ppm = u32::try_from(quantize(u64::from(self.loss_ppm))).unwrap_or(u32::MAX);
        link.samples = self.sent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_microseconds_then_three_digits() {
        let s = RttSummary {
            sent: 20,
            received: 16,
            p50_ns: Some(14_163_499),
            p90_ns: Some(41_499),
            p99_ns: Some(41_500),
            jitter_ns: Some(1_234),
            loss_ppm: 200_000,
            ..Default::default()
        };
        let mut l = Link::default();
        s.apply_to(&mut l);
        assert_eq!(l.rtt_p50_us, Some(14_200));
        assert_eq!(l.rtt_p90_us, Some(41));
        assert_eq!(l.rtt_p99_us, Some(42));
        assert_eq!(l.jitter_us, Some(1));
        assert_eq!(l.loss_ppm, 200_000);
        assert_eq!(l.samples, 20);
    }

    #[test]
    fn no_replies_means_no_percentiles() {
        let s = RttSummary {
            sent: 5,
            loss_ppm: 1_000_000,
            ..Default::default()
        };
        let mut l = Link {
            rtt_p50_us: Some(1),
            ..Default::default()
        };
        s.apply_to(&mut l);
        assert_eq!(l.rtt_p50_us, None);
        assert_eq!(l.loss_ppm, 1_000_000);
    }
}
