//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`): the guardian
//! speaks it, alone.
//!
//! systemd's main process for `understudy.service` is the guardian
//! (`understudy run`); the daemon is its child. With the unit's
//! `NotifyAccess=main` (the default), systemd takes messages from the
//! guardian only, so a managed application that finds `NOTIFY_SOCKET` (or
//! a stray child of ours) cannot declare us ready, stopping or alive. The
//! guardian takes `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` out
//! of the daemon's environment (and so of every script's), and gives the
//! daemon a pipe instead ([`NOTIFY_FD_ENV`]):
//!
//! - the daemon writes `READY=1` once it serves its control socket (its
//!   coordinator has started and published its first status), `STATUS=`
//!   lines with the cluster's state ([`crate::render::service_line`]) when
//!   that line changes (the coordinator publishes its status on change:
//!   nothing asks it), and `STOPPING=1` when the cluster service begins to
//!   stop (SIGTERM, `cluster stop`, a final action); the guardian passes
//!   those three on and nothing else;
//! - `WATCHDOG=1` is the guardian's own, made from the daemon's progress
//!   beat: the records the daemon writes to its fence pipe
//!   ([`understudy_actors::fence`]), the very signal the guardian's fence
//!   deadline and its watchdog device rest on. The daemon beats from its
//!   coordinator's tick while its heartbeat thread sends too; each beat
//!   lets the guardian send `WATCHDOG=1` (at most every quarter of
//!   `WATCHDOG_USEC`). A frozen or stalled daemon stops beating, the
//!   keepalives stop, and systemd's watchdog sends its `WatchdogSignal`
//!   (SIGABRT) to the guardian, which kills the daemon and releases what
//!   it held as after any death (see `guardian.rs`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use sd_notify::NotifyState;
use tokio::sync::watch;

use understudy_actors::fence;
use understudy_actors::metrics::StatusFeed;

use crate::logging::Priority;

/// Set in the daemon's environment by the guardian: the write end of the
/// pipe that carries the daemon's messages for systemd.
pub const NOTIFY_FD_ENV: &str = "UNDERSTUDY_NOTIFY_FD";

/// What systemd sets for its notify protocol; never passed to the daemon.
const SYSTEMD_ENV: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// The keepalive period for a watchdog of `usec`: a quarter of it (so
/// that one late beat is no timeout), in ms, at least 1.
pub fn keepalive_every_ms(usec: u64) -> u64 {
    (usec / 4_000).max(1)
}

/// Which lines of the daemon's messages the guardian passes on.
pub fn allowed(line: &str) -> Option<NotifyState<'_>> {
    match line {
        "READY=1" => Some(NotifyState::Ready),
        "STOPPING=1" => Some(NotifyState::Stopping),
        _ => line.strip_prefix("STATUS=").map(NotifyState::Status),
    }
}

/// The guardian's side: present when systemd listens (`NOTIFY_SOCKET`).
pub struct ServiceManager {
    /// `WATCHDOG=1` at most this often (ms); `None`: no watchdog asked for
    /// (or it is for another process: `WATCHDOG_PID`).
    keepalive_every: Option<u64>,
    /// Boot-time ms of the last `WATCHDOG=1` (0: none yet).
    last_keepalive: u64,
    /// The read end of the daemon's pipe, until the daemon closes it.
    pipe: Option<OwnedFd>,
    /// The daemon's end, until it has been handed over.
    daemon_end: Option<OwnedFd>,
    /// Bytes of a message not complete yet.
    pending: Vec<u8>,
    /// A failed send was reported (once).
    failed: bool,
}

impl ServiceManager {
    /// `None` when no service manager listens.
    pub fn from_env() -> Result<Option<ServiceManager>, String> {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Ok(None);
        }
        let keepalive_every =
            sd_notify::watchdog_enabled().map(|d| keepalive_every_ms(d.as_micros() as u64));
        let (rd, wr) =
            nix::unistd::pipe().map_err(|e| format!("cannot create the notify pipe: {e}"))?;
        fcntl(&rd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .and_then(|_| fcntl(&rd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)))
            .map_err(|e| format!("notify pipe: {e}"))?;
        Ok(Some(ServiceManager {
            keepalive_every,
            last_keepalive: 0,
            pipe: Some(rd),
            daemon_end: Some(wr),
            pending: Vec::new(),
            failed: false,
        }))
    }

    /// The daemon's environment: none of systemd's variables, and
    /// without a service manager nothing else either.
    pub fn prepare(manager: Option<&ServiceManager>, cmd: &mut Command) {
        for var in SYSTEMD_ENV {
            cmd.env_remove(var);
        }
        let Some(m) = manager else { return };
        if let Some(fd) = &m.daemon_end {
            cmd.env(NOTIFY_FD_ENV, fd.as_raw_fd().to_string());
        }
        if let Some(every) = m.keepalive_every {
            cmd.env(fence::BEAT_MS_ENV, every.to_string());
        }
    }

    /// The daemon has been started (or could not be): its end of the pipe
    /// is its own now.
    pub fn spawned(&mut self) {
        self.daemon_end = None;
    }

    pub fn pipe_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|p| p.as_fd())
    }

    /// A progress beat arrived from the daemon at `now` (boot-time ms).
    pub fn beat(&mut self, now: u64) {
        let Some(every) = self.keepalive_every else {
            return;
        };
        if self.last_keepalive == 0 || now.saturating_sub(self.last_keepalive) >= every {
            self.last_keepalive = now.max(1);
            self.send(&[NotifyState::Watchdog]);
        }
    }

    /// The guardian's own word on the state (a death, a release).
    pub fn status(&mut self, text: &str) {
        self.send(&[NotifyState::Status(text)]);
    }

    /// Reads what the daemon wrote and passes whole messages on. At the
    /// end of the pipe (the daemon closed it: it ends) it stops watching.
    pub fn read_pipe(&mut self) {
        let Some(pipe) = &self.pipe else { return };
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match nix::unistd::read(pipe, &mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        while let Some(end) = self.pending.iter().position(|b| *b == 0) {
            let message: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&message[..end]).into_owned();
            let states: Vec<NotifyState> = text.lines().filter_map(allowed).collect();
            if !states.is_empty() {
                self.send(&states);
            }
        }
        if closed {
            self.pipe = None;
            self.pending.clear();
        }
    }

    fn send(&mut self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            if !self.failed {
                self.failed = true;
                crate::logging::line(
                    Priority::Warning,
                    &format!("understudy guardian: cannot notify the service manager: {e}"),
                );
            }
        }
    }
}

