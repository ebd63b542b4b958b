//! The Internet Server Agent's monitoring commands (seed 002):
//! `clp_httpmon` and `clp_smtpmon`, run as symlinks to the understudy
//! binary (chosen by argv[0]) or as `understudy httpmon` / `understudy
//! smtpmon`.
//!
//! `clp_httpmon ID [options]` watches a daemon until it fails, then exits
//! (status 1), so that an asynchronous exec resource with a pid monitor
//! turns the failure into a failover. `ID --stop [wait]`, `--pause`,
//! `--resume`, `--disp` and `--del` act on the command registered as ID.
//!
//! - `args.rs`: the command line;
//! - `registry.rs`: the identifier registry (survives a kill -9);
//! - `watch.rs`: the checks (the product's http / smtp monitor probes);
//! - `report.rs`: where messages go (stderr, then the alert log or syslog).

mod args;
mod registry;
mod report;
mod watch;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use understudy_actors::model::agent::{AgentKind, AgentMessage};

use args::{Action, ArgError};
use registry::{Entry, Registry};
use report::Reporter;

/// Exit statuses (docs/internet-server-agent.md).
/// The daemon failed its checks: the command ended on its own (message 6).
pub const EXIT_FAILED: u8 = 1;
/// A bad command line (messages 11, 13).
pub const EXIT_USAGE: u8 = 2;
/// The identifier is taken (message 14), not registered, or (`--pause`,
/// `--resume`, `--del`) in a state that does not allow the action.
pub const EXIT_IDENTIFIER: u8 = 3;
/// `--pause`, `--resume`, `--disp`, `--del` without root.
pub const EXIT_DENIED: u8 = 4;
/// `--stop` could not end the command (message 15).
pub const EXIT_STOP_FAILED: u8 = 5;
/// A system call failed (message 42).
pub const EXIT_SYSTEM: u8 = 6;

/// How long `--pause` / `--resume` wait for the command to obey.
const OBEY_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// The command name in argv[0], when it is one of ours.
pub fn invoked_as() -> Option<AgentKind> {
    let arg0 = std::env::args_os().next()?;
    let name = Path::new(&arg0).file_name()?.to_str()?.to_string();
    AgentKind::ALL.into_iter().find(|k| k.command() == name)
}

