//! Writing results to stdout, buffered. A reader that goes away early (`| head`) ends
//! the command quietly with success: it has what it wanted.

use std::io::{self, BufWriter, ErrorKind, Write};

use super::exit::Failure;

/// Runs `write` on buffered stdout and flushes it.
pub fn with_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::runtime(format!("cannot write to stdout: {e}"))),
    }
}
