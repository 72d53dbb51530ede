//! GPU collector (NVML).
