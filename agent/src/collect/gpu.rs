//! GPU collector (NVML).
//!
//! [`GpuCollector`] loads NVML through nvml-wrapper (which dlopens `libnvidia-ml.so.1`,
//! or the configured path) on its first collection and keeps the handle. A node without
//! the NVIDIA driver is normal, not an error: the report then has no GPUs and an
//! `NvmlAvailable=False` condition saying why.
//!
//! Every device query is made separately; one that fails leaves its field unset and adds
//! `"<fieldName>: <Reason>"` to that GPU's `errors`, so an unsupported query, a symbol the
//! driver lacks, or a lost GPU never hides the rest.
//!
//! Init retry policy: after a failed init the failure is reported from cache and init is
//! tried again on every [`INIT_RETRY_INTERVAL`]-th collection. A failed init costs a
//! dlopen (and, with a library present, one `nvmlInit_v2`), so this is cheap either way;
//! the interval just keeps a missing driver from being probed on every scrape. When the
//! device count cannot be read after a successful init, the handle is dropped and the
//! same retry policy applies, so a reloaded driver is picked up again.

use std::ffi::OsStr;
use std::path::PathBuf;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::error::NvmlError;

use super::Collector;
use crate::availability::Availability;

/// Most devices reported; further ones are left out and the condition message says so.
pub const MAX_DEVICES: u32 = 64;
/// Longest string (in bytes) taken from NVML for a name, UUID or driver version.
pub const MAX_TEXT_LEN: usize = 96;
/// Longest per-field error or condition message, in bytes.
pub const MAX_MESSAGE_LEN: usize = 256;
/// After a failed init, init is retried on every this-many-th collection.
pub const INIT_RETRY_INTERVAL: u32 = 5;

/// `GpuDevice::mig_mode` when MIG is on.
pub const MIG_ENABLED: &str = "Enabled";
/// `GpuDevice::mig_mode` when MIG is off.
pub const MIG_DISABLED: &str = "Disabled";
/// `GpuDevice::mig_mode` when the device does not support MIG.
pub const MIG_UNSUPPORTED: &str = "Unsupported";

/// `NVML_DEVICE_MIG_DISABLE` / `NVML_DEVICE_MIG_ENABLE` from nvml.h.
const NVML_MIG_DISABLE: u32 = 0;
const NVML_MIG_ENABLE: u32 = 1;

/// Where to find NVML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuConfig {
    /// Path (or bare file name, searched by the dynamic loader) of the NVML library.
    /// `None` uses nvml-wrapper's default, `libnvidia-ml.so.1` via the loader's search
    /// path, so `LD_LIBRARY_PATH` applies.
    pub library_path: Option<PathBuf>,
}

/// What NVML said about one device. Every query is separate: a field whose query
/// failed is `None`, and `errors` says why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuDevice {
    /// NVML device index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: Option<String>,
    /// Product name.
    pub name: Option<String>,
    /// Framebuffer memory, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Framebuffer memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// GPU utilisation over NVML's last sample period, percent.
    pub utilization_gpu_percent: Option<u32>,
    /// Memory-controller utilisation, percent.
    pub utilization_memory_percent: Option<u32>,
    /// Core temperature, degrees Celsius.
    pub temperature_celsius: Option<u32>,
    /// Power draw, milliwatts.
    pub power_usage_mw: Option<u32>,
    /// Enforced power limit, milliwatts.
    pub power_limit_mw: Option<u32>,
    /// [`MIG_ENABLED`], [`MIG_DISABLED`] or [`MIG_UNSUPPORTED`].
    pub mig_mode: Option<String>,
    /// Current PCIe link generation.
    pub pcie_generation: Option<u32>,
    /// Current PCIe link width (lanes).
    pub pcie_width: Option<u32>,
    /// `field: reason` for each query that failed, sorted (field names as published).
    pub errors: Vec<String>,
}

/// What one GPU collection produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuReport {
    /// The GPUs NVML reported, sorted by index; empty when NVML is unavailable.
    pub gpus: Vec<GpuDevice>,
    /// Available with reason `Initialized`, or not with why not.
    pub condition: Availability,
}

/// Collects GPU inventory and utilisation through NVML. See the module docs for the
/// init and retry policy.
#[derive(Debug)]
pub struct GpuCollector {
    config: GpuConfig,
    nvml: Option<Nvml>,
    /// Why the last failed init (or lost handle), reported until a retry.
    failure: Option<Availability>,
    /// Collections since the last init attempt that failed.
    since_attempt: u32,
}

impl GpuCollector {
    /// A collector that loads NVML as `config` says on its first collection.
    pub fn new(config: GpuConfig) -> Self {
        GpuCollector {
            config,
            nvml: None,
            failure: None,
            since_attempt: 0,
        }
    }

