//! The alert service through the real daemon: alerts routed to a syslog
//! collector, and notification suspended and resumed.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Daemon, TestDir};

/// A UDP syslog collector on loopback: every datagram is one line.
struct Collector {
    socket: UdpSocket,
    lines: Vec<String>,
}

impl Collector {
    fn new() -> Collector {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a collector");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Collector {
            socket,
            lines: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Reads until a line containing `needle` arrived (or panics after 20 s).
    fn wait_for(&mut self, needle: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(l) = self.lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                Instant::now() < end,
                "no syslog line with {needle:?}; got:\n{}",
                self.lines.join("\n")
            );
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.lines
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
}

fn config(t: &TestDir, port: u16) -> String {
    t.config(
        &["s1"],
        &format!(
            r#"alerts: (syslog: (local: false, remote: [Remote(address: "127.0.0.1", port: {port})],
                                 facility: Local3)),"#
        ),
        r#"Group(name: "web", startup: Manual, resources: [
               Resource(name: "app", kind: Exec(start: "/bin/true", stop: "/bin/true"))])"#,
    )
}

#[test]
fn alerts_reach_syslog_as_rfc5424_lines_with_module_and_event_id() {
    let t = TestDir::new("syslog");
    let mut c = Collector::new();
    let d = Daemon::start(&t, &config(&t, c.port()), "s1");
    assert!(d.cli(&["group", "start", "web"]).success());
    let line = c.wait_for("group web: activation completed");
    // local3 (19) * 8 + info (6) = 158; version 1; MSGID rc11.
    assert!(line.starts_with("<158>1 "), "{line}");
    assert!(line.contains(" rc11 "), "{line}");
    assert!(
        line.contains(r#"module="rc""#) && line.contains(r#"event_id="11""#),
        "{line}"
    );
    assert!(line.contains(r#"server="s1""#), "{line}");
}

#[test]
fn suspended_notification_holds_alerts_back_until_resumed() {
    let t = TestDir::new("suspend");
    let mut c = Collector::new();
    let d = Daemon::start(&t, &config(&t, c.port()), "s1");

    let out = d.cli(&["alert", "suspend"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("resumes by itself in 12 h"), "{out:?}");
    // The suspend itself is reported.
    c.wait_for("alert notification suspended");
    assert!(d.cli(&["group", "start", "web"]).success());
    assert!(d.cli(&["group", "stop", "web"]).success());

    let out = d.cli(&["alert", "resume"]);
    assert!(out.success(), "{out:?}");
    c.wait_for("alert notification resumed");
    assert!(d.cli(&["group", "start", "web"]).success());
    c.wait_for("group web: activation completed");
    // Exactly one activation reached syslog: the one after the resume.
    let started = c
        .lines
        .iter()
        .filter(|l| l.contains("group web: activation completed"))
        .count();
    assert_eq!(started, 1, "{}", c.lines.join("\n"));
    // Every alert is in the alert log regardless.
    let log = d.cli(&["alerts", "-n", "100"]).stdout;
    assert_eq!(
        log.matches("group web: activation completed").count(),
        2,
        "{log}"
    );
}
