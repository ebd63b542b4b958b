//! The Internet Server Agent's monitoring commands, `clp_httpmon` and
//! `clp_smtpmon` (seed 002): which command is which, what an identifier may
//! be, the option ranges, and every message the commands report, with the
//! product's event ids. The commands themselves are in the binary
//! (`src/agent/`); their messages travel to the daemon's alert log as
//! [`AgentReport`]s (`catalog::Event::Agent`).
//!
//! The product's licence messages (ids 51 to 56) have no counterpart:
//! understudy has no licences, so nothing here can report them.

use serde::{Deserialize, Serialize};

use crate::catalog::Level;

/// Longest identifier, and longest `-s` / `-h` text, in bytes.
pub const MAX_TEXT: usize = 255;
/// Range of `-i`, `-c`, `-r` and of the `--stop` wait.
pub const MIN_VALUE: u32 = 1;
pub const MAX_VALUE: u32 = 10_000;
/// Defaults of the seed: interval 60 s, 3 retries, 10 s response wait,
/// 10 s stop wait, server `localhost`.
pub const DEFAULT_INTERVAL: u32 = 60;
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_RESPONSE_WAIT: u32 = 10;
pub const DEFAULT_STOP_WAIT: u32 = 10;
pub const DEFAULT_SERVER: &str = "localhost";

/// Which monitoring command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// `clp_httpmon`: HEAD requests to an HTTP daemon.
    Http,
    /// `clp_smtpmon`: NOOP commands to an SMTP daemon.
    Smtp,
}

impl AgentKind {
    pub const ALL: [AgentKind; 2] = [AgentKind::Http, AgentKind::Smtp];

    /// The command's name (also the name of its symlink).
    pub fn command(self) -> &'static str {
        match self {
            AgentKind::Http => "clp_httpmon",
            AgentKind::Smtp => "clp_smtpmon",
        }
    }

    /// The alert module of its messages (`httpmon 6`).
    pub fn module(self) -> &'static str {
        match self {
            AgentKind::Http => "httpmon",
            AgentKind::Smtp => "smtpmon",
        }
    }

    /// What it watches, for messages.
    pub fn daemon(self) -> &'static str {
        match self {
            AgentKind::Http => "HTTP daemon",
            AgentKind::Smtp => "SMTP daemon",
        }
    }

    /// Default of `-n`: 80 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            AgentKind::Http => 80,
            AgentKind::Smtp => 25,
        }
    }

    /// The kind called `command` (a program name or a subcommand such as
    /// `httpmon`).
    pub fn from_name(name: &str) -> Option<AgentKind> {
        AgentKind::ALL
            .into_iter()
            .find(|k| name == k.command() || name == k.module())
    }
}

/// Why `identifier` cannot be an identifier, if it cannot: one to 255
/// ASCII letters and digits (case counts).
pub fn check_identifier(identifier: &str) -> Result<(), String> {
    if identifier.is_empty() {
        return Err("the identifier is empty".into());
    }
    if identifier.len() > MAX_TEXT {
        return Err(format!(
            "the identifier is {} bytes long; at most {MAX_TEXT} are allowed",
            identifier.len()
        ));
    }
    if let Some(c) = identifier.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!(
            "the identifier may hold only letters and digits (A-Z, a-z, 0-9), not {c:?}"
        ));
    }
    Ok(())
}

/// The step of a check where a network error happened (ids 71 to 75).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetStep {
    /// Making the socket (71).
    Socket,
    /// Connecting (72).
    Connect,
    /// Sending the request (73).
    Send,
    /// Waiting for the reply (74): the product's `select`.
    Wait,
    /// Reading the reply (75).
    Receive,
}

impl NetStep {
    fn id(self) -> u32 {
        match self {
            NetStep::Socket => 71,
            NetStep::Connect => 72,
            NetStep::Send => 73,
            NetStep::Wait => 74,
            NetStep::Receive => 75,
        }
    }

    fn doing(self) -> &'static str {
        match self {
            NetStep::Socket => "creating a socket for",
            NetStep::Connect => "connecting to",
            NetStep::Send => "sending the request to",
            NetStep::Wait => "waiting for the reply of",
            NetStep::Receive => "reading the reply of",
        }
    }
}

