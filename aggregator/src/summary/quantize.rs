//! Rounding of integer measurements to a few significant digits.
//!
//! Publishing 14 163 µs as 14 200 µs loses nothing a scheduler can use, and it lets the
//! publisher's "did anything move?" check ignore sampling noise in the low digits.

/// Significant digits kept by [`quantize`].
pub const DEFAULT_SIGNIFICANT_DIGITS: u32 = 3;

/// Rounds `value` to [`DEFAULT_SIGNIFICANT_DIGITS`] significant digits (half up).
pub fn quantize(value: u64) -> u64 {
    quantize_sig(value, DEFAULT_SIGNIFICANT_DIGITS)
}

/// Rounds `value` to `digits` significant decimal digits, half away from zero.
///
/// Values with at most `digits` digits are returned unchanged; `digits == 0` is treated
/// as 1. The result never overflows: near `u64::MAX` rounding up saturates.
pub fn quantize_sig(value: u64, digits: u32) -> u64 {
    let digits = digits.max(1);
    let len = decimal_len(value);
    if len <= digits {
        return value;
    }
    let step = 10u64.pow(len - digits);
    let down = value - value % step;
    if value % step >= step / 2 {
        down.saturating_add(step)
    } else {
        down
    }
}

/// Number of decimal digits of `v` (1 for 0).
fn decimal_len(v: u64) -> u32 {
    v.checked_ilog10().map_or(1, |l| l + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(quantize(0), 0);
        assert_eq!(quantize(999), 999);
        assert_eq!(quantize(1_234), 1_230);
        assert_eq!(quantize(1_235), 1_240);
        assert_eq!(quantize(14_163), 14_200);
        assert_eq!(quantize(99_950), 100_000);
        assert_eq!(quantize_sig(123_456, 1), 100_000);
        assert_eq!(quantize_sig(u64::MAX, 3), 18_400_000_000_000_000_000);
    }

    proptest! {
        #[test]
        fn error_is_at_most_half_a_unit_in_the_last_kept_digit(v in any::<u64>(), d in 1u32..6) {
            let q = quantize_sig(v, d);
            let len = decimal_len(v);
            let half_step = if len > d { 10u64.pow(len - d) / 2 } else { 0 };
            prop_assert!(q.abs_diff(v) <= half_step, "v={v} q={q}");
        }

        #[test]
        fn relative_error_of_three_digits_is_below_half_a_percent(v in 1u64..u64::MAX / 2) {
            let q = quantize(v);
            prop_assert!((q.abs_diff(v) as f64) / (v as f64) <= 0.005);
        }

        #[test]
        fn monotonic(a in any::<u64>(), b in any::<u64>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(quantize(lo) <= quantize(hi));
        }

        #[test]
        fn idempotent(v in any::<u64>()) {
            let q = quantize(v);
            prop_assert_eq!(quantize(q), q);
        }
    }
}
