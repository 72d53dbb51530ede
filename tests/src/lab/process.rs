//! Child processes started inside lab nodes, stopped when their guard or
//! their lab is dropped (whichever comes first).

use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long a child gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(2);

/// The child shared by its guard and its lab; `None` once it has been
/// stopped and reaped, so the pid is never signalled after reuse.
pub(crate) type SharedChild = Arc<Mutex<Option<Child>>>;

/// Locks a shared child even if a panicking thread poisoned the lock: the
/// `Option<Child>` inside stays consistent, and cleanup must still run.
pub(crate) fn lock(child: &SharedChild) -> MutexGuard<'_, Option<Child>> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops a child: SIGTERM, up to [`GRACE`] to exit, then SIGKILL, and
/// always reaps it. Returns how it ended.
pub(crate) fn stop(child: &mut Child) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    // SAFETY: kill() takes no pointers. The child has not been reaped (the
    // try_wait above saw it running and we hold it exclusively), so the pid
    // still names our child and cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.kill()?;
    Ok(child.wait()?)
}

/// Stops and forgets the child in `shared`, if it is still there.
pub(crate) fn stop_shared(shared: &SharedChild) -> Option<Result<ExitStatus>> {
    let mut slot = lock(shared);
    let mut child = slot.take()?;
    Some(stop(&mut child))
}

/// A process running inside a lab node. Dropping the guard stops it
/// (SIGTERM, then SIGKILL after 2 s) and reaps it; so does dropping the lab.
#[derive(Debug)]
pub struct ChildGuard {
    child: SharedChild,
    pid: u32,
}

impl ChildGuard {
    pub(crate) fn new(child: SharedChild, pid: u32) -> Self {
        Self { child, pid }
    }

    /// The child's pid (meaningful only while it runs).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes the child's stdout pipe, if it was spawned with one.
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        lock(&self.child).as_mut()?.stdout.take()
    }

    /// Takes the child's stderr pipe, if it was spawned with one.
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        lock(&self.child).as_mut()?.stderr.take()
    }

    /// Takes the child's stdin pipe, if it was spawned with one.
    pub fn take_stdin(&self) -> Option<ChildStdin> {
        lock(&self.child).as_mut()?.stdin.take()
    }

    /// The exit status if the child has exited, without blocking.
    /// Returns `Ok(None)` while it runs, and also after it was stopped.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        match lock(&self.child).as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => Ok(None),
        }
    }

    /// Waits for the child to exit by itself and returns its status
    /// (`None` if it had already been stopped).
    pub fn wait(self) -> Result<Option<ExitStatus>> {
        match lock(&self.child).take() {
            Some(mut child) => Ok(Some(child.wait()?)),
            None => Ok(None),
        }
    }

    /// Stops the child now (as Drop would) and returns how it ended.
    pub fn stop(self) -> Result<Option<ExitStatus>> {
        stop_shared(&self.child).transpose()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(Err(e)) = stop_shared(&self.child) {
            eprintln!("lab: stopping child {}: {e:#}", self.pid);
        }
    }
}
