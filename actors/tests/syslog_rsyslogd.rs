//! The syslog notifier against a real rsyslogd (no mocks).
//!
//! Each test starts its own rsyslogd with a private configuration: no
//! `/dev/log`, a Unix socket in a temporary directory (with the full parser,
//! so RFC 5424 is read there too), UDP and TCP inputs on free loopback
//! ports, and one output file with a line per message showing what rsyslog
//! understood (input, version, facility.severity, host, app, tag, procid,
//! msgid, structured data, msg). Tests wait for lines in that file.
//!
//! Needs `rsyslogd` (Debian package `rsyslog`); without it each test skips
//! (tests/common/skip.rs).

#[path = "../../tests/common/skip.rs"]
mod skip;

use std::fs;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix::prelude::*;
use understudy_actors::model::catalog::{Alert, Level};
use understudy_actors::notify::alert_log::{AlertLog, AlertLogHandle, Alerter, DEFAULT_MAX_BYTES};
use understudy_actors::notify::syslog::{
    Facility, Format, Remote, SyslogConfig, SyslogNotifier, SyslogStats, Transport,
};
use understudy_actors::notify::Notify;

/// How long any awaited outcome may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// The rsyslogd binary, when there is one.
fn rsyslogd() -> Option<PathBuf> {
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
}

macro_rules! require_rsyslogd {
    () => {
        match rsyslogd() {
            Some(bin) => bin,
            None => {
                return skip::missing(
                    "rsyslogd",
                    "rsyslogd is not installed (Debian package rsyslog)",
                )
                .skip();
            }
        }
    };
}

/// A private rsyslogd, stopped (and its directory removed) on drop.
struct Rsyslogd {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    output: PathBuf,
    udp_port: u16,
    tcp_port: u16,
}

