//! The guardian: `understudy run` starts the real daemon as a child process
//! (the same binary, the same arguments) and stays as its parent, so that a
//! daemon that dies leaves nothing behind.
//!
//! - Signals: SIGTERM, SIGINT and SIGHUP sent to the guardian are passed on
//!   to the daemon; the guardian itself only waits (`sigwait`, the signals
//!   blocked, so none is lost between two waits).
//! - An orderly end (exit status 0 after the cluster service stopped, 1 or 2
//!   for a daemon that could not start) is passed on as the guardian's own
//!   exit status; nothing else happens.
//! - Any other end (killed by a signal, the watchdog's exit status 70, a
//!   panic's 101, ...) is a death: the guardian releases everything the
//!   ownership records name (floating IPs first, then process groups, then
//!   the filesystems of disk resources, see [`owned::release`]), records `pm 1200` in the alert log, carries out
//!   `guardian.action` (a shutdown or reboot after the release) and exits
//!   non-zero (the daemon's status, or 128 + signal) so that a service
//!   manager restarts it.
//!
//! - `guardian.watchdog`: a watchdog device kept alive while the daemon
//!   holds groups under a partition lease, up to its fence deadline (see
//!   [`crate::watchdog`]); a guardian that stalls or dies too is reset by it.
//! - systemd (`Type=notify`, `WatchdogSec=`): the guardian is the unit's
//!   main process and the only one that talks to systemd (see
//!   [`crate::systemd`]): it passes the daemon's `READY=1`, `STATUS=` and
//!   `STOPPING=1` on, and sends `WATCHDOG=1` on the daemon's progress
//!   beats. SIGABRT (systemd's `WatchdogSignal`: the beats stopped) is no
//!   signal to pass on: the guardian kills the daemon and releases what it
//!   held, as after a death.
//!
//! The daemon runs with `UNDERSTUDY_GUARDED=<guardian pid>` and
//! `UNDERSTUDY_INCARNATION=<µs since the epoch at the guardian's start>` in
//! its environment ([`enter_daemon`] takes both out again, so scripts do not
//! inherit them). It asks the kernel for SIGTERM when the guardian dies:
//! an unguarded daemon stops the cluster service in order rather than run on
//! with nobody to clean up after it.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use std::os::fd::{AsFd, AsRawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use understudy_actors::fence;
use understudy_actors::model::catalog::{Event, Level};
use understudy_actors::model::config::{ClusterConfig, GuardianAction, GuardianConfig, OsActions};
use understudy_actors::monitor::userspace::{run_os_command, OS_ACTION_WAIT};
use understudy_actors::notify::alert_log::{now_rfc3339, AlertLog, DEFAULT_MAX_BYTES};
use understudy_actors::resource::exec::driver::describe_status;
use understudy_actors::resource::owned;
use understudy_actors::wire::key::ClusterKey;

use crate::config_check;
use crate::logging::Priority;
use crate::systemd::ServiceManager;
use crate::watchdog::Watchdog;

/// Set in the daemon's environment: the guardian's pid. Its presence makes
/// `understudy run` run the daemon itself.
pub const GUARDED_ENV: &str = "UNDERSTUDY_GUARDED";
/// Set in the daemon's environment: the incarnation it is to use.
pub const INCARNATION_ENV: &str = "UNDERSTUDY_INCARNATION";

/// Exit statuses of the daemon that are an orderly end: stopped (0), could
/// not start (1), configuration problems (2). Anything else is a death.
const ORDERLY_EXITS: [i32; 3] = [0, 1, 2];

static INCARNATION: OnceLock<u64> = OnceLock::new();

