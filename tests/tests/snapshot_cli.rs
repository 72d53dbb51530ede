//! `linkmeter-agent snapshot` run as a user runs it: the real binary, the real
//! nvml-wrapper code path against the fake libnvidia-ml.so.1 found through
//! `LD_LIBRARY_PATH`, real ICMP to loopback.

use std::process::{Command, Output};

use linkmeter_aggregator::api::{CONDITION_NVML_AVAILABLE, NodeTopologyStatus};
use linkmeter_tests::bins;
use linkmeter_tests::fake_nvml::{FakeGpu, FakeNvml, FakeNvmlConfig, Variant};

fn snapshot(args: &[&str], env: &[(std::ffi::OsString, std::ffi::OsString)]) -> Output {
    Command::new(bins::agent())
        .arg("snapshot")
        .args(args)
        .envs(env.iter().cloned())
        .env("LINKMETER_LOG_LEVEL", "warn")
        .output()
        .expect("run linkmeter-agent")
}

fn parse_status(out: &Output) -> NodeTopologyStatus {
    assert!(
        out.status.success(),
        "snapshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a NodeTopologyStatus: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn gpu(name: &str, uuid: &str, mem_total: u64, util: u32, power: u32) -> FakeGpu {
    FakeGpu {
        name: Some(name.into()),
        uuid: Some(uuid.into()),
        mem_total: Some(mem_total),
        mem_used: Some(mem_total / 4),
        util_gpu: Some(util),
        util_mem: Some(util / 2),
        temp: Some(41 + util / 10),
        power: Some(power),
        power_limit: Some(700_000),
        mig: Some(u32::from(util > 50)),
        pcie_gen: Some(5),
        pcie_width: Some(16),
        ..Default::default()
    }
}

#[test]
fn json_reports_two_fake_gpus_through_nvml_wrapper() {
    let config = FakeNvmlConfig {
        count: Some(2),
        driver_version: Some("555.42.06".into()),
        gpus: vec![
            gpu(
                "Fake H100 80GB",
                "GPU-11111111-2222-3333-4444-555555555555",
                85_899_345_920,
                73,
                312_500,
            ),
            gpu(
                "Fake L4",
                "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                24_152_899_584,
                12,
                27_000,
            ),
        ],
        ..Default::default()
    };
    let fake = FakeNvml::new(Variant::Full, &config).expect("fake NVML");
    let out = snapshot(&["--json", "--no-system"], &fake.env().vars());
    let st = parse_status(&out);

    assert_eq!(st.gpu_count, 2);
    let g0 = &st.gpus[0];
    assert_eq!(g0.index, 0);
    assert_eq!(g0.name.as_deref(), Some("Fake H100 80GB"));
    assert_eq!(
        g0.uuid.as_deref(),
        Some("GPU-11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(g0.memory_total_bytes, Some(85_899_345_920));
    assert_eq!(g0.memory_used_bytes, Some(85_899_345_920 / 4));
    assert_eq!(g0.utilization_gpu_percent, Some(73));
    assert_eq!(g0.utilization_memory_percent, Some(36));
    assert_eq!(g0.temperature_celsius, Some(48));
    assert_eq!(g0.power_usage_mw, Some(312_500));
    assert_eq!(g0.power_limit_mw, Some(700_000));
    assert_eq!(g0.mig_mode.as_deref(), Some("Enabled"));
    assert_eq!((g0.pcie_generation, g0.pcie_width), (Some(5), Some(16)));
    assert!(g0.errors.is_empty(), "{:?}", g0.errors);
    let g1 = &st.gpus[1];
    assert_eq!(g1.name.as_deref(), Some("Fake L4"));
    assert_eq!(g1.power_usage_mw, Some(27_000));
    assert_eq!(g1.mig_mode.as_deref(), Some("Disabled"));

    let nvml = st
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_NVML_AVAILABLE)
        .expect("NVML condition");
    assert_eq!(nvml.status, "True");
    assert!(nvml.message.as_deref().unwrap_or("").contains("555.42.06"));
}

#[test]
fn missing_driver_is_a_condition_not_a_failure() {
    let empty = tempfile::tempdir().expect("tempdir");
    let env = vec![(
        "LD_LIBRARY_PATH".into(),
        empty.path().as_os_str().to_owned(),
    )];
    let out = snapshot(&["--json", "--no-system"], &env);
    let st = parse_status(&out);
    assert!(st.gpus.is_empty());
    let nvml = st
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_NVML_AVAILABLE)
        .expect("NVML condition");
    assert_eq!(nvml.status, "False");
    assert_eq!(nvml.reason.as_deref(), Some("LibraryNotFound"));
}

#[test]
fn system_section_describes_this_host() {
    let out = snapshot(&["--json", "--no-gpu"], &[]);
    let st = parse_status(&out);
    let sys = st.system.expect("system summary");
    assert!(sys.cpu_count >= 1);
    assert!(sys.memory_total_bytes > sys.memory_used_bytes);
    assert!(sys.cpu_utilization_permille.is_some_and(|p| p <= 1000));
}

#[test]
fn an_unresolvable_peer_fails_alone() {
    let out = snapshot(
        &[
            "--json",
            "--no-gpu",
            "--no-system",
            "--count",
            "5",
            "--interval",
            "20ms",
            "--peer",
            "no-such-peer.invalid",
            "--peer",
            "127.0.0.1",
        ],
        &[],
    );
    let st = parse_status(&out);
    assert_eq!(st.peer_count, 2);
    let bad = st
        .links
        .iter()
        .find(|l| l.peer == "no-such-peer.invalid")
        .expect("bad peer listed");
    assert!(
        bad.error
            .as_deref()
            .unwrap_or("")
            .contains("cannot resolve"),
        "{bad:?}"
    );
    assert_eq!(bad.rtt_p50_us, None);
    let good = st
        .links
        .iter()
        .find(|l| l.peer == "127.0.0.1")
        .expect("loopback listed");
    assert_eq!(good.error, None);
    assert_eq!(good.samples, 5);
    assert_eq!(good.loss_ppm, 0);
    assert!(good.rtt_p50_us.is_some_and(|us| us < 5_000), "{good:?}");
}

#[test]
fn bad_arguments_exit_64_with_one_line() {
    for args in [
        &["--count", "0"][..],
        &["--interval", "soon"][..],
        &["--interval", "0ms"][..],
        &["--payload-size", "70000"][..],
        &["--no-such-flag"][..],
    ] {
        let out = snapshot(args, &[]);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("linkmeter-agent: "), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn bad_log_filter_exits_64() {
    let out = Command::new(bins::agent())
        .args(["--log-level", "foo=bar=baz", "snapshot", "--no-gpu"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn ipv6_loopback_is_probed() {
    let out = snapshot(
        &[
            "--json",
            "--no-gpu",
            "--no-system",
            "--count",
            "3",
            "--interval",
            "10ms",
            "--peer",
            "::1",
        ],
        &[],
    );
    let st = parse_status(&out);
    let l = &st.links[0];
    assert_eq!(l.address.as_deref(), Some("::1"));
    assert_eq!(l.loss_ppm, 0, "{l:?}");
    assert!(l.rtt_p50_us.is_some(), "{l:?}");
}
