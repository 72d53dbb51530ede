//! The one-line failure every command returns, with its exit status (sysexits(3),
//! the numbers both binaries share).

use std::process::ExitCode;

pub use linkmeter_runtime::exit::{DATA, FAILURE, NO_INPUT, USAGE};

/// Why a command stopped: the exit status and one line for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// sysexits value.
    pub code: u8,
    /// What went wrong, without the program name.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Bad usage (64).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(USAGE, message)
    }

    /// Bad input data (65).
    pub fn data(message: impl Into<String>) -> Self {
        Failure::new(DATA, message)
    }

    /// An input that cannot be opened (66).
    pub fn no_input(message: impl Into<String>) -> Self {
        Failure::new(NO_INPUT, message)
    }

    /// A runtime failure (1).
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure::new(FAILURE, message)
    }

    /// Prints the message as one line on stderr and gives the exit status.
    pub fn report(&self) -> ExitCode {
        eprintln!("linkmeter-aggregator: {}", one_line(&self.message));
        ExitCode::from(self.code)
    }
}

/// `text` on one line: library messages (YAML errors, kube errors) may span several,
/// and a caller reading stderr line by line expects one per failure.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
