//! Process exit codes, following sysexits(3) where one fits.

use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// A runtime failure (the job could not be done).
pub const FAILURE: u8 = 1;
/// Bad command line or configuration (`EX_USAGE`).
pub const USAGE: u8 = 64;

/// `ExitCode` for a sysexits value.
pub fn code(v: u8) -> ExitCode {
    ExitCode::from(v)
}
