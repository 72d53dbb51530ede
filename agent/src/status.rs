//! The one place that maps what the agent measured to the NodeTopology status shape:
//! availabilities to conditions of their kind, GPU devices, the host summary and the
//! NICs to publish. Probes and collectors return their own types, so a schema change
//! touches this file and the agent state, not the measuring code.

use linkmeter_aggregator::api::{
    CONDITION_ICMP_AVAILABLE, CONDITION_NVML_AVAILABLE, CONDITION_SYSTEM_AVAILABLE, Condition, Gpu,
    Nic, NodeTopologyStatus, SystemSummary,
};

use crate::availability::Availability;
use crate::collect::gpu::{GpuDevice, GpuReport};
use crate::collect::system::{HostSummary, SystemReport};

/// The condition of type `type_` saying `a`.
pub fn condition(type_: &str, a: &Availability) -> Condition {
    Condition::new(type_, a.available, &a.reason, a.message.clone())
}

/// The `IcmpAvailable` condition.
pub fn icmp_condition(a: &Availability) -> Condition {
    condition(CONDITION_ICMP_AVAILABLE, a)
}

/// One GPU as published.
pub fn gpu(d: &GpuDevice) -> Gpu {
    Gpu {
        index: d.index,
        uuid: d.uuid.clone(),
        name: d.name.clone(),
        memory_total_bytes: d.memory_total_bytes,
        memory_used_bytes: d.memory_used_bytes,
        utilization_gpu_percent: d.utilization_gpu_percent,
        utilization_memory_percent: d.utilization_memory_percent,
        temperature_celsius: d.temperature_celsius,
        power_usage_mw: d.power_usage_mw,
        power_limit_mw: d.power_limit_mw,
        mig_mode: d.mig_mode.clone(),
        pcie_generation: d.pcie_generation,
        pcie_width: d.pcie_width,
        errors: d.errors.clone(),
    }
}

/// The host summary as published.
pub fn system_summary(h: &HostSummary) -> SystemSummary {
    SystemSummary {
        cpu_count: h.cpu_count,
        cpu_utilization_permille: h.cpu_utilization_permille,
        memory_total_bytes: h.memory_total_bytes,
        memory_used_bytes: h.memory_used_bytes,
        load1_milli: h.load1_milli,
        load5_milli: h.load5_milli,
        load15_milli: h.load15_milli,
        kernel_version: h.kernel_version.clone(),
    }
}

/// The NICs as published (see [`SystemReport::nics_to_publish`]).
pub fn nics(r: &SystemReport) -> Vec<Nic> {
    r.nics_to_publish()
        .into_iter()
        .map(|n| Nic {
            name: n.name.clone(),
            speed_mbps: n.speed_mbps,
        })
        .collect()
}

/// Writes a system collection's part of `status`: summary, NICs, `SystemAvailable`.
pub fn apply_system(status: &mut NodeTopologyStatus, r: &SystemReport) {
    status.system = r.summary.as_ref().map(system_summary);
    status.nics = nics(r);
    status
        .conditions
        .push(condition(CONDITION_SYSTEM_AVAILABLE, &r.condition));
}

/// Writes a GPU collection's part of `status`: the GPUs and `NvmlAvailable`.
pub fn apply_gpu(status: &mut NodeTopologyStatus, r: &GpuReport) {
    status.gpus = r.gpus.iter().map(gpu).collect();
    status
        .conditions
        .push(condition(CONDITION_NVML_AVAILABLE, &r.condition));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_report_gives_its_own_condition_type() {
        let mut st = NodeTopologyStatus::default();
        apply_gpu(
            &mut st,
            &GpuReport {
                gpus: vec![GpuDevice {
                    index: 3,
                    name: Some("H100".into()),
                    errors: vec!["pcieWidth: NotSupported".into()],
                    ..GpuDevice::default()
                }],
                condition: Availability::up("Initialized", "driver 550"),
            },
        );
        apply_system(
            &mut st,
            &SystemReport {
                summary: None,
                nics: Vec::new(),
                disks: Vec::new(),
                condition: Availability::down("ProcUnreadable", "/proc/stat: denied"),
                errors: Vec::new(),
            },
        );
        assert_eq!(st.gpus[0].index, 3);
        assert_eq!(st.gpus[0].name.as_deref(), Some("H100"));
        assert_eq!(st.gpus[0].errors, ["pcieWidth: NotSupported"]);
        let c = |t: &str| st.conditions.iter().find(|c| c.type_ == t).cloned();
        let nvml = c(CONDITION_NVML_AVAILABLE).expect("NvmlAvailable");
        assert_eq!(
            (nvml.status.as_str(), nvml.reason.as_deref()),
            ("True", Some("Initialized"))
        );
        assert_eq!(nvml.message.as_deref(), Some("driver 550"));
        let sys = c(CONDITION_SYSTEM_AVAILABLE).expect("SystemAvailable");
        assert_eq!(sys.status, "False");
        assert!(st.system.is_none());
        let icmp = icmp_condition(&Availability::up("SocketOpen", ""));
        assert_eq!(icmp.type_, CONDITION_ICMP_AVAILABLE);
        assert!(icmp.message.is_none(), "an empty message is left out");
    }
}
