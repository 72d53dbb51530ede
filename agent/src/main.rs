//! `linkmeter-agent`: see `linkmeter-agent --help`.

fn main() -> std::process::ExitCode {
    linkmeter_agent::cli::main()
}
