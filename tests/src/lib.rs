//! Test harness for linkmeter: the network lab, the fake NVML library, the Kubernetes
//! test environment (real kube-apiserver + etcd) and helpers for driving agent and
//! aggregator processes.

pub mod agent;
pub mod aggregator;
pub mod bins;
pub mod demo;
pub mod fake_nvml;
pub mod kube_env;
pub mod kube_scheduler;
pub mod lab;
pub mod prometheus;
