//! Test harness for linkmeter: the network lab and the fake NVML library.

pub mod bins;
pub mod fake_nvml;
pub mod lab;
