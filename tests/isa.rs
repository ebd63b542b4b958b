//! The Internet Server Agent (seed 002): `clp_httpmon` and `clp_smtpmon`
//! run through their symlinks against real peers (nginx, aiosmtpd), their
//! identifier registry, their messages (stderr, syslog, the daemon's alert
//! log), and the script templates in a group of a real daemon.
//!
//! Nothing sleeps to synchronise: every wait polls for something
//! observable (a registry entry, a line on stderr, a request in nginx's
//! log, an exit, an alert) with a deadline.

mod common;

use std::process::Command;
use std::time::Duration;

use common::agent::{templates, Agents, Watched};
use common::nginx::{free_port, need_nginx, requests, start_nginx};
use common::smtp::Smtpd;
use common::*;
use serde_json::Value;

const HTTP: &str = "clp_httpmon";
const SMTP: &str = "clp_smtpmon";

/// A monitoring command against nginx on `port`, checking every second.
fn http_watch(a: &Agents, id: &str, port: u16, extra: &[&str]) -> Watched {
    let port = port.to_string();
    let mut args = vec![
        id,
        "-s",
        "127.0.0.1",
        "-n",
        &port,
        "-i",
        "1",
        "-c",
        "1",
        "-r",
        "5",
    ];
    args.extend_from_slice(extra);
    a.spawn(HTTP, &args)
}

/// Stops `id` with `--stop` and checks the command ended with status 0.
fn stop(a: &Agents, name: &str, id: &str, w: &mut Watched) {
    let out = a.run(name, &[id, "--stop"]);
    assert!(out.success(), "{out:?}\n{}", w.stderr_text());
    assert_eq!(w.wait_exit(DEADLINE).code(), Some(0), "{}", w.stderr_text());
    assert!(a.entry(id).is_none(), "the entry of {id} is still there");
    assert!(
        w.stderr_text().contains(&format!("({} 3)", &name[4..])),
        "{}",
        w.stderr_text()
    );
}

// ---------------------------------------------------------------------------
// The command line

