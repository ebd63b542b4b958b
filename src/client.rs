//! The control-socket client used by every operator command.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use understudy_actors::control::protocol::{Command, Request, Response, PROTOCOL_VERSION};

use crate::render;

/// Exit statuses of the operator's commands (README, `understudy --help`).
/// 0 is success; 2 a configuration (or file) that is not valid, nothing
/// changed.
pub mod exit {
    /// The daemon refused the command, or the operation failed.
    pub const FAILED: u8 = 1;
    /// The configuration or file given is not valid; nothing was changed.
    pub const BAD_CONFIG: u8 = 2;
    /// A command that asks for confirmation did not get it.
    pub const NOT_CONFIRMED: u8 = 3;
    /// Not allowed: root or the admin group only (the socket or the daemon
    /// said so).
    pub const DENIED: u8 = 4;
    /// No daemon listens on the socket.
    pub const NOT_RUNNING: u8 = 5;
    /// The daemon did not answer within the client timeout (`--timeout`);
    /// an operation it had begun may still complete.
    pub const NO_ANSWER: u8 = 6;
}

pub use exit::NOT_CONFIRMED;

/// The exit status table, as `understudy --help` prints it.
pub const EXIT_STATUS_HELP: &str = "Exit status of the operator commands:\n  \
    0  success\n  \
    1  the daemon refused the command, or the operation failed\n  \
    2  the configuration or file given is not valid (nothing changed)\n  \
    3  not confirmed (no --yes, and no terminal to ask)\n  \
    4  permission denied: root or the socket's admin group only\n  \
    5  the daemon is not running (nothing listens on the socket)\n  \
    6  no answer within --timeout (an operation begun may still complete)";

/// How long a command waits for the daemon's answer: `--timeout`, or the
/// default of its kind (0: no limit).
static TIMEOUT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// Default wait for commands that only read (status, alerts...), seconds.
pub const READ_TIMEOUT_SECS: u64 = 30;
/// Default wait for commands that carry out operations (a group start may
/// run scripts for minutes), seconds.
pub const OPERATION_TIMEOUT_SECS: u64 = 900;

/// Sets the client timeout of this process (`--timeout SECS`).
pub fn set_timeout(secs: Option<u64>) {
    let _ = TIMEOUT.set(secs);
}

fn timeout_for(command: &Command) -> Option<std::time::Duration> {
    let secs = TIMEOUT
        .get()
        .copied()
        .flatten()
        .unwrap_or(if command.is_mutating() {
            OPERATION_TIMEOUT_SECS
        } else {
            READ_TIMEOUT_SECS
        });
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// The wait `--timeout` gave, else `default_secs`; 0 is no limit.
pub fn timeout_or(default_secs: u64) -> Option<std::time::Duration> {
    let secs = TIMEOUT.get().copied().flatten().unwrap_or(default_secs);
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// Why the daemon could not be asked: a one-line explanation and the exit
/// status for it.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: String) -> Failure {
        Failure { code, message }
    }
}

/// Sends one command and returns the daemon's response, or why the daemon
/// could not be asked.
pub fn request(socket: &Path, command: Command) -> Result<Response, Failure> {
    let timeout = timeout_for(&command);
    request_within(socket, command, timeout)
}