    /// Whether an NVML handle is currently held.
    pub fn is_initialized(&self) -> bool {
        self.nvml.is_some()
    }

    /// Makes sure an NVML handle is held, or returns the condition saying why not.
    fn ensure_nvml(&mut self) -> Result<(), Availability> {
        if self.nvml.is_some() {
            return Ok(());
        }
        if let Some(failure) = &self.failure {
            self.since_attempt = self.since_attempt.saturating_add(1);
            if self.since_attempt < INIT_RETRY_INTERVAL {
                return Err(failure.clone());
            }
        }
        self.since_attempt = 0;
        let mut builder = Nvml::builder();
        if let Some(path) = &self.config.library_path {
            builder.lib_path(path.as_os_str());
        }
        let result = builder.init().and_then(|nvml| {
            // nvml-wrapper's Drop calls nvmlShutdown without checking that the symbol
            // resolved, and would panic on a library that lacks it. Such a library is
            // not NVML: refuse it, and leak the handle rather than drop it.
            match &nvml.lib().nvmlShutdown {
                Ok(_) => Ok(nvml),
                Err(e) => {
                    let e = NvmlError::FailedToLoadSymbol(e.to_string());
                    std::mem::forget(nvml);
                    Err(e)
                }
            }
        });
        match result {
            Ok(nvml) => {
                self.nvml = Some(nvml);
                self.failure = None;
                Ok(())
            }
            Err(e) => {
                let condition = init_failure(&e, self.library_name());
                self.failure = Some(condition.clone());
                Err(condition)
            }
        }
    }

    /// The library name or path that init loads, for messages.
    fn library_name(&self) -> &OsStr {
        self.config
            .library_path
            .as_deref()
            .map_or(OsStr::new("libnvidia-ml.so.1"), |p| p.as_os_str())
    }
}

impl Collector for GpuCollector {
    type Report = GpuReport;

    fn name(&self) -> &'static str {
        "gpu"
    }

    fn collect(&mut self) -> GpuReport {
        if let Err(condition) = self.ensure_nvml() {
            return GpuReport {
                gpus: Vec::new(),
                condition,
            };
        }
        let Some(nvml) = &self.nvml else {
            // ensure_nvml returned Ok, so a handle is held; stay total anyway.
            return GpuReport {
                gpus: Vec::new(),
                condition: Availability::down("InitFailed", "NVML handle missing"),
            };
        };

        let count = match nvml.device_count() {
            Ok(count) => count,
            Err(e) => {
                let condition = Availability::down(
                    error_reason(&e),
                    bounded(format!("nvmlDeviceGetCount failed: {e}"), MAX_MESSAGE_LEN),
                );
                // Drop the handle: the driver may have gone away or been reloaded.
                self.nvml = None;
                self.failure = Some(condition.clone());
                self.since_attempt = 0;
                return GpuReport {
                    gpus: Vec::new(),
                    condition,
                };
            }
        };
        let reported = count.min(MAX_DEVICES);
        let gpus: Vec<GpuDevice> = (0..reported).map(|i| query_device(nvml, i)).collect();

        let mut message = match nvml.sys_driver_version() {
            Ok(v) => format!("NVML initialized, driver {}", clean_text(&v, MAX_TEXT_LEN)),
            Err(e) => format!("NVML initialized, driver version unknown ({e})"),
        };
        message.push_str(&format!(", {count} GPU(s)"));
        if count > reported {
            message.push_str(&format!(", reporting the first {reported}"));
        }
        GpuReport {
            gpus,
            condition: Availability::up("Initialized", bounded(message, MAX_MESSAGE_LEN)),
        }
    }
}

