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
//!
//! The same records are the daemon's progress beat. When a service manager
//! watches the guardian (systemd's `WatchdogSec`), the guardian asks for
//! beats ([`BEAT_MS_ENV`]): the coordinator then repeats its last record at
//! that rate from its tick, as long as the engine's threads make progress
//! (see `Coordinator::housekeeping`), and the guardian turns each beat into a
//! keepalive (`WATCHDOG=1`). One signal feeds both: the fence deadline the
//! guardian and its watchdog device act on, and the service manager's
//! watchdog. A frozen daemon stops both at once.
//!
//! The same tick's verdict on progress ([`progressed`]) is the userspace
//! monitor's proof of life (`monitor/userspace.rs`): one sign of life for
//! every watcher, guardian or not.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// Set in the daemon's environment by the guardian: the pipe's write end.
pub const FENCE_FD_ENV: &str = "UNDERSTUDY_FENCE_FD";
/// Set in the daemon's environment by the guardian when it wants progress
/// beats: at most how many ms apart they should be.
pub const BEAT_MS_ENV: &str = "UNDERSTUDY_BEAT_MS";

static PIPE: OnceLock<Option<OwnedFd>> = OnceLock::new();
/// How often to beat (`None`: no beats asked for).
static BEAT_EVERY: OnceLock<Option<u64>> = OnceLock::new();
/// The last record written (boot-time ms; 0: nothing to watch).
static LAST_RECORD: AtomicU64 = AtomicU64::new(0);
/// When it was written (boot-time ms; 0: never).
static LAST_WRITE: AtomicU64 = AtomicU64::new(0);

/// When the engine last made progress (boot-time ms; 0: not yet): the
/// coordinator's tick ran and the heartbeat thread sent within the
/// heartbeat timeout.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// The engine made progress just now (the coordinator's tick, see
/// `Coordinator::housekeeping`).
pub fn progressed() {
    PROGRESS.store(
        (crate::heartbeat::boottime().as_millis() as u64).max(1),
        Ordering::Relaxed,
    );
}

/// How long ago the engine last made progress (`None`: not yet).
pub fn progress_age() -> Option<Duration> {
    match PROGRESS.load(Ordering::Relaxed) {
        0 => None,
        at => Some(crate::heartbeat::boottime().saturating_sub(Duration::from_millis(at))),
    }
}

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
    let beat = std::env::var(BEAT_MS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    std::env::remove_var(BEAT_MS_ENV);
    let _ = BEAT_EVERY.set(beat);
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
    let ms = deadline.map_or(0, |d| {
        ((crate::heartbeat::start() + d).as_millis() as u64).max(1)
    });
    write(ms);
}

fn write(record: u64) {
    let Some(Some(fd)) = PIPE.get() else {
        return;
    };
    let _ = nix::unistd::write(fd, &record.to_ne_bytes());
    LAST_RECORD.store(record, Ordering::Relaxed);
    LAST_WRITE.store(
        (crate::heartbeat::boottime().as_millis() as u64).max(1),
        Ordering::Relaxed,
    );
}

/// Whether the guardian asked for progress beats.
pub fn beating() -> bool {
    watched() && BEAT_EVERY.get().copied().flatten().is_some()
}

/// A sign of progress: repeats the last record (the deadline stays what
/// it was) when the beat period has passed since the last write. Called by
/// the coordinator's tick only while the engine's threads make progress.
pub fn beat() {
    let Some(Some(every)) = BEAT_EVERY.get().copied() else {
        return;
    };
    let now = crate::heartbeat::boottime().as_millis() as u64;
    if now.saturating_sub(LAST_WRITE.load(Ordering::Relaxed)) >= every {
        write(LAST_RECORD.load(Ordering::Relaxed));
    }
}