/// [`request`] with this wait for each read or write instead of the
/// client timeout (`None`: no limit).
pub fn request_within(
    socket: &Path,
    command: Command,
    timeout: Option<std::time::Duration>,
) -> Result<Response, Failure> {
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => Failure::new(exit::NOT_RUNNING, format!(
            "the understudy daemon is not running (nothing listens on {}; start it with `systemctl start understudy` or `understudy run [--config FILE]`)",
            socket.display()
        )),
        ErrorKind::PermissionDenied => Failure::new(exit::DENIED, format!(
            "permission denied on {}: you must be root or in the socket's group to talk to the daemon",
            socket.display()
        )),
        _ => Failure::new(exit::FAILED, format!("cannot connect to {}: {e}", socket.display())),
    })?;
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let no_answer = |e: &std::io::Error| {
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut).then(|| {
            Failure::new(
                exit::NO_ANSWER,
                format!(
                    "no answer from the daemon within {} s (--timeout; 0 waits for ever); what it had begun may still complete: see `understudy status`",
                    timeout.map_or(0, |t| t.as_secs())
                ),
            )
        })
    };
    let mut line = serde_json::to_vec(&Request {
        version: PROTOCOL_VERSION,
        command,
    })
    .map_err(|e| Failure::new(exit::FAILED, format!("cannot encode the request: {e}")))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| {
        no_answer(&e).unwrap_or_else(|| {
            Failure::new(exit::FAILED, format!("sending to the daemon failed: {e}"))
        })
    })?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).map_err(|e| {
        no_answer(&e).unwrap_or_else(|| {
            Failure::new(
                exit::FAILED,
                format!("reading the daemon's answer failed: {e}"),
            )
        })
    })?;
    if reply.is_empty() {
        return Err(Failure::new(
            exit::FAILED,
            "the daemon closed the connection without answering (is it stopping?)".into(),
        ));
    }
    serde_json::from_str(&reply).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("the daemon's answer is not understood ({e}); is it another version?"),
        )
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("understudy: {message}");
    ExitCode::from(exit::FAILED)
}

/// Prints why the daemon could not be asked; its exit status.
pub fn failed(f: Failure) -> ExitCode {
    eprintln!("understudy: {}", f.message);
    ExitCode::from(f.code)
}

/// Prints an error or denial and returns the exit code for it.
fn unexpected(resp: Response) -> ExitCode {
    match resp {
        Response::Error { message } => fail(&message),
        Response::Denied { message } => {
            eprintln!("understudy: {message}");
            ExitCode::from(exit::DENIED)
        }
        other => fail(&format!("unexpected answer from the daemon: {other:?}")),
    }
}

pub fn status(socket: &Path, json: bool) -> ExitCode {
    match request(socket, Command::Status) {
        Ok(Response::Status { status }) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            } else {
                print!("{}", render::status(&status));
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(e) => failed(e),
    }
}

pub fn alerts(socket: &Path, count: usize, json: bool) -> ExitCode {
    match request(socket, Command::Alerts { count }) {
        Ok(Response::Alerts { alerts }) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&alerts).unwrap_or_default()
                );
            } else {
                for a in &alerts {
                    println!("{}", render::alert(a));
                }
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(e) => failed(e),
    }
}

/// A command whose answer is a sentence.
pub fn command(socket: &Path, command: Command) -> ExitCode {
    match request(socket, command) {
        Ok(Response::Done { message }) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(e) => failed(e),
    }
}

/// The question `server confirm-down NAME` asks on the terminal.
fn confirm_down_question(server: &str) -> String {
    format!(
        "Confirm that server {server} is off (powered off, or its cluster service and every resource of its groups stopped)?\n\
         The other servers then take its groups over at once, without waiting for its lease or a forced stop.\n\
         If {server} still runs (cut off, frozen), its groups will run on two servers at once.\n\
         Confirm {server} down? [y/N] "
    )
}