/// Queries every field of device `index`, each on its own.
fn query_device(nvml: &Nvml, index: u32) -> GpuDevice {
    let mut gpu = GpuDevice {
        index,
        ..GpuDevice::default()
    };
    let device = match nvml.device_by_index(index) {
        Ok(device) => device,
        Err(e) => {
            gpu.errors.push(field_error("device", &e));
            return gpu;
        }
    };
    let mut errors = Vec::new();

    gpu.uuid = field(&mut errors, "uuid", device.uuid()).map(|s| clean_text(&s, MAX_TEXT_LEN));
    gpu.name = field(&mut errors, "name", device.name()).map(|s| clean_text(&s, MAX_TEXT_LEN));
    match device.memory_info() {
        Ok(memory) => {
            gpu.memory_total_bytes = Some(memory.total);
            gpu.memory_used_bytes = Some(memory.used);
        }
        Err(e) => {
            errors.push(field_error("memoryTotalBytes", &e));
            errors.push(field_error("memoryUsedBytes", &e));
        }
    }
    match device.utilization_rates() {
        Ok(util) => {
            gpu.utilization_gpu_percent = Some(util.gpu);
            gpu.utilization_memory_percent = Some(util.memory);
        }
        Err(e) => {
            errors.push(field_error("utilizationGpuPercent", &e));
            errors.push(field_error("utilizationMemoryPercent", &e));
        }
    }
    gpu.temperature_celsius = field(
        &mut errors,
        "temperatureCelsius",
        device.temperature(TemperatureSensor::Gpu),
    );
    gpu.power_usage_mw = field(&mut errors, "powerUsageMw", device.power_usage());
    gpu.power_limit_mw = field(&mut errors, "powerLimitMw", device.enforced_power_limit());
    gpu.mig_mode = match device.mig_mode() {
        Ok(mode) => match mig_mode_name(mode.current) {
            Some(name) => Some(name.to_owned()),
            None => {
                errors.push(bounded(
                    format!("migMode: UnexpectedVariant: {}", mode.current),
                    MAX_MESSAGE_LEN,
                ));
                None
            }
        },
        Err(NvmlError::NotSupported) => Some(MIG_UNSUPPORTED.to_owned()),
        Err(e) => {
            errors.push(field_error("migMode", &e));
            None
        }
    };
    gpu.pcie_generation = field(
        &mut errors,
        "pcieGeneration",
        device.current_pcie_link_gen(),
    );
    gpu.pcie_width = field(&mut errors, "pcieWidth", device.current_pcie_link_width());

    errors.sort();
    gpu.errors = errors;
    gpu
}

/// The value of a successful query; otherwise records `name: reason` and gives `None`.
fn field<T>(errors: &mut Vec<String>, name: &str, result: Result<T, NvmlError>) -> Option<T> {
    result.map_err(|e| errors.push(field_error(name, &e))).ok()
}

/// `GpuDevice::mig_mode` for NVML's current MIG mode value.
fn mig_mode_name(current: u32) -> Option<&'static str> {
    match current {
        NVML_MIG_ENABLE => Some(MIG_ENABLED),
        NVML_MIG_DISABLE => Some(MIG_DISABLED),
        _ => None,
    }
}

/// Why a failed init of `library` leaves NVML unavailable.
fn init_failure(e: &NvmlError, library: &OsStr) -> Availability {
    let library = library.to_string_lossy();
    let message = match e {
        NvmlError::LibloadingError(_) => format!("cannot load NVML library {library}: {e}"),
        NvmlError::FailedToLoadSymbol(_) => {
            format!("{library} is not a usable NVML library: {e}")
        }
        _ => format!("nvmlInit_v2 failed: {e}"),
    };
    Availability::down(error_reason(e), bounded(message, MAX_MESSAGE_LEN))
}

/// `"<field>: <Reason>"`, with the missing symbol or unexpected value appended where
/// the reason alone would not say what happened.
fn field_error(field: &str, e: &NvmlError) -> String {
    let reason = error_reason(e);
    let text = match e {
        NvmlError::FailedToLoadSymbol(detail) => {
            let symbol = detail
                .rsplit_once("undefined symbol: ")
                .map_or(detail.as_str(), |(_, s)| s);
            format!("{field}: {reason}: {}", clean_text(symbol, MAX_TEXT_LEN))
        }
        NvmlError::UnexpectedVariant(value) => format!("{field}: {reason}: {value}"),
        _ => format!("{field}: {reason}"),
    };
    bounded(text, MAX_MESSAGE_LEN)
}

/// One CamelCase word for an NVML error, for condition reasons and per-field errors.
/// NVML return codes keep their nvml-wrapper variant names.
#[allow(deprecated)] // NvmlError::AlreadyInitialized
pub fn error_reason(e: &NvmlError) -> &'static str {
    match e {
        NvmlError::Utf8Error(_) => "InvalidUtf8",
        NvmlError::NulError(_) => "NulInString",
        NvmlError::LibloadingError(_) => "LibraryNotFound",
        NvmlError::FailedToLoadSymbol(_) => "SymbolNotFound",
        NvmlError::StringTooLong { .. } => "StringTooLong",
        NvmlError::IncorrectBits(_) => "IncorrectBits",
        NvmlError::UnexpectedVariant(_) => "UnexpectedVariant",
        NvmlError::SetReleaseFailed => "SetReleaseFailed",
        NvmlError::GetPciInfoFailed => "GetPciInfoFailed",
        NvmlError::PciInfoToCFailed => "PciInfoToCFailed",
        NvmlError::Uninitialized => "Uninitialized",
        NvmlError::InvalidArg => "InvalidArg",
        NvmlError::NotSupported => "NotSupported",
        NvmlError::NoPermission => "NoPermission",
        NvmlError::AlreadyInitialized => "AlreadyInitialized",
        NvmlError::NotFound => "NotFound",
        NvmlError::InsufficientSize(_) => "InsufficientSize",
        NvmlError::InsufficientPower => "InsufficientPower",
        NvmlError::DriverNotLoaded => "DriverNotLoaded",
        NvmlError::Timeout => "Timeout",
        NvmlError::IrqIssue => "IrqIssue",
        NvmlError::LibraryNotFound => "LibraryNotFound",
        NvmlError::FunctionNotFound => "FunctionNotFound",
        NvmlError::CorruptedInfoROM => "CorruptedInfoRom",
        NvmlError::GpuLost => "GpuLost",
        NvmlError::ResetRequired => "ResetRequired",
        NvmlError::OperatingSystem => "OperatingSystem",
        NvmlError::LibRmVersionMismatch => "LibRmVersionMismatch",
        NvmlError::InUse => "InUse",
        NvmlError::InsufficientMemory => "InsufficientMemory",
        NvmlError::NoData => "NoData",
        NvmlError::VgpuEccNotSupported => "VgpuEccNotSupported",
        NvmlError::Unknown => "Unknown",
    }
}

