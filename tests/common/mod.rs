//! Helpers shared by the integration tests: a temporary test folder, a
//! daemon running the real `understudy` binary, the CLI, polling, scripts.
//!
//! Nothing here synchronises with sleeps: every wait polls for something the
//! test can observe (a status answer, a state, a file, a process exit) until a
//! generous deadline, and fails with the daemon's log when it is missed.

// Each test file compiles its own copy of this module and may use only part of it.
#![allow(dead_code)]

pub mod agent;
pub mod bmc;
pub mod chromium;
pub mod cluster;
pub mod disk;
pub mod nginx;
pub mod prometheus;
pub mod rsyslog;
pub mod skip;
pub mod smtp;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_understudy");

/// How long a daemon may take to answer its first `status`.
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// Deadline for waits on states, files and process exits.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Poll interval of every wait.
pub const POLL: Duration = Duration::from_millis(20);

/// Scripts are written under the write lock and processes are spawned under
/// the read lock. Otherwise a child forked by another test thread could
/// inherit a script's still-open write descriptor, and running that script
/// would then fail with ETXTBSY ("text file busy").
static SPAWN_LOCK: RwLock<()> = RwLock::new(());

fn spawn_locked(cmd: &mut Command) -> std::io::Result<Child> {
    let _guard = SPAWN_LOCK.read().unwrap_or_else(|e| e.into_inner());
    cmd.spawn()
}

/// Output of one command, as text.
#[derive(Debug)]
pub struct CmdOut {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOut {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs a command to completion (spawned under the spawn lock).
pub fn run_cmd(cmd: &mut Command) -> CmdOut {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn_locked(cmd).unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    CmdOut {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `understudy ARGS...` with a clean environment as far as understudy goes.
pub fn understudy(args: &[&str]) -> CmdOut {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("UNDERSTUDY_SOCKET");
    run_cmd(&mut cmd)
}

/// Polls `check` every [`POLL`] until it holds; panics naming `what` after
/// `deadline`.
pub fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if check() {
            return;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// A fresh folder under /tmp, mode 0755 (so that an unprivileged user can
/// reach the socket in it). Removed on drop unless the test failed, in which
/// case its path is printed for inspection.
pub struct TestDir {
    path: PathBuf,
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        // Short: the socket path inside must stay under 108 bytes.
        let path = PathBuf::from(format!("/tmp/us-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod test dir");
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.join("state")
    }

    pub fn socket(&self) -> PathBuf {
        self.join("ctl.sock")
    }

    /// Writes an executable `sh` script. `DIR` is set to this folder at the
    /// top, so the body can write its records to `"$DIR/..."`.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.join(name);
        let text = format!("#!/bin/sh\nDIR='{}'\n{body}\n", self.path.display());
        let _guard = SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner());
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&path)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        f.write_all(text.as_bytes()).expect("write script");
        f.sync_all().expect("sync script");
        drop(f);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    /// Writes a file (a configuration, usually) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A file's content, or "" when it does not exist.
    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.join(name)).unwrap_or_default()
    }

