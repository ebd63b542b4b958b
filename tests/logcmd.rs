//! `clplogcmd` (ExpressCluster's command name, a symlink to the binary as
//! `tools/install` makes it) and `understudy log`: a message with its level
//! in `understudy alerts` through a real daemon, in a real syslog (a
//! private rsyslogd), and the one-line errors of bad command lines.
//!
//! Nothing sleeps to synchronise: every wait polls for something
//! observable (an alert, a line in rsyslogd's output) with a deadline.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::rsyslog::{need_rsyslogd, Rsyslogd};
use common::*;

/// `t/bin/clplogcmd`, a symlink to the binary under test.
fn clplogcmd_link(t: &TestDir) -> PathBuf {
    let bin = t.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("clplogcmd");
    if !link.exists() {
        std::os::unix::fs::symlink(BIN, &link).unwrap();
    }
    link
}

/// `clplogcmd ARGS...` with this control socket and syslog socket.
fn clplogcmd(t: &TestDir, socket: &Path, syslog: &Path, args: &[&str]) -> CmdOut {
    run_cmd(
        Command::new(clplogcmd_link(t))
            .args(args)
            .env("UNDERSTUDY_SOCKET", socket)
            .env("UNDERSTUDY_SYSLOG_SOCKET", syslog),
    )
}

