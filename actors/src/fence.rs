//! The daemon's side of its guardian's watchdog: the instant by which this
//! server must have released every group if it hears nothing more (the
//! brain's [`fence_deadline`](crate::model::cluster::Brain::fence_deadline),
//! on `CLOCK_BOOTTIME`), written to a pipe the guardian reads. A daemon that
//! is frozen (SIGSTOP, a stalled thread) stops moving the deadline on; the
//! guardian then kills it and releases what it held, before the survivors'
//! wait (lease + margin) is over.
//!
//! Each record is 8 bytes, the deadline in ms of boot time (0: nothing to
//! watch), written at once (a pipe write of up to PIPE_BUF bytes is
//! atomic); the guardian keeps the last one. Writes never block: a full
//! pipe (a guardian that does not read) drops the record, and the guardian
//! then acts on an earlier, earlier deadline: the safe side.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// Set in the daemon's environment by the guardian: the pipe's write end.
pub const FENCE_FD_ENV: &str = "UNDERSTUDY_FENCE_FD";

static PIPE: OnceLock<Option<OwnedFd>> = OnceLock::new();

/// Takes the pipe from the environment (and the variable out of it): the
/// descriptor is closed on exec, so scripts do not inherit it, and its
/// writes never block. Run once, while the process has one thread.
pub fn take_from_env() -> Result<(), String> {
    let fd = std::env::var(FENCE_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2);
    // The process still has one thread (see the caller).
    std::env::remove_var(FENCE_FD_ENV);
    let pipe = match fd {
        Some(fd) => {
            // SAFETY: the guardian passed this descriptor to this process
            // alone; nothing else here owns it.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
                .map_err(|e| format!("guardian pipe {fd}: {e}"))?;
            fcntl(&owned, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| format!("guardian pipe {fd}: {e}"))?;
            Some(owned)
        }
        None => None,
    };
    let _ = PIPE.set(pipe);
    Ok(())
}

/// Whether a guardian watches this daemon.
pub fn watched() -> bool {
    PIPE.get().is_some_and(Option::is_some)
}

/// Tells the guardian the deadline (`None`: nothing to watch). `deadline`
/// is on the daemon's clock ([`crate::heartbeat::since_start`]).
pub fn arm(deadline: Option<Duration>) {
    let Some(Some(fd)) = PIPE.get() else {
        return;
    };
    let ms = deadline.map_or(0, |d| {
        ((crate::heartbeat::start() + d).as_millis() as u64).max(1)
    });
    let _ = nix::unistd::write(fd, &ms.to_ne_bytes());
}
