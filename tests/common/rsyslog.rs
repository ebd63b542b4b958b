//! A private rsyslogd for the commands that write this machine's syslog
//! themselves (`clplogcmd --syslog`): a Unix datagram socket in the test
//! folder (the commands find it through `UNDERSTUDY_SYSLOG_SOCKET`), with
//! rsyslog's full parser, and one output file with a line per message
//! showing what rsyslog understood (facility.severity, tag, msg). No
//! `/dev/log`, no network input. (The syslog notifier's tests have their
//! own, with network inputs: actors/tests/syslog_rsyslogd.rs.)

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::skip::{self, Missing};
use super::{spawn_locked, wait_for, DEADLINE};

/// The rsyslogd binary, or why the test cannot run.
pub fn need_rsyslogd() -> Result<PathBuf, Missing> {
    ["rsyslogd", "/usr/sbin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new(p)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| {
            skip::missing(
                "rsyslogd",
                "rsyslogd is not installed (Debian package rsyslog)",
            )
        })
}

/// rsyslogd on `DIR/log.sock`, writing `DIR/messages`; killed on drop.
pub struct Rsyslogd {
    child: Child,
    pub socket: PathBuf,
    output: PathBuf,
    dir: PathBuf,
}

impl Rsyslogd {
    pub fn start(bin: &Path, dir: &Path) -> Rsyslogd {
        fs::create_dir_all(dir).expect("mkdir rsyslog folder");
        let d = dir.display();
        let conf = format!(
            r#"global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" UseSpecialParser="off" RateLimit.Interval="0")
template(name="seen" type="string" string="pri=%syslogfacility-text%.%syslogseverity-text% tag=%syslogtag% msg=%msg%\n")
*.* action(type="omfile" file="{d}/messages" template="seen")
"#
        );
        fs::write(dir.join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        let log = fs::File::create(dir.join("rsyslogd.out")).expect("rsyslogd.out");
        let mut cmd = Command::new(bin);
        cmd.arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        let child = spawn_locked(&mut cmd).expect("start rsyslogd");
        let r = Rsyslogd {
            child,
            socket: dir.join("log.sock"),
            output: dir.join("messages"),
            dir: dir.to_path_buf(),
        };
        // Ready when a probe sent to the socket is in the output file.
        let probe = UnixDatagram::unbound().expect("datagram socket");
        wait_for("rsyslogd to take messages", DEADLINE, || {
            let _ = probe.send_to(b"<14>probe: ready", &r.socket);
            r.contents().contains("msg= ready") || r.contents().contains("msg=ready")
        });
        r
    }

    /// What rsyslogd has written so far.
    pub fn contents(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits for the output line that holds `needle` and returns it.
    pub fn wait_line(&self, needle: &str) -> String {
        let mut found = None;
        wait_for(&format!("a syslog line with {needle:?}"), DEADLINE, || {
            found = self
                .contents()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_string);
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "rsyslogd: {}",
                fs::read_to_string(self.dir.join("rsyslogd.out")).unwrap_or_default()
            )
        })
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
