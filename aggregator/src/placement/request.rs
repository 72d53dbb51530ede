//! A pod's placement request, read from its annotations.
//!
//! Every linkmeter annotation is optional; a value that does not parse is an error that
//! names the annotation, never silently ignored (the pod is then unschedulable with
//! that reason). See the README ("Scheduling") for the annotations and examples.

use std::collections::BTreeMap;

use super::quantity::{self, shorten};
use super::selector::Selector;

/// `linkmeter.dev/min-bandwidth`: bits per second, a Kubernetes quantity ("100M").
pub const MIN_BANDWIDTH: &str = "linkmeter.dev/min-bandwidth";
/// `linkmeter.dev/max-latency`: an RTT, a duration ("10ms").
pub const MAX_LATENCY: &str = "linkmeter.dev/max-latency";
/// `linkmeter.dev/peers`: a label selector of pods in the same namespace ("app=db").
pub const PEERS: &str = "linkmeter.dev/peers";
/// `linkmeter.dev/min-gpu-memory-free`: bytes, a Kubernetes quantity ("16Gi").
pub const MIN_GPU_MEMORY_FREE: &str = "linkmeter.dev/min-gpu-memory-free";
/// `linkmeter.dev/gpu-model`: a substring of the NVML name ("A100"), case-insensitive.
pub const GPU_MODEL: &str = "linkmeter.dev/gpu-model";
/// `linkmeter.dev/max-gpu-utilization`: percent, 0-100.
pub const MAX_GPU_UTILIZATION: &str = "linkmeter.dev/max-gpu-utilization";
/// The CNI bandwidth plugin's egress limit: bits per second, a quantity.
pub const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";
/// The CNI bandwidth plugin's ingress limit: bits per second, a quantity.
pub const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";

/// What a pod asks of its node, from its annotations. `None`: not asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRequest {
    /// `min-bandwidth`, bit/s.
    pub min_bandwidth_bps: Option<u64>,
    /// `max-latency`, µs of RTT.
    pub max_latency_us: Option<u64>,
    /// `peers`.
    pub peers: Option<Selector>,
    /// `min-gpu-memory-free`, bytes.
    pub min_gpu_memory_free_bytes: Option<u64>,
    /// `gpu-model`, as written (matched case-insensitively).
    pub gpu_model: Option<String>,
    /// `max-gpu-utilization`, percent.
    pub max_gpu_utilization_percent: Option<u32>,
    /// `kubernetes.io/egress-bandwidth`, bit/s.
    pub egress_bps: Option<u64>,
    /// `kubernetes.io/ingress-bandwidth`, bit/s.
    pub ingress_bps: Option<u64>,
}

/// One annotation whose value does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationError {
    /// The annotation's key.
    pub annotation: &'static str,
    /// Why, with the (shortened) value.
    pub why: String,
}

impl std::fmt::Display for AnnotationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "annotation {}: {}", self.annotation, self.why)
    }
}

impl PodRequest {
    /// Reads every annotation above; the others are ignored. All errors, in the order of
    /// the constants above.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<PodRequest, Vec<AnnotationError>> {
        let mut errors = Vec::new();
        // Struct fields are evaluated in the order written, which is the order of the
        // constants, so the errors come out in that order.
        let request = PodRequest {
            min_bandwidth_bps: read_one(annotations, MIN_BANDWIDTH, &mut errors, min_bandwidth),
            max_latency_us: read_one(annotations, MAX_LATENCY, &mut errors, max_latency),
            peers: read_one(annotations, PEERS, &mut errors, Selector::parse),
            min_gpu_memory_free_bytes: read_one(
                annotations,
                MIN_GPU_MEMORY_FREE,
                &mut errors,
                min_gpu_memory_free,
            ),
            gpu_model: read_one(annotations, GPU_MODEL, &mut errors, gpu_model),
            max_gpu_utilization_percent: read_one(
                annotations,
                MAX_GPU_UTILIZATION,
                &mut errors,
                max_gpu_utilization,
            ),
            egress_bps: read_one(annotations, EGRESS_BANDWIDTH, &mut errors, cni_bandwidth),
            ingress_bps: read_one(annotations, INGRESS_BANDWIDTH, &mut errors, cni_bandwidth),
        };
        if errors.is_empty() {
            Ok(request)
        } else {
            Err(errors)
        }
    }

    /// True when the pod asks nothing of linkmeter (no annotation above is set): every
    /// node passes with the same score.
    pub fn is_empty(&self) -> bool {
        *self == PodRequest::default()
    }

    /// True when the pod asks anything of the node's GPUs.
    pub fn wants_gpu(&self) -> bool {
        self.min_gpu_memory_free_bytes.is_some()
            || self.gpu_model.is_some()
            || self.max_gpu_utilization_percent.is_some()
    }

    /// The egress bandwidth this pod reserves on its node, bit/s: `egress-bandwidth`,
    /// else `min-bandwidth`.
    pub fn egress_reservation_bps(&self) -> Option<u64> {
        self.egress_bps.or(self.min_bandwidth_bps)
    }

    /// The ingress bandwidth this pod reserves on its node, bit/s: `ingress-bandwidth`
    /// only (`min-bandwidth` is about the node's uplink: egress).
    pub fn ingress_reservation_bps(&self) -> Option<u64> {
        self.ingress_bps
    }
}

