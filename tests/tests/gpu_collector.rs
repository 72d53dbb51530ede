//! The GPU collector against the fake NVML library, through the real nvml-wrapper code
//! path. Each test gets its own copy of the library (a separate NVML instance), so the
//! tests may run in parallel threads.

use std::path::PathBuf;
use std::process::Command;

use linkmeter_agent::collect::Collector;
use linkmeter_agent::collect::gpu::{
    GpuCollector, GpuConfig, GpuReport, INIT_RETRY_INTERVAL, MAX_DEVICES,
};
use linkmeter_aggregator::api::{CONDITION_NVML_AVAILABLE, Condition, Gpu, NodeTopologyStatus};
use linkmeter_tests::fake_nvml::{
    self, FakeGpu, FakeNvml, FakeNvmlConfig, NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_NOT_SUPPORTED, Variant,
};

/// Marks the line carrying the child's report on stdout.
const CHILD_MARKER: &str = "GPU_REPORT_JSON:";
/// Set in the child process that [`child_collects_with_default_library`] runs.
const CHILD_ENV: &str = "LINKMETER_GPU_TEST_CHILD";

fn h100(i: u32) -> FakeGpu {
    FakeGpu {
        name: Some(format!("Fake H100 #{i}")),
        uuid: Some(format!("GPU-1111111{i}-2222-3333-4444-555555555555")),
        mem_total: Some(85_899_345_920 + u64::from(i)),
        mem_used: Some(1_234_567_890 + u64::from(i)),
        util_gpu: Some(40 + i),
        util_mem: Some(20 + i),
        temp: Some(55 + i),
        power: Some(312_500 + i),
        power_limit: Some(700_000 - i),
        mig: Some(i % 2),
        pcie_gen: Some(5 - i),
        pcie_width: Some(16 >> i),
        ..FakeGpu::default()
    }
}

/// What the collector should report for `h100(i)`.
fn expected_h100(i: u32) -> Gpu {
    Gpu {
        index: i,
        uuid: Some(format!("GPU-1111111{i}-2222-3333-4444-555555555555")),
        name: Some(format!("Fake H100 #{i}")),
        memory_total_bytes: Some(85_899_345_920 + u64::from(i)),
        memory_used_bytes: Some(1_234_567_890 + u64::from(i)),
        utilization_gpu_percent: Some(40 + i),
        utilization_memory_percent: Some(20 + i),
        temperature_celsius: Some(55 + i),
        power_usage_mw: Some(312_500 + i),
        power_limit_mw: Some(700_000 - i),
        mig_mode: Some(if i % 2 == 1 { "Enabled" } else { "Disabled" }.to_owned()),
        pcie_generation: Some(5 - i),
        pcie_width: Some(16 >> i),
        errors: Vec::new(),
    }
}

fn collector_for(fake: &FakeNvml) -> GpuCollector {
    GpuCollector::new(GpuConfig {
        library_path: Some(fake.library_path()),
    })
}

fn fake(variant: Variant, config: &FakeNvmlConfig) -> FakeNvml {
    FakeNvml::new(variant, config).expect("set up fake NVML")
}

/// A collection as the NodeTopology status carries it, so that every assertion below
/// checks what is published (the collector's own types go through `status`).
#[derive(Debug, Clone, PartialEq)]
struct Published {
    gpus: Vec<Gpu>,
    condition: Condition,
}

fn published(report: GpuReport) -> Published {
    let mut st = NodeTopologyStatus::default();
    linkmeter_agent::status::apply_gpu(&mut st, &report);
    let condition = st
        .conditions
        .into_iter()
        .next()
        .expect("NvmlAvailable condition");
    Published {
        gpus: st.gpus,
        condition,
    }
}

fn assert_available(condition: &Condition) {
    assert_eq!(condition.type_, CONDITION_NVML_AVAILABLE);
    assert_eq!(condition.status, "True", "{condition:?}");
    assert_eq!(condition.reason.as_deref(), Some("Initialized"));
}

fn assert_unavailable(report: &Published, reason: &str) {
    assert!(report.gpus.is_empty(), "{report:?}");
    assert_eq!(report.condition.type_, CONDITION_NVML_AVAILABLE);
    assert_eq!(report.condition.status, "False", "{report:?}");
    assert_eq!(
        report.condition.reason.as_deref(),
        Some(reason),
        "{report:?}"
    );
    assert!(report.condition.message.is_some(), "{report:?}");
}