#[test]
fn every_option_one_past_its_bounds_is_message_11() {
    let t = TestDir::new("isa-args");
    let a = Agents::new(&t);
    let long = "a".repeat(256);
    let long_uri = format!("/{}", "a".repeat(255));
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (HTTP, vec!["w", "-i", "0"], "-i 0: out of range 1-10000"),
        (
            HTTP,
            vec!["w", "-i", "10001"],
            "-i 10001: out of range 1-10000",
        ),
        (HTTP, vec!["w", "-c", "0"], "-c 0: out of range 1-10000"),
        (
            HTTP,
            vec!["w", "-c", "10001"],
            "-c 10001: out of range 1-10000",
        ),
        (HTTP, vec!["w", "-r", "0"], "-r 0: out of range 1-10000"),
        (
            HTTP,
            vec!["w", "-r", "10001"],
            "-r 10001: out of range 1-10000",
        ),
        (HTTP, vec!["w", "-n", "0"], "-n 0: out of range 1-65535"),
        (
            HTTP,
            vec!["w", "-n", "65536"],
            "-n 65536: out of range 1-65535",
        ),
        (
            HTTP,
            vec!["w", "-s", &long],
            "the server name is 256 bytes long",
        ),
        (
            HTTP,
            vec!["w", "-h", &long_uri],
            "the Request-URI is 256 bytes long",
        ),
        (HTTP, vec!["w", "-h", "index.html"], "starts with '/'"),
        (HTTP, vec!["w", "-v", "2.0"], "1.0 or 1.1"),
        (
            HTTP,
            vec!["w", "--stop", "0"],
            "--stop 0: out of range 1-10000",
        ),
        (
            HTTP,
            vec!["w", "--stop", "10001"],
            "--stop 10001: out of range 1-10000",
        ),
        (HTTP, vec![&long], "the identifier is 256 bytes long"),
        (HTTP, vec!["web-1"], "only letters and digits"),
        (SMTP, vec!["m", "-i", "0"], "-i 0: out of range 1-10000"),
        (
            SMTP,
            vec!["m", "-c", "10001"],
            "-c 10001: out of range 1-10000",
        ),
        (SMTP, vec!["m", "-r", "0"], "-r 0: out of range 1-10000"),
        (SMTP, vec!["m", "-h", "/"], "unknown option -h"),
        (SMTP, vec!["m", "-v", "1.1"], "unknown option -v"),
        (
            SMTP,
            vec!["m", "--pause", "-i", "5"],
            "applies only when monitoring starts",
        ),
    ];
    for (name, args, needle) in cases {
        let out = a.run(name, &args);
        assert_eq!(out.code, Some(2), "{name} {args:?}: {out:?}");
        assert!(
            out.stderr.contains(needle),
            "{name} {args:?}: {}",
            out.stderr
        );
        let module = &name[4..];
        assert!(
            out.stderr.contains(&format!("({module} 11)")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("usage:"), "{}", out.stderr);
    }
    for name in [HTTP, SMTP] {
        let out = a.run(name, &["-i", "5"]);
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(
            out.stderr.contains(&format!("({} 13)", &name[4..])),
            "{}",
            out.stderr
        );
    }
    // Nothing was registered by any of these.
    assert!(!a.registry.exists() || std::fs::read_dir(&a.registry).unwrap().next().is_none());
    // The subcommands take the same command line.
    let out = understudy(&["httpmon", "w", "-i", "0"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("(httpmon 11)"), "{}", out.stderr);
    let out = understudy(&["smtpmon"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("(smtpmon 13)"), "{}", out.stderr);
}

#[test]
fn every_option_at_its_bounds_is_taken() {
    if let Some(m) = need_nginx() {
        return m.skip();
    }
    let t = TestDir::new("isa-bounds");
    let a = Agents::new(&t);
    let port = free_port();
    let _nginx = start_nginx(&t, port);
    let p = port.to_string();
    let id255 = "B".repeat(255);
    let uri255 = format!("/{}", "u".repeat(254));
    let host255 = "h".repeat(255);
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            HTTP,
            vec![
                "low",
                "-s",
                "127.0.0.1",
                "-n",
                &p,
                "-i",
                "1",
                "-c",
                "1",
                "-r",
                "1",
                "-v",
                "1.0",
                "-h",
                "/",
            ],
        ),
        (
            HTTP,
            vec![
                "high",
                "-s",
                "127.0.0.1",
                "-n",
                &p,
                "-i",
                "10000",
                "-c",
                "10000",
                "-r",
                "10000",
                "-v",
                "1.1",
                "-h",
                &uri255,
            ],
        ),
        (HTTP, vec![&id255, "-n", &p]),
        // A 255-byte name is taken; it does not resolve, which ten thousand
        // retries tolerate.
        (
            HTTP,
            vec!["longname", "-s", &host255, "-c", "10000", "-i", "10000"],
        ),
        (HTTP, vec!["port1", "-n", "1", "-c", "10000", "-i", "10000"]),
        (
            SMTP,
            vec!["port65535", "-n", "65535", "-c", "10000", "-i", "10000"],
        ),
    ];
    for (name, args) in runs {
        let id = args[0];
        let mut w = a.spawn(name, &args);
        let entry = a.wait_entry(id, &mut w);
        assert_eq!(entry["pid"].as_u64(), Some(w.pid() as u64), "{entry}");
        assert_eq!(entry["command"], name);
        w.wait_said(&format!("({} 2)", &name[4..]));
        let out = a.run(name, &[id, "--stop", "10000"]);
        assert!(out.success(), "{out:?}");
        assert_eq!(w.wait_exit(DEADLINE).code(), Some(0), "{}", w.stderr_text());
        assert!(a.entry(id).is_none());
    }
    // -i 1 -r 1 with /: nginx saw HEAD requests with both versions.
    let log = std::fs::read_to_string(t.join("access.log")).unwrap();
    assert!(log.contains("HEAD / HTTP/1.0"), "{log}");
    assert!(log.contains(&format!("HEAD {uri255} HTTP/1.1")), "{log}");
}

// ---------------------------------------------------------------------------
// Identifiers

