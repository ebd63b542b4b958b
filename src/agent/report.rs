//! Where the messages of the monitoring commands go: always to stderr (the
//! exec resource's script log, or the terminal); then to the cluster's
//! alert log through the daemon's control socket when a daemon runs on
//! this server and takes the report, and otherwise to the local syslog
//! (`/dev/log`, or `UNDERSTUDY_SYSLOG_SOCKET`), facility daemon, tagged
//! with the command's name.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use understudy_actors::control::protocol::{Command, Response};
use understudy_actors::model::agent::{AgentKind, AgentMessage, AgentReport};
use understudy_actors::model::catalog::Event;

/// How long the daemon may take to take a report.
const DAEMON_WAIT: Duration = Duration::from_secs(5);

pub struct Reporter {
    pub kind: AgentKind,
    pub identifier: Option<String>,
    pub socket: PathBuf,
}

impl Reporter {
    pub fn say(&self, message: AgentMessage) {
        let report = AgentReport {
            kind: self.kind,
            identifier: self.identifier.clone(),
            message,
        };
        let (module, id, _) = report.id();
        eprintln!("{} ({module} {id})", report.text());
        let request = crate::client::request_within(
            &self.socket,
            Command::AgentReport {
                report: report.clone(),
            },
            Some(DAEMON_WAIT),
        );
        if !matches!(request, Ok(Response::Done { .. })) {
            self.syslog(&report);
        }
    }

    fn syslog(&self, report: &AgentReport) {
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let alert = Event::Agent(report.clone()).to_alert(time, &crate::local_syslog::host());
        // No syslog daemon: stderr has had the message.
        let _ = crate::local_syslog::send(self.kind.command(), &alert);
    }
}
