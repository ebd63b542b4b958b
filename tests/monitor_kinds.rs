//! End-to-end tests of the monitor kinds with the real binary, each against
//! a real peer: nginx (http), aiosmtpd (smtp), a listening socket (tcp),
//! scripts (custom), a process (process), the machine's own memory (system)
//! and the daemon's own liveness (userspace). Tests whose peer is not
//! installed skip with a printed reason.
//!
//! Every wait is for something observable (a state, an alert, a file, a port
//! that accepts), with a deadline; nothing sleeps to synchronise and nothing
//! asserts on timing. Every process a test starts is killed when its guard
//! drops.

mod common;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::nginx::{free_port, start_nginx, wait_listening, NGINX};
use common::*;
use serde_json::Value;

/// A port on 127.0.0.1 that refuses connections for as long as this is
/// held: a TCP socket bound to it that does not listen (so no other test
/// can take the port meanwhile).
struct ClosedPort {
    _socket: OwnedFd,
    port: u16,
}

fn closed_port() -> ClosedPort {
    // SAFETY: plain socket calls on a descriptor owned here, with a
    // sockaddr_in of the size passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let socket = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let at = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
        assert_eq!(
            libc::bind(fd, at, len),
            0,
            "bind: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(
            libc::getsockname(fd, at, &mut len),
            0,
            "getsockname: {}",
            std::io::Error::last_os_error()
        );
        ClosedPort {
            _socket: socket,
            port: u16::from_be(addr.sin_port),
        }
    }
}

/// A monitor that only detects: its recovery target is the local server
/// with the default final action (no operation), so an error is an alert.
fn detector(name: &str, kind: &str) -> String {
    format!(
        r#"Monitor(name: "{name}", kind: {kind}, interval: 1, timeout: 10, retry: 0,
                   recovery: (target: LocalServer)),"#
    )
}

/// A configuration of server s1 with these monitors and no group.
fn monitors_only(t: &TestDir, monitors: &[String]) -> String {
    t.config(&["s1"], &format!("monitors: [{}],", monitors.concat()), "")
}

