//! Prints linkmeter's CustomResourceDefinitions as YAML on standard output.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match linkmeter_aggregator::api::crds_yaml() {
        Ok(yaml) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(yaml.as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: cannot render CRDs: {e}");
            ExitCode::FAILURE
        }
    }
}
