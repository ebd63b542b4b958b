//! systemd: the notify protocol against a stand-in for systemd's notify
//! socket, the journal's priorities, and the unit file.
//!
//! The test binds a Unix datagram socket with `SO_PASSCRED` (as systemd
//! does) and starts `understudy run` with `NOTIFY_SOCKET` naming it and
//! `WATCHDOG_USEC` / `WATCHDOG_PID` set as systemd sets them; each
//! datagram comes with its sender's pid, so the test also checks that the
//! guardian (systemd's main pid) is the only sender (`NotifyAccess=main`).
//! Nothing waits on a sleep: every wait reads the socket, or polls, up to
//! a deadline; the only bound on time is three times the watchdog period.

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr,
};
use nix::unistd::Pid;

/// The watchdog period the tests give (`WatchdogSec=1s`).
const WATCHDOG_USEC: u64 = 1_000_000;
const WATCHDOG: Duration = Duration::from_micros(WATCHDOG_USEC);

/// One datagram: who sent it, when it arrived, what it says.
#[derive(Debug, Clone)]
struct Note {
    pid: i32,
    at: Instant,
    text: String,
}

impl Note {
    fn has(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }

    fn status(&self) -> Option<&str> {
        self.text.lines().find_map(|l| l.strip_prefix("STATUS="))
    }
}

/// The stand-in for systemd's notify socket.
struct NotifySocket {
    fd: OwnedFd,
    path: PathBuf,
    /// Everything received so far, in order.
    notes: Vec<Note>,
}

impl NotifySocket {
    fn bind(dir: &TestDir) -> NotifySocket {
        let path = dir.join("notify.sock");
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("datagram socket");
        bind(fd.as_raw_fd(), &UnixAddr::new(&path).expect("socket path"))
            .expect("bind the notify socket");
        setsockopt(&fd, sockopt::PassCred, &true).expect("SO_PASSCRED");
        NotifySocket {
            fd,
            path,
            notes: Vec::new(),
        }
    }

    /// The environment systemd would give: the socket, and with `watchdog`
    /// its period (`WATCHDOG_PID` is set by the wrapper, see [`start`]).
    fn env(&self, watchdog: bool) -> Vec<(String, String)> {
        let mut env = vec![("NOTIFY_SOCKET".to_string(), self.path.display().to_string())];
        if watchdog {
            env.push(("WATCHDOG_USEC".to_string(), WATCHDOG_USEC.to_string()));
        }
        env
    }

