//! The control-socket client used by every operator command.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use understudy_actors::control::protocol::{Command, Request, Response, PROTOCOL_VERSION};

use crate::render;

/// Sends one command and returns the daemon's response, or a one-line
/// explanation of why the daemon could not be asked.
pub fn request(socket: &Path, command: Command) -> Result<Response, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => format!(
            "the understudy daemon is not running (nothing listens on {}; start it with `understudy run --config FILE`)",
            socket.display()
        ),
        ErrorKind::PermissionDenied => format!(
            "permission denied on {}: you must be root or in the socket's group to talk to the daemon",
            socket.display()
        ),
        _ => format!("cannot connect to {}: {e}", socket.display()),
    })?;
    let mut line = serde_json::to_vec(&Request {
        version: PROTOCOL_VERSION,
        command,
    })
    .map_err(|e| format!("cannot encode the request: {e}"))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("sending to the daemon failed: {e}"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| format!("reading the daemon's answer failed: {e}"))?;
    if reply.is_empty() {
        return Err("the daemon closed the connection without answering (is it stopping?)".into());
    }
    serde_json::from_str(&reply)
        .map_err(|e| format!("the daemon's answer is not understood ({e}); is it another version?"))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("understudy: {message}");
    ExitCode::FAILURE
}

/// Prints an error or denial and returns the exit code for it.
fn unexpected(resp: Response) -> ExitCode {
    match resp {
        Response::Error { message } => fail(&message),
        Response::Denied { message } => {
            eprintln!("understudy: {message}");
            ExitCode::from(4)
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
        Err(e) => fail(&e),
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
        Err(e) => fail(&e),
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
        Err(e) => fail(&e),
    }
}

/// Exit status of a command that needs the operator's confirmation and did
/// not get it (answered no, or no terminal to ask and no `--yes`): nothing
/// was done.
pub const NOT_CONFIRMED: u8 = 3;

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

/// `server confirm-down NAME [--yes]`: asks on the terminal first unless
/// `yes`; without a terminal to ask, refuses (exit [`NOT_CONFIRMED`]).
pub fn confirm_down(socket: &Path, server: String, yes: bool) -> ExitCode {
    use std::io::IsTerminal;
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            eprintln!(
                "understudy: server confirm-down {server} asks for confirmation, and stdin is not a terminal: nothing was done (give --yes once you have checked that {server} is off)"
            );
            return ExitCode::from(NOT_CONFIRMED);
        }
        eprint!("{}", confirm_down_question(&server));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if stdin.lock().read_line(&mut answer).is_err() || !is_yes(&answer) {
            eprintln!("understudy: not confirmed: nothing was done");
            return ExitCode::from(NOT_CONFIRMED);
        }
    }
    command(socket, Command::ServerConfirmDown { server })
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
        Err(e) => fail(&e),
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
        Err(e) => fail(&e),
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
    fn the_confirm_down_question_says_what_a_wrong_answer_costs() {
        let q = confirm_down_question("n1");
        assert!(q.contains("server n1 is off"), "{q}");
        assert!(q.contains("run on two servers at once"), "{q}");
        assert!(q.ends_with("[y/N] "), "{q}");
    }
}