#[test]
fn a_duplicate_identifier_is_refused_and_case_counts() {
    if let Some(m) = need_nginx() {
        return m.skip();
    }
    let t = TestDir::new("isa-dup");
    let a = Agents::new(&t);
    let port = free_port();
    let _nginx = start_nginx(&t, port);
    let mut web = http_watch(&a, "web", port, &[]);
    a.wait_entry("web", &mut web);
    // The same identifier, by either command: message 14, exit status 3.
    for name in [HTTP, SMTP] {
        let out = a.run(name, &["web", "-n", &port.to_string()]);
        assert_eq!(out.code, Some(3), "{out:?}");
        assert!(
            out.stderr.contains(&format!("({} 14)", &name[4..])),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!(
                "used by the monitoring command with pid {}",
                web.pid()
            )),
            "{}",
            out.stderr
        );
    }
    web.assert_running();
    // Another case is another identifier.
    let mut upper = http_watch(&a, "WEB", port, &[]);
    a.wait_entry("WEB", &mut upper);
    stop(&a, HTTP, "WEB", &mut upper);
    stop(&a, HTTP, "web", &mut web);
    // Stopping what is not running is fine (the stop script after an
    // error exit).
    let out = a.run(HTTP, &["web", "--stop"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("not running"), "{out:?}");
}