#[test]
fn two_gpus_are_reported_with_configured_values() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            driver_version: Some("555.42.06".into()),
            gpus: vec![h100(0), h100(1)],
            ..FakeNvmlConfig::default()
        },
    );
    let mut collector = collector_for(&fake);
    assert_eq!(collector.name(), "gpu");

    let report = published(collector.collect());
    assert_available(&report.condition);
    let message = report.condition.message.clone().unwrap_or_default();
    assert!(message.contains("555.42.06"), "{message}");
    assert_eq!(report.gpus, vec![expected_h100(0), expected_h100(1)]);

    // The handle is kept and a second collection sees the same devices.
    assert!(collector.is_initialized());
    let again = published(collector.collect());
    assert_eq!(again, report);
}

#[test]
fn missing_library_reports_library_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = GpuCollector::new(GpuConfig {
        library_path: Some(dir.path().join("no-such-dir").join(fake_nvml::LIBRARY_NAME)),
    });
    let report = published(collector.collect());
    assert_unavailable(&report, "LibraryNotFound");
    assert!(!collector.is_initialized());
}

#[test]
fn init_error_is_reported_with_nvml_reason() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            init_error: Some(NVML_ERROR_DRIVER_NOT_LOADED),
            gpus: vec![h100(0)],
            ..FakeNvmlConfig::default()
        },
    );
    let mut collector = collector_for(&fake);
    let report = published(collector.collect());
    assert_unavailable(&report, "DriverNotLoaded");

    let permission = fake_with_init_error(fake_nvml::NVML_ERROR_NO_PERMISSION);
    let report = published(collector_for(&permission).collect());
    assert_unavailable(&report, "NoPermission");
}

fn fake_with_init_error(code: u32) -> FakeNvml {
    fake(
        Variant::Full,
        &FakeNvmlConfig {
            init_error: Some(code),
            ..FakeNvmlConfig::default()
        },
    )
}

#[test]
fn failed_init_is_retried_on_interval_and_recovers() {
    let fake = fake_with_init_error(NVML_ERROR_DRIVER_NOT_LOADED);
    let mut collector = collector_for(&fake);
    assert_unavailable(&published(collector.collect()), "DriverNotLoaded");

    // The driver "loads": the next attempt reads the new config.
    fake.rewrite(&FakeNvmlConfig {
        gpus: vec![h100(0)],
        ..FakeNvmlConfig::default()
    })
    .expect("rewrite config");
    for _ in 1..INIT_RETRY_INTERVAL {
        assert_unavailable(&published(collector.collect()), "DriverNotLoaded");
    }
    let report = published(collector.collect());
    assert_available(&report.condition);
    assert_eq!(report.gpus, vec![expected_h100(0)]);
}

#[test]
fn device_count_failure_drops_handle_and_recovers() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            count_error: Some(fake_nvml::NVML_ERROR_GPU_IS_LOST),
            gpus: vec![h100(0)],
            ..FakeNvmlConfig::default()
        },
    );
    let mut collector = collector_for(&fake);
    assert_unavailable(&published(collector.collect()), "GpuLost");
    assert!(!collector.is_initialized());

    fake.rewrite(&FakeNvmlConfig {
        gpus: vec![h100(0)],
        ..FakeNvmlConfig::default()
    })
    .expect("rewrite config");
    let mut last = published(collector.collect());
    for _ in 1..INIT_RETRY_INTERVAL {
        last = published(collector.collect());
    }
    assert_available(&last.condition);
    assert_eq!(last.gpus, vec![expected_h100(0)]);
}

#[test]
fn failing_handle_does_not_hide_other_devices() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            gpus: vec![
                FakeGpu {
                    fail_handle: true,
                    ..h100(0)
                },
                h100(1),
            ],
            ..FakeNvmlConfig::default()
        },
    );
    let report = published(collector_for(&fake).collect());
    assert_available(&report.condition);
    assert_eq!(
        report.gpus,
        vec![
            Gpu {
                index: 0,
                errors: vec!["device: GpuLost".to_owned()],
                ..Gpu::default()
            },
            expected_h100(1),
        ]
    );
}

#[test]
fn missing_power_symbol_only_affects_power_usage() {
    let fake = fake(
        Variant::NoPowerUsage,
        &FakeNvmlConfig {
            gpus: vec![h100(0), h100(1)],
            ..FakeNvmlConfig::default()
        },
    );
    let report = published(collector_for(&fake).collect());
    assert_available(&report.condition);
    let expected: Vec<Gpu> = (0..2)
        .map(|i| Gpu {
            power_usage_mw: None,
            errors: vec!["powerUsageMw: SymbolNotFound: nvmlDeviceGetPowerUsage".to_owned()],
            ..expected_h100(i)
        })
        .collect();
    assert_eq!(report.gpus, expected);
}