/// Every message of the monitoring commands. `code` is the error number of
/// the failed system call (0 when there is none, such as a connection the
/// server closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "kebab-case")]
pub enum AgentMessage {
    /// 1: the command started (its identifier is registered).
    Started,
    /// 2: the first check is about to run.
    MonitoringStarted { target: String },
    /// 3: monitoring ends without an error (`--stop`, a signal).
    MonitoringStopped,
    /// 6: the daemon failed every check allowed; the command exits so
    /// that its pid monitor notices.
    ErrorExit { checks: u32 },
    /// 7: `--pause` was obeyed.
    Paused,
    /// 8: `--resume` was obeyed.
    Resumed,
    /// 11: a bad option or value.
    InvalidParameter { detail: String },
    /// 13: no identifier on the command line.
    NoIdentifier,
    /// 14: the identifier is registered already. `running`: whether its
    /// process is still that monitoring command.
    IdentifierInUse { pid: u32, running: bool },
    /// 15: `--stop` could not end the command.
    StopFailed { detail: String },
    /// 42: a system call failed outside the network checks.
    SystemError {
        function: String,
        code: i32,
        detail: String,
    },
    /// 71 to 75: a network error at `step`.
    Network {
        step: NetStep,
        target: String,
        code: i32,
        detail: String,
    },
    /// 81: the server name did not resolve.
    AddressFailed {
        server: String,
        code: i32,
        detail: String,
    },
    /// 82 (HTTP): the reply is not HTTP.
    InvalidResponse { target: String, detail: String },
    /// 83: the server answered with a status that counts as an error (HTTP
    /// 4xx / 5xx for a URI other than `/`; SMTP other than 2xx). `status`
    /// is 0 when the reply had no readable status.
    InvalidStatus {
        target: String,
        status: u16,
        detail: String,
    },
}

/// One message of one command, as sent to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    pub kind: AgentKind,
    /// The identifier, when the command line had a valid one.
    #[serde(default)]
    pub identifier: Option<String>,
    pub message: AgentMessage,
}

impl AgentReport {
    /// Module, event id, level.
    pub fn id(&self) -> (&'static str, u32, Level) {
        use AgentMessage::*;
        use Level::*;
        let (id, level) = match &self.message {
            Started => (1, Info),
            MonitoringStarted { .. } => (2, Info),
            MonitoringStopped => (3, Info),
            ErrorExit { .. } => (6, Error),
            Paused => (7, Info),
            Resumed => (8, Info),
            InvalidParameter { .. } => (11, Error),
            NoIdentifier => (13, Error),
            IdentifierInUse { .. } => (14, Error),
            StopFailed { .. } => (15, Error),
            SystemError { .. } => (42, Error),
            Network { step, .. } => (step.id(), Error),
            AddressFailed { .. } => (81, Error),
            InvalidResponse { .. } => (82, Error),
            InvalidStatus { .. } => (83, Error),
        };
        (self.kind.module(), id, level)
    }