#[test]
fn kill_9_leaves_the_identifier_for_disp_and_del() {
    if let Some(m) = skip::need_root("--disp and --del need root") {
        return m.skip();
    }
    let t = TestDir::new("isa-kill");
    let a = Agents::new(&t);
    // The SMTP port of a server that is not there: the command retries.
    let mut w = a.spawn(
        SMTP,
        &["mail1", "-n", &free_port().to_string(), "-c", "10000"],
    );
    a.wait_entry("mail1", &mut w);
    let pid = w.pid();
    let out = a.run(SMTP, &["mail1", "--disp"]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!("pid         {pid}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("state       monitoring"),
        "{}",
        out.stdout
    );
    // --del refuses a live command.
    let out = a.run(SMTP, &["mail1", "--del"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("--stop"), "{out:?}");

    w.kill9();
    // The entry survives, names the dead pid, and keeps the identifier.
    let out = a.run(SMTP, &["mail1", "--disp"]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!("pid         {pid}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("stale"), "{}", out.stdout);
    let out = a.run(SMTP, &["mail1", "-n", "25"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("(smtpmon 14)"), "{}", out.stderr);
    assert!(out.stderr.contains("no longer"), "{}", out.stderr);
    // --stop cannot end it (message 15) and leaves the entry.
    let out = a.run(SMTP, &["mail1", "--stop", "1"]);
    assert_eq!(out.code, Some(5), "{out:?}");
    assert!(out.stderr.contains("(smtpmon 15)"), "{}", out.stderr);
    assert!(a.entry("mail1").is_some());
    // --del clears it; the identifier is free again.
    let out = a.run(SMTP, &["mail1", "--del"]);
    assert!(out.success(), "{out:?}");
    assert!(a.entry("mail1").is_none());
    let out = a.run(SMTP, &["mail1", "--disp"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    let mut again = a.spawn(
        SMTP,
        &["mail1", "-n", &free_port().to_string(), "-c", "10000"],
    );
    a.wait_entry("mail1", &mut again);
    stop(&a, SMTP, "mail1", &mut again);
}

#[test]
fn pause_resume_disp_del_need_root() {
    if let Some(m) = need_switch_user() {
        return m.skip();
    }
    let t = TestDir::new("isa-nobody");
    let a = Agents::new(&t);
    for action in ["--pause", "--resume", "--disp", "--del"] {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(a.bin.join(HTTP))
            .args(["web", action])
            .envs(a.env());
        let out = run_cmd(&mut cmd);
        assert_eq!(out.code, Some(4), "{action}: {out:?}");
        assert!(out.stderr.contains("need root"), "{out:?}");
    }
}

// ---------------------------------------------------------------------------
// Monitoring

#[test]
fn pause_and_resume() {
    if let Some(m) = need_nginx() {
        return m.skip();
    }
    if let Some(m) = skip::need_root("--pause and --resume need root") {
        return m.skip();
    }
    let t = TestDir::new("isa-pause");
    let a = Agents::new(&t);
    let port = free_port();
    let _nginx = start_nginx(&t, port);
    let mut paused = http_watch(&a, "paused", port, &["-h", "/a"]);
    // A second command on / is the clock: its requests show that time
    // passes while the first is paused (for / a 503 is no error).
    let mut clock = http_watch(&a, "clock", port, &[]);
    a.wait_entry("paused", &mut paused);
    a.wait_entry("clock", &mut clock);
    wait_for("a check of /a", DEADLINE, || requests(&t, "/a") >= 1);

    let out = a.run(HTTP, &["paused", "--pause"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(a.entry("paused").unwrap()["paused"], true);
    paused.wait_said("(httpmon 7)");
    let out = a.run(HTTP, &["paused", "--disp"]);
    assert!(out.stdout.contains("state       paused"), "{out:?}");
    // /a is answered 503 meanwhile (an error for a URI other than /): a
    // paused command does not check, so does not notice.
    std::fs::write(t.join("fail"), "").unwrap();
    let seen = requests(&t, "/a");
    let clock_seen = requests(&t, "/");
    wait_for("three checks of the clock", DEADLINE, || {
        requests(&t, "/") >= clock_seen + 3
    });
    assert_eq!(requests(&t, "/a"), seen, "checks while paused");
    paused.assert_running();
    stop(&a, HTTP, "clock", &mut clock);
    // Resumed, it checks at once and ends (-c 1: two failed checks).
    let out = a.run(HTTP, &["paused", "--resume"]);
    assert!(out.success(), "{out:?}");
    paused.wait_said("(httpmon 8)");
    assert_eq!(
        paused.wait_exit(DEADLINE).code(),
        Some(1),
        "{}",
        paused.stderr_text()
    );
    let said = paused.stderr_text();
    assert!(
        said.contains("(httpmon 83)") && said.contains("503"),
        "{said}"
    );
    assert!(said.contains("(httpmon 6)"), "{said}");
    assert!(a.entry("paused").is_none());
}

#[test]
fn http_uri_rules_and_error_exit() {
    if let Some(m) = need_nginx() {
        return m.skip();
    }
    let t = TestDir::new("isa-http");
    let a = Agents::new(&t);
    let port = free_port();
    let mut nginx = start_nginx(&t, port);
    // Without -h, and with -h /, any HTTP reply will do, even a 503; with
    // another URI a 4xx / 5xx is an error.
    let mut root = http_watch(&a, "root", port, &[]);
    let mut slash = http_watch(&a, "slash", port, &["-h", "/", "-v", "1.0"]);
    let mut health = http_watch(&a, "health", port, &["-h", "/health"]);
    for (id, w) in [
        ("root", &mut root),
        ("slash", &mut slash),
        ("health", &mut health),
    ] {
        a.wait_entry(id, w);
    }
    std::fs::write(t.join("fail"), "").unwrap();
    assert_eq!(
        health.wait_exit(DEADLINE).code(),
        Some(1),
        "{}",
        health.stderr_text()
    );
    let said = health.stderr_text();
    assert!(
        said.contains("(httpmon 83)") && said.contains("(500)"),
        "{said}"
    );
    assert!(said.contains("(httpmon 6)"), "{said}");
    assert!(a.entry("health").is_none());
    let seen = requests(&t, "/");
    wait_for("four more checks of /", DEADLINE, || {
        requests(&t, "/") >= seen + 4
    });
    root.assert_running();
    slash.assert_running();
    // nginx stops: connect errors (72), then the exit (6), status 1.
    nginx.kill();
    for w in [&mut root, &mut slash] {
        assert_eq!(w.wait_exit(DEADLINE).code(), Some(1), "{}", w.stderr_text());
        let said = w.stderr_text();
        assert!(
            said.contains("(httpmon 72)") && said.contains("connection refused"),
            "{said}"
        );
        assert!(said.contains("(httpmon 6)"), "{said}");
    }
    assert!(a.entry("root").is_none() && a.entry("slash").is_none());
}

#[test]
fn smtp_noop_timeouts_and_error_exit() {
    let t = TestDir::new("isa-smtp");
    let a = Agents::new(&t);
    let Some(smtpd) = Smtpd::start(&t.join("smtpd"), None, &[]) else {
        return;
    };
    let mut mail = a.spawn(
        SMTP,
        &[
            "mail",
            "-s",
            "127.0.0.1",
            "-n",
            &smtpd.port.to_string(),
            "-i",
            "1",
            "-c",
            "2",
            "-r",
            "5",
        ],
    );
    a.wait_entry("mail", &mut mail);
    mail.wait_said("(smtpmon 2)");
    // A server that never greets: the response wait runs out (74).
    let Some(silent) = Smtpd::start(&t.join("silent"), None, &["--silent"]) else {
        return;
    };
    let mut quiet = a.spawn(
        SMTP,
        &[
            "quiet",
            "-n",
            &silent.port.to_string(),
            "-i",
            "1",
            "-c",
            "1",
            "-r",
            "1",
        ],
    );
    assert_eq!(
        quiet.wait_exit(DEADLINE).code(),
        Some(1),
        "{}",
        quiet.stderr_text()
    );
    let said = quiet.stderr_text();
    assert!(
        said.contains("(smtpmon 74)") && said.contains("no answer within 1 s"),
        "{said}"
    );
    mail.assert_running();
    assert!(
        !mail.stderr_text().contains("(smtpmon 7"),
        "{}",
        mail.stderr_text()
    );
    // The SMTP server goes away: three failed checks (-c 2), then the exit.
    drop(smtpd);
    assert_eq!(
        mail.wait_exit(DEADLINE).code(),
        Some(1),
        "{}",
        mail.stderr_text()
    );
    let said = mail.stderr_text();
    assert_eq!(said.matches("(smtpmon 72)").count(), 3, "{said}");
    assert!(said.contains("3 checks in a row"), "{said}");
    assert!(a.entry("mail").is_none());
}

#[test]
fn stop_ends_the_command() {
    let t = TestDir::new("isa-stop");
    let a = Agents::new(&t);
    let Some(smtpd) = Smtpd::start(&t.join("smtpd"), None, &[]) else {
        return;
    };
    let mut w = a.spawn(SMTP, &["m1", "-n", &smtpd.port.to_string(), "-i", "10000"]);
    a.wait_entry("m1", &mut w);
    w.wait_said("(smtpmon 2)");
    stop(&a, SMTP, "m1", &mut w);
    // As `understudy smtpmon` too.
    let mut w = a.spawn(SMTP, &["m2", "-n", &smtpd.port.to_string(), "-i", "10000"]);
    a.wait_entry("m2", &mut w);
    let mut cmd = Command::new(BIN);
    cmd.args(["smtpmon", "m2", "--stop", "5"]).envs(a.env());
    let out = run_cmd(&mut cmd);
    assert!(out.success(), "{out:?}");
    assert_eq!(w.wait_exit(DEADLINE).code(), Some(0));
}

// ---------------------------------------------------------------------------
// Where messages go

#[test]
fn without_a_daemon_messages_go_to_syslog() {
    let t = TestDir::new("isa-syslog");
    let a = Agents::new(&t);
    let receiver = a.syslog_receiver();
    let out = a.run(HTTP, &["web", "-i", "0"]);
    assert_eq!(out.code, Some(2));
    let mut buf = [0u8; 2048];
    let n = receiver.recv(&mut buf).expect("a syslog line");
    let line = String::from_utf8_lossy(&buf[..n]);
    // Facility daemon (3), severity error (3): PRI 27.
    assert!(line.starts_with("<27>"), "{line}");
    assert!(line.contains("clp_httpmon["), "{line}");
    assert!(line.contains("httpmon11"), "{line}");
    assert!(
        line.contains("-i 0: out of range 1-10000 [ID: web]"),
        "{line}"
    );
}

fn agent_alerts(d: &Daemon, module: &str) -> Vec<(u64, String)> {
    d.alerts_json(1000)
        .iter()
        .filter(|a| a["module"] == module)
        .map(|a| {
            (
                a["event_id"].as_u64().unwrap_or(0),
                a["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn wait_agent_alert(d: &Daemon, module: &str, id: u64) -> String {
    let mut found = None;
    wait_for(&format!("alert {module} {id}"), DEADLINE, || {
        found = agent_alerts(d, module)
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, m)| m);
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn with_a_daemon_messages_reach_the_alert_log() {
    let t = TestDir::new("isa-alerts");
    let mut a = Agents::new(&t);
    let d = Daemon::start(&t, &t.config(&["s1"], "", ""), "s1");
    a.socket = d.socket.clone();
    let receiver = a.syslog_receiver();
    receiver
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let Some(smtpd) = Smtpd::start(&t.join("smtpd"), None, &[]) else {
        return;
    };
    let mut w = a.spawn(
        SMTP,
        &["mail", "-n", &smtpd.port.to_string(), "-i", "1", "-c", "1"],
    );
    let started = wait_agent_alert(&d, "smtpmon", 1);
    assert!(started.ends_with("[ID: mail]"), "{started}");
    let begun = wait_agent_alert(&d, "smtpmon", 2);
    assert!(
        begun.contains(&format!("127.0.0.1:{}", smtpd.port)) || begun.contains("localhost"),
        "{begun}"
    );
    drop(smtpd);
    assert_eq!(w.wait_exit(DEADLINE).code(), Some(1), "{}", w.stderr_text());
    let cause = wait_agent_alert(&d, "smtpmon", 72);
    assert!(cause.contains("connection refused"), "{cause}");
    wait_agent_alert(&d, "smtpmon", 6);
    let rows = d.alerts_json(1000);
    let row = rows
        .iter()
        .find(|r| r["module"] == "smtpmon" && r["event_id"] == 6)
        .unwrap();
    assert_eq!(row["level"], "Error", "{row}");
    // A bad command line reaches the alert log too; nothing went to syslog.
    let out = a.run(HTTP, &["web", "-c", "10001"]);
    assert_eq!(out.code, Some(2));
    let bad = wait_agent_alert(&d, "httpmon", 11);
    assert!(bad.contains("-c 10001"), "{bad}");
    let mut buf = [0u8; 64];
    assert!(
        receiver.recv(&mut buf).is_err(),
        "a syslog line while the daemon runs"
    );
    // `understudy alerts` shows them as the other alerts.
    let text = d.ok(&["alerts", "-n", "100"]);
    assert!(text.contains("smtpmon 6"), "{text}");
}

// ---------------------------------------------------------------------------
// The script templates

#[test]
fn the_template_configuration_passes_config_check() {
    let file = templates().join("internet-server-agent.ron");
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    for dir in ["http", "http-mon", "smtp", "smtp-mon"] {
        for script in ["start.sh", "stop.sh"] {
            let path = templates().join(dir).join(script);
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path).unwrap().permissions(),
            );
            assert!(mode & 0o111 != 0, "{} is not executable", path.display());
        }
    }
}

/// Runs a template with the `CLP_*` values given and `extra` settings.
fn template(dir: &str, script: &str, clp: [&str; 3], extra: &[(&str, &str)]) -> CmdOut {
    let mut cmd = Command::new(templates().join(dir).join(script));
    cmd.env_remove("CLP_EVENT")
        .env_remove("CLP_DISK")
        .env_remove("CLP_SERVER");
    for (name, value) in ["CLP_EVENT", "CLP_DISK", "CLP_SERVER"].iter().zip(clp) {
        if !value.is_empty() {
            cmd.env(name, value);
        }
    }
    cmd.envs(extra.iter().copied());
    run_cmd(&mut cmd)
}

#[test]
fn the_templates_branch_on_clp_event_disk_and_server() {
    let run = [("HTTPD_START", "echo DAEMON-STARTED")];
    let out = template("http", "start.sh", ["START", "SUCCESS", "HOME"], &run);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("ordinary start on its home server"),
        "{out:?}"
    );
    assert!(out.stdout.contains("DAEMON-STARTED"), "{out:?}");
    let out = template("http", "start.sh", ["FAILOVER", "SUCCESS", "OTHER"], &run);
    assert!(
        out.stdout.contains("failover start on another server"),
        "{out:?}"
    );
    assert!(out.stdout.contains("DAEMON-STARTED"), "{out:?}");
    let out = template("http", "start.sh", ["FAILOVER", "FAILURE", "HOME"], &run);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("disks failed"), "{out:?}");
    assert!(!out.stdout.contains("DAEMON-STARTED"), "{out:?}");
    let out = template("http", "start.sh", ["", "", ""], &run);
    assert!(out.stdout.contains("not run by understudy"), "{out:?}");
    assert!(!out.stdout.contains("DAEMON-STARTED"), "{out:?}");
    // The daemon's start failing fails the script.
    let out = template(
        "smtp",
        "start.sh",
        ["START", "SUCCESS", "HOME"],
        &[("SMTPD_START", "false")],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let out = template(
        "smtp",
        "stop.sh",
        ["START", "SUCCESS", "OTHER"],
        &[("SMTPD_STOP", "echo DAEMON-STOPPED")],
    );
    assert!(
        out.stdout.contains("ordinary stop on another server")
            && out.stdout.contains("DAEMON-STOPPED"),
        "{out:?}"
    );
    // A daemon that is gone already does not fail the stop.
    let out = template(
        "smtp",
        "stop.sh",
        ["FAILOVER", "SUCCESS", "HOME"],
        &[("SMTPD_STOP", "false")],
    );
    assert!(out.success(), "{out:?}");
    // The monitoring stop script of a command that is not running.
    let t = TestDir::new("isa-tpl");
    let a = Agents::new(&t);
    let mut env: Vec<(String, String)> = a.env();
    env.push(("IDENTIFIER".into(), "nothere".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = template("http-mon", "stop.sh", ["START", "SUCCESS", "HOME"], &env);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("nothere is not running"), "{out:?}");
}

/// The seed's chapter 4 on one server: exec 1 starts nginx through the
/// HTTP templates, exec 2 runs `clp_httpmon` through the monitoring
/// templates, a pid monitor watches exec 2. Stopping nginx ends
/// `clp_httpmon`, the pid monitor turns Error and the recovery runs (here
/// the final action, stop the group: there is no other server).
#[test]
fn templates_in_a_group_turn_a_dead_daemon_into_recovery() {
    if let Some(m) = need_nginx() {
        return m.skip();
    }
    let t = TestDir::new("isa-group");
    let a = Agents::new(&t);
    let port = free_port();
    // nginx as a daemon of its own (master process, pid file), started and
    // stopped by the templates.
    let dir = t.path().display().to_string();
    std::fs::create_dir_all(t.join("tmp")).unwrap();
    let conf = t.write(
        "nginx-daemon.conf",
        &format!(
            r#"daemon on;
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200; }} }}
}}
"#
        ),
    );
    let nginx = format!(
        "{} -p {dir}/ -e {dir}/error.log -c {}",
        common::nginx::NGINX,
        conf.display()
    );
    let tpl = templates().display().to_string();
    let groups = format!(
        r#"Group(name: "web", startup: Manual, resources: [
            Resource(name: "httpd", kind: Exec(start: "{tpl}/http/start.sh", stop: Some("{tpl}/http/stop.sh"))),
            Resource(name: "httpmon",
                kind: Exec(start: "{tpl}/http-mon/start.sh", stop: Some("{tpl}/http-mon/stop.sh"), start_mode: Async),
                depends: Some(["httpd"]),
                activation: (retry: 0, failover_threshold: 0, final_action: StopGroup)),
        ]),"#
    );
    let monitors = r#"monitors: [Monitor(name: "httpmonw", kind: Pid(), target: "httpmon", interval: 1, retry: 0,
        recovery: (target: Group("web"), reactivation_threshold: 0, failover_threshold: 1, final_action: StopGroup))],"#;
    let mut env = a.env();
    env.extend([
        ("HTTPD_START".to_string(), nginx.clone()),
        ("HTTPD_STOP".to_string(), format!("{nginx} -s stop")),
        ("IDENTIFIER".to_string(), "httpwatch".to_string()),
        (
            "OPTIONS".to_string(),
            format!("-s 127.0.0.1 -n {port} -i 1 -c 1 -r 2"),
        ),
    ]);
    let d = Daemon::start_with_env(&t, &t.config(&["s1"], monitors, &groups), "s1", &env);
    d.ok(&["group", "start", "web"]);
    d.wait_group_state("web", "Online");
    // Verification 1: started, messages 1 and 2.
    wait_agent_alert(&d, "httpmon", 1);
    wait_agent_alert(&d, "httpmon", 2);
    let entry = a.entry("httpwatch").expect("httpwatch registered");
    // Verification 2: the group stops, message 3, the identifier is free.
    d.ok(&["group", "stop", "web"]);
    d.wait_group_state("web", "Offline");
    wait_agent_alert(&d, "httpmon", 3);
    assert!(a.entry("httpwatch").is_none(), "still registered");
    assert!(!pid_alive(entry["pid"].as_u64().unwrap() as u32));
    // The error path: nginx stops behind the cluster's back.
    d.ok(&["group", "start", "web"]);
    d.wait_group_state("web", "Online");
    d.wait_monitor_state("httpmonw", "Normal");
    let out = run_cmd(Command::new("sh").args(["-c", &format!("{nginx} -s stop")]));
    assert!(out.success(), "{out:?}");
    let cause = wait_agent_alert(&d, "httpmon", 72);
    assert!(cause.contains("[ID: httpwatch]"), "{cause}");
    wait_agent_alert(&d, "httpmon", 6);
    d.wait_monitor_alert("httpmonw", 9, 1);
    d.wait_group_state("web", "Offline");
    let alerts: Vec<Value> = d.alerts_json(1000);
    assert!(has_alert(&alerts, "rm", 9), "{}", describe_alerts(&alerts));
    // The stop scripts of the dead daemon and of the ended command pass.
    assert!(
        !has_alert(&alerts, "rc", 42),
        "{}",
        describe_alerts(&alerts)
    );
    assert!(
        a.entry("httpwatch").is_none(),
        "still registered after the error exit"
    );
}

// ---------------------------------------------------------------------------
// Install

#[test]
fn install_provides_the_command_names_and_templates() {
    let t = TestDir::new("isa-install");
    let prefix = t.join("prefix");
    let out = run_cmd(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/install")).args([
            "--prefix",
            prefix.to_str().unwrap(),
            "--binary",
            BIN,
        ]),
    );
    assert!(out.success(), "{out:?}");
    for name in [
        "understudy",
        "clp_httpmon",
        "clp_smtpmon",
        "clpstat",
        "clpgrp",
        "clpcl",
        "clpmonctrl",
        "clpdown",
        "clpstdn",
        "clpcfctrl",
        "clpdn1000s",
        "clplogcmd",
    ] {
        assert!(
            prefix.join("sbin").join(name).exists(),
            "{name} missing: {out:?}"
        );
    }
    assert!(prefix
        .join("share/understudy/templates/http-mon/start.sh")
        .is_file());
    assert!(prefix
        .join("share/understudy/templates/internet-server-agent.ron")
        .is_file());
    let out =
        run_cmd(Command::new(prefix.join("sbin/clp_smtpmon")).env_remove("UNDERSTUDY_SOCKET"));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("usage: clp_smtpmon"), "{out:?}");
    let out = run_cmd(
        Command::new(prefix.join("sbin/clplogcmd"))
            .args(["-m", "x", "-l", "DEBUG"])
            .env_remove("UNDERSTUDY_SOCKET"),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.starts_with("clplogcmd: -l:") && out.stderr.contains("understudy log"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------------------
// The README's demo

/// `tools/demo-cluster` as a user runs it (the README's "What the demo
/// shows"): in a two-server lab, stopping the HTTP server on n1 ends
/// `clp_httpmon`, the pid monitor on its exec resource turns Error and the
/// group fails over to n2, where the client then gets its answers.
#[test]
fn the_demo_fails_the_group_over_when_clp_httpmon_exits() {
    if let Some(m) = common::cluster::lab_unavailable() {
        return m.skip();
    }
    let t = TestDir::new("demo");
    // us-demo-PID-N-: the lab tests' namespace names, which they reap
    // when a test process died and left them.
    let prefix = format!("{}-", t.path().file_name().unwrap().to_string_lossy());
    let out = run_cmd(
        Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/demo-cluster"))
            .env("UNDERSTUDY_BIN", BIN)
            .env("LAB_PREFIX", &prefix)
            .env("LAB_STATE", t.join("lab")),
    );
    assert!(out.success(), "{out:?}");
    let failover = out
        .stdout
        .split("== the HTTP server stops on n1")
        .nth(1)
        .and_then(|s| s.split("== kill -9").next())
        .unwrap_or_else(|| panic!("no clp_httpmon section: {}", out.stdout));
    for said in [
        "the group was online on n2 ",
        "fetch 198.51.100.50:8080\nn2\n",
        "clp_httpmon webwatch ended with exit status 1",
    ] {
        assert!(failover.contains(said), "{said:?} not in:\n{failover}");
    }
    // The chain of alerts, in order: the command's error exit on n1, the
    // pid monitor's error there, the failover completed on n2.
    let mut rest = failover;
    for alert in [
        "n1         ERROR httpmon 6    clp_httpmon found the HTTP daemon failing",
        "n1         ERROR rm 9    monitor httpmonw: error detected",
        "n1         INFO  rc 60   group web: failover from n1 to n2 started",
        "n2         INFO  rc 61   group web: failover completed",
    ] {
        let at = rest
            .find(alert)
            .unwrap_or_else(|| panic!("{alert:?} not after the alerts before it in:\n{failover}"));
        rest = &rest[at..];
    }
    // The group is on n2, its monitor watching the new clp_httpmon.
    let status = rest.split("status\n").nth(1).unwrap_or_default();
    assert!(
        status.contains("web                  Online           current: n2"),
        "{failover}"
    );
}