    /// The next datagram, waiting at most `wait`.
    fn recv(&mut self, wait: Duration) -> Option<Note> {
        let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&self.fd),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).unwrap()) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return None,
            Err(e) => panic!("poll on the notify socket: {e}"),
        }
        let mut buf = vec![0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let msg = recvmsg::<()>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_DONTWAIT,
        )
        .expect("recvmsg on the notify socket");
        let mut pid = 0;
        for c in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmCredentials(cred) = c {
                pid = cred.pid();
            }
        }
        let len = msg.bytes;
        let note = Note {
            pid,
            at: Instant::now(),
            text: String::from_utf8_lossy(&buf[..len]).into_owned(),
        };
        self.notes.push(note.clone());
        Some(note)
    }

    /// Reads until a datagram satisfies `check`; panics after `deadline`
    /// naming `what` and listing what came.
    fn wait_for(&mut self, what: &str, deadline: Duration, check: impl Fn(&Note) -> bool) -> Note {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "no {what} within {deadline:?}; received:\n{}",
                    self.describe()
                );
            }
            if let Some(n) = self.recv(left) {
                if check(&n) {
                    return n;
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.notes
            .iter()
            .map(|n| format!("  pid {}: {:?}", n.pid, n.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `understudy run` as systemd starts it: `WATCHDOG_PID` is the pid of the
/// process systemd runs (the guardian), which the wrapper shell sets to
/// its own pid before it execs the binary.
fn start(dir: &TestDir, config: &str, env: &[(String, String)]) -> Daemon {
    let config = dir.write("cluster.ron", config);
    Daemon::spawn_full(
        dir,
        &config,
        "n1",
        &["sh", "-c", r#"export WATCHDOG_PID=$$; exec "$@""#, "sh"],
        env,
    )
}

/// One group `web` with one exec resource whose process runs until it is
/// stopped; its start script records its environment.
fn config(dir: &TestDir) -> String {
    dir.script(
        "app.sh",
        r#"env > "$DIR/app.env"; echo $$ > "$DIR/app.pid"; exec sleep 1000"#,
    );
    dir.config(
        &["n1"],
        "",
        r#"Group(name: "web", resources: [
            Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
        ]),"#,
    )
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// READY=1 once `status` answers, STATUS= lines as the group comes online,
/// WATCHDOG=1 every so often while the daemon runs, none once it is frozen
/// (SIGSTOP); then SIGABRT to the guardian (what systemd's watchdog sends
/// to the main pid) ends the frozen daemon and releases its process.
#[test]
fn ready_status_and_a_watchdog_that_stops_when_the_daemon_freezes() {
    let t = TestDir::new("sdwd");
    let mut sock = NotifySocket::bind(&t);
    let mut d = start(&t, &config(&t), &sock.env(true));
    let guardian = d.pid() as i32;

    let ready = sock.wait_for("READY=1", START_DEADLINE, |n| n.has("READY=1"));
    // The control socket answers at once: READY=1 came after it did.
    let out = d.cli(&["status", "--json"]);
    assert!(out.success(), "status after READY=1: {out:?}");
    let first = ready.status().expect("a STATUS= line with READY=1");
    assert!(first.starts_with("n1: "), "{first}");
    assert!(first.contains("of 1 servers up"), "{first}");

    let online = sock.wait_for("a STATUS= line with web online", DEADLINE, |n| {
        n.status()
            .is_some_and(|s| s.contains("1 of 1 groups online (1 here)"))
    });
    assert_eq!(
        online.status(),
        Some("n1: 1 of 1 groups online (1 here), 1 of 1 servers up")
    );

    // Keepalives while it runs: five in a row, none more than three
    // watchdog periods after the one before.
    let mut beats: Vec<Instant> = Vec::new();
    while beats.len() < 5 {
        let n = sock.wait_for("WATCHDOG=1", DEADLINE, |n| n.has("WATCHDOG=1"));
        beats.push(n.at);
    }
    let gaps: Vec<Duration> = beats.windows(2).map(|p| p[1] - p[0]).collect();
    eprintln!("keepalives apart (watchdog {WATCHDOG:?}): {gaps:?}");
    for pair in beats.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap <= 3 * WATCHDOG,
            "keepalives {gap:?} apart (watchdog {WATCHDOG:?}):\n{}",
            sock.describe()
        );
    }

    // The scripts see nothing of systemd's protocol or of the guardian's
    // pipes.
    let app = t.wait_pid_file("app.pid");
    let env = t.env_file("app.env");
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "UNDERSTUDY_NOTIFY_FD",
        "UNDERSTUDY_BEAT_MS",
        "UNDERSTUDY_FENCE_FD",
    ] {
        assert!(!env.contains_key(var), "{var} in the script's environment");
    }

    // Frozen: the keepalives stop. Read until three watchdog periods pass
    // without one (a keepalive from a beat sent just before the freeze
    // may still come).
    let daemon = d.daemon_pid();
    kill(Pid::from_raw(daemon as i32), Signal::SIGSTOP).expect("SIGSTOP the daemon");
    wait_for("the daemon to stop", DEADLINE, || {
        matches!(process_state(daemon), Some('T') | None)
    });
    let frozen = Instant::now();
    let mut last = frozen;
    loop {
        if last.elapsed() >= 3 * WATCHDOG {
            break;
        }
        assert!(
            frozen.elapsed() < DEADLINE,
            "keepalives went on for {DEADLINE:?} after the daemon froze:\n{}",
            sock.describe()
        );
        let left = (3 * WATCHDOG).saturating_sub(last.elapsed());
        if let Some(n) = sock.recv(left) {
            if n.has("WATCHDOG=1") {
                last = n.at;
            }
        }
    }

    eprintln!(
        "last keepalive {:?} after the freeze",
        last.saturating_duration_since(frozen)
    );
    // systemd's watchdog would now send SIGABRT to the main pid.
    kill(Pid::from_raw(guardian), Signal::SIGABRT).expect("SIGABRT the guardian");
    let status = d.wait_exit(DEADLINE);
    assert_eq!(
        status.code(),
        Some(128 + 9),
        "the guardian ends with the daemon's SIGKILL: {status}; log:\n{}",
        d.log_text()
    );
    assert!(!pid_alive(daemon), "the frozen daemon was killed");
    wait_for("the group's process to be released", DEADLINE, || {
        !pid_alive(app)
    });
    let alerts = alerts_file(&d.state_dir);
    let died = alerts
        .iter()
        .find(|a| a["module"] == "pm" && a["event_id"] == 1200)
        .unwrap_or_else(|| panic!("no pm 1200:\n{}", describe_alerts(&alerts)));
    assert!(
        died["message"]
            .as_str()
            .is_some_and(|m| m.contains("service manager's watchdog")),
        "{died}"
    );
    sock.wait_for("the guardian's STATUS= on the death", DEADLINE, |n| {
        n.status()
            .is_some_and(|s| s.contains("released what it held"))
    });
    // systemd takes messages from its main pid alone: every one came from
    // the guardian.
    for n in &sock.notes {
        assert_eq!(n.pid, guardian, "{n:?} not from the guardian");
    }
}

/// With several servers the beat also waits on the heartbeat thread: it
/// must have sent within the heartbeat timeout. One server of two, alone
/// (its heartbeats go unanswered, but they go): keepalives come.
#[test]
fn keepalives_with_a_heartbeat_thread() {
    let t = TestDir::new("sdhb");
    let mut sock = NotifySocket::bind(&t);
    let config = t.config(&["n1", "n2"], "", "");
    let _d = start(&t, &config, &sock.env(true));
    sock.wait_for("READY=1", START_DEADLINE, |n| n.has("READY=1"));
    for _ in 0..3 {
        sock.wait_for("WATCHDOG=1", DEADLINE, |n| n.has("WATCHDOG=1"));
    }
    let status = sock
        .notes
        .iter()
        .rev()
        .find_map(|n| n.status().map(str::to_string))
        .expect("a STATUS= line");
    assert!(status.contains("1 of 2 servers up"), "{status}");
}

/// `cluster stop`: STOPPING=1 before the daemon ends (exit 0). Without
/// `WATCHDOG_USEC` no keepalive is ever sent.
#[test]
fn stopping_at_cluster_stop_and_no_keepalive_unasked() {
    let t = TestDir::new("sdstop");
    let mut sock = NotifySocket::bind(&t);
    let mut d = start(&t, &config(&t), &sock.env(false));
    let guardian = d.pid() as i32;
    sock.wait_for("READY=1", START_DEADLINE, |n| n.has("READY=1"));
    d.wait_group_state("web", "Online");
    d.ok(&["cluster", "stop"]);
    let stopping = sock.wait_for("STOPPING=1", DEADLINE, |n| n.has("STOPPING=1"));
    assert!(
        stopping.status().is_some_and(|s| s.ends_with(", stopping")),
        "{stopping:?}"
    );
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0), "{}", d.log_text());
    while sock.recv(Duration::from_millis(1)).is_some() {}
    assert!(
        sock.notes.iter().all(|n| !n.has("WATCHDOG=1")),
        "a keepalive without WATCHDOG_USEC:\n{}",
        sock.describe()
    );
    for n in &sock.notes {
        assert_eq!(n.pid, guardian, "{n:?} not from the guardian");
    }
}

