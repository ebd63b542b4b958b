//! The alert service through the real daemon: alerts routed to a syslog
//! collector, and notification suspended and resumed.

mod common;

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::smtp::Smtpd;
use common::{understudy, Daemon, TestDir};

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

fn mail_config(t: &TestDir, smtp: &Smtpd, extra: &str) -> String {
    t.config(
        &["s1"],
        &format!(
            r#"alerts: (mail: (server: "127.0.0.1", port: {port}, recipients: ["ops@example.com"],
                               title: "understudy it", authentication: Login, user: "alice",
                               password: "s3cret", response_wait_secs: 5 {extra})),"#,
            port = smtp.port
        ),
        r#"Group(name: "web", startup: Manual, resources: [
               Resource(name: "app", kind: Exec(start: "/bin/false"),
                        activation: (failover_threshold: 0, final_action: NoOperation))])"#,
    )
}

#[test]
fn a_resource_activation_failure_is_mailed_and_the_password_never_shows() {
    let t = TestDir::new("mail");
    let Some(smtp) = Smtpd::start(&t.join("smtp"), None, &["--auth", "login,cram-md5"]) else {
        return;
    };
    let d = Daemon::start(&t, &mail_config(&t, &smtp, ""), "s1");
    let _ = d.cli(&["group", "start", "web"]);
    let mail = smtp.wait_mail(&["rc 32"]);
    assert!(mail.contains("Subject: understudy it"), "{mail}");
    assert!(mail.contains("s1"), "the sending server is named: {mail}");
    // Reported in the alert log as sent; the password appears nowhere.
    let end = Instant::now() + Duration::from_secs(20);
    while !d.cli(&["alerts", "-n", "100"]).stdout.contains("alert 5") {
        assert!(Instant::now() < end, "no alert 5");
        std::thread::sleep(Duration::from_millis(20));
    }
    for out in [
        d.cli(&["alerts", "-n", "200"]),
        d.cli(&["status", "--json"]),
    ] {
        assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
    }
}

#[test]
fn alert_settings_export_import_round_trip_and_a_bad_file_changes_nothing() {
    let t = TestDir::new("export");
    let Some(smtp) = Smtpd::start(&t.join("smtp"), None, &["--auth", "login"]) else {
        return;
    };
    let d = Daemon::start(
        &t,
        &mail_config(&t, &smtp, ", on_settings_change: true"),
        "s1",
    );
    let file = t.join("alerts.ron");
    let out = d.cli(&["alert", "export", file.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(exported.contains("ops@example.com"), "{exported}");

    // A bad file: refused with its problems, nothing changes.
    let bad = t.join("bad.ron");
    std::fs::write(
        &bad,
        exported.replacen("recipients:", "colour: 3, recipients:", 1),
    )
    .unwrap();
    let out = d.cli(&["alert", "import", bad.to_str().unwrap()]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("colour"), "{out:?}");

    // A good one: a route added; applied at once, and mailed as a change.
    let good = t.join("good.ron");
    let changed = exported.replacen(
        "routes: [",
        r#"routes: [Route(module: "rc", event_id: 10, mail: true),"#,
        1,
    );
    assert_ne!(changed, exported, "{exported}");
    std::fs::write(&good, &changed).unwrap();
    let out = d.cli(&["alert", "import", good.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("applied at once"), "{out:?}");
    smtp.wait_mail(&["alert settings changed: routes"]);
    let again = t.join("again.ron");
    assert!(d
        .cli(&["alert", "export", again.to_str().unwrap()])
        .success());
    assert!(std::fs::read_to_string(&again)
        .unwrap()
        .contains("event_id: 10"));
    // The new route works: a group start (rc 10) is mailed now.
    let _ = d.cli(&["group", "start", "web"]);
    smtp.wait_mail(&["rc 10"]);
}

#[test]
fn a_mail_that_cannot_go_now_waits_in_the_spool_across_a_daemon_restart() {
    let t = TestDir::new("spool");
    // A port with nobody on it yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = t.config(
        &["s1"],
        &format!(
            r#"alerts: (mail: (server: "127.0.0.1", port: {port}, recipients: ["ops@example.com"],
                               title: "spool", response_wait_secs: 5)),"#
        ),
        r#"Group(name: "web", startup: Manual, resources: [
               Resource(name: "app", kind: Exec(start: "/bin/false"),
                        activation: (failover_threshold: 0, final_action: NoOperation))])"#,
    );
    let mut d = Daemon::start(&t, &config, "s1");
    let _ = d.cli(&["group", "start", "web"]);
    // Not sent: alert 6 with the cause, the mail stays spooled.
    d.wait_alert_count("alert", 6, 1);
    let log = d.cli(&["alerts", "-n", "100"]).stdout;
    assert!(log.contains("refused"), "{log}");
    assert!(d.stop_with_sigterm().success());

    // The SMTP server comes; so does the daemon again: the mail goes, once.
    let Some(smtp) = Smtpd::start(&t.join("smtp"), None, &["--port", &port.to_string()]) else {
        return;
    };
    let _d = Daemon::start(&t, &config, "s1");
    let mail = smtp.wait_mail(&["rc 32"]);
    assert!(
        mail.contains("Message-ID:") || mail.contains("Message-Id:"),
        "{mail}"
    );
    // Other mails may follow (the daemon start is not mailed); the failed
    // activation was mailed exactly once.
    let rc32 = smtp.mails().iter().filter(|m| m.contains("rc 32")).count();
    assert_eq!(rc32, 1);
}

