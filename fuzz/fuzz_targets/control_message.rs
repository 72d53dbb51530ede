//! Fuzzes the iperf3 control-message parser: length-prefixed JSON parameter and
//! results messages, cookies and state bytes, exactly as a peer could send them.
//! Run with `cargo +nightly fuzz run control_message` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use linkmeter_agent::throughput::protocol::parse_control_message;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and unbounded allocations are the bugs.
    let _ = parse_control_message(data);
});