/// SIGTERM (systemd's stop): STOPPING=1 before the daemon ends. A
/// `WATCHDOG_PID` naming another process means the watchdog is not ours:
/// no keepalive.
#[test]
fn stopping_at_sigterm_and_no_keepalive_for_another_pid() {
    let t = TestDir::new("sdterm");
    let mut sock = NotifySocket::bind(&t);
    let mut env = sock.env(true);
    let config = t.write("cluster.ron", &config(&t));
    // Not through the wrapper: WATCHDOG_PID names pid 1.
    env.push(("WATCHDOG_PID".to_string(), "1".to_string()));
    let mut d = Daemon::spawn_full(&t, &config, "n1", &[], &env);
    sock.wait_for("READY=1", START_DEADLINE, |n| n.has("READY=1"));
    d.wait_group_state("web", "Online");
    let status = d.stop_with_sigterm();
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
    sock.wait_for("STOPPING=1", DEADLINE, |n| n.has("STOPPING=1"));
    while sock.recv(Duration::from_millis(1)).is_some() {}
    assert!(
        sock.notes.iter().all(|n| !n.has("WATCHDOG=1")),
        "a keepalive for another pid's watchdog:\n{}",
        sock.describe()
    );
}

/// `(device, inode)` of a file, as `JOURNAL_STREAM` spells it.
fn stream_of(path: &Path) -> String {
    let m = std::fs::metadata(path).expect("stat the log");
    format!("{}:{}", m.dev(), m.ino())
}

