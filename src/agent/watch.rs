//! The monitoring itself: register the identifier, then check the daemon
//! every interval until it fails `1 + retries` checks in a row (message 6,
//! exit status 1), or until `--stop` / SIGTERM / SIGINT (message 3, exit
//! status 0). SIGUSR1 pauses the checks and SIGUSR2 resumes them (sent by
//! `--pause` / `--resume`, which wait for the registry to show the change).
//!
//! One check is the product's HTTP or SMTP monitor probe
//! (`understudy_actors::monitor::{http, smtp}`) under the response wait
//! (`-r`); its failure becomes the message of its cause (71-75, 81-83).

use std::cell::Cell;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

use understudy_actors::model::agent::{AgentKind, AgentMessage, NetStep};
use understudy_actors::monitor::http::{HttpConfig, HttpProbe, HttpVersion};
use understudy_actors::monitor::smtp::{SmtpConfig, SmtpProbe};
use understudy_actors::monitor::tcp::{Failure, Fault, Step};

use super::args::Watch;
use super::registry::{Created, Entry, Registry};
use super::report::Reporter;
use super::{system_error, EXIT_FAILED, EXIT_IDENTIFIER, EXIT_SYSTEM};

enum Probe {
    Http(HttpProbe),
    Smtp(SmtpProbe),
}

impl Probe {
    fn new(kind: AgentKind, w: &Watch) -> Probe {
        match kind {
            AgentKind::Http => Probe::Http(HttpProbe::new(&HttpConfig {
                host: w.server.clone(),
                port: w.port,
                uri: w.uri.clone(),
                version: if w.http11 {
                    HttpVersion::Http11
                } else {
                    HttpVersion::Http10
                },
                host_header: None,
            })),
            AgentKind::Smtp => Probe::Smtp(SmtpProbe::new(&SmtpConfig {
                host: w.server.clone(),
                port: w.port,
            })),
        }
    }

    fn target(&self) -> String {
        match self {
            Probe::Http(p) => p.target(),
            Probe::Smtp(p) => p.target(),
        }
    }

    async fn attempt(&self, step: &Cell<Step>) -> Result<(), Failure> {
        match self {
            Probe::Http(p) => p.attempt(step).await,
            Probe::Smtp(p) => p.attempt(step).await,
        }
    }
}

/// The message for a failed check.
fn cause(kind: AgentKind, w: &Watch, target: &str, failure: Failure) -> AgentMessage {
    let target = target.to_string();
    let detail = failure.text;
    let net = |step, code: Option<i32>, detail| AgentMessage::Network {
        step,
        target: target.clone(),
        code: code.unwrap_or(0),
        detail,
    };
    match failure.fault {
        Fault::Io {
            step: Step::Resolve,
            code,
        } => AgentMessage::AddressFailed {
            server: w.server.clone(),
            code: code.unwrap_or(0),
            detail,
        },
        // The socket call's own errors (no descriptor, no memory, no such
        // family) come out of the connect that makes the socket.
        Fault::Io {
            step: Step::Connect,
            code: Some(c),
        } if matches!(
            c,
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::EAFNOSUPPORT
                | libc::EPROTONOSUPPORT
        ) =>
        {
            net(NetStep::Socket, Some(c), detail)
        }
        Fault::Io {
            step: Step::Connect,
            code,
        } => net(NetStep::Connect, code, detail),
        Fault::Io {
            step: Step::Send,
            code,
        } => net(NetStep::Send, code, detail),
        Fault::Io {
            step: Step::Receive,
            code,
        } => net(NetStep::Receive, code, detail),
        Fault::Closed => net(NetStep::Receive, None, detail),
        Fault::BadReply if kind == AgentKind::Http => {
            AgentMessage::InvalidResponse { target, detail }
        }
        Fault::BadReply => AgentMessage::InvalidStatus {
            target,
            status: 0,
            detail,
        },
        Fault::Status(status) => AgentMessage::InvalidStatus {
            target,
            status,
            detail,
        },
    }
}

/// The message for a check that ran out of time at `step`.
fn timed_out(w: &Watch, target: &str, step: Step) -> AgentMessage {
    let detail = format!("no answer within {} s", w.wait);
    let code = libc::ETIMEDOUT;
    let step = match step {
        Step::Resolve => {
            return AgentMessage::AddressFailed {
                server: w.server.clone(),
                code,
                detail,
            }
        }
        Step::Connect => NetStep::Connect,
        Step::Send => NetStep::Send,
        Step::Receive => NetStep::Wait,
    };
    AgentMessage::Network {
        step,
        target: target.to_string(),
        code,
        detail,
    }
}

/// Signals the command obeys.
struct Signals {
    term: Signal,
    int: Signal,
    pause: Signal,
    resume: Signal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Stop,
    Pause,
    Resume,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            pause: signal(SignalKind::user_defined1())?,
            resume: signal(SignalKind::user_defined2())?,
        })
    }

    async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.term.recv() => Sig::Stop,
            _ = self.int.recv() => Sig::Stop,
            _ = self.pause.recv() => Sig::Pause,
            _ = self.resume.recv() => Sig::Resume,
        }
    }
}

pub fn run(
    kind: AgentKind,
    identifier: &str,
    w: Watch,
    say: &Reporter,
    registry: &Registry,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say.say(system_error("tokio runtime", &e));
            return ExitCode::from(EXIT_SYSTEM);
        }
    };
    runtime.block_on(watch(kind, identifier, w, say, registry))
}

