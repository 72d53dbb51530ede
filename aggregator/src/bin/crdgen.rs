//! Prints CustomResourceDefinitions as YAML on standard output: linkmeter's own
//! (`crdgen`), or Diktyo's NetworkTopology for clusters without scheduler-plugins
//! (`crdgen --diktyo`).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rendered = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => linkmeter_aggregator::api::crds_yaml(),
        ["--diktyo"] => linkmeter_aggregator::api::diktyo_crd_yaml(),
        _ => {
            eprintln!("usage: crdgen [--diktyo]");
            return ExitCode::from(64);
        }
    };
    match rendered {
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
