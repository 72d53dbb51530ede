//! Test harness for linkmeter: the network lab and the fake NVML library.