#[test]
fn query_errors_are_per_field_and_sorted() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            gpus: vec![FakeGpu {
                query_errors: vec![
                    ("temp".into(), NVML_ERROR_NOT_SUPPORTED),
                    ("util".into(), fake_nvml::NVML_ERROR_GPU_IS_LOST),
                    ("mig".into(), NVML_ERROR_NOT_SUPPORTED),
                    ("name".into(), 999),
                ],
                ..h100(0)
            }],
            ..FakeNvmlConfig::default()
        },
    );
    let report = published(collector_for(&fake).collect());
    assert_available(&report.condition);
    assert_eq!(
        report.gpus,
        vec![Gpu {
            name: None,
            temperature_celsius: None,
            utilization_gpu_percent: None,
            utilization_memory_percent: None,
            mig_mode: Some("Unsupported".to_owned()),
            errors: vec![
                "name: Unknown".to_owned(),
                "temperatureCelsius: NotSupported".to_owned(),
                "utilizationGpuPercent: GpuLost".to_owned(),
                "utilizationMemoryPercent: GpuLost".to_owned(),
            ],
            ..expected_h100(0)
        }]
    );
}

#[test]
fn device_count_is_capped() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            count: Some(100),
            ..FakeNvmlConfig::default()
        },
    );
    let report = published(collector_for(&fake).collect());
    assert_available(&report.condition);
    assert_eq!(report.gpus.len(), MAX_DEVICES as usize);
    assert!(report.gpus.iter().all(|g| g.errors.is_empty()));
    assert!(
        report.gpus.iter().map(|g| g.index).eq(0..MAX_DEVICES),
        "indices in order"
    );
    let message = report.condition.message.unwrap_or_default();
    assert!(message.contains("100 GPU"), "{message}");
}

#[test]
fn no_gpus_is_available_with_empty_list() {
    let fake = fake(Variant::Full, &FakeNvmlConfig::default());
    let report = published(collector_for(&fake).collect());
    assert_available(&report.condition);
    assert!(report.gpus.is_empty());
}

/// Runs in a child process with `LD_LIBRARY_PATH` pointing at a fake: the collector
/// uses nvml-wrapper's default library name. Does nothing in a normal test run.
#[test]
fn child_collects_with_default_library() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let report = published(GpuCollector::new(GpuConfig::default()).collect());
    let json = serde_json::to_string(&(report.gpus, report.condition)).expect("serialise");
    println!("{CHILD_MARKER}{json}");
}

#[test]
fn default_library_name_is_found_through_ld_library_path() {
    let fake = fake(
        Variant::Full,
        &FakeNvmlConfig {
            gpus: vec![h100(0), h100(1)],
            ..FakeNvmlConfig::default()
        },
    );
    let exe: PathBuf = std::env::current_exe().expect("current test executable");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child_collects_with_default_library",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    fake.env().apply(&mut cmd);
    let output = cmd.output().expect("run child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout
        .lines()
        .find_map(|l| l.split_once(CHILD_MARKER).map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no report in child output: {stdout}"));
    let (gpus, condition): (Vec<Gpu>, Condition) =
        serde_json::from_str(json).expect("parse child report");
    assert_available(&condition);
    assert_eq!(gpus, vec![expected_h100(0), expected_h100(1)]);
}

#[test]
fn library_without_shutdown_is_refused_without_panicking() {
    let fake = fake(
        Variant::NoShutdown,
        &FakeNvmlConfig {
            gpus: vec![h100(0)],
            ..FakeNvmlConfig::default()
        },
    );
    let mut collector = collector_for(&fake);
    let report = published(collector.collect());
    assert_unavailable(&report, "SymbolNotFound");
    let message = report.condition.message.unwrap_or_default();
    assert!(message.contains("nvmlShutdown"), "{message}");
    assert!(!collector.is_initialized());
}

#[test]
fn fake_ignores_malformed_config_lines() {
    let fake = fake(Variant::Full, &FakeNvmlConfig::default());
    let config = format!(
        "# comment\n\
         count=2\n\
         gpu0.temp=abc\n\
         gpu0.power=-5\n\
         gpu0.name={}\n\
         gpu999.temp=1\n\
         gpu1temp=7\n\
         no equals sign\n\
         \x20 gpu1.temp = 77 \n\
         gpu1.util_gpu=99999999999\n",
        "x".repeat(2000)
    );
    std::fs::write(fake.config_path(), config).expect("write config");
    let report = published(collector_for(&fake).collect());
    assert_available(&report.condition);
    assert_eq!(report.gpus.len(), 2);
    let (g0, g1) = (&report.gpus[0], &report.gpus[1]);
    assert_eq!(g0.name.as_deref(), Some("Fake NVIDIA GPU 0"));
    assert_eq!(g0.temperature_celsius, Some(30));
    assert_eq!(g0.power_usage_mw, Some(60_000));
    assert_eq!(g1.temperature_celsius, Some(77));
    assert_eq!(g1.utilization_gpu_percent, Some(0));
    assert!(g0.errors.is_empty() && g1.errors.is_empty());
}
