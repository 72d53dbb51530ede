//! Kubernetes resource quantities ("100M", "16Gi", "1.5G", "2e9") as integers.
//!
//! The syntax is that of Kubernetes' `resource.Quantity`: an optional `+` (a `-` is
//! read, so the error can say "negative"), digits with an optional decimal point (".5"
//! and "5." too), then at most one suffix: decimal SI (`n u m k M G T P E`), binary
//! (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent (`e3`, `E-3`). Nothing is trimmed, as
//! Kubernetes trims nothing.
//!
//! The value is computed exactly in integers (never through `f64`, which would make
//! "1.5G" or "16Gi" off by a little), and a fraction rounds up, as Kubernetes'
//! `Quantity.Value()` does.

/// The most digits a mantissa may have, not counting leading zeros of the whole part or
/// trailing zeros of the fraction. 10^38 still fits in a `u128`, so the mantissa and
/// 10^(fraction digits) are exact, and a hostile value cannot make the parser work hard.
const MAX_DIGITS: usize = 38;

/// Exponents are clamped to this magnitude while read: any larger one already makes a
/// non-zero value too large or round up to 1, so the clamp changes no result and keeps
/// the arithmetic small whatever the number of exponent digits.
const MAX_EXPONENT: i64 = 1000;

/// How many characters of an offending value an error message shows, the "…" included.
const SHOWN_CHARS: usize = 40;

/// Examples for the "not a quantity" error.
const EXAMPLES: &str = "(e.g. 100M, 16Gi)";

/// What a suffix multiplies the mantissa by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scale {
    /// 10^n (SI suffixes and exponents).
    Decimal(i64),
    /// 2^n (`Ki` to `Ei`).
    Binary(u32),
}

/// Parses a quantity into a whole number, rounding a fraction up ("100m" is 1).
///
/// Errors are short sentences that quote the value (shortened, see [`shorten`]): not a
/// quantity, negative, too many digits, or too large for a `u64`.
pub fn parse(s: &str) -> Result<u64, String> {
    let not_a_quantity = || format!("{} is not a quantity {EXAMPLES}", shorten(s));

    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, rest) = split_digits(unsigned);
    let (fraction, suffix) = match rest.strip_prefix('.') {
        Some(after_point) => split_digits(after_point),
        None => ("", rest),
    };
    // "." alone or a sign alone has no digit at all: Kubernetes reads those as 0, which
    // is surely a typo, so it is an error here.
    if whole.is_empty() && fraction.is_empty() {
        return Err(not_a_quantity());
    }
    let scale = scale(suffix).ok_or_else(not_a_quantity)?;

    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    if whole.len() + fraction.len() > MAX_DIGITS {
        return Err(format!(
            "{} has too many digits (at most {MAX_DIGITS})",
            shorten(s)
        ));
    }
    // At most MAX_DIGITS digits, so this cannot overflow.
    let mantissa = whole
        .bytes()
        .chain(fraction.bytes())
        .fold(0u128, |m, digit| m * 10 + u128::from(digit - b'0'));
    if mantissa == 0 {
        // "-0" is zero, not negative, and any suffix of zero is zero.
        return Ok(0);
    }
    if negative {
        return Err(format!("{} is negative", shorten(s)));
    }

    // fraction.len() <= MAX_DIGITS, so these conversions and powers cannot fail.
    let fraction_digits = fraction.len() as u32;
    let value = match scale {
        Scale::Decimal(exponent) => decimal(mantissa, exponent - i64::from(fraction_digits)),
        Scale::Binary(bits) => binary(mantissa, fraction_digits, bits),
    };
    value
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| format!("{} is too large", shorten(s)))
}

/// Quotes `s` as Rust's `{:?}` does (so control characters show as escapes), cut to
/// at most 40 characters on a character boundary; a cut value is followed by "…"
/// outside the quotes, so the mark is never mistaken for part of the value.
pub fn shorten(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS - 1) {
        // More than SHOWN_CHARS characters: keep SHOWN_CHARS - 1 and add the mark. A
        // value of exactly SHOWN_CHARS fits as it is.
        Some((cut, _)) if s.chars().nth(SHOWN_CHARS).is_some() => {
            format!("{:?}…", &s[..cut])
        }
        _ => format!("{s:?}"),
    }
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    // Digits are ASCII, so `end` is a character boundary.
    s.split_at(end)
}

