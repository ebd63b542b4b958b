//! Where the messages of the monitoring commands go: always to stderr (the
//! exec resource's script log, or the terminal); then to the cluster's
//! alert log through the daemon's control socket when a daemon runs on
//! this server and takes the report, and otherwise to the local syslog
//! (`/dev/log`, or `UNDERSTUDY_SYSLOG_SOCKET`), facility daemon, tagged
//! with the command's name.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use understudy_actors::control::protocol::{Command, Response};
use understudy_actors::model::agent::{AgentKind, AgentMessage, AgentReport};
use understudy_actors::model::catalog::Event;
use understudy_actors::notify::syslog::format::{self, LineSettings};
use understudy_actors::notify::syslog::{Facility, Format};

/// How long the daemon may take to take a report.
const DAEMON_WAIT: Duration = Duration::from_secs(5);
pub const SYSLOG_ENV: &str = "UNDERSTUDY_SYSLOG_SOCKET";
const SYSLOG_SOCKET: &str = "/dev/log";

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
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let alert = Event::Agent(report.clone()).to_alert(time, &host);
        let settings = LineSettings {
            facility: Facility::Daemon,
            format: Format::Rfc3164,
            app_name: self.kind.command().to_string(),
            procid: std::process::id(),
        };
        let line = format::line(&settings, &alert, "-", false);
        let path = std::env::var_os(SYSLOG_ENV)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSLOG_SOCKET));
        // No syslog daemon: stderr has had the message.
        if let Ok(sock) = UnixDatagram::unbound() {
            let _ = sock.send_to(line.as_bytes(), &path);
        }
    }
}
