//! The guardian's watchdog device (`guardian.watchdog`): armed while the
//! daemon holds groups under a partition lease, kept alive up to the
//! daemon's fence deadline and never past it, disarmed with the magic close
//! once nothing is held (or all was released). Should the guardian stall or
//! die meanwhile, the device resets the box: nothing of the groups outlives
//! the deadline by more than the device's timeout.
//!
//! The guardian is its one owner: the daemon's liveness reaches it as the
//! fence deadline, and only the guardian touches the device.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use understudy_actors::model::watchdog::WatchdogConfig;

use crate::logging::Priority;

/// Where the device's messages go, with their priority.
pub type Say<'a> = &'a dyn Fn(Priority, &str);

// WDIOC_SETTIMEOUT: _IOWR('W', 6, int) (linux/watchdog.h).
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);

pub struct Watchdog {
    config: WatchdogConfig,
    device: Option<File>,
    /// Boot-time ms of the next keepalive while armed.
    next: u64,
}

impl Watchdog {
    pub fn new(config: WatchdogConfig) -> Watchdog {
        Watchdog {
            config,
            device: None,
            next: 0,
        }
    }

    fn period_ms(&self) -> u64 {
        // Three keepalives per timeout: one late wake-up is no reset.
        (u64::from(self.config.timeout_secs) * 1000 / 3).max(50)
    }

    pub fn armed(&self) -> bool {
        self.device.is_some()
    }

    /// Keeps the device alive at `now` (boot-time ms) while the daemon's
    /// fence `deadline` (0: nothing held) is ahead: arms it first if need
    /// be. Past the deadline it is left to run out. Returns when it wants
    /// to be called again (0: not armed).
    pub fn tend(&mut self, now: u64, deadline: u64, say: Say) -> u64 {
        if deadline == 0 || now >= deadline {
            return if self.armed() { deadline } else { 0 };
        }
        if self.device.is_none() {
            self.arm(say);
            if self.device.is_none() {
                return 0;
            }
            self.next = now;
        }
        if now >= self.next {
            if let Some(d) = self.device.as_mut() {
                if let Err(e) = d.write_all(b"k") {
                    say(
                        Priority::Err,
                        &format!("watchdog {}: keepalive failed: {e}", self.config.device),
                    );
                }
            }
            self.next = now + self.period_ms();
        }
        self.next.min(deadline)
    }

    fn arm(&mut self, say: Say) {
        let device = match OpenOptions::new()
            .write(true)
            // Non-blocking: a stand-in FIFO without a reader is an error, not
            // a hang (a watchdog device never blocks).
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&self.config.device)
        {
            Ok(f) => f,
            Err(e) => {
                say(
                    Priority::Err,
                    &format!(
                        "watchdog {}: cannot open it: {e}; the guardian alone watches the daemon",
                        self.config.device
                    ),
                );
                return;
            }
        };
        let mut timeout = self.config.timeout_secs as libc::c_int;
        // SAFETY: the ioctl reads and writes one int, ours.
        match unsafe { wdioc_settimeout(device.as_raw_fd(), &mut timeout) } {
            Ok(_) => say(
                Priority::Notice,
                &format!(
                    "watchdog {}: armed, timeout {timeout} s",
                    self.config.device
                ),
            ),
            // Not a watchdog driver (a stand-in file or FIFO): armed as is.
            Err(nix::errno::Errno::ENOTTY) => say(
                Priority::Notice,
                &format!(
                    "watchdog {}: armed (not a watchdog driver: its timeout is its own)",
                    self.config.device
                ),
            ),
            Err(e) => say(
                Priority::Warning,
                &format!(
                    "watchdog {}: armed, but its timeout could not be set to {} s: {e}",
                    self.config.device, self.config.timeout_secs
                ),
            ),
        }
        self.device = Some(device);
    }

    /// Nothing is held any more: the magic close stops the device.
    pub fn disarm(&mut self, say: Say) {
        if let Some(mut d) = self.device.take() {
            match d.write_all(b"V") {
                Ok(()) => say(
                    Priority::Notice,
                    &format!("watchdog {}: disarmed", self.config.device),
                ),
                Err(e) => say(
                    Priority::Err,
                    &format!(
                        "watchdog {}: the magic close failed ({e}): it may still reset this server",
                        self.config.device
                    ),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_alive_up_to_the_deadline_never_past_it_then_closed_by_magic() {
        let dir = std::env::temp_dir().join(format!("us-wd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("watchdog");
        std::fs::write(&path, b"").expect("stand-in device");
        let mut w = Watchdog::new(WatchdogConfig {
            device: path.to_string_lossy().into_owned(),
            timeout_secs: 3,
        });
        let say = |_: Priority, _: &str| {};
        // Nothing held: not armed.
        assert_eq!(w.tend(1_000, 0, &say), 0);
        assert!(!w.armed());
        // Held until 5 s: armed and kept alive every second.
        assert_eq!(w.tend(1_000, 5_000, &say), 2_000);
        assert_eq!(w.tend(1_500, 5_000, &say), 2_000, "not yet due");
        assert_eq!(w.tend(2_000, 5_000, &say), 3_000);
        assert_eq!(w.tend(4_500, 5_000, &say), 5_000, "never past the deadline");
        // Past the deadline: left to run out.
        assert_eq!(w.tend(5_000, 5_000, &say), 5_000);
        assert_eq!(std::fs::read(&path).expect("read"), b"kkk");
        w.disarm(&say);
        assert!(!w.armed());
        assert_eq!(std::fs::read(&path).expect("read"), b"kkkV");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