/// The scale a suffix stands for; `None` when it is not a suffix Kubernetes knows.
fn scale(suffix: &str) -> Option<Scale> {
    let scale = match suffix {
        "" => Scale::Decimal(0),
        "n" => Scale::Decimal(-9),
        "u" => Scale::Decimal(-6),
        "m" => Scale::Decimal(-3),
        "k" => Scale::Decimal(3),
        "M" => Scale::Decimal(6),
        "G" => Scale::Decimal(9),
        "T" => Scale::Decimal(12),
        "P" => Scale::Decimal(15),
        // "E" alone is exa; "E" followed by a number is an exponent (below).
        "E" => Scale::Decimal(18),
        "Ki" => Scale::Binary(10),
        "Mi" => Scale::Binary(20),
        "Gi" => Scale::Binary(30),
        "Ti" => Scale::Binary(40),
        "Pi" => Scale::Binary(50),
        "Ei" => Scale::Binary(60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            return parse_exponent(exponent).map(Scale::Decimal);
        }
    };
    Some(scale)
}

/// An optionally signed decimal integer, clamped to ±[`MAX_EXPONENT`].
fn parse_exponent(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |e, digit| {
        (e * 10 + i64::from(digit - b'0')).min(MAX_EXPONENT)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// `ceil(mantissa * 10^exponent)`; `None` when it does not fit a `u128`.
/// `mantissa` is non-zero and below 10^MAX_DIGITS.
fn decimal(mantissa: u128, exponent: i64) -> Option<u128> {
    if exponent >= 0 {
        let power = 10u128.checked_pow(u32::try_from(exponent).ok()?)?;
        return mantissa.checked_mul(power);
    }
    match u32::try_from(-exponent) {
        // 10^shift fits in a u128 up to shift = 38.
        Ok(shift) if shift <= MAX_DIGITS as u32 => Some(mantissa.div_ceil(10u128.pow(shift))),
        // The mantissa is below 10^MAX_DIGITS, so a larger divisor leaves a non-zero
        // fraction below 1, which rounds up to 1.
        _ => Some(1),
    }
}

/// `ceil(mantissa * 2^bits / 10^fraction_digits)`; `None` when it does not fit a `u128`.
/// `fraction_digits` is at most MAX_DIGITS and `bits` at most 60.
fn binary(mantissa: u128, fraction_digits: u32, bits: u32) -> Option<u128> {
    let divisor = 10u128.pow(fraction_digits);
    let whole = (mantissa / divisor).checked_mul(1u128 << bits)?;
    // The remainder times 2^bits may not fit a u128 (38 digits times 2^60), so its
    // share is found by long division, one bit at a time: `rest` stays below the
    // divisor (at most 10^38), so doubling it cannot overflow.
    let mut rest = mantissa % divisor;
    let mut share = 0u128;
    for _ in 0..bits {
        rest *= 2;
        share *= 2;
        if rest >= divisor {
            rest -= divisor;
            share += 1;
        }
    }
    let share = share + u128::from(rest != 0);
    whole.checked_add(share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> u64 {
        parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(v) => panic!("{s:?} should not parse, got {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn exact_figures() {
        assert_eq!(ok("10M"), 10_000_000);
        assert_eq!(ok("1.5G"), 1_500_000_000);
        assert_eq!(ok("16Gi"), 17_179_869_184);
        assert_eq!(ok("100m"), 1);
        assert_eq!(ok("1e3"), 1_000);
        assert_eq!(ok("2E-1"), 1);
        assert_eq!(ok("0"), 0);
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(ok("1"), 1);
        assert_eq!(ok("+1"), 1);
        assert_eq!(ok("00012"), 12);
        assert_eq!(ok("12.3400"), 13);
        assert_eq!(ok("12.0000"), 12);
        assert_eq!(ok(".5"), 1);
        assert_eq!(ok("5."), 5);
        assert_eq!(ok("0.0"), 0);
        assert_eq!(ok("-0"), 0);
        assert_eq!(ok("-0.000"), 0);
        assert_eq!(ok("18446744073709551615"), u64::MAX);
    }

    #[test]
    fn every_suffix() {
        assert_eq!(ok("1n"), 1);
        assert_eq!(ok("1u"), 1);
        assert_eq!(ok("1m"), 1);
        assert_eq!(ok("1000m"), 1);
        assert_eq!(ok("1001m"), 2);
        assert_eq!(ok("1500m"), 2);
        assert_eq!(ok("3000000u"), 3);
        assert_eq!(ok("1k"), 1_000);
        assert_eq!(ok("1M"), 1_000_000);
        assert_eq!(ok("1G"), 1_000_000_000);
        assert_eq!(ok("1T"), 1_000_000_000_000);
        assert_eq!(ok("1P"), 1_000_000_000_000_000);
        assert_eq!(ok("1E"), 1_000_000_000_000_000_000);
        assert_eq!(ok("1Ki"), 1 << 10);
        assert_eq!(ok("1Mi"), 1 << 20);
        assert_eq!(ok("1Gi"), 1 << 30);
        assert_eq!(ok("1Ti"), 1 << 40);
        assert_eq!(ok("1Pi"), 1 << 50);
        assert_eq!(ok("1Ei"), 1 << 60);
    }

    #[test]
    fn fractions_with_suffixes() {
        assert_eq!(ok("1.5Gi"), 3 << 29);
        assert_eq!(ok(".5Ki"), 512);
        // 0.1 * 1024 = 102.4, up to 103.
        assert_eq!(ok("0.1Ki"), 103);
        assert_eq!(ok("2.5k"), 2_500);
        assert_eq!(ok("0.0001k"), 1);
        assert_eq!(ok("1.000000001G"), 1_000_000_001);
        // 15.99 * 2^60 fits a u64 (16 * 2^60 is 2^64).
        let expected = (1599u128 << 60).div_ceil(100);
        assert_eq!(u128::from(ok("15.99Ei")), expected);
        // A 38-digit mantissa whose value is small: the remainder path must be exact.
        let tiny = format!("0.{}1Ki", "0".repeat(36));
        assert_eq!(ok(&tiny), 1);
    }

    #[test]
    fn exponents() {
        assert_eq!(ok("1E3"), 1_000);
        assert_eq!(ok("1e+3"), 1_000);
        assert_eq!(ok("1e0"), 1);
        assert_eq!(ok("2e9"), 2_000_000_000);
        assert_eq!(ok("1.5e3"), 1_500);
        assert_eq!(ok("1e-3"), 1);
        assert_eq!(ok("15e-1"), 2);
        assert_eq!(ok("1e-1000"), 1);
        assert_eq!(ok("1e-99999999999999999999"), 1);
        assert_eq!(ok("0e1000"), 0);
        assert_eq!(ok("1.8446744073709551615e19"), u64::MAX);
    }

    #[test]
    fn overflow_is_too_large() {
        for s in [
            "18446744073709551616",
            "16Ei",
            "18.446744073709551616E",
            "1e20",
            "1e1000",
            "1e99999999999999999999",
            "99999999999999999999999999999999999999",
            "99999999999999999999999999999999999999Ei",
        ] {
            assert_eq!(err(s), format!("{s:?} is too large"), "{s}");
        }
    }

    #[test]
    fn negative_is_an_error() {
        assert_eq!(err("-1"), "\"-1\" is negative");
        assert_eq!(err("-100m"), "\"-100m\" is negative");
        assert_eq!(err("-1Gi"), "\"-1Gi\" is negative");
    }

    #[test]
    fn too_many_digits() {
        let long = format!("1{}", "0".repeat(38));
        assert_eq!(
            err(&long),
            format!("{long:?} has too many digits (at most 38)")
        );
        let deep = format!("0.{}1", "0".repeat(38));
        assert!(err(&deep).contains("too many digits"));
        // Leading zeros of the whole part and trailing zeros of the fraction are free.
        assert_eq!(ok(&format!("{}7.{}", "0".repeat(100), "0".repeat(100))), 7);
    }

    #[test]
    fn not_quantities() {
        for s in [
            "", " 1", "1 ", "\t1", "1 k", "abc", "fast", "1K", "1ki", "1KI", "1MB", "1Gi3", "1e",
            "1E+", "1e-", "1Ee3", "1e3.5", "1ee3", "1.2.3", ".", "+", "-", "--1", "+-1", "-+1",
            "1_000", "0x10", "１", "1٣", "∞", "1e3k", "ki", "k", "e3", "1 e3",
        ] {
            assert_eq!(
                err(s),
                format!("{s:?} is not a quantity (e.g. 100M, 16Gi)"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn shorten_cuts_long_values_on_a_char_boundary() {
        assert_eq!(shorten("abc"), "\"abc\"");
        assert_eq!(shorten(""), "\"\"");
        let forty = "a".repeat(40);
        assert_eq!(shorten(&forty), format!("{forty:?}"));
        let long = "b".repeat(41);
        assert_eq!(shorten(&long), format!("{:?}…", "b".repeat(39)));
        // Multi-byte characters are kept whole.
        let wide = "é".repeat(100);
        assert_eq!(shorten(&wide), format!("{:?}…", "é".repeat(39)));
        // Control characters are escaped, so an error never breaks a log line.
        assert_eq!(shorten("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "x".repeat(1000);
        let e = err(&long);
        assert!(e.len() < 100, "{e}");
        assert!(e.starts_with(&format!("{:?}…", "x".repeat(39))), "{e}");
    }

    /// Binary suffixes and their powers of 2, for the properties below.
    const BINARY: [(&str, u32); 6] = [
        ("Ki", 10),
        ("Mi", 20),
        ("Gi", 30),
        ("Ti", 40),
        ("Pi", 50),
        ("Ei", 60),
    ];

    /// Some decimal suffixes and their powers of 10.
    const DECIMAL: [(&str, i32); 7] = [
        ("", 0),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("m", -3),
        ("n", -9),
    ];

    proptest! {
        /// No string makes the parser panic.
        #[test]
        fn arbitrary_strings_never_panic(s in ".*") {
            let _ = parse(&s);
            let _ = shorten(&s);
        }

        /// Strings of quantity characters, which reach every branch, never panic either.
        #[test]
        fn quantity_like_strings_never_panic(s in "[-+0-9.eEinumkKMGTP]{0,60}") {
            let _ = parse(&s);
        }

        /// A plain integer reads as itself.
        #[test]
        fn integers_read_exactly(n: u64) {
            prop_assert_eq!(parse(&n.to_string()), Ok(n));
        }

        /// Binary suffixes multiply exactly, and overflow is an error, not a wrap.
        #[test]
        fn binary_suffixes_multiply_exactly(n: u64, i in 0..BINARY.len()) {
            let (suffix, bits) = BINARY[i];
            let expected = u64::try_from(u128::from(n) << bits).ok();
            prop_assert_eq!(parse(&format!("{n}{suffix}")).ok(), expected);
        }

        /// Milli values round up to the next whole number.
        #[test]
        fn milli_rounds_up(n: u64) {
            prop_assert_eq!(parse(&format!("{n}m")), Ok(n.div_ceil(1000)));
        }

        /// A decimal with a fraction and an SI suffix matches the exact rational value,
        /// rounded up.
        #[test]
        fn decimals_match_exact_arithmetic(
            whole in 0u64..1_000_000,
            fraction in 0u64..1_000_000,
            i in 0..DECIMAL.len(),
        ) {
            let (suffix, exponent) = DECIMAL[i];
            // whole.fraction (6 fraction digits) * 10^exponent.
            let numerator = u128::from(whole) * 1_000_000 + u128::from(fraction);
            let expected = if exponent >= 0 {
                (numerator * 10u128.pow(exponent.unsigned_abs())).div_ceil(1_000_000)
            } else {
                numerator.div_ceil(1_000_000 * 10u128.pow(exponent.unsigned_abs()))
            };
            let s = format!("{whole}.{fraction:06}{suffix}");
            prop_assert_eq!(parse(&s).map(u128::from), Ok(expected));
        }
    }
}