pub(crate) fn system_error(function: &str, e: &std::io::Error) -> AgentMessage {
    AgentMessage::SystemError {
        function: function.to_string(),
        code: e.raw_os_error().unwrap_or(0),
        detail: e.to_string(),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `clp_httpmon ARGS...` / `clp_smtpmon ARGS...`; `socket` is the
/// daemon's control socket.
pub fn main(kind: AgentKind, args: &[String], socket: &Path) -> ExitCode {
    let mut say = Reporter {
        kind,
        identifier: None,
        socket: socket.to_path_buf(),
    };
    let invocation = match args::parse(kind, args) {
        Ok(i) => i,
        Err(ArgError::NoIdentifier) => {
            say.say(AgentMessage::NoIdentifier);
            return usage(kind);
        }
        Err(ArgError::Invalid { identifier, detail }) => {
            say.identifier = identifier;
            say.say(AgentMessage::InvalidParameter { detail });
            return usage(kind);
        }
    };
    say.identifier = Some(invocation.identifier.clone());
    let registry = Registry::new(registry::dir());
    let id = invocation.identifier.as_str();
    match invocation.action {
        Action::Watch(w) => watch::run(kind, id, w, &say, &registry),
        Action::Stop(wait) => stop(&say, &registry, id, wait),
        other => {
            if !is_root() {
                eprintln!(
                    "{}: permission denied: --pause, --resume, --disp and --del need root",
                    kind.command()
                );
                return ExitCode::from(EXIT_DENIED);
            }
            match other {
                Action::Pause => pause(&say, &registry, id, true),
                Action::Resume => pause(&say, &registry, id, false),
                Action::Disp => disp(&say, &registry, id),
                _ => del(&say, &registry, id),
            }
        }
    }
}

fn usage(kind: AgentKind) -> ExitCode {
    let cmd = kind.command();
    let extra = match kind {
        AgentKind::Http => " [-v 1.0|1.1] [-h URI]",
        AgentKind::Smtp => "",
    };
    eprintln!(
        "usage: {cmd} ID [-s SERVER] [-n PORT] [-i INTERVAL] [-c RETRIES] [-r WAIT]{extra}\n       \
         {cmd} ID --stop [WAIT] | --pause | --resume | --disp | --del"
    );
    ExitCode::from(EXIT_USAGE)
}

/// The entry of `id`; `Err` is the exit status after a message.
fn entry(say: &Reporter, registry: &Registry, id: &str) -> Result<Option<Entry>, ExitCode> {
    registry.read(id).map_err(|e| {
        say.say(system_error(e.function, &e.error));
        ExitCode::from(EXIT_SYSTEM)
    })
}

fn not_registered(say: &Reporter, registry: &Registry, id: &str) -> ExitCode {
    eprintln!(
        "{}: no monitoring command is registered as {id} (in {})",
        say.kind.command(),
        registry.dir().display()
    );
    ExitCode::from(EXIT_IDENTIFIER)
}

fn signal(entry: &Entry, sig: Signal) -> nix::Result<()> {
    kill(Pid::from_raw(entry.pid as i32), sig)
}

/// Polls `done` until it holds or `wait` has passed.
fn poll_until(wait: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + wait;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// `--stop [wait]`: SIGTERM, then wait for the command to end. Nothing
/// registered: the command has ended already (after an error, say), which
/// is success.
fn stop(say: &Reporter, registry: &Registry, id: &str, wait: u32) -> ExitCode {
    let e = match entry(say, registry, id) {
        Ok(Some(e)) => e,
        Ok(None) => {
            println!("{}: {id} is not running", say.kind.command());
            return ExitCode::SUCCESS;
        }
        Err(code) => return code,
    };
    if !e.is_live() {
        say.say(AgentMessage::StopFailed {
            detail: format!(
                "pid {} is no longer the monitoring command (killed?); its entry stays until --del",
                e.pid
            ),
        });
        return ExitCode::from(EXIT_STOP_FAILED);
    }
    if let Err(err) = signal(&e, Signal::SIGTERM) {
        say.say(AgentMessage::StopFailed {
            detail: format!("cannot signal pid {}: {err}", e.pid),
        });
        return ExitCode::from(EXIT_STOP_FAILED);
    }
    let ended = poll_until(Duration::from_secs(wait.into()), || {
        !e.is_live() && !matches!(registry.read(id), Ok(Some(now)) if now.pid == e.pid)
    });
    if ended {
        ExitCode::SUCCESS
    } else {
        say.say(AgentMessage::StopFailed {
            detail: format!("pid {} did not end within {wait} s", e.pid),
        });
        ExitCode::from(EXIT_STOP_FAILED)
    }
}

/// `--pause` / `--resume`: signal, then wait for the registry to show it.
fn pause(say: &Reporter, registry: &Registry, id: &str, on: bool) -> ExitCode {
    let cmd = say.kind.command();
    let e = match entry(say, registry, id) {
        Ok(Some(e)) => e,
        Ok(None) => return not_registered(say, registry, id),
        Err(code) => return code,
    };
    if !e.is_live() {
        eprintln!(
            "{cmd}: {id} is registered to pid {}, which is no longer running; see --disp and --del",
            e.pid
        );
        return ExitCode::from(EXIT_IDENTIFIER);
    }
    let sig = if on { Signal::SIGUSR1 } else { Signal::SIGUSR2 };
    if let Err(err) = signal(&e, sig) {
        eprintln!("{cmd}: cannot signal pid {}: {err}", e.pid);
        return ExitCode::from(EXIT_SYSTEM);
    }
    let obeyed = poll_until(
        OBEY_WAIT,
        || matches!(registry.read(id), Ok(Some(now)) if now.pid == e.pid && now.paused == on),
    );
    let what = if on { "paused" } else { "resumed" };
    if obeyed {
        println!("{cmd}: {id} {what}");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{cmd}: {id} (pid {}) was not {what} within {} s",
            e.pid,
            OBEY_WAIT.as_secs()
        );
        ExitCode::from(EXIT_SYSTEM)
    }
}

/// `--disp`: the registered pid, and whether it still runs.
fn disp(say: &Reporter, registry: &Registry, id: &str) -> ExitCode {
    let e = match entry(say, registry, id) {
        Ok(Some(e)) => e,
        Ok(None) => return not_registered(say, registry, id),
        Err(code) => return code,
    };
    let live = e.is_live();
    println!("identifier  {}", e.identifier);
    println!("pid         {}", e.pid);
    println!("command     {}", e.command);
    println!("target      {}", e.target);
    println!("since       {}", e.since);
    if live {
        println!(
            "state       {}",
            if e.paused { "paused" } else { "monitoring" }
        );
    } else {
        println!(
            "state       stale: pid {} is not this command any more; check with `ps -p {}`, then clear with --del",
            e.pid, e.pid
        );
    }
    ExitCode::SUCCESS
}

/// `--del`: forget a registered identifier whose command is gone. Unlike
/// the product, which lets this break a running command, a live one is
/// refused: `--stop` it.
fn del(say: &Reporter, registry: &Registry, id: &str) -> ExitCode {
    let cmd = say.kind.command();
    let e = match entry(say, registry, id) {
        Ok(Some(e)) => e,
        Ok(None) => return not_registered(say, registry, id),
        Err(code) => return code,
    };
    if e.is_live() {
        eprintln!(
            "{cmd}: {id} belongs to the running command with pid {}: stop it with `{} {id} --stop` instead",
            e.pid, e.command
        );
        return ExitCode::from(EXIT_IDENTIFIER);
    }
    match registry.remove(id) {
        Ok(()) => {
            println!("{cmd}: {id} removed (it was registered to pid {})", e.pid);
            ExitCode::SUCCESS
        }
        Err(err) => {
            say.say(system_error(err.function, &err.error));
            ExitCode::from(EXIT_SYSTEM)
        }
    }
}