/// The `logcmd` alerts of `understudy alerts --json`: (level, message).
fn logged(d: &Daemon) -> Vec<(String, String)> {
    d.alerts_json(1000)
        .iter()
        .filter(|a| a["module"] == "logcmd")
        .map(|a| {
            assert_eq!(a["event_id"], 1000, "{a}");
            (
                a["level"].as_str().unwrap_or_default().to_string(),
                a["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A datagram socket where the commands would send syslog lines, and
/// which must stay silent.
fn quiet_syslog(t: &TestDir) -> (UnixDatagram, PathBuf) {
    let path = t.join("syslog.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    (sock, path)
}

/// From a script the daemon runs, from the shell, as `clplogcmd` and as
/// `understudy log`: each message is in `understudy alerts` with its level,
/// module `logcmd`, id 1000. `--alert` alone writes nothing to syslog.
#[test]
fn alert_messages_show_in_understudy_alerts_with_their_level() {
    let t = TestDir::new("logcmd-alert");
    let link = clplogcmd_link(&t);
    let (syslog, syslog_path) = quiet_syslog(&t);
    t.script(
        "app.sh",
        r#"clplogcmd -m "app of group $CLP_GROUPNAME started ($CLP_EVENT)" -l WARN --alert"#,
    );
    let path = format!(
        "{}:{}",
        link.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let d = Daemon::start_with_env(
        &t,
        &t.config(
            &["s1"],
            "",
            r#"Group(name: "web", startup: Manual, resources: [
                   Resource(name: "app", kind: Exec(start: "app.sh"))])"#,
        ),
        "s1",
        &[
            ("PATH".into(), path),
            (
                "UNDERSTUDY_SYSLOG_SOCKET".into(),
                syslog_path.display().to_string(),
            ),
        ],
    );
    // A script run by the daemon finds it through UNDERSTUDY_SOCKET.
    d.ok(&["group", "start", "web"]);
    let out = clplogcmd(
        &t,
        &d.socket,
        &syslog_path,
        &[
            "-m",
            "nightly backup failed: disk full",
            "-l",
            "ERR",
            "--alert",
        ],
    );
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "", "clplogcmd prints nothing on success");
    assert_eq!(out.stderr, "", "{out:?}");
    // The longest message taken, whole.
    let longest = format!("{}.", "x".repeat(510));
    let out = clplogcmd(&t, &d.socket, &syslog_path, &["--alert", "-m", &longest]);
    assert!(out.success(), "{out:?}");
    let out = run_cmd(
        Command::new(BIN)
            .args(["--socket", d.socket.to_str().unwrap()])
            .args(["log", "--message", "checked by hand", "--alert"])
            .env("UNDERSTUDY_SYSLOG_SOCKET", &syslog_path),
    );
    assert!(out.success(), "{out:?}");

    let mut got = Vec::new();
    wait_for("four logcmd alerts", DEADLINE, || {
        got = logged(&d);
        got.len() >= 4
    });
    let want = [
        ("Warning", "app of group web started (START)".to_string()),
        ("Error", "nightly backup failed: disk full".to_string()),
        ("Info", longest.clone()),
        ("Info", "checked by hand".to_string()),
    ];
    let got_ref: Vec<(&str, String)> = got.iter().map(|(l, m)| (l.as_str(), m.clone())).collect();
    assert_eq!(got_ref, want);
    // As the operator reads them.
    let text = d.ok(&["alerts", "-n", "100"]);
    for line in [
        "WARN  logcmd 1000 app of group web started (START)",
        "ERROR logcmd 1000 nightly backup failed: disk full",
        "INFO  logcmd 1000 checked by hand",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let mut buf = [0u8; 64];
    assert!(
        syslog.recv(&mut buf).is_err(),
        "--alert alone wrote to syslog"
    );
}

/// `--syslog` reaches a real syslog daemon (rsyslogd) with its level as
/// the severity, facility daemon, tag `clplogcmd`; without `--alert` and
/// `--syslog` both are written; without a daemon the alert log cannot
/// take the message: one line says so, exit status 5, syslog has it.
#[test]
fn syslog_messages_reach_rsyslogd_and_a_missing_daemon_is_exit_5() {
    let rsyslogd = match need_rsyslogd() {
        Ok(bin) => bin,
        Err(missing) => return missing.skip(),
    };
    let t = TestDir::new("logcmd-syslog");
    let r = Rsyslogd::start(&rsyslogd, &t.join("rsyslog"));
    let no_daemon = t.join("no-daemon.sock");

    let out = clplogcmd(
        &t,
        &no_daemon,
        &r.socket,
        &["-m", "db1 failover rehearsal", "-l", "WARN", "--syslog"],
    );
    assert!(out.success(), "{out:?}");
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let line = r.wait_line("db1 failover rehearsal");
    assert!(line.starts_with("pri=daemon.warning "), "{line}");
    assert!(line.contains(" tag=clplogcmd["), "{line}");
    assert!(line.contains("logcmd1000"), "{line}");

    // Neither --alert nor --syslog: both; the alert log needs the daemon.
    let out = clplogcmd(&t, &no_daemon, &r.socket, &["-m", "db1 lost", "-l", "err"]);
    assert_eq!(out.code, Some(5), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.contains("not written to the alert log")
            && out.stderr.contains("daemon is not running")
            && out.stderr.contains("(syslog has it)"),
        "{out:?}"
    );
    let line = r.wait_line("db1 lost");
    assert!(line.starts_with("pri=daemon.err "), "{line}");

    // --alert alone without a daemon: exit 5, and nothing in syslog (a
    // later --syslog message arrives, the earlier one never did).
    let out = clplogcmd(
        &t,
        &no_daemon,
        &r.socket,
        &["-m", "only for the log", "--alert"],
    );
    assert_eq!(out.code, Some(5), "{out:?}");
    assert!(!out.stderr.contains("syslog has it"), "{out:?}");
    let out = run_cmd(
        Command::new(BIN)
            .args(["log", "-m", "marker after", "--syslog"])
            .env("UNDERSTUDY_SOCKET", &no_daemon)
            .env("UNDERSTUDY_SYSLOG_SOCKET", &r.socket),
    );
    assert!(out.success(), "{out:?}");
    let line = r.wait_line("marker after");
    assert!(line.starts_with("pri=daemon.info "), "{line}");
    assert!(line.contains(" tag=understudy["), "{line}");
    assert!(
        !r.contents().contains("only for the log"),
        "{}",
        r.contents()
    );

    // No syslog daemon on the socket: exit 1, one line naming the socket.
    let gone = t.join("no-syslog.sock");
    let out = clplogcmd(&t, &no_daemon, &gone, &["-m", "lost", "--syslog"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.contains("not written to syslog") && out.stderr.contains("no-syslog.sock"),
        "{out:?}"
    );
}

/// Options `clplogcmd` does not take, a bad level, a missing, empty or too
/// long message: one line naming `understudy log`, exit status 2, nothing
/// written anywhere.
#[test]
fn bad_command_lines_are_one_line_and_exit_2() {
    let t = TestDir::new("logcmd-bad");
    let (syslog, syslog_path) = quiet_syslog(&t);
    let d = Daemon::start(&t, &t.config(&["s1"], "", ""), "s1");
    let too_long = "y".repeat(512);
    for (args, says) in [
        (vec!["--alert"], "-m MESSAGE is required"),
        (vec!["-m"], "-m needs a value"),
        (
            vec!["-m", "x", "-l", "DEBUG"],
            "\"DEBUG\" is not INFO, WARN or ERR",
        ),
        (vec!["-m", "x", "--mail"], "--mail is not supported"),
        (vec!["-m", "x", "-i", "7"], "-i is not supported"),
        (vec!["-m", "x", "-m", "y"], "-m is given twice"),
        (vec!["-m", "x", "-t"], "-t is not supported"),
    ] {
        let out = clplogcmd(&t, &d.socket, &syslog_path, &args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(says) && out.stderr.contains("understudy log --message TEXT"),
            "{args:?}: {out:?}"
        );
    }
    for (message, says) in [
        (
            too_long.as_str(),
            "the message is 512 bytes long; at most 511 are taken",
        ),
        ("", "the message is empty"),
    ] {
        let out = clplogcmd(&t, &d.socket, &syslog_path, &["-m", message]);
        assert_eq!(out.code, Some(2), "{out:?}");
        assert_eq!(out.stderr.trim(), format!("clplogcmd: {says}"), "{out:?}");
    }
    // `understudy log` checks the same.
    let out = d.cli(&["log", "--message", &too_long, "--alert"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("at most 511"), "{out:?}");
    // Nothing reached the alert log or syslog.
    assert_eq!(logged(&d), vec![]);
    let mut buf = [0u8; 64];
    assert!(syslog.recv(&mut buf).is_err(), "a syslog line");
}