/// A mail password file other users can read: `config check` reports it
/// (exit 2) and `run` refuses in one line, in the same words, without a
/// panic and without leaving its control socket behind. Once it is mode
/// 0600 both accept it.
#[test]
fn a_password_file_others_can_read_is_refused_by_check_and_run() {
    let t = TestDir::new("pwfile");
    let pw = t.write("mail.password", "s3cret\n");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = t.write(
        "cluster.ron",
        &t.config(
            &["s1"],
            &format!(
                r#"alerts: (mail: (server: "127.0.0.1", port: 9, recipients: ["ops@example.com"],
                                   title: "understudy it", authentication: Login, user: "alice",
                                   password_file: "{}")),"#,
                pw.display()
            ),
            "",
        ),
    );
    let problem = format!(
        "alerts.mail.password_file: password file {p}: mode 0644 lets other users read it (chmod 600 {p})",
        p = pw.display()
    );

    let check = understudy(&["config", "check", &config.to_string_lossy()]);
    assert_eq!(check.code, Some(2), "{check:?}");
    assert!(
        check.stderr.lines().any(|l| l == problem),
        "expected the line {problem:?}: {check:?}"
    );

    let mut d = Daemon::spawn(&t, &config, "s1");
    let status = d.wait_exit(common::DEADLINE);
    let log = d.log_text();
    assert_eq!(status.code(), Some(2), "{log}");
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [format!("understudy: {problem}")],
        "one line, no panic"
    );
    assert!(!d.socket.exists(), "the control socket is left behind");

    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let check = understudy(&["config", "check", &config.to_string_lossy()]);
    assert!(check.success(), "{check:?}");
    let d = Daemon::start(&t, &std::fs::read_to_string(&config).unwrap(), "s1");
    d.ok(&["status"]);
}

#[test]
fn mail_added_by_an_import_starts_at_once_with_its_password_file() {
    let t = TestDir::new("mailadd");
    let Some(smtp) = Smtpd::start(&t.join("smtp"), None, &["--auth", "login"]) else {
        return;
    };
    // First no mail at all; then an import adds it, its password in a file
    // (read off the actors' thread, with the spool).
    let d = Daemon::start(
        &t,
        &t.config(
            &["s1"],
            "",
            r#"Group(name: "web", startup: Manual, resources: [
               Resource(name: "app", kind: Exec(start: "/bin/false"),
                        activation: (failover_threshold: 0, final_action: NoOperation))])"#,
        ),
        "s1",
    );
    let password = t.join("smtp-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = t.join("alerts.ron");
    assert!(d
        .cli(&["alert", "export", file.to_str().unwrap()])
        .success());
    let exported = std::fs::read_to_string(&file).unwrap();
    let mail = format!(
        r#"mail: (server: "127.0.0.1", port: {port}, recipients: ["ops@example.com"],
                 title: "understudy it", authentication: Login, user: "alice",
                 password_file: "{pw}", response_wait_secs: 5),"#,
        port = smtp.port,
        pw = password.display()
    );
    let added = exported.replacen("mail: None,", &mail, 1);
    let added = if added == exported {
        // Exported without the empty field: add it at the front.
        exported.replacen('(', &format!("({mail}"), 1)
    } else {
        added
    };
    assert_ne!(added, exported, "{exported}");
    std::fs::write(&file, &added).unwrap();
    let out = d.cli(&["alert", "import", file.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("applied at once"), "{out:?}");
    // The new notifier runs, logged in with the password from the file: the
    // resource's failed start (rc 32) is mailed.
    let _ = d.cli(&["group", "start", "web"]);
    smtp.wait_mail(&["rc 32", "resource app"]);
}

