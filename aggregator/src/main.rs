//! `linkmeter-aggregator`: merges every NodeTopology into the ClusterTopology and the
//! Diktyo NetworkTopology. Thin: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    linkmeter_aggregator::cli::main(std::env::args_os().collect())
}