impl Rsyslogd {
    fn start(bin: &Path, tag: &str) -> Rsyslogd {
        let dir = std::env::temp_dir().join(format!("us-rsyslog-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("log.sock");
        let output = dir.join("messages");
        // Free ports: bound by us, let go, then taken by rsyslogd.
        let udp_port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tcp_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let conf = format!(
            r#"global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" UseSpecialParser="off" RateLimit.Interval="0")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
template(name="dbg" type="string" string="via=%inputname% v=%protocol-version% pri=%syslogfacility-text%.%syslogseverity-text% host=%hostname% app=%app-name% tag=%syslogtag% procid=%procid% msgid=%msgid% sd=%structured-data% msg=%msg%\n")
*.* action(type="omfile" file="{d}/messages" template="dbg")
"#
        );
        fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let log = fs::File::create(dir.join("rsyslogd.out")).unwrap();
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        let r = Rsyslogd {
            child,
            dir,
            socket,
            output,
            udp_port,
            tcp_port,
        };
        r.wait_ready();
        r
    }

    /// Until every input listens: the socket exists, TCP accepts, and a
    /// UDP probe has reached the output file.
    fn wait_ready(&self) {
        let end = Instant::now() + DEADLINE;
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        loop {
            let ready = self.socket.exists()
                && TcpStream::connect(("127.0.0.1", self.tcp_port)).is_ok()
                && {
                    let _ = udp.send_to(b"<14>probe: ready", ("127.0.0.1", self.udp_port));
                    self.contents().contains("msg= ready")
                };
            if ready {
                return;
            }
            assert!(
                Instant::now() < end,
                "rsyslogd did not get ready; its output: {}",
                fs::read_to_string(self.dir.join("rsyslogd.out")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn contents(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Lines of the output file from input `via` (`imuxsock`, `imudp`,
    /// `imtcp`) that contain `marker`, once there are `n` of them.
    async fn lines(&self, via: &str, marker: &str, n: usize) -> Vec<String> {
        let prefix = format!("via={via} ");
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            let got: Vec<String> = self
                .contents()
                .lines()
                .filter(|l| l.starts_with(&prefix) && l.contains(marker))
                .map(str::to_string)
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "gave up waiting for {n} {via} lines with {marker:?}; the file holds:\n{}",
                self.contents()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn remote(&self, transport: Transport) -> Remote {
        Remote {
            address: "127.0.0.1".into(),
            port: match transport {
                Transport::Udp => self.udp_port,
                Transport::Tcp => self.tcp_port,
            },
            transport,
        }
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn alerter(dir: &Path) -> (Alerter, AlertLogHandle) {
    let log = AlertLogHandle::spawn(AlertLog::open(dir, DEFAULT_MAX_BYTES).unwrap()).unwrap();
    let alerter = Alerter {
        log: log.clone(),
        server: "n1".into(),
        router: None,
    };
    (alerter, log)
}

fn notify(module: &str, event_id: u32, level: Level, message: &str, cluster: &str) -> Notify {
    Notify {
        alert: Alert {
            time: "2026-11-22T09:05:01.250Z".into(),
            server: "n1".into(),
            module: module.into(),
            event_id,
            level,
            message: message.into(),
        },
        cluster: cluster.into(),
    }
}

#[actix_rt::test]
async fn rfc5424_arrives_over_unix_udp_and_tcp() {
    let bin = require_rsyslogd!();
    let rs = Rsyslogd::start(&bin, "5424");
    let (alerter, _log) = alerter(&rs.dir.join("state"));
    let config = SyslogConfig {
        local: true,
        socket: Some(rs.socket.to_str().unwrap().into()),
        remote: vec![rs.remote(Transport::Udp), rs.remote(Transport::Tcp)],
        facility: Facility::Local3,
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    addr.do_send(notify("rc", 32, Level::Error, "m1 app failed", "c1"));
    addr.do_send(notify("mon", 101, Level::Warning, "m2 w warned", "c1"));
    addr.do_send(notify("pm", 1, Level::Info, "m3 started", r#"c "x" \ ]"#));

    let pid = std::process::id();
    for via in ["imuxsock", "imudp", "imtcp"] {
        // Over TCP, three alerts must be three lines: LF framing.
        let got = rs.lines(via, "msg=m", 3).await;
        let head = |pri: &str| {
            format!("via={via} v=1 pri=local3.{pri} host=n1 app=understudy tag=understudy[{pid}] procid={pid}")
        };
        assert_eq!(
            got,
            [
                format!(
                    "{} msgid=rc32 sd=[understudy@32473 module=\"rc\" event_id=\"32\" \
                     server=\"n1\" cluster=\"c1\"] msg=m1 app failed",
                    head("err")
                ),
                format!(
                    "{} msgid=mon101 sd=[understudy@32473 module=\"mon\" event_id=\"101\" \
                     server=\"n1\" cluster=\"c1\"] msg=m2 w warned",
                    head("warning")
                ),
                format!(
                    r#"{} msgid=pm1 sd=[understudy@32473 module="pm" event_id="1" server="n1" cluster="c \"x\" \\ \]"] msg=m3 started"#,
                    head("info")
                ),
            ]
        );
    }
    let stats = addr.send(SyslogStats).await.unwrap();
    assert!(
        stats.iter().all(|s| s.sent == 3 && s.failed == 0),
        "{stats:#?}"
    );
}

#[actix_rt::test]
async fn rfc3164_when_asked() {
    let bin = require_rsyslogd!();
    let rs = Rsyslogd::start(&bin, "3164");
    let (alerter, _log) = alerter(&rs.dir.join("state"));
    let config = SyslogConfig {
        local: true,
        socket: Some(rs.socket.to_str().unwrap().into()),
        remote: vec![rs.remote(Transport::Udp), rs.remote(Transport::Tcp)],
        facility: Facility::Local5,
        format: Format::Rfc3164,
        app_name: "ha".into(),
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    addr.do_send(notify("rc", 32, Level::Error, "m1 app failed", "c1"));
    addr.do_send(notify("mon", 101, Level::Warning, "m2 w warned", "c1"));

    let pid = std::process::id();
    for via in ["imuxsock", "imudp", "imtcp"] {
        let got = rs.lines(via, "cluster=c1: m", 2).await;
        for (line, (pri, text)) in got.iter().zip([
            ("err", "rc32 cluster=c1: m1 app failed"),
            ("warning", "mon101 cluster=c1: m2 w warned"),
        ]) {
            assert!(
                line.starts_with(&format!("via={via} v=0 pri=local5.{pri} host=")),
                "{line}"
            );
            assert!(
                line.ends_with(&format!(
                    " app=ha tag=ha[{pid}]: procid={pid} msgid=- sd=- msg= {text}"
                )),
                "{line}"
            );
            // Over the network the line names its server; locally rsyslog
            // puts its own host name there.
            if via != "imuxsock" {
                assert!(line.contains(" host=n1 "), "{line}");
            }
        }
    }
}

#[actix_rt::test]
async fn a_dead_tcp_collector_does_not_hold_up_udp_and_is_reported_once() {
    let bin = require_rsyslogd!();
    let rs = Rsyslogd::start(&bin, "dead");
    let (alerter, log) = alerter(&rs.dir.join("state"));
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = SyslogConfig {
        local: false,
        remote: vec![
            Remote {
                address: "127.0.0.1".into(),
                port: dead,
                transport: Transport::Tcp,
            },
            rs.remote(Transport::Udp),
        ],
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    let tcp_name = format!("tcp 127.0.0.1:{dead}");
    for i in 1..=3 {
        addr.do_send(notify("rc", i, Level::Error, &format!("dead{i}"), "c1"));
        rs.lines("imudp", &format!("msg=dead{i}"), 1).await;
    }
    // Wait until the TCP destination has failed again after its backoff.
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let stats = addr.send(SyslogStats).await.unwrap();
        let tcp = stats.iter().find(|s| s.destination == tcp_name).unwrap();
        if tcp.failed >= 2 {
            assert_eq!(tcp.sent, 0);
            break;
        }
        assert!(tokio::time::Instant::now() < end, "no retry: {stats:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed: Vec<Alert> = log
        .newest(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.module == "alert" && a.event_id == 1010)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0].message,
        format!("syslog to {tcp_name} failed: connect to 127.0.0.1:{dead}: connection refused")
    );
}