/// The incarnation of this daemon: the guardian's start time in
/// microseconds since the UNIX epoch, or this process's own clock when it
/// runs without a guardian. The same for the whole life of the process.
pub fn incarnation() -> u64 {
    *INCARNATION.get_or_init(|| {
        std::env::var(INCARNATION_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(now_micros)
    })
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The file in the state folder that keeps the last incarnation used.
const INCARNATION_FILE: &str = "incarnation";

/// The incarnation of a daemon starting now: the clock in microseconds, but
/// always larger than the last one used on this server (kept in
/// STATE/incarnation), so that a daemon started after the clock was stepped
/// back is not taken for a replay of its predecessor by every peer. Written
/// before the daemon starts; when the state folder cannot be written the
/// clock alone is used (and said so).
pub fn next_incarnation(state_dir: &Path, now: u64) -> u64 {
    let file = state_dir.join(INCARNATION_FILE);
    let last = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let next = now.max(last.saturating_add(1));
    let written = std::fs::create_dir_all(state_dir).and_then(|()| {
        understudy_actors::atomic_file::write_atomically(
            &file,
            format!("{next}\n").as_bytes(),
            0o644,
        )
    });
    if let Err(e) = written {
        say_at(
            Priority::Warning,
            &format!(
                "cannot keep the incarnation in {}: {e}; using the clock alone",
                file.display()
            ),
        );
    }
    next
}

/// Whether this process is the daemon started by a guardian.
pub fn is_daemon_process() -> bool {
    std::env::var_os(GUARDED_ENV).is_some()
}

/// First thing the daemon does: takes the incarnation and the guardian's
/// pid from the environment (and out of it), and arranges to get SIGTERM
/// when the guardian dies. Fails when the guardian is already gone.
pub fn enter_daemon() -> Result<(), String> {
    // The guardian blocks the signals it waits for, and a child inherits its
    // parent's mask: the daemon (and every script it runs) starts with none
    // blocked.
    SigSet::empty()
        .thread_set_mask()
        .map_err(|e| format!("cannot unblock signals: {e}"))?;
    let guardian = std::env::var(GUARDED_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|pid| *pid > 1);
    incarnation();
    fence::take_from_env()?;
    crate::systemd::take_from_env()?;
    // Still one thread here, so changing the environment is sound.
    std::env::remove_var(GUARDED_ENV);
    std::env::remove_var(INCARNATION_ENV);
    if let Some(pid) = guardian {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
            .map_err(|e| format!("cannot ask for a signal at the guardian's death: {e}"))?;
        // Set after the fork: the guardian may have died in between.
        if nix::unistd::getppid().as_raw() != pid {
            return Err(format!("the guardian (pid {pid}) has already gone"));
        }
    }
    Ok(())
}

/// Run by the daemon once its alert log is open and its ownership records
/// are set ([`owned::init`]), before the coordinator starts: whatever an
/// earlier run left behind (it died without its guardian, or with it) is
/// released, and what was done goes to the log and to the alert log.
pub fn startup_cleanup(alert_log: &mut AlertLog, server: &str) {
    tracing::info!(
        pid = std::process::id(),
        incarnation = incarnation(),
        "cluster daemon starting"
    );
    let Some(dir) = owned::folder() else { return };
    let released = owned::release(dir);
    for line in &released.lines {
        tracing::warn!("startup cleanup: {line}");
    }
    for e in &released.errors {
        tracing::error!("startup cleanup: {e}");
    }
    if !released.addresses.is_empty()
        || !released.groups.is_empty()
        || !released.mounts.is_empty()
        || !released.agents.is_empty()
    {
        alert_log.record(
            Event::LeftoversReleased {
                addresses: released.addresses.clone(),
                groups: released.groups.clone(),
                filesystems: released.mounts.clone(),
                agents: released.agents.clone(),
            }
            .to_alert(now_rfc3339(), server),
        );
    }
    if !released.errors.is_empty() {
        alert_log.record(
            Event::ReleaseFailed {
                errors: released.errors,
            }
            .to_alert(now_rfc3339(), server),
        );
    }
}

/// To stderr (with its priority in the journal, see [`crate::logging`]),
/// ignoring write errors: a closed or broken stderr (a journal restarted
/// meanwhile) must not stop the guardian halfway (`eprintln!` would panic).
fn say_at(priority: Priority, message: &str) {
    crate::logging::line(priority, &format!("understudy guardian: {message}"));
}

/// A notice: what the guardian does.
fn say(message: &str) {
    say_at(Priority::Notice, message);
}

/// An error: what went wrong.
fn say_err(message: &str) {
    say_at(Priority::Err, message);
}

/// `understudy run` as the guardian (see the module documentation).
/// `socket`: the control socket, handed to the daemon (and through it to
/// every script it runs) as `UNDERSTUDY_SOCKET`, so that commands run by
/// scripts (`clp_httpmon`, ...) reach this daemon.
pub fn run(
    config_path: &Path,
    server: Option<String>,
    state_dir: &Path,
    socket: &Path,
) -> ExitCode {
    // Read for `guardian` and `os_actions` only. A configuration that does
    // not load is the daemon's to report (it exits 2); the defaults then
    // never shut anything down.
    let config = config_check::load(config_path).ok();
    let (guardian, os_actions) = match &config {
        Some(c) => (c.guardian.clone(), c.os_actions.clone()),
        None => (GuardianConfig::default(), OsActions::default()),
    };
    let server = server.unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    });

    let mut waited = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
        Signal::SIGABRT,
    ] {
        waited.add(s);
    }
    // SAFETY: installing the default disposition runs no code of ours. An
    // inherited "ignore" would make the kernel reap the daemon for us, and
    // its exit status would be lost.
    if let Err(e) = unsafe { signal::signal(Signal::SIGCHLD, SigHandler::SigDfl) } {
        say_err(&format!("cannot reset SIGCHLD: {e}"));
        return ExitCode::FAILURE;
    }
    // Blocked before the fork, so that no signal can come before the wait.
    // The child inherits the mask and clears it first thing (`enter_daemon`).
    if let Err(e) = waited.thread_block() {
        say_err(&format!("cannot block signals: {e}"));
        return ExitCode::FAILURE;
    }

    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            say_err(&format!("cannot find my own executable: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let incarnation = next_incarnation(state_dir, now_micros());
    // The watchdog's pipe: the daemon writes its fence deadlines to it (see
    // `understudy_actors::fence`). The read end stays here (closed on exec);
    // the write end is the daemon's alone.
    let (fence_rd, fence_wr) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => {
            say_err(&format!("cannot create the watchdog pipe: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let _ = fcntl(&fence_rd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    let _ = fcntl(&fence_rd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    // systemd, when it started us: the daemon's messages come through a
    // pipe of their own; the variables systemd set stay here.
    let mut manager = match ServiceManager::from_env() {
        Ok(m) => m,
        Err(e) => {
            say_err(&e);
            return ExitCode::FAILURE;
        }
    };
    let socket = std::path::absolute(socket).unwrap_or_else(|_| socket.to_path_buf());
    let mut command = Command::new(&exe);
    command
        .args(std::env::args_os().skip(1))
        .env("UNDERSTUDY_SOCKET", &socket)
        .env(GUARDED_ENV, std::process::id().to_string())
        .env(INCARNATION_ENV, incarnation.to_string())
        .env(fence::FENCE_FD_ENV, fence_wr.as_raw_fd().to_string());
    ServiceManager::prepare(manager.as_ref(), &mut command);
    let spawned = command.spawn();
    // Only the daemon holds the write ends: its end (exit, death) is then
    // the end of the pipes.
    drop(fence_wr);
    drop(command);
    if let Some(m) = manager.as_mut() {
        m.spawned();
    }
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            say_err(&format!(
                "cannot start the cluster daemon ({}): {e}",
                exe.display()
            ));
            return ExitCode::FAILURE;
        }
    };
    let pid = child.id();

    let mut watchdog = guardian.watchdog.clone().map(Watchdog::new);
    let (status, killed, deadline) = match watch(
        &mut child,
        &waited,
        fence_rd,
        &mut watchdog,
        manager.as_mut(),
    ) {
        Ok(end) => end,
        Err(e) => {
            say_err(&e);
            return ExitCode::FAILURE;
        }
    };
    // What the daemon told before it ended.
    if let Some(m) = manager.as_mut() {
        m.read_pipe();
    }

    match status.code() {
        Some(code) if ORDERLY_EXITS.contains(&code) && killed.is_none() => {
            // It stopped its groups before it ended.
            if let Some(w) = watchdog.as_mut() {
                w.disarm(&say_at);
            }
            ExitCode::from(code as u8)
        }
        _ => after_death(
            Death {
                pid,
                status,
                state_dir,
                server: &server,
                incarnation,
                config: config.as_ref().map(|c| (c, config_path)),
                killed,
                deadline,
            },
            guardian.action,
            &os_actions,
            &waited,
            watchdog,
            manager,
        ),
    }
}

/// Why the guardian ended its daemon itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    /// It missed its fence deadline while it held groups.
    Fence,
    /// SIGABRT: systemd's watchdog ran out (its progress beats stopped),
    /// or someone asked the guardian to abort.
    Abort,
}

/// Waits for the daemon's end, passing the signals on, and watches its
/// fence deadline: a daemon that has not moved it on by then (frozen,
/// stalled) while it holds groups is killed. The end, whether the guardian
/// killed it (and why), and the last fence deadline (boot-time ms; 0:
/// none). The watchdog device, if any, is kept alive up to the deadline;
/// the service manager, if any, hears of each progress beat and gets the
/// daemon's messages.
fn watch(
    child: &mut std::process::Child,
    waited: &SigSet,
    fence_rd: std::os::fd::OwnedFd,
    watchdog: &mut Option<Watchdog>,
    mut manager: Option<&mut ServiceManager>,
) -> Result<(ExitStatus, Option<Killed>, u64), String> {
    let pid = Pid::from_raw(child.id() as i32);
    let signals = SignalFd::with_flags(waited, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    let mut pipe = Some(fence_rd);
    // Boot-time ms; 0: nothing to watch. `last`: the last one the daemon
    // gave, kept after its end for the release.
    let mut deadline: u64 = 0;
    let mut last: u64 = 0;
    let kill = |child: &mut std::process::Child, why: Killed, last: u64| {
        let _ = signal::kill(pid, Signal::SIGKILL);
        child
            .wait()
            .map(|s| (s, Some(why), last))
            .map_err(|e| format!("cannot wait for the daemon: {e}"))
    };
    loop {
        let now = understudy_actors::heartbeat::boottime().as_millis() as u64;
        if deadline != 0 && now >= deadline {
            say_err(&format!(
                "the cluster daemon (pid {pid}) did not renew its lease in time (frozen or stalled) while holding groups: killing it"
            ));
            return kill(child, Killed::Fence, last);
        }
        let wake = match watchdog.as_mut() {
            Some(w) => w.tend(now, deadline, &say_at),
            None => 0,
        };
        let until = [deadline, wake].into_iter().filter(|t| *t != 0).min();
        let timeout = match until {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(t.saturating_sub(now)).unwrap_or(PollTimeout::MAX),
        };
        let (sig_ready, pipe_ready, notify_ready) = {
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let fence_at = pipe.as_ref().map(|p| {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let notify_at = manager.as_ref().and_then(|m| m.pipe_fd()).map(|fd| {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("cannot wait for the daemon: {e}")),
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds.get(i))
                    .is_some_and(|f: &PollFd| f.revents().is_some_and(|r| !r.is_empty()))
            };
            (ready(Some(0)), ready(fence_at), ready(notify_at))
        };
        if notify_ready {
            if let Some(m) = manager.as_mut() {
                m.read_pipe();
            }
        }
        if pipe_ready {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(pipe.as_ref().expect("polled"), &mut buf) {
                // The daemon closed it: it is ending; nothing to watch.
                Ok(0) => {
                    pipe = None;
                    deadline = 0;
                }
                Ok(n) => {
                    // Whole records only (each is written at once); the last
                    // one is the deadline now.
                    let whole = n - n % 8;
                    if whole >= 8 {
                        let mut rec = [0u8; 8];
                        rec.copy_from_slice(&buf[whole - 8..whole]);
                        deadline = u64::from_ne_bytes(rec);
                        if deadline != 0 {
                            last = deadline;
                        } else if let Some(w) = watchdog.as_mut() {
                            // The daemon holds nothing any more.
                            w.disarm(&say_at);
                        }
                        // Any record is a sign of the daemon's progress.
                        if let Some(m) = manager.as_mut() {
                            m.beat(understudy_actors::heartbeat::boottime().as_millis() as u64);
                        }
                    }
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    say_err(&format!("watchdog pipe: {e}"));
                    pipe = None;
                }
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGABRT) => {
                        say_err(&format!(
                            "SIGABRT (the service manager's watchdog: no progress from the cluster daemon in time): killing the daemon (pid {pid})"
                        ));
                        return kill(child, Killed::Abort, last);
                    }
                    Ok(sig) => {
                        let _ = signal::kill(pid, sig);
                    }
                    Err(_) => {}
                }
            }
            match child.try_wait() {
                Ok(Some(status)) => return Ok((status, None, last)),
                Ok(None) => {}
                Err(e) => say_err(&format!("cannot check on the daemon: {e}")),
            }
        }
    }
}

/// Who died, how, and where its state is.
struct Death<'a> {
    pid: u32,
    status: ExitStatus,
    state_dir: &'a Path,
    server: &'a str,
    incarnation: u64,
    /// The configuration and its file, when it loaded.
    config: Option<(&'a ClusterConfig, &'a Path)>,
    /// Killed by the guardian, and why.
    killed: Option<Killed>,
    /// Its last fence deadline (boot-time ms; 0: none): everything must be
    /// released by then, since the others may take over soon after.
    deadline: u64,
}