/// The most bandwidth any annotation may ask, bit/s: 1P, the CNI bandwidth plugin's
/// and Kubernetes' upper limit, and far above any link.
const MAX_BANDWIDTH_BPS: u64 = 1_000_000_000_000_000;

/// The least bandwidth Kubernetes accepts in `kubernetes.io/*-bandwidth`, bit/s: 1k.
const MIN_CNI_BANDWIDTH_BPS: u64 = 1_000;

/// The longest `max-latency` accepted, µs: 60 s. A bound beyond that is surely a
/// mistake (no RTT we measure comes near), and it keeps the figure small.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The longest `gpu-model` accepted, in characters.
const MAX_GPU_MODEL_CHARS: usize = 128;

/// Reads `annotation` when present: its parsed value, or `None` with the error
/// recorded in `errors`.
fn read_one<T>(
    annotations: &BTreeMap<String, String>,
    annotation: &'static str,
    errors: &mut Vec<AnnotationError>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let value = annotations.get(annotation)?;
    parse(value)
        .map_err(|why| errors.push(AnnotationError { annotation, why }))
        .ok()
}

/// `min-bandwidth`: 1 bit/s to 1P.
fn min_bandwidth(value: &str) -> Result<u64, String> {
    let bps = quantity::parse(value)?;
    if bps < 1 {
        return Err(format!("{} must be at least 1 bit/s", shorten(value)));
    }
    if bps > MAX_BANDWIDTH_BPS {
        return Err(format!("{} must be at most 1P bit/s", shorten(value)));
    }
    Ok(bps)
}

/// `kubernetes.io/egress-bandwidth` and `ingress-bandwidth`: 1k to 1P bit/s, the
/// range Kubernetes itself enforces, so a pod we accept is not refused by the kubelet.
fn cni_bandwidth(value: &str) -> Result<u64, String> {
    let bps = quantity::parse(value)?;
    if !(MIN_CNI_BANDWIDTH_BPS..=MAX_BANDWIDTH_BPS).contains(&bps) {
        return Err(format!(
            "{} must be 1k to 1P bit/s, as Kubernetes requires",
            shorten(value)
        ));
    }
    Ok(bps)
}

/// `max-latency`: a duration above 0, at most 60 s, in µs. A fraction of a µs rounds
/// up ("500ns" is 1 µs), as quantities do, so a positive bound never becomes 0.
fn max_latency(value: &str) -> Result<u64, String> {
    let duration = humantime::parse_duration(value)
        .map_err(|_| format!("{} is not a duration (e.g. 10ms, 1.5ms)", shorten(value)))?;
    if duration.is_zero() {
        return Err(format!("{} must be more than 0", shorten(value)));
    }
    let us = duration.as_nanos().div_ceil(1_000);
    match u64::try_from(us) {
        Ok(us) if us <= MAX_LATENCY_US => Ok(us),
        _ => Err(format!("{} must be at most 60s", shorten(value))),
    }
}

/// `min-gpu-memory-free`: at least 1 byte.
fn min_gpu_memory_free(value: &str) -> Result<u64, String> {
    let bytes = quantity::parse(value)?;
    if bytes < 1 {
        return Err(format!("{} must be at least 1 byte", shorten(value)));
    }
    Ok(bytes)
}