    /// A file's lines (none when it does not exist).
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_string).collect()
    }

    /// A file of `KEY=VALUE` lines (such as `env | grep ^CLP_`) as a map.
    pub fn env_file(&self, name: &str) -> BTreeMap<String, String> {
        self.read(name)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A pid written by a script (`echo $$ > file`); waits until it is there.
    pub fn wait_pid_file(&self, name: &str) -> u32 {
        let mut pid = None;
        wait_for(&format!("pid file {name}"), DEADLINE, || {
            pid = self.read(name).trim().parse::<u32>().ok();
            pid.is_some()
        });
        pid.unwrap()
    }

    /// The `os_actions` entry every test configuration carries: a recorder,
    /// so that no test can ever shut down or reboot the machine. It appends
    /// `shutdown` or `reboot` to `os-actions.log`.
    pub fn os_actions(&self) -> String {
        let recorder = self.script("os-action.sh", r#"echo "$1" >> "$DIR/os-actions.log""#);
        format!(
            r#"os_actions: OsActions(shutdown: ["{r}", "shutdown"], reboot: ["{r}", "reboot"], panic: ["{r}", "panic"]),"#,
            r = recorder.display()
        )
    }

    /// A whole configuration: cluster `it` with `servers`, the recording
    /// `os_actions`, `extra` top-level fields (such as `control: (...)`) and
    /// `groups` (the text inside `groups: [...]`).
    ///
    /// With several servers, each gets a loopback interconnect address and
    /// the cluster a key file in this folder; the startup wait is 0, so a
    /// daemon started alone does not wait for the others.
    pub fn config(&self, servers: &[&str], extra: &str, groups: &str) -> String {
        let several = servers.len() > 1;
        let servers: Vec<String> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if several {
                    format!(
                        r#"Server(name: "{s}", interconnects: ["127.0.83.{}"])"#,
                        i + 1
                    )
                } else {
                    format!(r#"Server(name: "{s}")"#)
                }
            })
            .collect();
        let heartbeat = if several {
            format!(
                r#"heartbeat: (key_file: "{}", startup_wait_secs: 0),"#,
                self.key_file().display()
            )
        } else {
            String::new()
        };
        format!(
            "Cluster(\n    name: \"it\",\n    servers: [{}],\n    {}\n    {heartbeat}\n    {extra}\n    groups: [\n{groups}\n    ],\n)\n",
            servers.join(", "),
            self.os_actions()
        )
    }

    /// A cluster key (64 hex digits, mode 0600) in this folder.
    pub fn key_file(&self) -> PathBuf {
        let path = self.join("cluster.key");
        if !path.exists() {
            let key: String = (0..32)
                .map(|i| format!("{:02x}", (i * 37 + std::process::id() as usize) % 256))
                .collect();
            fs::write(&path, format!("{key}\n")).expect("write key");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod key");
        }
        path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test folder kept for inspection: {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A process a test runs next to the daemon (a server, a sleeper): spawned
/// under the spawn lock, killed (SIGKILL) and reaped when dropped.
pub struct Background {
    child: Child,
    what: String,
}

impl Background {
    /// Starts `cmd` (stdin from /dev/null; stdout and stderr as set on
    /// `cmd`, inherited otherwise).
    pub fn spawn(what: &str, cmd: &mut Command) -> Background {
        cmd.stdin(Stdio::null());
        let child = spawn_locked(cmd).unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background {
            child,
            what: what.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs; panics naming it when it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited: {status}", self.what);
        }
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a process exists and is not a zombie (a killed grandchild may be
/// left unreaped by an init that does not reap).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // pid (comm) STATE ...: comm may hold spaces and parentheses.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

/// Reads `<state-dir>/alerts.jsonl` (usable after the daemon has exited).
pub fn alerts_file(state_dir: &Path) -> Vec<Value> {
    let text = fs::read_to_string(state_dir.join("alerts.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How many alerts have this module and event id.
pub fn count_alerts(alerts: &[Value], module: &str, id: u64) -> usize {
    alerts
        .iter()
        .filter(|a| a["module"] == module && a["event_id"].as_u64() == Some(id))
        .count()
}

pub fn has_alert(alerts: &[Value], module: &str, id: u64) -> bool {
    count_alerts(alerts, module, id) > 0
}

/// How many monitor alerts `rm id` are about `monitor` (their message
/// starts with `monitor NAME:`).
pub fn count_monitor_alerts(alerts: &[Value], monitor: &str, id: u64) -> usize {
    let prefix = format!("monitor {monitor}:");
    alerts
        .iter()
        .filter(|a| {
            a["module"] == "rm"
                && a["event_id"].as_u64() == Some(id)
                && a["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&prefix))
        })
        .count()
}

/// `module id: message` lines, for assertion messages.
pub fn describe_alerts(alerts: &[Value]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {}: {}",
                a["module"].as_str().unwrap_or("?"),
                a["event_id"],
                a["message"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `None` when root may run commands as another user here (we are root and
/// `setpriv` exists); otherwise what is missing, to skip with.
pub fn need_switch_user() -> Option<skip::Missing> {
    if let Some(m) = skip::need_root("switching to uid 65534 needs root") {
        return Some(m);
    }
    if let Some(m) = skip::need_program("setpriv", "util-linux") {
        return Some(m);
    }
    // The binary must be reachable by that user (a build folder under a
    // private home directory is not).
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        BIN,
        "--version",
    ]);
    let out = run_cmd(&mut cmd);
    (!out.success()).then(|| {
        skip::missing(
            "a build folder uid 65534 can reach",
            format!("uid 65534 cannot run {BIN}: {}", out.stderr.trim()),
        )
    })
}

/// One daemon (`understudy run`) in a test folder. Dropping it stops it
/// (SIGTERM, then SIGKILL if it does not exit), so no test leaves a daemon or
/// its scripts behind.
pub struct Daemon {
    child: Option<Child>,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// The daemon's stderr (its log), appended across restarts.
    pub log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Writes `config_text` to `cluster.ron` in the folder and starts the
    /// daemon as `server`; returns once it answers `status`.
    pub fn start(dir: &TestDir, config_text: &str, server: &str) -> Daemon {
        let config = dir.write("cluster.ron", config_text);
        let mut d = Daemon::spawn(dir, &config, server);
        d.wait_ready();
        d
    }

    /// Starts the daemon on an existing configuration file without waiting.
    pub fn spawn(dir: &TestDir, config: &Path, server: &str) -> Daemon {
        Daemon::spawn_wrapped(dir, config, server, &[])
    }

    /// Like [`Daemon::start`], with the daemon inside the network namespace
    /// `netns` (`ip netns exec NETNS understudy run ...`; `ip` execs the
    /// daemon, so the pid is the daemon's). The CLI reaches its socket from
    /// outside: a socket path does not belong to a network namespace.
    pub fn start_in_netns(dir: &TestDir, config_text: &str, server: &str, netns: &str) -> Daemon {
        let config = dir.write("cluster.ron", config_text);
        let mut d = Daemon::spawn_wrapped(dir, &config, server, &["ip", "netns", "exec", netns]);
        d.wait_ready();
        d
    }

    /// Like [`Daemon::start`], with the daemon started as the last
    /// arguments of `wrapper` (such as `ip netns exec NETNS setsid`).
    pub fn start_wrapped(
        dir: &TestDir,
        config_text: &str,
        server: &str,
        wrapper: &[&str],
    ) -> Daemon {
        let config = dir.write("cluster.ron", config_text);
        let mut d = Daemon::spawn_wrapped(dir, &config, server, wrapper);
        d.wait_ready();
        d
    }

    /// Like [`Daemon::start`], with `env` added to the daemon's environment
    /// (and so to its scripts').
    pub fn start_with_env(
        dir: &TestDir,
        config_text: &str,
        server: &str,
        env: &[(String, String)],
    ) -> Daemon {
        let config = dir.write("cluster.ron", config_text);
        let mut d = Daemon::spawn_full(dir, &config, server, &[], env);
        d.wait_ready();
        d
    }

    /// Starts the daemon as the last arguments of `wrapper` (none: directly).
    fn spawn_wrapped(dir: &TestDir, config: &Path, server: &str, wrapper: &[&str]) -> Daemon {
        Daemon::spawn_full(dir, config, server, wrapper, &[])
    }

    pub fn spawn_full(
        dir: &TestDir,
        config: &Path,
        server: &str,
        wrapper: &[&str],
        env: &[(String, String)],
    ) -> Daemon {
        let log = dir.join("daemon.log");
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open daemon log");
        let state_dir = dir.state_dir();
        let socket = dir.socket();
        let mut cmd = match wrapper.split_first() {
            None => Command::new(BIN),
            Some((prog, args)) => {
                let mut cmd = Command::new(prog);
                cmd.args(args).arg(BIN);
                cmd
            }
        };
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .arg("--server")
            .arg(server)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--socket")
            .arg(&socket)
            .env_remove("UNDERSTUDY_SOCKET")
            .env("UNDERSTUDY_LOG", "info")
            // Enables `debug stall` (the userspace monitor's test).
            .env("UNDERSTUDY_TEST_HOOKS", "1")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file);
        let child = spawn_locked(&mut cmd).expect("spawn understudy run");
        Daemon {
            child: Some(child),
            config: config.to_path_buf(),
            state_dir,
            socket,
            log,
            exit: None,
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the daemon answers `status`; fails at once if it exits.
    pub fn wait_ready(&mut self) {
        let end = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "the daemon exited with {status} before answering; its log:\n{}",
                    self.log_text()
                );
            }
            if self.cli(&["status", "--json"]).success() {
                return;
            }
            if Instant::now() >= end {
                panic!(
                    "the daemon did not answer `status` within {START_DEADLINE:?}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                self.exit = child.try_wait().expect("try_wait on the daemon");
            }
        }
        self.exit
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// The pid of the process the test started: the guardian, which runs
    /// the daemon as its child (see [`Daemon::daemon_pid`]).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The daemon's own pid (`status --json`, field `pid`).
    pub fn daemon_pid(&self) -> u32 {
        let status = self.status_json();
        status["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no pid in status: {status}"))
    }

    /// Kills the daemon (not its guardian) with SIGKILL; returns its pid.
    pub fn kill9_daemon(&self) -> u32 {
        let pid = self.daemon_pid();
        assert_ne!(pid, self.pid(), "the daemon must be the guardian's child");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill -9 the daemon");
        pid
    }

    /// `understudy --socket SOCKET ARGS...`
    pub fn cli(&self, args: &[&str]) -> CmdOut {
        let mut cmd = Command::new(BIN);
        cmd.arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_remove("UNDERSTUDY_SOCKET");
        run_cmd(&mut cmd)
    }

    /// The CLI as the unprivileged user nobody (uid and gid 65534, no
    /// supplementary groups). Check [`need_switch_user`] first.
    pub fn cli_as_nobody(&self, args: &[&str]) -> CmdOut {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_remove("UNDERSTUDY_SOCKET");
        run_cmd(&mut cmd)
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.success(),
            "`understudy {}` failed: {out:?}\ndaemon log:\n{}",
            args.join(" "),
            self.log_text()
        );
        out.stdout
    }

    /// `status --json`, parsed.
    pub fn status_json(&self) -> Value {
        let text = self.ok(&["status", "--json"]);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {text}"))
    }

    /// The newest `n` alerts (`alerts -n N --json`), oldest first.
    pub fn alerts_json(&self, n: usize) -> Vec<Value> {
        let text = self.ok(&["alerts", "-n", &n.to_string(), "--json"]);
        match serde_json::from_str(&text) {
            Ok(Value::Array(a)) => a,
            other => panic!("alerts --json is not a JSON array ({other:?}): {text}"),
        }
    }

    /// One group of the status.
    pub fn group(&self, name: &str) -> Value {
        let status = self.status_json();
        status["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no group {name} in status: {status}"))
    }

    pub fn group_state(&self, name: &str) -> String {
        self.group(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// One resource of a group of the status.
    pub fn resource(&self, group: &str, name: &str) -> Value {
        let g = self.group(group);
        g["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no resource {name} in group {group}: {g}"))
    }

    /// Every resource of a group as `name -> state`.
    pub fn resource_states(&self, group: &str) -> BTreeMap<String, String> {
        self.group(group)["resources"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        (
                            r["name"].as_str().unwrap_or_default().to_string(),
                            r["state"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One monitor of the status.
    pub fn monitor(&self, name: &str) -> Value {
        let status = self.status_json();
        status["monitors"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no monitor {name} in status: {status}"))
    }

    pub fn monitor_state(&self, name: &str) -> String {
        self.monitor(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the monitor is in `state` (`Normal`, `Error`, ...).
    pub fn wait_monitor_state(&self, monitor: &str, state: &str) {
        let end = Instant::now() + DEADLINE;
        let last = loop {
            let now = self.monitor(monitor);
            if now["state"] == state {
                return;
            }
            if Instant::now() >= end {
                break now;
            }
            std::thread::sleep(POLL);
        };
        panic!(
            "monitor {monitor} did not become {state} within {DEADLINE:?} (last: {last}); daemon log:\n{}",
            self.log_text()
        );
    }

    /// Waits until an alert `module id` has been raised `count` times.
    pub fn wait_alert_count(&self, module: &str, id: u64, count: usize) {
        let end = Instant::now() + DEADLINE;
        let seen = loop {
            let seen = self.alerts_json(10_000);
            if count_alerts(&seen, module, id) >= count {
                return;
            }
            if Instant::now() >= end {
                break seen;
            }
            std::thread::sleep(POLL);
        };
        panic!(
            "alert {module} {id} was not raised {count} times within {DEADLINE:?}; alerts:\n{}",
            describe_alerts(&seen)
        );
    }

    /// Waits until the monitor alert `rm id` about `monitor` has been raised
    /// `count` times.
    pub fn wait_monitor_alert(&self, monitor: &str, id: u64, count: usize) {
        let end = Instant::now() + DEADLINE;
        let seen = loop {
            let seen = self.alerts_json(10_000);
            if count_monitor_alerts(&seen, monitor, id) >= count {
                return;
            }
            if Instant::now() >= end {
                break seen;
            }
            std::thread::sleep(POLL);
        };
        panic!(
            "alert rm {id} for monitor {monitor} was not raised {count} times within {DEADLINE:?}; alerts:\n{}\ndaemon log:\n{}",
            describe_alerts(&seen),
            self.log_text()
        );
    }

    /// Waits until the group is in `state` (as spelled in JSON: `Online`, ...).
    pub fn wait_group_state(&self, group: &str, state: &str) {
        let end = Instant::now() + DEADLINE;
        let last = loop {
            let now = self.group_state(group);
            if now == state {
                return;
            }
            if Instant::now() >= end {
                break now;
            }
            std::thread::sleep(POLL);
        };
        panic!(
            "group {group} did not become {state} within {DEADLINE:?} (last: {last}); daemon log:\n{}",
            self.log_text()
        );
    }

    /// Waits for the daemon to exit by itself; panics after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if Instant::now() >= end {
                panic!(
                    "the daemon did not exit within {deadline:?}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if self.exit.is_none() && self.pid() > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal);
        }
    }

    /// Sends SIGTERM and returns the exit status once the daemon has exited.
    pub fn stop_with_sigterm(&mut self) -> ExitStatus {
        if let Some(status) = self.try_wait() {
            panic!(
                "the daemon had already exited with {status}; its log:\n{}",
                self.log_text()
            );
        }
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(DEADLINE)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if self.try_wait().is_none() {
            // Politely first, so that the groups (and their scripts) stop.
            self.signal(nix::sys::signal::Signal::SIGTERM);
            let end = Instant::now() + Duration::from_secs(10);
            while self.try_wait().is_none() && Instant::now() < end {
                std::thread::sleep(POLL);
            }
            if self.try_wait().is_none() {
                self.signal(nix::sys::signal::Signal::SIGKILL);
                if let Some(child) = self.child.as_mut() {
                    let _ = child.wait();
                }
            }
        }
        if panicking {
            eprintln!(
                "---- daemon log {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}
