//! Lines for this machine's syslog, written by the commands themselves
//! (not by the daemon's syslog notifier): `clp_httpmon` / `clp_smtpmon`
//! without a daemon, and `understudy log --syslog` / `clplogcmd --syslog`.
//! One RFC 3164 datagram on `/dev/log` (or `UNDERSTUDY_SYSLOG_SOCKET`),
//! facility daemon, as the C library's `syslog()` sends it.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use understudy_actors::model::catalog::Alert;
use understudy_actors::notify::syslog::format::{self, LineSettings};
use understudy_actors::notify::syslog::{Facility, Format};

/// Names another syslog socket than `/dev/log` (tests, chroots).
pub const ENV: &str = "UNDERSTUDY_SYSLOG_SOCKET";
const SOCKET: &str = "/dev/log";

/// The syslog socket of this machine.
pub fn socket() -> PathBuf {
    std::env::var_os(ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SOCKET))
}

/// This machine's host name, as alerts carry it.
pub fn host() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Sends `alert` as one line tagged `tag[PID]` (MSGID module and id, as
/// `httpmon11`). `Err` when no syslog daemon takes it.
pub fn send(tag: &str, alert: &Alert) -> std::io::Result<()> {
    let settings = LineSettings {
        facility: Facility::Daemon,
        format: Format::Rfc3164,
        app_name: tag.to_string(),
        procid: std::process::id(),
    };
    let line = format::line(&settings, alert, "-", false);
    UnixDatagram::unbound()?
        .send_to(line.as_bytes(), socket())
        .map(|_| ())
}