/// Sends the authenticated "daemon died" notice on every heartbeat path.
fn tell_peers(config: &ClusterConfig, config_path: &Path, server: &str, incarnation: u64) {
    if config.servers.len() < 2 {
        return;
    }
    let Some(key_file) = &config.heartbeat.key_file else {
        return;
    };
    let path = config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(key_file);
    match ClusterKey::load(&path) {
        Ok(key) => {
            for e in understudy_actors::heartbeat::announce_departure(
                config,
                server,
                incarnation,
                &key,
                true,
            ) {
                say_at(
                    Priority::Warning,
                    &format!("cannot tell the other servers: {e}"),
                );
            }
        }
        Err(e) => say_at(
            Priority::Warning,
            &format!("cannot tell the other servers: {e}"),
        ),
    }
}

/// The daemon died: release, tell, act, exit non-zero.
fn after_death(
    death: Death,
    action: GuardianAction,
    os_actions: &OsActions,
    waited: &SigSet,
    mut watchdog: Option<Watchdog>,
    mut manager: Option<ServiceManager>,
) -> ExitCode {
    let Death {
        pid,
        status,
        state_dir,
        server,
        incarnation,
        config,
        killed,
        deadline,
    } = death;
    let cause = match killed {
        Some(Killed::Fence) => format!(
            "its lease ran out while it held groups (frozen or stalled), so its guardian ended it: {}",
            describe_status(status)
        ),
        Some(Killed::Abort) => format!(
            "it made no progress in time for the service manager's watchdog (SIGABRT to its guardian), so its guardian ended it: {}",
            describe_status(status)
        ),
        None => describe_status(status),
    };
    say_err(&format!(
        "the cluster daemon (pid {pid}) died ({cause}); releasing what it held"
    ));
    if let Some(m) = manager.as_mut() {
        m.status(&format!(
            "{server}: the cluster daemon died; releasing what it held"
        ));
    }
    // The other servers take the groups over at once on this notice, not
    // after the heartbeat timeout (and a lease): told only once every
    // address is gone and every process group has ended. When something
    // could not be released, they are not told: they then treat this
    // server as silent (lease, forced stop) rather than as surely empty.
    // Processes get their SIGTERM grace, but never past the fence deadline:
    // after it, a majority may take the groups over without any notice.
    let grace = if deadline == 0 {
        owned::RELEASE_GRACE
    } else {
        let now = understudy_actors::heartbeat::boottime().as_millis() as u64;
        std::time::Duration::from_millis(deadline.saturating_sub(now))
    };
    let release = || {
        owned::release_with(&state_dir.join("owned"), grace, |r| {
            if !r.errors.is_empty() {
                say_at(
                    Priority::Warning,
                    "not telling the other servers: not everything could be released",
                );
                return;
            }
            if let Some((config, config_path)) = config {
                tell_peers(config, config_path, server, incarnation);
            }
        })
    };
    // The watchdog is kept alive through the release, up to the deadline
    // and no further; disarmed once everything is released. Should the
    // release fail, it is left to reset the server.
    let released = match watchdog.as_mut().filter(|w| w.armed()) {
        None => release(),
        Some(w) => {
            let done = std::sync::atomic::AtomicBool::new(false);
            let released = std::thread::scope(|scope| {
                scope.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        let now = understudy_actors::heartbeat::boottime().as_millis() as u64;
                        let wake = w.tend(now, deadline, &say_at);
                        if wake == 0 || now >= deadline {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(
                            wake.saturating_sub(now).clamp(1, 20),
                        ));
                    }
                });
                let r = release();
                done.store(true, std::sync::atomic::Ordering::Release);
                r
            });
            if released.errors.is_empty() {
                w.disarm(&say_at);
            } else {
                say_err(
                    "not everything could be released: the watchdog is left to reset this server",
                );
            }
            released
        }
    };
    for line in &released.lines {
        say(line);
    }
    for e in &released.errors {
        say_err(&format!("error: {e}"));
    }
    if let Some(m) = manager.as_mut() {
        m.status(&if released.errors.is_empty() {
            format!("{server}: the cluster daemon died; its guardian released what it held")
        } else {
            format!("{server}: the cluster daemon died; not everything it held could be released")
        });
    }

    let mut log = match AlertLog::open(state_dir, DEFAULT_MAX_BYTES) {
        Ok(log) => Some(log),
        Err(e) => {
            say_err(&format!(
                "cannot open the alert log in {}: {e}",
                state_dir.display()
            ));
            None
        }
    };
    let mut alert = |event: Event| {
        let priority = match event.id().2 {
            Level::Info => Priority::Notice,
            Level::Warning => Priority::Warning,
            Level::Error => Priority::Err,
        };
        say_at(priority, &event.message());
        if let Some(log) = log.as_mut() {
            log.record(event.to_alert(now_rfc3339(), server));
        }
    };
    alert(Event::DaemonDied {
        cause,
        addresses: released.addresses.len(),
        groups: released.groups.len(),
        filesystems: released.mounts.len(),
        agents: released.agents.len(),
    });
    if !released.errors.is_empty() {
        alert(Event::ReleaseFailed {
            errors: released.errors,
        });
    }
    let os = match action {
        GuardianAction::ReleaseResources => None,
        GuardianAction::ShutdownOs => {
            Some(("shut down", &os_actions.shutdown, Event::SystemWillShutDown))
        }
        GuardianAction::RebootOs => Some(("reboot", &os_actions.reboot, Event::SystemWillReboot)),
    };
    if let Some((what, argv, event)) = os {
        // Recorded (and synced) before the command can take the server down.
        alert(event);
        // The command must not inherit the blocked signals; the release is
        // done, so a SIGTERM may end the guardian from here on. SIGABRT
        // stays blocked: systemd's watchdog, which has seen no keepalive
        // since the death, must not abort the guardian in the middle of
        // its OS action (the release it would ask for is done).
        let mut unblock = *waited;
        unblock.remove(Signal::SIGABRT);
        let _ = unblock.thread_unblock();
        if let Err(error) = run_os_command(argv, OS_ACTION_WAIT) {
            alert(Event::OsActionFailed {
                action: what.to_string(),
                error,
            });
        }
    }
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    };
    ExitCode::from(code.clamp(1, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incarnation_grows_even_when_the_clock_goes_back() {
        let dir = std::env::temp_dir().join(format!("us-inc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(next_incarnation(&dir, 5_000), 5_000);
        // The clock was stepped back by an hour.
        assert_eq!(next_incarnation(&dir, 1_000), 5_001);
        assert_eq!(next_incarnation(&dir, 1_000), 5_002);
        // The clock ahead again: it wins.
        assert_eq!(next_incarnation(&dir, 9_000), 9_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