async fn watch(
    kind: AgentKind,
    identifier: &str,
    w: Watch,
    say: &Reporter,
    registry: &Registry,
) -> ExitCode {
    // Before the identifier is visible: a --pause must not find SIGUSR1
    // still at its default action (which ends the process).
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            say.say(system_error("sigaction", &e));
            return ExitCode::from(EXIT_SYSTEM);
        }
    };
    let probe = Probe::new(kind, &w);
    let target = probe.target();
    let mut entry = match Entry::for_self(identifier, kind.command(), &target) {
        Ok(e) => e,
        Err(e) => {
            say.say(system_error("read /proc", &e));
            return ExitCode::from(EXIT_SYSTEM);
        }
    };
    match registry.create(&entry) {
        Ok(Created::Done) => {}
        Ok(Created::Taken(other)) => {
            let (pid, running) = other.map(|o| (o.pid, o.is_live())).unwrap_or((0, false));
            say.say(AgentMessage::IdentifierInUse { pid, running });
            return ExitCode::from(EXIT_IDENTIFIER);
        }
        Err(e) => {
            say.say(system_error(e.function, &e.error));
            return ExitCode::from(EXIT_SYSTEM);
        }
    }
    say.say(AgentMessage::Started);
    say.say(AgentMessage::MonitoringStarted {
        target: target.clone(),
    });
    let interval = Duration::from_secs(w.interval.into());
    let wait = Duration::from_secs(w.wait.into());
    let mut failures: u32 = 0;
    let mut next = Instant::now();
    let mut paused = false;
    let set_paused = |paused: bool, entry: &mut Entry| {
        entry.paused = paused;
        if let Err(e) = registry.update(entry) {
            say.say(system_error(e.function, &e.error));
        }
        say.say(if paused {
            AgentMessage::Paused
        } else {
            AgentMessage::Resumed
        });
    };
    let outcome = 'watch: loop {
        // Wait for the next check, or a signal.
        let due = if paused {
            None
        } else {
            tokio::select! {
                s = signals.next() => Some(s),
                _ = tokio::time::sleep_until(next) => None,
            }
        };
        let sig = match (paused, due) {
            (true, _) => Some(signals.next().await),
            (false, s) => s,
        };
        match sig {
            Some(Sig::Stop) => break 'watch Ok(()),
            Some(Sig::Pause) => {
                if !paused {
                    paused = true;
                    set_paused(true, &mut entry);
                }
                continue;
            }
            Some(Sig::Resume) => {
                if paused {
                    paused = false;
                    failures = 0;
                    next = Instant::now();
                    set_paused(false, &mut entry);
                }
                continue;
            }
            None => {}
        }
        // One check, under the response wait; signals still heard.
        let step = Cell::new(Step::Resolve);
        let check = tokio::time::timeout(wait, probe.attempt(&step));
        tokio::pin!(check);
        let verdict = loop {
            tokio::select! {
                v = &mut check => break Some(v),
                s = signals.next() => match s {
                    Sig::Stop => break 'watch Ok(()),
                    Sig::Pause => {
                        paused = true;
                        set_paused(true, &mut entry);
                        break None;
                    }
                    Sig::Resume => {}
                },
            }
        };
        let Some(verdict) = verdict else { continue };
        match verdict {
            Ok(Ok(())) => failures = 0,
            Ok(Err(failure)) => {
                failures += 1;
                say.say(cause(kind, &w, &target, failure));
            }
            Err(_) => {
                failures += 1;
                say.say(timed_out(&w, &target, step.get()));
            }
        }
        if failures > w.retries {
            break Err(failures);
        }
        next = Instant::now() + interval;
    };
    if let Err(e) = registry.remove_own(identifier) {
        say.say(system_error(e.function, &e.error));
    }
    match outcome {
        Ok(()) => {
            say.say(AgentMessage::MonitoringStopped);
            ExitCode::SUCCESS
        }
        Err(checks) => {
            say.say(AgentMessage::ErrorExit { checks });
            ExitCode::from(EXIT_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Watch {
        Watch::defaults(AgentKind::Http)
    }

    fn id_of(kind: AgentKind, m: AgentMessage) -> u32 {
        understudy_actors::model::agent::AgentReport {
            kind,
            identifier: None,
            message: m,
        }
        .id()
        .1
    }

    #[test]
    fn causes() {
        let f = |fault| Failure {
            fault,
            text: "t".into(),
        };
        let io = |step, code| f(Fault::Io { step, code });
        let http = |failure| id_of(AgentKind::Http, cause(AgentKind::Http, &w(), "x", failure));
        let smtp = |failure| id_of(AgentKind::Smtp, cause(AgentKind::Smtp, &w(), "x", failure));
        assert_eq!(http(io(Step::Resolve, None)), 81);
        assert_eq!(http(io(Step::Connect, Some(libc::ECONNREFUSED))), 72);
        assert_eq!(http(io(Step::Connect, Some(libc::EMFILE))), 71);
        assert_eq!(http(io(Step::Send, Some(libc::EPIPE))), 73);
        assert_eq!(http(io(Step::Receive, Some(libc::ECONNRESET))), 75);
        assert_eq!(http(f(Fault::Closed)), 75);
        assert_eq!(http(f(Fault::BadReply)), 82);
        assert_eq!(smtp(f(Fault::BadReply)), 83);
        assert_eq!(http(f(Fault::Status(500))), 83);
        assert_eq!(smtp(f(Fault::Status(421))), 83);
        let t = |step| id_of(AgentKind::Http, timed_out(&w(), "x", step));
        assert_eq!(t(Step::Resolve), 81);
        assert_eq!(t(Step::Connect), 72);
        assert_eq!(t(Step::Send), 73);
        assert_eq!(t(Step::Receive), 74);
    }
}