/// `gpu-model`: trimmed (it is matched as a substring, where stray spaces would only
/// cause misses), not empty, at most 128 characters.
fn gpu_model(value: &str) -> Result<String, String> {
    let model = value.trim();
    if model.is_empty() {
        return Err(format!(
            "{} is not a GPU model name (e.g. A100)",
            shorten(value)
        ));
    }
    if model.chars().nth(MAX_GPU_MODEL_CHARS).is_some() {
        return Err(format!(
            "{} is longer than {MAX_GPU_MODEL_CHARS} characters",
            shorten(model)
        ));
    }
    Ok(model.to_owned())
}

/// `max-gpu-utilization`: a whole percent 0 to 100, "%" optional ("80", "80%").
fn max_gpu_utilization(value: &str) -> Result<u32, String> {
    let digits = value.strip_suffix('%').unwrap_or(value);
    // Digits only: `u32::from_str` would also take a leading "+".
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{} is not a percentage (e.g. 80 or 80%)",
            shorten(value)
        ));
    }
    // Only digits are left, so the one way to fail is overflow, which is out of range.
    match digits.parse::<u32>() {
        Ok(percent) if percent <= 100 => Ok(percent),
        _ => Err(format!("{} must be 0 to 100%", shorten(value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::selector::Requirement;
    use proptest::prelude::*;

    /// Every annotation, in the order of the constants.
    const ALL: [&str; 8] = [
        MIN_BANDWIDTH,
        MAX_LATENCY,
        PEERS,
        MIN_GPU_MEMORY_FREE,
        GPU_MODEL,
        MAX_GPU_UTILIZATION,
        EGRESS_BANDWIDTH,
        INGRESS_BANDWIDTH,
    ];

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ok(pairs: &[(&str, &str)]) -> PodRequest {
        PodRequest::from_annotations(&map(pairs))
            .unwrap_or_else(|e| panic!("{pairs:?} should parse: {e:?}"))
    }

    fn errs(pairs: &[(&str, &str)]) -> Vec<AnnotationError> {
        match PodRequest::from_annotations(&map(pairs)) {
            Ok(r) => panic!("{pairs:?} should not parse, got {r:?}"),
            Err(e) => e,
        }
    }

    /// The one error for `annotation` set to `value`.
    fn why(annotation: &'static str, value: &str) -> String {
        let mut e = errs(&[(annotation, value)]);
        assert_eq!(e.len(), 1, "{e:?}");
        let e = e.remove(0);
        assert_eq!(e.annotation, annotation);
        e.why
    }

    #[test]
    fn nothing_asked() {
        let r = ok(&[]);
        assert!(r.is_empty());
        assert!(!r.wants_gpu());
        // Other annotations are not ours.
        let r = ok(&[
            ("app.kubernetes.io/name", "db"),
            ("linkmeter.dev/other", "fast"),
        ]);
        assert!(r.is_empty());
    }

    #[test]
    fn every_annotation_parses() {
        let r = ok(&[
            (MIN_BANDWIDTH, "100M"),
            (MAX_LATENCY, "10ms"),
            (PEERS, "app=db"),
            (MIN_GPU_MEMORY_FREE, "16Gi"),
            (GPU_MODEL, "  A100 "),
            (MAX_GPU_UTILIZATION, "80%"),
            (EGRESS_BANDWIDTH, "1k"),
            (INGRESS_BANDWIDTH, "1P"),
        ]);
        assert_eq!(r.min_bandwidth_bps, Some(100_000_000));
        assert_eq!(r.max_latency_us, Some(10_000));
        let peers = r.peers.as_ref().expect("peers");
        assert_eq!(
            peers.requirements(),
            [Requirement::Equals("app".into(), "db".into())]
        );
        assert_eq!(r.min_gpu_memory_free_bytes, Some(17_179_869_184));
        assert_eq!(r.gpu_model.as_deref(), Some("A100"));
        assert_eq!(r.max_gpu_utilization_percent, Some(80));
        assert_eq!(r.egress_bps, Some(1_000));
        assert_eq!(r.ingress_bps, Some(1_000_000_000_000_000));
        assert!(!r.is_empty());
        assert!(r.wants_gpu());
        assert_eq!(r.egress_reservation_bps(), Some(1_000));
    }

    #[test]
    fn bandwidth_limits() {
        assert_eq!(ok(&[(MIN_BANDWIDTH, "1")]).min_bandwidth_bps, Some(1));
        assert_eq!(ok(&[(MIN_BANDWIDTH, "100m")]).min_bandwidth_bps, Some(1));
        assert_eq!(
            ok(&[(MIN_BANDWIDTH, "1P")]).min_bandwidth_bps,
            Some(MAX_BANDWIDTH_BPS)
        );
        assert_eq!(why(MIN_BANDWIDTH, "0"), "\"0\" must be at least 1 bit/s");
        assert_eq!(
            why(MIN_BANDWIDTH, "1001T"),
            "\"1001T\" must be at most 1P bit/s"
        );

        for annotation in [EGRESS_BANDWIDTH, INGRESS_BANDWIDTH] {
            let r = ok(&[(annotation, "1000")]);
            assert_eq!(r.egress_bps.or(r.ingress_bps), Some(1_000));
            for bad in ["999", "0", "1.0000000000000001P", "2P"] {
                assert_eq!(
                    why(annotation, bad),
                    format!("{bad:?} must be 1k to 1P bit/s, as Kubernetes requires")
                );
            }
        }
        // Egress falls back to min-bandwidth; ingress does not.
        let r = ok(&[(MIN_BANDWIDTH, "5M"), (INGRESS_BANDWIDTH, "7M")]);
        assert_eq!(r.egress_reservation_bps(), Some(5_000_000));
        assert_eq!(r.ingress_reservation_bps(), Some(7_000_000));
    }

    #[test]
    fn latency() {
        let us = |v: &str| ok(&[(MAX_LATENCY, v)]).max_latency_us;
        assert_eq!(us("10ms"), Some(10_000));
        assert_eq!(us("1.5ms"), Some(1_500));
        assert_eq!(us("250us"), Some(250));
        assert_eq!(us("500ns"), Some(1));
        assert_eq!(us("1001ns"), Some(2));
        assert_eq!(us("60s"), Some(60_000_000));
        assert_eq!(us("1m"), Some(60_000_000));
        assert_eq!(why(MAX_LATENCY, "0"), "\"0\" must be more than 0");
        assert_eq!(why(MAX_LATENCY, "0ms"), "\"0ms\" must be more than 0");
        assert_eq!(why(MAX_LATENCY, "61s"), "\"61s\" must be at most 60s");
        assert_eq!(
            why(MAX_LATENCY, "60.000001s"),
            "\"60.000001s\" must be at most 60s"
        );
        assert_eq!(
            why(MAX_LATENCY, "100years"),
            "\"100years\" must be at most 60s"
        );
        for bad in [
            "",
            "10",
            "fast",
            "10 parsecs",
            "-1ms",
            "1.ms",
            "ms",
            "10ms!",
        ] {
            assert_eq!(
                why(MAX_LATENCY, bad),
                format!("{bad:?} is not a duration (e.g. 10ms, 1.5ms)"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gpu_annotations() {
        assert_eq!(
            ok(&[(MIN_GPU_MEMORY_FREE, "1")]).min_gpu_memory_free_bytes,
            Some(1)
        );
        assert_eq!(
            ok(&[(MIN_GPU_MEMORY_FREE, "1.5Gi")]).min_gpu_memory_free_bytes,
            Some(1_610_612_736)
        );
        assert_eq!(
            why(MIN_GPU_MEMORY_FREE, "0"),
            "\"0\" must be at least 1 byte"
        );

        let model = "m".repeat(128);
        assert_eq!(ok(&[(GPU_MODEL, &model)]).gpu_model, Some(model.clone()));
        assert_eq!(
            why(GPU_MODEL, &format!("{model}m")),
            format!("{:?}… is longer than 128 characters", "m".repeat(39))
        );
        assert_eq!(
            why(GPU_MODEL, ""),
            "\"\" is not a GPU model name (e.g. A100)"
        );
        assert_eq!(
            why(GPU_MODEL, " \t "),
            "\" \\t \" is not a GPU model name (e.g. A100)"
        );

        let pct = |v: &str| ok(&[(MAX_GPU_UTILIZATION, v)]).max_gpu_utilization_percent;
        assert_eq!(pct("0"), Some(0));
        assert_eq!(pct("0%"), Some(0));
        assert_eq!(pct("100"), Some(100));
        assert_eq!(pct("050"), Some(50));
        for bad in ["101", "100000000000000000000", "200%"] {
            assert_eq!(
                why(MAX_GPU_UTILIZATION, bad),
                format!("{bad:?} must be 0 to 100%")
            );
        }
        for bad in [
            "", "%", "-1", "+5", "1.5", "80 %", " 80", "80%%", "eighty", "0x10",
        ] {
            assert_eq!(
                why(MAX_GPU_UTILIZATION, bad),
                format!("{bad:?} is not a percentage (e.g. 80 or 80%)"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn each_bad_annotation_is_named() {
        let bad = [
            (
                MIN_BANDWIDTH,
                "fast",
                "\"fast\" is not a quantity (e.g. 100M, 16Gi)",
            ),
            (MAX_LATENCY, "soon", "\"soon\" is not a duration"),
            (PEERS, "app=db,", "\"app=db,\" is not a label selector"),
            (MIN_GPU_MEMORY_FREE, "lots", "\"lots\" is not a quantity"),
            (GPU_MODEL, "", "\"\" is not a GPU model name"),
            (MAX_GPU_UTILIZATION, "high", "\"high\" is not a percentage"),
            (EGRESS_BANDWIDTH, "-1M", "\"-1M\" is negative"),
            (INGRESS_BANDWIDTH, " 1M", "\" 1M\" is not a quantity"),
        ];
        // One case per annotation, in the order of the constants.
        assert_eq!(bad.map(|b| b.0), ALL);
        for (annotation, value, want) in bad {
            let e = why(annotation, value);
            assert!(e.starts_with(want), "{annotation}: {e}");
        }
        assert_eq!(why(PEERS, ""), "empty selector");
    }

    #[test]
    fn all_errors_at_once_in_order() {
        let e = errs(&[
            (INGRESS_BANDWIDTH, "x"),
            (EGRESS_BANDWIDTH, "x"),
            (MAX_GPU_UTILIZATION, "x"),
            (GPU_MODEL, " "),
            (MIN_GPU_MEMORY_FREE, "x"),
            (PEERS, "x y"),
            (MAX_LATENCY, "x"),
            (MIN_BANDWIDTH, "x"),
        ]);
        let names: Vec<_> = e.iter().map(|e| e.annotation).collect();
        assert_eq!(names, ALL);

        // Good values do not hide the bad ones, and are not reported.
        let e = errs(&[
            (MIN_BANDWIDTH, "100M"),
            (MAX_LATENCY, "forever"),
            (GPU_MODEL, "A100"),
            (INGRESS_BANDWIDTH, "1"),
        ]);
        let names: Vec<_> = e.iter().map(|e| e.annotation).collect();
        assert_eq!(names, [MAX_LATENCY, INGRESS_BANDWIDTH]);
    }

    #[test]
    fn error_display_and_shortening() {
        let e = &errs(&[(MIN_BANDWIDTH, "fast")])[0];
        assert_eq!(
            e.to_string(),
            "annotation linkmeter.dev/min-bandwidth: \"fast\" is not a quantity (e.g. 100M, 16Gi)"
        );
        let huge = "z".repeat(100_000);
        for annotation in ALL {
            let e = why(annotation, &huge);
            assert!(e.len() < 300, "{annotation}: {e}");
            // The value is shown cut, not whole.
            assert!(!e.contains(&"z".repeat(41)), "{annotation}: {e}");
        }
    }

    /// A value that is often close to valid for some annotation.
    fn value_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            ".*",
            "[-+0-9.eEinumkKMGTP%]{0,12}",
            "[0-9.]{0,6}(ns|us|ms|s|m|h)?",
            "[a-z=!(), ]{0,20}",
        ]
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(ALL.to_vec()).prop_map(str::to_owned),
            ".*",
        ]
    }

    proptest! {
        /// No annotations make the reader panic; an error is reported for each bad one
        /// of ours, and none for the others.
        #[test]
        fn arbitrary_annotations_never_panic(
            annotations in proptest::collection::btree_map(key_strategy(), value_strategy(), 0..12),
        ) {
            match PodRequest::from_annotations(&annotations) {
                Ok(r) => {
                    let ours = annotations.keys().any(|k| ALL.contains(&k.as_str()));
                    prop_assert_eq!(r.is_empty(), !ours);
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    let mut last = 0;
                    for e in &errors {
                        prop_assert!(annotations.contains_key(e.annotation));
                        let at = ALL.iter().position(|a| *a == e.annotation).unwrap_or(usize::MAX);
                        prop_assert!(at >= last, "out of order: {:?}", errors);
                        last = at + 1;
                    }
                }
            }
        }
    }
}
