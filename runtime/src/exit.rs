//! Process exit statuses, following sysexits(3) where one fits. Both binaries use the
//! same numbers, so a script, a test or `kubectl describe pod` reads them alike.

use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// A runtime failure (the job could not be done).
pub const FAILURE: u8 = 1;
/// Bad command line or configuration (`EX_USAGE`).
pub const USAGE: u8 = 64;
/// The input data is malformed (`EX_DATAERR`).
pub const DATA: u8 = 65;
/// An input file cannot be opened or read (`EX_NOINPUT`).
pub const NO_INPUT: u8 = 66;

/// `ExitCode` for a sysexits value.
pub fn code(v: u8) -> ExitCode {
    ExitCode::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_sysexits_ones() {
        assert_eq!([OK, FAILURE, USAGE, DATA, NO_INPUT], [0, 1, 64, 65, 66]);
        assert_eq!(code(USAGE), ExitCode::from(64));
    }
}