/// `s` without control characters and surrounding blanks, cut to at most `max` bytes
/// on a character boundary.
fn clean_text(s: &str, max: usize) -> String {
    let cleaned: String = s.trim().chars().filter(|c| !c.is_control()).collect();
    bounded(cleaned, max)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_single_camel_case_words() {
        let errors = [
            NvmlError::DriverNotLoaded,
            NvmlError::NotSupported,
            NvmlError::FailedToLoadSymbol("x".into()),
            NvmlError::UnexpectedVariant(7),
            NvmlError::InsufficientSize(Some(3)),
            NvmlError::CorruptedInfoROM,
            NvmlError::StringTooLong {
                max_len: 1,
                actual_len: 2,
            },
        ];
        for e in &errors {
            let r = error_reason(e);
            assert!(r.starts_with(|c: char| c.is_ascii_uppercase()), "{r}");
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
        }
        assert_eq!(error_reason(&NvmlError::GpuLost), "GpuLost");
    }

    #[test]
    fn missing_library_maps_to_library_not_found() {
        let condition = init_failure(&NvmlError::LibraryNotFound, OsStr::new("/x/lib.so"));
        assert!(!condition.available);
        assert_eq!(condition.reason, "LibraryNotFound");
        assert!(!condition.message.is_empty());
    }

    #[test]
    fn init_error_keeps_nvml_reason() {
        let condition = init_failure(&NvmlError::DriverNotLoaded, OsStr::new("lib"));
        assert_eq!(condition.reason, "DriverNotLoaded");
        assert!(condition.message.contains("nvmlInit_v2"));
    }

    #[test]
    fn field_error_names_missing_symbol() {
        let e = NvmlError::FailedToLoadSymbol(
            "/tmp/x/libnvidia-ml.so.1: undefined symbol: nvmlDeviceGetPowerUsage".into(),
        );
        assert_eq!(
            field_error("powerUsageMw", &e),
            "powerUsageMw: SymbolNotFound: nvmlDeviceGetPowerUsage"
        );
        assert_eq!(
            field_error("temperatureCelsius", &NvmlError::NotSupported),
            "temperatureCelsius: NotSupported"
        );
        assert_eq!(
            field_error("migMode", &NvmlError::UnexpectedVariant(9)),
            "migMode: UnexpectedVariant: 9"
        );
    }

    #[test]
    fn mig_mode_names() {
        assert_eq!(mig_mode_name(0), Some(MIG_DISABLED));
        assert_eq!(mig_mode_name(1), Some(MIG_ENABLED));
        assert_eq!(mig_mode_name(2), None);
    }

    #[test]
    fn text_is_bounded_on_char_boundaries() {
        assert_eq!(bounded("abcdef".into(), 3), "abc");
        assert_eq!(bounded("ab".into(), 3), "ab");
        // 'é' is two bytes: cutting at 2 would split it.
        assert_eq!(bounded("aé".into(), 2), "a");
        assert_eq!(clean_text(" A\u{7}B\n ", 10), "AB");
        assert_eq!(
            clean_text(&"x".repeat(500), MAX_TEXT_LEN).len(),
            MAX_TEXT_LEN
        );
    }

    #[test]
    fn missing_library_is_reported_and_retried_on_interval() {
        let mut collector = GpuCollector::new(GpuConfig {
            library_path: Some(PathBuf::from("/nonexistent/linkmeter/libnvidia-ml.so.1")),
        });
        assert_eq!(collector.name(), "gpu");
        for _ in 0..(2 * INIT_RETRY_INTERVAL + 1) {
            let report = collector.collect();
            assert!(report.gpus.is_empty());
            assert!(!report.condition.available);
            assert_eq!(report.condition.reason, "LibraryNotFound");
            assert!(!collector.is_initialized());
        }
    }
}
