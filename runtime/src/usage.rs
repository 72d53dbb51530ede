//! clap's parse errors, reported alike by both binaries: help and version as clap
//! prints them, any other error as its first line (each binary adds its own name).

use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::exit;

/// For help and version requests: prints clap's text (stdout, or stderr for a bare
/// command that needs a subcommand) and gives the exit status. `None` for a real
/// error, which the caller reports as one line.
pub fn help_or_version(e: &clap::Error) -> Option<ExitCode> {
    let status = display_status(e.kind())?;
    let _ = e.print();
    Some(exit::code(status))
}

/// The exit status of a kind of error that only displays something: 0 for `--help`
/// and `--version`, 64 for a bare command (its help stands in for the missing part).
fn display_status(kind: ErrorKind) -> Option<u8> {
    match kind {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Some(exit::OK),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Some(exit::USAGE),
        _ => None,
    }
}

/// The first line of clap's message, without its `error: ` prefix.
pub fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let line = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    line.trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    use super::*;

    fn command() -> Command {
        Command::new("t")
            .arg(
                Arg::new("n")
                    .long("count")
                    .value_parser(clap::value_parser!(u32)),
            )
            .subcommand(Command::new("go"))
            .subcommand_required(true)
            .arg_required_else_help(true)
    }

    fn error(argv: &[&str]) -> clap::Error {
        command().try_get_matches_from(argv).expect_err("refused")
    }

    #[test]
    fn help_version_and_a_bare_command_only_display() {
        assert_eq!(display_status(error(&["t", "--help"]).kind()), Some(0));
        assert_eq!(display_status(error(&["t"]).kind()), Some(64));
        assert_eq!(display_status(error(&["t", "--nope", "go"]).kind()), None);
    }

    #[test]
    fn the_first_line_has_no_prefix() {
        let line = first_line(&error(&["t", "--count", "many", "go"]));
        assert!(
            line.starts_with("invalid value 'many' for '--count"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