/// Whether an answer to a [y/N] question is yes.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Unless `yes`, asks `question` on the terminal; `None` once confirmed,
/// else the exit status ([`NOT_CONFIRMED`]: answered no, or no terminal to
/// ask, in which case `hint` says how to confirm).
fn confirmation(question: &str, what: &str, hint: &str, yes: bool) -> Option<ExitCode> {
    use std::io::IsTerminal;
    if yes {
        return None;
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!(
            "understudy: {what} asks for confirmation, and stdin is not a terminal: nothing was done ({hint})"
        );
        return Some(ExitCode::from(NOT_CONFIRMED));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if stdin.lock().read_line(&mut answer).is_err() || !is_yes(&answer) {
        eprintln!("understudy: not confirmed: nothing was done");
        return Some(ExitCode::from(NOT_CONFIRMED));
    }
    None
}

/// `server confirm-down NAME [--yes]`: asks on the terminal first unless
/// `yes`; without a terminal to ask, refuses (exit [`NOT_CONFIRMED`]).
pub fn confirm_down(socket: &Path, server: String, yes: bool) -> ExitCode {
    let hint = format!("give --yes once you have checked that {server} is off");
    if let Some(refused) = confirmation(
        &confirm_down_question(&server),
        &format!("server confirm-down {server}"),
        &hint,
        yes,
    ) {
        return refused;
    }
    command(socket, Command::ServerConfirmDown { server })
}

/// The question before a command that takes servers down.
fn shutdown_question(whole_cluster: bool, reboot: bool) -> String {
    let (whom, os) = match (whole_cluster, reboot) {
        (true, false) => ("every server of the cluster", "and shut down their OS"),
        (true, true) => ("every server of the cluster", "and reboot their OS"),
        (false, false) => ("this server", "and shut down its OS"),
        (false, true) => ("this server", "and reboot its OS"),
    };
    let groups = if whole_cluster {
        "Every group stops: nothing runs until the servers are back."
    } else {
        "Its groups move to the next server of their order."
    };
    format!("Stop the cluster service on {whom} {os}?\n{groups}\nGo ahead? [y/N] ")
}

/// `cluster shutdown` / `server shutdown` [`--reboot`] [`--yes`]: asks on
/// the terminal first unless `yes`.
pub fn shutdown(socket: &Path, whole_cluster: bool, reboot: bool, yes: bool) -> ExitCode {
    let what = format!(
        "{} shutdown{}",
        if whole_cluster { "cluster" } else { "server" },
        if reboot { " --reboot" } else { "" }
    );
    if let Some(refused) = confirmation(
        &shutdown_question(whole_cluster, reboot),
        &what,
        "give --yes to go ahead without a question",
        yes,
    ) {
        return refused;
    }
    command(
        socket,
        if whole_cluster {
            Command::ClusterShutdown { reboot }
        } else {
            Command::ServerShutdown { reboot }
        },
    )
}

/// Runs `command` and writes its answer to `file` (mode 0600: it may hold
/// secrets such as a mail password).
pub fn export(socket: &Path, command: Command, file: &Path) -> ExitCode {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match request(socket, command) {
        Ok(Response::Done { message }) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(file)
                .and_then(|mut f| f.write_all(format!("{message}\n").as_bytes()));
            match written {
                Ok(()) => {
                    println!("written to {}", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{}: {e}", file.display())),
            }
        }
        Ok(other) => unexpected(other),
        Err(e) => failed(e),
    }
}

/// `monitor suspend|resume`: names, or `--all` (never nothing at all).
pub fn monitors(
    socket: &Path,
    names: Vec<String>,
    all: bool,
    make: impl FnOnce(Vec<String>) -> Command,
) -> ExitCode {
    if names.is_empty() && !all {
        return fail("name the monitors, or give --all for every monitor");
    }
    command(socket, make(names))
}

pub fn monitor_stats(socket: &Path, json: bool, reset: bool) -> ExitCode {
    match request(socket, Command::MonitorStats { reset }) {
        Ok(Response::MonitorStats { stats }) => {
            if json {
                println!("{}", serde_json::to_string(&stats).unwrap_or_default());
            } else {
                println!(
                    "checks {}    late p50 {} us    p99 {} us    max {} us",
                    stats.checks, stats.late_p50_us, stats.late_p99_us, stats.late_max_us
                );
                println!(
                    "heartbeats {}    late p50 {} us    p99 {} us    max {} us",
                    stats.beats,
                    stats.beat_late_p50_us,
                    stats.beat_late_p99_us,
                    stats.beat_late_max_us
                );
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y", "Y", "yes", "YES\n", "  yes \n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "ye", "yes please", "s1"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn the_shutdown_questions_say_whom_they_take_down() {
        let q = shutdown_question(true, false);
        assert!(q.contains("every server") && q.contains("shut down"), "{q}");
        let q = shutdown_question(false, true);
        assert!(q.contains("this server") && q.contains("reboot"), "{q}");
        assert!(q.ends_with("[y/N] "), "{q}");
    }

    #[test]
    fn the_confirm_down_question_says_what_a_wrong_answer_costs() {
        let q = confirm_down_question("n1");
        assert!(q.contains("server n1 is off"), "{q}");
        assert!(q.contains("run on two servers at once"), "{q}");
        assert!(q.ends_with("[y/N] "), "{q}");
    }
}