/// With stderr on the journal's stream, every line carries its priority
/// (`<6>` info, `<4>` warning, `<3>` error), the guardian's too.
#[test]
fn journal_lines_carry_their_priority() {
    let t = TestDir::new("sdjournal");
    let config = t.write(
        "cluster.ron",
        &t.config(
            &["n1"],
            "",
            r#"Group(name: "web", startup: Manual, resources: [
                Resource(name: "gone", kind: Exec(start: "missing.sh")),
            ]),"#,
        ),
    );
    let log = t.join("daemon.log");
    std::fs::write(&log, "").expect("create the log");
    let env = [("JOURNAL_STREAM".to_string(), stream_of(&log))];
    let mut d = Daemon::spawn_full(&t, &config, "n1", &[], &env);
    d.wait_ready();
    d.kill9_daemon();
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(137));
    let text = d.log_text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    for l in &lines {
        let ok = matches!(l.as_bytes(), [b'<', b'0'..=b'7', b'>', ..]);
        assert!(ok, "a line without its priority: {l:?}\n{text}");
    }
    let has = |prefix: &str, words: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(words))
    };
    assert!(has("<6>INFO ", "cluster daemon starting"), "{text}");
    assert!(has("<4>WARN ", "what runs it will fail"), "{text}");
    assert!(has("<3>understudy guardian: ", "died"), "{text}");
}

/// A `JOURNAL_STREAM` inherited by a process whose stderr goes elsewhere
/// is not the journal: lines stay as they were (no prefix).
#[test]
fn journal_stream_of_another_file_changes_nothing() {
    let t = TestDir::new("sdnojournal");
    let config = t.write("cluster.ron", &t.config(&["n1"], "", ""));
    let other = t.write("other", "");
    let env = [("JOURNAL_STREAM".to_string(), stream_of(&other))];
    let mut d = Daemon::spawn_full(&t, &config, "n1", &[], &env);
    d.wait_ready();
    assert_eq!(d.stop_with_sigterm().code(), Some(0));
    let text = d.log_text();
    assert!(text.contains("cluster daemon starting"), "{text}");
    assert!(
        text.lines().all(|l| !l.starts_with('<')),
        "a prefix without the journal:\n{text}"
    );
}

/// The unit file, as shipped, passes `systemd-analyze verify` with nothing
/// to say (a wrong setting is only a warning there: any output fails the
/// test). `ExecStart=` is pointed at the binary under test, since
/// /usr/bin/understudy need not exist here, and the manual pages its
/// `Documentation=` names are the ones the binary writes (`understudy man`),
/// found through `MANPATH`. (tools/package-test checks the installed unit
/// as it is.)
#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    if let Some(missing) = skip::need_program("systemd-analyze", "systemd") {
        return missing.skip();
    }
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/systemd/understudy.service"),
    )
    .expect("read the unit file");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/usr/bin/understudy run",
        "KillMode=mixed",
        "WatchdogSec=10s",
        "Restart=on-failure",
        "After=network-online.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line} in the unit");
    }
    let t = TestDir::new("sdunit");
    let path = t.write(
        "understudy.service",
        &unit.replace("/usr/bin/understudy", BIN),
    );
    let man = t.join("man");
    let made = run_cmd(
        std::process::Command::new(BIN)
            .arg("man")
            .arg(man.join("man1")),
    );
    assert!(made.success(), "understudy man: {made:?}");
    let mut verify = std::process::Command::new("systemd-analyze");
    verify.arg("verify").arg(&path).env("MANPATH", &man);
    if skip::need_program("man", "man-db").is_some() {
        // No man to ask: the pages cannot be looked up here.
        verify.arg("--man=no");
    }
    let out = run_cmd(&mut verify);
    assert!(
        out.success() && out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "systemd-analyze verify: {out:?}"
    );
}