/// The monitor's `last_error` (empty when there is none).
fn last_error(d: &Daemon, monitor: &str) -> String {
    d.monitor(monitor)["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Checks started so far by every monitor of the daemon (`monitor stats`).
fn checks_started(d: &Daemon) -> u64 {
    let text = d.ok(&["monitor", "stats", "--json"]);
    let stats: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    stats["checks"]
        .as_u64()
        .unwrap_or_else(|| panic!("no checks in {stats}"))
}

/// The status code of `HEAD uri` on 127.0.0.1:`port`, from the test itself.
fn head_status(port: u16, uri: &str) -> u16 {
    use std::io::{Read, Write};
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(conn, "HEAD {uri} HTTP/1.0\r\n\r\n").expect("send");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).expect("read");
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

// ---------------------------------------------------------------------------
// http

#[test]
fn http_monitor_against_nginx() {
    if !Path::new(NGINX).is_file() {
        return skip::missing(
            "nginx",
            format!("{NGINX} is not installed (Debian package nginx)"),
        )
        .skip();
    }
    let t = TestDir::new("http");
    let port = free_port();
    let mut nginx = start_nginx(&t, port);
    let config = monitors_only(
        &t,
        &[
            detector("healthw", &format!(r#"Http(port: {port}, uri: "/health")"#)),
            detector("rootw", &format!(r#"Http(port: {port}, uri: "/")"#)),
        ],
    );
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("healthw", "Normal");
    d.wait_monitor_state("rootw", "Normal");

    // /health answers 500: an error.
    t.write("fail", "");
    assert_eq!(head_status(port, "/health"), 500);
    d.wait_monitor_state("healthw", "Error");
    d.wait_monitor_alert("healthw", 9, 1);
    let why = last_error(&d, "healthw");
    assert!(why.contains("500"), "last_error: {why}");

    // "/" answers 503 meanwhile, but for "/" any HTTP reply is fine. Six
    // more checks started, the two monitors taking turns at the same rate:
    // rootw started at least two of them, so one has finished since the
    // file was there.
    assert_eq!(head_status(port, "/"), 503);
    let seen = checks_started(&d);
    wait_for("two more checks of each monitor", DEADLINE, || {
        checks_started(&d) >= seen + 6
    });
    assert_eq!(d.monitor_state("rootw"), "Normal", "{}", d.monitor("rootw"));
    let alerts = d.alerts_json(1000);
    assert_eq!(
        count_monitor_alerts(&alerts, "rootw", 9),
        0,
        "{}",
        describe_alerts(&alerts)
    );

    // Healthy again.
    std::fs::remove_file(t.join("fail")).expect("rm fail");
    d.wait_monitor_state("healthw", "Normal");
    d.wait_monitor_alert("healthw", 26, 1);

    // No server at all: both fail.
    nginx.kill();
    d.wait_monitor_state("healthw", "Error");
    d.wait_monitor_state("rootw", "Error");
    d.wait_monitor_alert("healthw", 9, 2);
    d.wait_monitor_alert("rootw", 9, 1);
    let why = last_error(&d, "rootw");
    assert!(why.contains("connection refused"), "last_error: {why}");
}

// ---------------------------------------------------------------------------
// smtp

/// `python3 -m aiosmtpd` on 127.0.0.1:`port`, once it listens.
fn start_smtpd(t: &TestDir, port: u16) -> Background {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(t.join("smtpd.out"))
        .expect("smtpd.out");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    let mut smtpd = Background::spawn("aiosmtpd", &mut cmd);
    wait_listening(port, &mut smtpd);
    smtpd
}

#[test]
fn smtp_monitor_against_aiosmtpd() {
    if let Some(missing) = skip::need_python_module("aiosmtpd") {
        return missing.skip();
    }
    let t = TestDir::new("smtp");
    let port = free_port();
    let mut smtpd = start_smtpd(&t, port);
    let config = monitors_only(&t, &[detector("smtpw", &format!("Smtp(port: {port})"))]);
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("smtpw", "Normal");

    smtpd.kill();
    d.wait_monitor_state("smtpw", "Error");
    d.wait_monitor_alert("smtpw", 9, 1);

    let _smtpd = start_smtpd(&t, port);
    d.wait_monitor_state("smtpw", "Normal");
    d.wait_monitor_alert("smtpw", 26, 1);
}

// ---------------------------------------------------------------------------
// tcp

#[test]
fn tcp_monitor_against_a_listening_socket() {
    let t = TestDir::new("tcp");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local_addr").port();
    let config = monitors_only(&t, &[detector("tcpw", &format!("Tcp(port: {port})"))]);
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("tcpw", "Normal");

    drop(listener);
    d.wait_monitor_state("tcpw", "Error");
    d.wait_monitor_alert("tcpw", 9, 1);
    let why = last_error(&d, "tcpw");
    assert!(why.contains("connection refused"), "last_error: {why}");
}

// ---------------------------------------------------------------------------
// custom

/// Writes `text` to the file `name` in one step (a script reading it never
/// sees it half written).
fn replace_file(t: &TestDir, name: &str, text: &str) {
    let tmp = format!("{name}.tmp");
    t.write(&tmp, text);
    std::fs::rename(t.join(&tmp), t.join(name)).expect("rename");
}

#[test]
fn custom_sync_monitor_judges_the_exit_status() {
    let t = TestDir::new("gensync");
    replace_file(&t, "code", "0\n");
    t.script(
        "check.sh",
        r#"echo "$CLP_MONITORNAME" > "$DIR/monitorname"
exit $(cat "$DIR/code")"#,
    );
    // A relative script path: from the configuration file's folder.
    let config = monitors_only(
        &t,
        &[detector(
            "genw",
            r#"Custom(script: "check.sh", mode: Sync, normal_exit: 0)"#,
        )],
    );
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("genw", "Normal");
    assert_eq!(t.read("monitorname").trim(), "genw");

    replace_file(&t, "code", "3\n");
    d.wait_monitor_state("genw", "Error");
    d.wait_monitor_alert("genw", 9, 1);
    let why = last_error(&d, "genw");
    assert!(why.contains("exit status 3"), "last_error: {why}");

    replace_file(&t, "code", "0\n");
    d.wait_monitor_state("genw", "Normal");
    d.wait_monitor_alert("genw", 26, 1);
}

#[test]
fn custom_async_monitor_reports_the_script_exit() {
    let t = TestDir::new("genasync");
    t.script(
        "watch.sh",
        r#"echo $$ > "$DIR/watch.pid"
exec sleep 600"#,
    );
    let config = monitors_only(
        &t,
        &[detector(
            "genaw",
            r#"Custom(script: "watch.sh", mode: Async)"#,
        )],
    );
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("genaw", "Normal");
    let first = t.wait_pid_file("watch.pid");
    std::fs::remove_file(t.join("watch.pid")).expect("rm watch.pid");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the script");
    d.wait_monitor_alert("genaw", 9, 1);
    let alerts = d.alerts_json(1000);
    let error = alerts
        .iter()
        .rev()
        .find(|a| a["event_id"] == 9 && a["module"] == "rm")
        .and_then(|a| a["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("killed by signal 9"), "{error}");

    // The check that found the exit started the script again.
    let second = t.wait_pid_file("watch.pid");
    assert_ne!(first, second);
    d.wait_monitor_state("genaw", "Normal");
    d.wait_monitor_alert("genaw", 26, 1);
}

// ---------------------------------------------------------------------------
// process

#[test]
fn process_monitor_counts_a_named_process() {
    let t = TestDir::new("proc");
    // A name of our own, longer than the kernel's 15 bytes: it matches
    // through argv[0].
    let name = format!("us-sleeper-{}", std::process::id());
    let link = t.join(&name);
    std::os::unix::fs::symlink("/bin/sleep", &link).expect("symlink sleep");
    let mut sleeper = Background::spawn(&name, Command::new(&link).arg("600"));
    let config = monitors_only(
        &t,
        &[detector(
            "psw",
            &format!(r#"Process(name: "{name}", min_count: 1)"#),
        )],
    );
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("psw", "Normal");

    sleeper.kill();
    d.wait_monitor_state("psw", "Error");
    d.wait_monitor_alert("psw", 9, 1);
    let why = last_error(&d, "psw");
    assert!(why.contains(&name), "last_error: {why}");
}

// ---------------------------------------------------------------------------
// system

#[test]
fn system_monitor_error_and_warning_levels() {
    let t = TestDir::new("sys");
    let config = monitors_only(
        &t,
        &[
            detector("syserr", "System(memory: (error: 1, duration: 0))"),
            detector(
                "syswarn",
                "System(memory: (warning: 1, error: 100, duration: 0))",
            ),
        ],
    );
    let d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("syserr", "Error");
    d.wait_monitor_alert("syserr", 9, 1);
    d.wait_monitor_state("syswarn", "Warning");
    d.wait_monitor_alert("syswarn", 4, 1);
    let why = last_error(&d, "syswarn");
    assert!(why.contains("memory"), "last_error: {why}");
    let alerts = d.alerts_json(1000);
    assert_eq!(
        count_monitor_alerts(&alerts, "syswarn", 9),
        0,
        "{}",
        describe_alerts(&alerts)
    );
}

// ---------------------------------------------------------------------------
// userspace

/// Waits until the alert log file holds `module id` `count` times (the
/// socket does not answer while the coordinator is blocked).
fn wait_alert_in_file(d: &Daemon, module: &str, id: u64, count: usize) {
    let end = Instant::now() + DEADLINE;
    loop {
        let seen = alerts_file(&d.state_dir);
        if count_alerts(&seen, module, id) >= count {
            return;
        }
        if Instant::now() >= end {
            panic!(
                "alert {module} {id} was not written {count} times within {DEADLINE:?}; alerts:\n{}\ndaemon log:\n{}",
                describe_alerts(&seen),
                d.log_text()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `understudy debug stall SECONDS` in a thread (it answers only when
/// the stall is over); the handle gives its output.
fn stall(d: &Daemon, seconds: u32) -> std::thread::JoinHandle<CmdOut> {
    let socket = d.socket.clone();
    let seconds = seconds.to_string();
    std::thread::spawn(move || {
        let mut cmd = Command::new(BIN);
        cmd.arg("--socket")
            .arg(&socket)
            .args(["debug", "stall", &seconds])
            .env_remove("UNDERSTUDY_SOCKET")
            .stdout(Stdio::piped());
        run_cmd(&mut cmd)
    })
}

fn userspace_monitor(final_action: &str) -> String {
    format!(
        r#"monitors: [
        Monitor(name: "userw", kind: Userspace(), interval: 1, timeout: 3,
                recovery: (target: LocalServer, final_action: {final_action})),
    ],"#
    )
}

#[test]
fn userspace_monitor_alerts_on_a_stall_and_on_the_recovery() {
    let t = TestDir::new("userw");
    let config = t.config(&["s1"], &userspace_monitor("NoOperation"), "");
    let mut d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("userw", "Normal");

    // The stall alert must reach the alert log while the coordinator is
    // still blocked: the command has not answered yet.
    let stalled = stall(&d, 6);
    let end = Instant::now() + DEADLINE;
    loop {
        let alerts = alerts_file(&d.state_dir);
        let over = stalled.is_finished();
        if has_alert(&alerts, "rm", 1100) {
            assert!(
                !over,
                "rm 1100 reached the alert log only after the stall was over; log:\n{}",
                d.log_text()
            );
            break;
        }
        assert!(
            !over && Instant::now() < end,
            "no rm 1100 in the alert log during the stall; alerts:\n{}\nlog:\n{}",
            describe_alerts(&alerts),
            d.log_text()
        );
        std::thread::sleep(POLL);
    }
    wait_alert_in_file(&d, "rm", 1101, 1);
    let out = stalled.join().expect("the stall thread");
    assert!(out.success(), "{out:?}");
    assert!(d.is_running(), "log:\n{}", d.log_text());
    d.wait_monitor_state("userw", "Normal");
    let alerts = alerts_file(&d.state_dir);
    assert_eq!(
        count_alerts(&alerts, "rm", 1100),
        1,
        "{}",
        describe_alerts(&alerts)
    );
}

#[test]
fn userspace_monitor_reboots_when_the_service_stalls() {
    let t = TestDir::new("userwr");
    let config = t.config(
        &["s1"],
        &userspace_monitor("StopClusterServiceAndRebootOs"),
        "",
    );
    let mut d = Daemon::start(&t, &config, "s1");
    d.wait_monitor_state("userw", "Normal");

    // The daemon exits during the stall, which ends the command too.
    let stalled = stall(&d, 20);
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(70), "{status}; log:\n{}", d.log_text());
    let out = stalled.join().expect("the stall thread");
    assert!(!out.success(), "{out:?}");
    assert_eq!(t.lines("os-actions.log"), ["reboot"]);
    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    assert!(has_alert(&alerts, "rm", 1100), "{all}");
    assert!(has_alert(&alerts, "pm", 25), "{all}");
}

// ---------------------------------------------------------------------------
// an always monitor whose recovery target is not active

#[test]
fn error_with_an_inactive_recovery_target_recovers_nothing() {
    let t = TestDir::new("inactive");
    t.script(
        "app.sh",
        r#"echo started >> "$DIR/started"; exec sleep 600"#,
    );
    let groups = r#"Group(name: "web", startup: Manual, resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#;
    let closed = closed_port();
    let port = closed.port;
    let monitors = format!(
        r#"monitors: [
        Monitor(name: "tcpw", kind: Tcp(port: {port}), interval: 1, timeout: 10, retry: 0,
                recovery: (target: Group("web"), reactivation_threshold: 3, failover_threshold: 1,
                           final_action: StopGroup)),
    ],"#
    );
    let d = Daemon::start(&t, &t.config(&["s1"], &monitors, groups), "s1");
    d.wait_monitor_alert("tcpw", 9, 1);
    d.wait_monitor_alert("tcpw", 25, 1);
    assert_eq!(d.monitor_state("tcpw"), "Error");
    let why = last_error(&d, "tcpw");
    assert!(why.contains("connection refused"), "last_error: {why}");
    assert_eq!(d.group_state("web"), "Offline");
    assert!(t.read("started").is_empty(), "the group was started");
    let alerts = d.alerts_json(1000);
    let all = describe_alerts(&alerts);
    for id in [12, 13, 14, 20, 1011, 1012] {
        assert_eq!(
            count_monitor_alerts(&alerts, "tcpw", id),
            0,
            "rm {id}: {all}"
        );
    }
    let m = d.monitor("tcpw");
    assert_eq!(m["reactivations"], 0, "{m}");
    assert_eq!(m["failovers"], 0, "{m}");
}

// ---------------------------------------------------------------------------
// sub-second intervals (issue 15 item 2)

/// `interval_ms: 200, timeout_ms: 300`: a tcp monitor checks five times a
/// second (ten checks within three times what they take at that rate; at
/// the default interval they would take ten minutes), and `config check`
/// shows the milliseconds.
#[test]
fn a_monitor_with_interval_ms_checks_several_times_a_second() {
    let t = TestDir::new("subsecond");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().unwrap().port();
    // Accepts and drops every connection, so the checks find the port open
    // (the thread ends with the test process).
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let monitors = format!(
        r#"monitors: [
        Monitor(name: "tcpw", kind: Tcp(port: {port}), interval_ms: 200, timeout_ms: 300, retry: 0,
                recovery: (target: LocalServer)),
    ],"#
    );
    let d = Daemon::start(&t, &t.config(&["s1"], &monitors, ""), "s1");
    let file = t.path().join("cluster.ron");
    let check = d.ok(&["config", "check", file.to_str().unwrap()]);
    assert!(check.contains("every 200 ms, timeout 300 ms"), "{check}");
    let first = checks_started(&d);
    let started = std::time::Instant::now();
    wait_for("ten checks", std::time::Duration::from_secs(6), || {
        checks_started(&d) >= first + 10
    });
    eprintln!("ten checks in {:?}", started.elapsed());
    assert_eq!(d.monitor_state("tcpw"), "Normal");
}