// ---- the daemon's side ----

static PIPE: OnceLock<Option<OwnedFd>> = OnceLock::new();

/// Takes the notify pipe from the environment (and the variable out of
/// it): closed on exec, writes never block. Run once, while the process
/// has one thread.
pub fn take_from_env() -> Result<(), String> {
    let fd = std::env::var(NOTIFY_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2);
    std::env::remove_var(NOTIFY_FD_ENV);
    let pipe = match fd {
        Some(fd) => {
            // SAFETY: the guardian passed this descriptor to this process
            // alone; nothing else here owns it.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
                .and_then(|_| fcntl(&owned, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)))
                .map_err(|e| format!("notify pipe {fd}: {e}"))?;
            Some(owned)
        }
        None => None,
    };
    let _ = PIPE.set(pipe);
    Ok(())
}

/// One message to the guardian: `NAME=value` lines, then a NUL. A
/// message fits in one atomic pipe write (the status line is short);
/// a full pipe drops it.
fn tell(lines: &[String]) {
    let Some(Some(fd)) = PIPE.get() else { return };
    let mut message = lines.join("\n").into_bytes();
    message.retain(|b| *b != 0);
    message.push(0);
    let _ = nix::unistd::write(fd, &message);
}

/// Reports to the service manager, through the guardian, for the life of
/// the daemon: `READY=1` once the coordinator has published its first
/// status, the status line on every change, `STOPPING=1` when the cluster
/// service begins to stop. Nothing without a service manager.
pub fn report(mut feed: StatusFeed, mut stopping: watch::Receiver<bool>) {
    if !matches!(PIPE.get(), Some(Some(_))) {
        return;
    }
    actix_rt::spawn(async move {
        let mut ready = false;
        let mut stop_told = false;
        let mut watching_stop = true;
        let mut last = String::new();
        loop {
            let status = feed.borrow_and_update().clone();
            let mut lines = Vec::new();
            // Nothing published yet: the coordinator has not started.
            let Some(status) = status else {
                if feed.changed().await.is_err() {
                    return;
                }
                continue;
            };
            if !ready {
                ready = true;
                lines.push("READY=1".to_string());
            }
            if (status.stopping || *stopping.borrow()) && !stop_told {
                stop_told = true;
                lines.push("STOPPING=1".to_string());
            }
            let line = crate::render::service_line(&status);
            if line != last {
                lines.push(format!("STATUS={line}"));
                last = line;
            }
            if !lines.is_empty() {
                tell(&lines);
            }
            tokio::select! {
                changed = feed.changed() => {
                    // The coordinator is gone: the daemon is ending.
                    if changed.is_err() {
                        if *stopping.borrow() && !stop_told {
                            tell(&["STOPPING=1".to_string()]);
                        }
                        return;
                    }
                }
                // At once (the state line with it), not at the next change.
                changed = stopping.changed(), if watching_stop && !stop_told => {
                    if changed.is_err() {
                        watching_stop = false;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_stopping_and_status_pass() {
        assert!(matches!(allowed("READY=1"), Some(NotifyState::Ready)));
        assert!(matches!(allowed("STOPPING=1"), Some(NotifyState::Stopping)));
        assert!(matches!(
            allowed("STATUS=n1: 1 of 1 groups online"),
            Some(NotifyState::Status("n1: 1 of 1 groups online"))
        ));
        // The keepalive is the guardian's own; the main pid is systemd's
        // to know.
        assert!(allowed("WATCHDOG=1").is_none());
        assert!(allowed("MAINPID=1").is_none());
        assert!(allowed("READY=0").is_none());
    }

    #[test]
    fn the_keepalive_comes_four_times_per_watchdog_period() {
        assert_eq!(keepalive_every_ms(10_000_000), 2_500);
        assert_eq!(keepalive_every_ms(1_000_000), 250);
        assert_eq!(keepalive_every_ms(1_000), 1);
    }
}