    /// The message text (our own words); ends with the identifier.
    pub fn text(&self) -> String {
        use AgentMessage::*;
        let cmd = self.kind.command();
        let daemon = self.kind.daemon();
        let body = match &self.message {
            Started => format!("{cmd} is running"),
            MonitoringStarted { target } => {
                format!("{cmd} begins checking the {daemon} at {target}")
            }
            MonitoringStopped => format!("{cmd} ends its checks of the {daemon}"),
            ErrorExit { checks } => {
                format!("{cmd} found the {daemon} failing ({checks} checks in a row) and exits")
            }
            Paused => format!("{cmd} pauses its checks"),
            Resumed => format!("{cmd} resumes its checks"),
            InvalidParameter { detail } => format!("{cmd}: invalid parameter: {detail}"),
            NoIdentifier => format!("{cmd}: no identifier was given"),
            IdentifierInUse { pid, running } => {
                if *running {
                    format!(
                        "{cmd}: the identifier is used by the monitoring command with pid {pid}"
                    )
                } else {
                    format!(
                        "{cmd}: the identifier is still registered to pid {pid}, which is no longer \
                         a monitoring command (killed?); check with --disp, then clear it with --del"
                    )
                }
            }
            StopFailed { detail } => format!("{cmd}: could not stop the monitoring: {detail}"),
            SystemError {
                function,
                code,
                detail,
            } => format!("{cmd}: system error in {function} ({code}): {detail}"),
            Network {
                step,
                target,
                code,
                detail,
            } => format!(
                "{cmd}: network error {} the {daemon} at {target} (error {code}): {detail}",
                step.doing()
            ),
            AddressFailed {
                server,
                code,
                detail,
            } => format!("{cmd}: cannot find the address of {server} (error {code}): {detail}"),
            InvalidResponse { target, detail } => {
                format!("{cmd}: the {daemon} at {target} gave a reply that is not HTTP: {detail}")
            }
            InvalidStatus {
                target,
                status,
                detail,
            } => format!(
                "{cmd}: the {daemon} at {target} answered with an error status ({status}): {detail}"
            ),
        };
        match &self.identifier {
            Some(id) => format!("{body} [ID: {id}]"),
            None => body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: AgentKind, message: AgentMessage) -> AgentReport {
        AgentReport {
            kind,
            identifier: Some("web1".into()),
            message,
        }
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("httpwatch").is_ok());
        assert!(check_identifier("A1b2").is_ok());
        assert!(check_identifier(&"x".repeat(255)).is_ok());
        assert!(check_identifier(&"x".repeat(256))
            .unwrap_err()
            .contains("256 bytes"));
        assert!(check_identifier("").is_err());
        assert!(check_identifier("web-1").unwrap_err().contains("'-'"));
        assert!(check_identifier("wéb").is_err());
        assert!(check_identifier("../x").is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(AgentKind::from_name("clp_httpmon"), Some(AgentKind::Http));
        assert_eq!(AgentKind::from_name("smtpmon"), Some(AgentKind::Smtp));
        assert_eq!(AgentKind::from_name("clp_ftpmon"), None);
        assert_eq!(AgentKind::Smtp.default_port(), 25);
    }

    #[test]
    fn ids_follow_the_product() {
        use AgentMessage::*;
        let cases: Vec<(AgentMessage, u32)> = vec![
            (Started, 1),
            (MonitoringStarted { target: "t".into() }, 2),
            (MonitoringStopped, 3),
            (ErrorExit { checks: 4 }, 6),
            (Paused, 7),
            (Resumed, 8),
            (InvalidParameter { detail: "d".into() }, 11),
            (NoIdentifier, 13),
            (
                IdentifierInUse {
                    pid: 1,
                    running: true,
                },
                14,
            ),
            (StopFailed { detail: "d".into() }, 15),
            (
                SystemError {
                    function: "open".into(),
                    code: 13,
                    detail: "d".into(),
                },
                42,
            ),
            (
                AddressFailed {
                    server: "s".into(),
                    code: 0,
                    detail: "d".into(),
                },
                81,
            ),
            (
                InvalidResponse {
                    target: "t".into(),
                    detail: "d".into(),
                },
                82,
            ),
            (
                InvalidStatus {
                    target: "t".into(),
                    status: 500,
                    detail: "d".into(),
                },
                83,
            ),
        ];
        for (message, id) in cases {
            let r = report(AgentKind::Smtp, message);
            assert_eq!(r.id().0, "smtpmon");
            assert_eq!(r.id().1, id, "{r:?}");
            assert!(r.text().ends_with("[ID: web1]"), "{}", r.text());
        }
        for (step, id) in [
            (NetStep::Socket, 71),
            (NetStep::Connect, 72),
            (NetStep::Send, 73),
            (NetStep::Wait, 74),
            (NetStep::Receive, 75),
        ] {
            let r = report(
                AgentKind::Http,
                AgentMessage::Network {
                    step,
                    target: "127.0.0.1:80".into(),
                    code: 111,
                    detail: "connection refused".into(),
                },
            );
            assert_eq!(r.id(), ("httpmon", id, Level::Error));
        }
    }

    #[test]
    fn texts() {
        let r = report(AgentKind::Http, AgentMessage::ErrorExit { checks: 4 });
        assert_eq!(
            r.text(),
            "clp_httpmon found the HTTP daemon failing (4 checks in a row) and exits [ID: web1]"
        );
        let r = AgentReport {
            kind: AgentKind::Smtp,
            identifier: None,
            message: AgentMessage::NoIdentifier,
        };
        assert_eq!(r.text(), "clp_smtpmon: no identifier was given");
    }

    #[test]
    fn reports_round_trip() {
        let r = report(
            AgentKind::Http,
            AgentMessage::Network {
                step: NetStep::Wait,
                target: "localhost:80".into(),
                code: 110,
                detail: "no reply within 10 s".into(),
            },
        );
        let text = ron::to_string(&r).unwrap();
        assert_eq!(ron::from_str::<AgentReport>(&text).unwrap(), r);
    }
}
