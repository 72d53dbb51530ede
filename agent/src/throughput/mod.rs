//! TCP throughput tests speaking the iperf3 protocol.