#[test]
fn alert_test_uses_only_the_notifiers_this_server_has() {
    // No notifier at all: nothing to test, said so.
    let t = TestDir::new("atnone");
    let d = Daemon::start(
        &t,
        &t.config(&["s1"], "", r#"Group(name: "web", startup: Manual),"#),
        "s1",
    );
    let out = d.cli(&["alert", "test"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no notifier is configured"), "{out:?}");
    drop(d);

    // Mail only: a flag for another notifier sends nothing at all; without
    // flags the mail alone is tested, and the answer says so.
    let t = TestDir::new("atmail");
    let Some(smtp) = Smtpd::start(&t.join("smtp"), None, &["--auth", "login"]) else {
        return;
    };
    let d = Daemon::start(&t, &mail_config(&t, &smtp, ""), "s1");
    for args in [
        &["alert", "test", "--lamp"][..],
        &["alert", "test", "--mail", "--syslog"][..],
    ] {
        let out = d.cli(args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("not configured on this server"),
            "{out:?}"
        );
        assert!(out.stderr.contains("nothing was sent"), "{out:?}");
    }
    let tests_raised = |d: &Daemon| {
        d.alerts_json(100)
            .iter()
            .filter(|a| a["module"] == "alert" && a["event_id"] == 1011)
            .count()
    };
    assert_eq!(tests_raised(&d), 0);
    let out = d.cli(&["alert", "test"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("test alert handed to mail;"), "{out:?}");
    assert!(!out.stdout.contains("syslog"), "{out:?}");
    smtp.wait_mail(&["INFO alert 1011"]);
    assert_eq!(tests_raised(&d), 1);
}

#[test]
fn alert_import_keeps_the_operators_comments_in_the_configuration_file() {
    let t = TestDir::new("keepcomments");
    let text = t.config(
        &["s1"],
        "// alerts: kept as the operator wrote them\n    alerts: (routes: []), // none yet\n",
        r#"Group(name: "web", startup: Manual), // the web tier"#,
    );
    let d = Daemon::start(&t, &text, "s1");
    let file = t.join("alerts.ron");
    assert!(d
        .cli(&["alert", "export", file.to_str().unwrap()])
        .success());
    let exported = std::fs::read_to_string(&file).unwrap();
    let changed = exported.replacen(
        "routes: [",
        r#"routes: [Route(module: "rc", event_id: 10, mail: true),"#,
        1,
    );
    assert_ne!(changed, exported, "{exported}");
    std::fs::write(&file, &changed).unwrap();
    let out = d.cli(&["alert", "import", file.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("applied at once"), "{out:?}");
    let written = std::fs::read_to_string(&d.config).unwrap();
    for kept in [
        "// alerts: kept as the operator wrote them",
        "// none yet",
        "// the web tier",
    ] {
        assert!(written.contains(kept), "{kept} lost:\n{written}");
    }
    assert!(written.contains("event_id: 10"), "{written}");
    // What the file says is what runs: exported again, the new route.
    let again = t.join("again.ron");
    assert!(d
        .cli(&["alert", "export", again.to_str().unwrap()])
        .success());
    assert!(std::fs::read_to_string(&again)
        .unwrap()
        .contains("event_id: 10"));
}
