//! `understudy log` and ExpressCluster's `clplogcmd` (a symlink, see
//! `compat.rs`): a message from an operator or a script, with a level, for
//! this server's alert log (through the daemon, module `logcmd`, id 1000)
//! and / or this machine's syslog (written by the command itself). Without
//! `--alert` or `--syslog`, both. See docs/command-names.md.

use std::path::Path;
use std::process::ExitCode;

use understudy_actors::control::protocol::{Command, Response};
use understudy_actors::model::catalog::{user_message, Event, Level};

use crate::client::{self, exit};

/// How long the daemon may take to record the message, unless `--timeout`
/// says otherwise.
const DAEMON_WAIT_SECS: u64 = 30;

pub struct Args {
    pub message: String,
    pub level: Level,
    pub alert: bool,
    pub syslog: bool,
}

/// Writes the message where `args` says. `program` (`clplogcmd` or
/// `understudy`) begins error lines and tags the syslog line.
pub fn run(program: &str, socket: &Path, args: Args) -> ExitCode {
    let text = match user_message(&args.message) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(exit::BAD_CONFIG);
        }
    };
    let (to_alert, to_syslog) = match (args.alert, args.syslog) {
        (false, false) => (true, true),
        both => both,
    };
    let mut code = 0;
    let mut in_syslog = false;
    if to_syslog {
        let event = Event::UserMessage {
            level: args.level,
            text: text.clone(),
        };
        let alert = event.to_alert(
            understudy_actors::notify::alert_log::now_rfc3339(),
            &crate::local_syslog::host(),
        );
        match crate::local_syslog::send(program, &alert) {
            Ok(()) => in_syslog = true,
            Err(e) => {
                eprintln!(
                    "{program}: not written to syslog: {} does not take it ({e}); is a syslog daemon running?",
                    crate::local_syslog::socket().display()
                );
                code = exit::FAILED;
            }
        }
    }
    if to_alert {
        let also = if in_syslog { " (syslog has it)" } else { "" };
        let answer = client::request_within(
            socket,
            Command::Log {
                level: args.level,
                message: text,
            },
            client::timeout_or(DAEMON_WAIT_SECS),
        );
        match answer {
            Ok(Response::Done { .. }) => {}
            Ok(Response::Denied { message }) => {
                eprintln!("{program}: not written to the alert log: {message}{also}");
                code = exit::DENIED;
            }
            Ok(Response::Error { message }) => {
                eprintln!("{program}: not written to the alert log: {message}{also}");
                code = exit::FAILED;
            }
            Ok(other) => {
                eprintln!(
                    "{program}: not written to the alert log: unexpected answer {other:?}{also}"
                );
                code = exit::FAILED;
            }
            Err(f) => {
                eprintln!(
                    "{program}: not written to the alert log: {}{also}",
                    f.message
                );
                code = f.code;
            }
        }
    }
    ExitCode::from(code)
}
