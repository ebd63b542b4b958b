//! A lab of several servers for multi-server tests: network namespaces built
//! by `tools/lab` (a switch with two bridges, servers n1..nN with eth0 on
//! 198.51.100.0/24 and eth1 on 203.0.113.0/24, a client on both), one
//! `understudy run` per server namespace, a client that asks who answers on
//! an address, checkers of the "never on two servers" invariant of a
//! floating IP ([`AddressWatch`]) and of an application ([`ProcessWatch`]),
//! a packet filter at the switch that cuts the cluster traffic
//! ([`Lab::cut_cluster_traffic`]), and the faults of a partition: a server
//! cut off by the switch ([`Lab::isolate`]), a one-way cut
//! ([`Lab::oneway`]) and a frozen daemon ([`Lab::freeze`]).
//!
//! Servers are numbered from 1 (`n1` is server 1). Heartbeat paths are
//! numbered from 0 like the interfaces and like `servers[].paths[]` in the
//! status: path 0 is eth0 (198.51.100.0/24), path 1 is eth1 (203.0.113.0/24).
//!
//! Every lab has its own namespace prefix (`us-TAG-PID-N-`, the name of its
//! test folder), so tests run in parallel. Dropping the lab stops its daemons
//! (SIGTERM, then SIGKILL of their process groups after 10 s) and deletes its
//! namespaces (`tools/lab down` also ends any process left in them). When the
//! test failed, the folder with the daemons' logs is kept and the end of each
//! log is printed.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::mem::size_of;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use super::skip::{self, Missing};
use super::smtp::Smtpd;
use super::{
    pid_alive, run_cmd, spawn_locked, CmdOut, TestDir, BIN, DEADLINE, POLL, START_DEADLINE,
};

/// The lab tool (namespaces, bridges, addresses).
pub const LAB_TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/lab");
/// The responder that answers with its server's name.
pub const RESPONDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/lab-responder.py");
/// The first three octets of path 0's and path 1's network.
pub const NETS: [&str; 2] = ["198.51.100", "203.0.113"];
/// How often an [`AddressWatch`] looks at the servers' addresses.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(10);
/// How long a daemon gets to stop after SIGTERM when the lab is dropped.
const DROP_GRACE: Duration = Duration::from_secs(10);

/// What this machine lacks to host a lab, if anything.
pub fn lab_unavailable() -> Option<Missing> {
    skip::need_root("network namespaces need root")
        .or_else(|| skip::need_program("ip", "iproute2"))
        .or_else(|| skip::need_program("ping", "iputils-ping"))
        .or_else(|| skip::need_program("bash", "bash"))
        .or_else(|| skip::need_program("python3", "python3"))
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|f| f.is_file())
    })
}

/// One lab: its namespaces, its daemons and its helper processes.
pub struct Lab {
    dir: TestDir,
    tag: String,
    prefix: String,
    servers: usize,
    python: PathBuf,
    /// `understudy run` of server i at index i - 1 (the guardian, once the
    /// daemon has one; `ip netns exec` execs it, so this is its pid).
    daemons: Vec<Option<Child>>,
    /// Responders and other processes started in the namespaces.
    helpers: Vec<Child>,
    /// (server, daemon pid) of every daemon [`Lab::freeze`] stopped and
    /// did not thaw yet: thawed when the lab is dropped.
    frozen: Vec<(usize, u32)>,
    /// Servers start in their state folders (see [`Lab::run_in_state_dirs`]).
    in_state_dirs: bool,
}

impl Lab {
    /// Builds a lab with `servers` servers (1-39). `None`, after skipping
    /// the test (see [`skip`]), when the machine cannot host namespaces.
    pub fn new(tag: &str, servers: usize) -> Option<Lab> {
        assert!(
            !tag.is_empty()
                && tag.len() <= 12
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "lab tag {tag:?}: 1-12 letters, digits or _"
        );
        assert!((1..=39).contains(&servers), "a lab has 1-39 servers");
        if let Some(missing) = lab_unavailable() {
            missing.skip();
            return None;
        }
        reap_stale_labs();
        let dir = TestDir::new(tag);
        let prefix = format!(
            "{}-",
            dir.path()
                .file_name()
                .expect("test folder name")
                .to_string_lossy()
        );
        let lab = Lab {
            dir,
            tag: tag.to_string(),
            prefix,
            servers,
            python: find_in_path("python3").expect("python3"),
            daemons: (0..servers).map(|_| None).collect(),
            helpers: Vec::new(),
            frozen: Vec::new(),
            in_state_dirs: false,
        };
        // From here on, dropping `lab` takes down whatever `up` built.
        let out = lab.tool(&["up", &servers.to_string()]);
        match out.code {
            Some(0) => Some(lab),
            Some(3) => {
                skip::missing(
                    "network namespaces",
                    format!("lab {tag}: {}", out.stderr.trim()),
                )
                .skip();
                None
            }
            _ => panic!("tools/lab up {servers} failed: {out:?}"),
        }
    }

    fn tool(&self, args: &[&str]) -> CmdOut {
        let mut cmd = Command::new("bash");
        cmd.arg(LAB_TOOL)
            .args(args)
            .env("LAB_PREFIX", &self.prefix)
            .env("LAB_STATE", self.dir.join("lab"));
        run_cmd(&mut cmd)
    }

    /// The lab's test folder (configurations, logs, state folders).
    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Prefix of the lab's namespace names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn check(&self, i: usize) {
        assert!(
            (1..=self.servers).contains(&i),
            "no server {i} in a lab of {} servers",
            self.servers
        );
    }

    /// `n1`, `n2`, ...
    pub fn server_name(&self, i: usize) -> String {
        self.check(i);
        format!("n{i}")
    }

    /// Server i's namespace.
    pub fn ns(&self, i: usize) -> String {
        self.check(i);
        format!("{}n{i}", self.prefix)
    }

    pub fn client_ns(&self) -> String {
        format!("{}cl", self.prefix)
    }

    pub fn switch_ns(&self) -> String {
        format!("{}sw", self.prefix)
    }

    /// A mail server in the client namespace on 198.51.100.100:2525, the
    /// one [`LAB_MAIL_ALERTS`] mails to; `None`, after skipping the test,
    /// when it cannot run here.
    pub fn start_smtp(&self) -> Option<Smtpd> {
        Smtpd::start(
            &self.dir().join("smtp"),
            Some(&self.client_ns()),
            &["--bind", "198.51.100.100", "--port", "2525"],
        )
    }

    /// Server i's own address on `path` (0: 198.51.100.(10+i), 1: 203.0.113.(10+i)).
    pub fn addr(&self, i: usize, path: usize) -> String {
        self.check(i);
        format!("{}.{}", NETS[path], 10 + i)
    }

    /// The client's address on `path` (.100).
    pub fn client_addr(&self, path: usize) -> String {
        format!("{}.100", NETS[path])
    }

    /// The server name (`n2`) of a namespace of this lab, if it is a server's.
    pub fn server_of_ns(&self, ns: &str) -> Option<String> {
        ns.strip_prefix(&self.prefix)
            .filter(|s| s.starts_with('n'))
            .map(str::to_string)
    }

    // ---- configuration ----

    /// A whole configuration for this lab; see [`lab_config`].
    pub fn config(&self, groups: &str, extra: &str) -> String {
        lab_config(&self.dir, self.servers, groups, extra)
    }

    /// Writes the configuration the daemons start with (`cluster.ron`).
    pub fn write_config(&self, text: &str) -> PathBuf {
        self.dir.write("cluster.ron", text)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("cluster.ron")
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.key_file()
    }

    /// The shutdown / reboot requests recorded by the configuration's
    /// `os_actions`, as `(server, action)`, oldest first.
    pub fn os_actions(&self) -> Vec<(String, String)> {
        self.dir
            .lines("os-actions.log")
            .iter()
            .filter_map(|l| l.split_once(' '))
            .map(|(ns, action)| {
                (
                    self.server_of_ns(ns).unwrap_or_else(|| ns.to_string()),
                    action.to_string(),
                )
            })
            .collect()
    }

    // ---- daemons ----

    pub fn state_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.server_name(i))
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        self.dir.join(&format!("{}.sock", self.server_name(i)))
    }

    /// Server i's daemon log (its stdout and stderr, appended across starts).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(&format!("{}.log", self.server_name(i)))
    }

    /// The last 60 lines of server i's log.
    pub fn log_tail(&self, i: usize) -> String {
        let text = fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// From now on every server's `understudy run` starts in its own state
    /// folder (DIR/nI, created if need be) rather than in the test's: a
    /// path under `/proc/self/cwd/` in the shared configuration then names
    /// a file of each server's own (as a device of each box would be), with
    /// one configuration, and one digest, for all.
    pub fn run_in_state_dirs(&mut self) {
        self.in_state_dirs = true;
    }

    /// Starts server i's daemon on `cluster.ron` without waiting for it.
    pub fn spawn(&mut self, i: usize) {
        let config = self.config_path();
        self.spawn_with(i, &config);
    }

    /// Starts server i's daemon on `config` without waiting for it:
    /// `ip netns exec NS understudy run --config CONFIG --server nI
    /// --state-dir DIR/nI --socket DIR/nI.sock`, in a process group of its
    /// own, stdout and stderr appended to DIR/nI.log.
    pub fn spawn_with(&mut self, i: usize, config: &Path) {
        assert!(
            !self.is_running(i),
            "server {i}'s daemon is already running"
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("open the daemon log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(i), BIN, "run", "--config"])
            .arg(config)
            .args(["--server", &self.server_name(i), "--state-dir"])
            .arg(self.state_dir(i))
            .arg("--socket")
            .arg(self.socket(i))
            .env_remove("UNDERSTUDY_SOCKET")
            .env(
                "UNDERSTUDY_LOG",
                std::env::var("UNDERSTUDY_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("UNDERSTUDY_TEST_HOOKS", "1")
            // The responder names itself after its namespace without this.
            .env("LAB_PREFIX", &self.prefix)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            // Its own process group: the lab can kill the daemon with its
            // guardian at once, and no signal meant for the test reaches it.
            .process_group(0);
        if self.in_state_dirs {
            let dir = self.state_dir(i);
            fs::create_dir_all(&dir).expect("create the state folder");
            cmd.current_dir(dir);
        }
        let child = spawn_locked(&mut cmd).expect("spawn understudy run");
        self.daemons[i - 1] = Some(child);
    }

    /// Starts server i's daemon on `cluster.ron`; returns once it answers
    /// `status`.
    pub fn start(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready(i);
    }

    /// Like [`Lab::start`] with another configuration file.
    pub fn start_with(&mut self, i: usize, config: &Path) {
        self.spawn_with(i, config);
        self.wait_ready(i);
    }

    /// Starts every server's daemon (all spawned first, then waited for).
    pub fn start_all(&mut self) {
        for i in 1..=self.servers {
            self.spawn(i);
        }
        for i in 1..=self.servers {
            self.wait_ready(i);
        }
    }

    /// Waits until server i answers `status`; fails at once if the process
    /// exits.
    pub fn wait_ready(&mut self, i: usize) {
        let end = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.try_exit(i) {
                panic!(
                    "server {i}'s daemon exited with {status} before answering; its log:\n{}",
                    self.log_tail(i)
                );
            }
            if self.ctl(i, &["status", "--json"]).success() {
                return;
            }
            if Instant::now() >= end {
                panic!(
                    "server {i}'s daemon did not answer `status` within {START_DEADLINE:?}; its log:\n{}",
                    self.log_tail(i)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The exit status of the process the lab spawned for server i, once it
    /// has exited (`None` while it runs or when none was started).
    pub fn try_exit(&mut self, i: usize) -> Option<ExitStatus> {
        self.check(i);
        self.daemons[i - 1]
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait on a daemon"))
    }

    /// Whether the process the lab spawned for server i still runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.check(i);
        self.daemons[i - 1].is_some() && self.try_exit(i).is_none()
    }

    /// Pid of the process the lab spawned for server i (the guardian).
    pub fn guardian_pid(&self, i: usize) -> Option<u32> {
        self.check(i);
        self.daemons[i - 1].as_ref().map(Child::id)
    }

    /// The daemon's pid as its `status` tells.
    pub fn daemon_pid(&self, i: usize) -> u32 {
        let status = self.status(i);
        status["pid"]
            .as_u64()
            .filter(|p| *p > 0)
            .unwrap_or_else(|| panic!("no pid in server {i}'s status: {status}")) as u32
    }

    /// Waits until the process the lab spawned for server i exits by itself.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> ExitStatus {
        self.check(i);
        assert!(
            self.daemons[i - 1].is_some(),
            "server {i}'s daemon was never started"
        );
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit(i) {
                return status;
            }
            if Instant::now() >= end {
                panic!(
                    "server {i}'s daemon did not exit within {timeout:?}; its log:\n{}",
                    self.log_tail(i)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM to the spawned process; returns its exit status once it has
    /// exited (the daemon stops its groups first).
    pub fn stop(&mut self, i: usize) -> ExitStatus {
        assert!(self.is_running(i), "server {i}'s daemon is not running");
        let pid = self.guardian_pid(i).expect("running daemon");
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        self.wait_exit(i, DEADLINE)
    }

    /// `kill -9` of the daemon (the pid from its status), not of its
    /// guardian; returns once that process is gone. Returns the pid.
    pub fn kill9_daemon(&mut self, i: usize) -> u32 {
        let pid = self.daemon_pid(i);
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        super::wait_for(
            &format!("server {i}'s daemon (pid {pid}) to die"),
            DEADLINE,
            || !pid_alive(pid),
        );
        pid
    }

    /// `kill -9` of the guardian and the daemon together: both are stopped
    /// (SIGSTOP) before either is killed, so neither sees the other die.
    /// The daemon's scripts, in process groups of their own, live on (as
    /// they would after a crash of the supervisor).
    pub fn kill9_all(&mut self, i: usize) {
        assert!(self.is_running(i), "server {i}'s daemon is not running");
        let guardian = self.guardian_pid(i).expect("running daemon");
        let mut pids = children_of(guardian);
        pids.push(guardian);
        for signal in [Signal::SIGSTOP, Signal::SIGKILL] {
            let _ = killpg(Pid::from_raw(guardian as i32), signal);
            for pid in &pids {
                let _ = kill(Pid::from_raw(*pid as i32), signal);
            }
        }
        if let Some(child) = self.daemons[i - 1].as_mut() {
            let _ = child.wait();
        }
        for pid in pids {
            super::wait_for(&format!("pid {pid} of server {i} to die"), DEADLINE, || {
                !pid_alive(pid)
            });
        }
    }

    // ---- control ----

    /// `understudy --socket DIR/nI.sock ARGS...` (from outside the
    /// namespace: a Unix socket path belongs to no network namespace).
    pub fn ctl(&self, i: usize, args: &[&str]) -> CmdOut {
        let mut cmd = Command::new(BIN);
        cmd.arg("--socket")
            .arg(self.socket(i))
            .args(args)
            .env_remove("UNDERSTUDY_SOCKET");
        run_cmd(&mut cmd)
    }

    /// A control command that must succeed; its stdout.
    pub fn ctl_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.ctl(i, args);
        assert!(
            out.success(),
            "`understudy {}` on server {i} failed: {out:?}\nits log:\n{}",
            args.join(" "),
            self.log_tail(i)
        );
        out.stdout
    }

    /// `status --json` of server i, `None` when it does not answer.
    pub fn try_status(&self, i: usize) -> Option<Value> {
        let out = self.ctl(i, &["status", "--json"]);
        if !out.success() {
            return None;
        }
        Some(
            serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout)),
        )
    }

    /// `status --json` of server i; panics when it does not answer.
    pub fn status(&self, i: usize) -> Value {
        serde_json::from_str(&self.ctl_ok(i, &["status", "--json"])).expect("status --json is JSON")
    }

    /// Polls server i's status every [`POLL`] until `pred` holds and returns
    /// that status; on timeout panics with `what`, the last status and the
    /// end of the server's log.
    pub fn wait_status(
        &self,
        i: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(status) = self.try_status(i) {
                if pred(&status) {
                    return status;
                }
                last = Some(status);
            }
            if Instant::now() >= end {
                let last = match last {
                    Some(s) => serde_json::to_string_pretty(&s).unwrap_or_default(),
                    None => "(never answered)".into(),
                };
                panic!(
                    "timed out after {timeout:?} waiting for {what} (as seen by n{i}); last status:\n{last}\n---- n{i} log ----\n{}",
                    self.log_tail(i)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until server i sees `group` Online on `server`.
    pub fn wait_group_on(&self, i: usize, group: &str, server: &str, timeout: Duration) -> Value {
        self.wait_status(
            i,
            &format!("group {group} Online on {server}"),
            timeout,
            |s| {
                group_of(s, group).is_some_and(|g| g["state"] == "Online" && g["current"] == server)
            },
        )
    }

    /// Waits until server i sees `server` in `state` (Online, Offline, ...).
    pub fn wait_server_state(
        &self,
        i: usize,
        server: &str,
        state: &str,
        timeout: Duration,
    ) -> Value {
        self.wait_status(i, &format!("server {server} {state}"), timeout, |s| {
            server_of(s, server).is_some_and(|v| v["state"] == state)
        })
    }

    // ---- faults of a partition ----

    /// The lab's etcd witness (`tools/lab witness start|stop`): etcd in
    /// the client's namespace on 198.51.100.100:2379 ([`LAB_WITNESS`]).
    /// Needs `etcd` (see [`etcd_unavailable`]).
    pub fn witness(&self, run: bool) {
        let args = ["witness", if run { "start" } else { "stop" }];
        let out = self.tool(&args);
        assert!(out.success(), "tools/lab {}: {out:?}", args.join(" "));
    }

    /// Server i loses the witness alone (`true`: `tools/lab witness cut
    /// I`), or reaches it again (`witness restore I`): the switch drops i's
    /// TCP traffic to and from the witness's client port, on both networks,
    /// while everything else flows (the other servers, the client, i's
    /// other traffic to the client's box). Needs `nft` (see
    /// [`nft_unavailable`]).
    pub fn witness_cut(&self, i: usize, cut: bool) {
        let i = i.to_string();
        let args = ["witness", if cut { "cut" } else { "restore" }, &i];
        let out = self.tool(&args);
        assert!(out.success(), "tools/lab {}: {out:?}", args.join(" "));
    }

    /// A switch failure that cuts server i off from every other box (the
    /// other servers and the client) on both networks, or (`false`) its
    /// end: `tools/lab isolate I` / `rejoin I`. The switch drops every frame
    /// that comes in on or would go out of i's two ports, ARP included
    /// (nftables, bridge family, in the switch namespace); both of i's links
    /// keep their carrier, so i cannot tell this from silent peers. Needs
    /// `nft` (see [`nft_unavailable`]).
    pub fn isolate(&self, i: usize, cut: bool) {
        let i = i.to_string();
        let args = if cut { ["isolate", &i] } else { ["rejoin", &i] };
        let out = self.tool(&args);
        assert!(out.success(), "tools/lab {}: {out:?}", args.join(" "));
    }

    /// A one-way cut: the switch drops the IPv4 traffic from server i to
    /// server j on both networks (`true`), or lets it through again
    /// (`tools/lab oneway I J` / `twoway I J`). Traffic from j to i still
    /// flows, and ARP passes both ways, as with an asymmetric firewall or
    /// ACL: i's heartbeats and peer-link packets are lost, j's arrive (a
    /// TCP connection either way fails, its answers being lost). Needs
    /// `nft` (see [`nft_unavailable`]).
    pub fn oneway(&self, i: usize, j: usize, cut: bool) {
        self.check(j);
        let (i, j) = (i.to_string(), j.to_string());
        let args = if cut {
            ["oneway", &i, &j]
        } else {
            ["twoway", &i, &j]
        };
        let out = self.tool(&args);
        assert!(out.success(), "tools/lab {}: {out:?}", args.join(" "));
    }

    /// Freezes (`true`: SIGSTOP) or thaws (`false`: SIGCONT) server i's
    /// daemon, the pid its status gives (as [`Lab::kill9_daemon`] finds
    /// it): the guardian's child, not the guardian, which runs on, as in a
    /// paused VM or a process stalled by the kernel. Returns the daemon's
    /// pid. Freezing returns once the kernel shows it stopped; thawing
    /// sends SIGCONT to the pid frozen, if it is still alive (its guardian
    /// may have ended it meanwhile). A daemon left frozen is thawed when the
    /// lab is dropped.
    pub fn freeze(&mut self, i: usize, freeze: bool) -> u32 {
        self.check(i);
        if !freeze {
            let k = self
                .frozen
                .iter()
                .position(|(server, _)| *server == i)
                .unwrap_or_else(|| panic!("server {i}'s daemon is not frozen"));
            let (_, pid) = self.frozen.remove(k);
            if pid_alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            }
            return pid;
        }
        assert!(
            self.frozen.iter().all(|(server, _)| *server != i),
            "server {i}'s daemon is frozen already"
        );
        let pid = self.daemon_pid(i);
        let guardian = self.guardian_pid(i).expect("running daemon");
        assert!(
            pid != guardian && children_of(guardian).contains(&pid),
            "server {i}: pid {pid} is not its guardian's ({guardian}) child"
        );
        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP)
            .unwrap_or_else(|e| panic!("SIGSTOP to server {i}'s daemon {pid}: {e}"));
        self.frozen.push((i, pid));
        super::wait_for(
            &format!("server {i}'s daemon (pid {pid}) to stop"),
            DEADLINE,
            || matches!(process_state(pid), Some('T') | None),
        );
        pid
    }

    // ---- network ----

    /// `ip -n NS ARGS...`
    pub fn ip(&self, ns: &str, args: &[&str]) -> CmdOut {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", ns]).args(args);
        run_cmd(&mut cmd)
    }

    /// `ip -n NS ARGS...`, which must succeed.
    pub fn must_ip(&self, ns: &str, args: &[&str]) {
        let out = self.ip(ns, args);
        assert!(out.success(), "ip -n {ns} {}: {out:?}", args.join(" "));
    }

    /// Runs a command inside a namespace (`ip netns exec NS CMD...`).
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> CmdOut {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(cmd);
        run_cmd(&mut c)
    }

    /// Sets server i's interface of `path` (0: eth0, 1: eth1) up or down.
    pub fn link(&self, i: usize, path: usize, up: bool) {
        assert!(path < 2, "paths are 0 (eth0) and 1 (eth1)");
        let state = if up { "up" } else { "down" };
        self.must_ip(&self.ns(i), &["link", "set", &format!("eth{path}"), state]);
    }

    /// Sets both of server i's interfaces up or down.
    pub fn links(&self, i: usize, up: bool) {
        for path in 0..2 {
            self.link(i, path, up);
        }
    }

    /// Server i's IPv4 addresses (without prefix length).
    pub fn addresses(&self, i: usize) -> Vec<String> {
        let out = self.ip(&self.ns(i), &["-4", "-o", "addr", "show"]);
        out.stdout
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet")?;
                words.next()?.split('/').next().map(str::to_string)
            })
            .collect()
    }

    /// One ping from the client.
    pub fn client_ping(&self, addr: &str) -> bool {
        self.exec(&self.client_ns(), &["ping", "-c1", "-W1", "-q", addr])
            .success()
    }

    /// From the client: connects to `addr:port` (500 ms at most), half-closes
    /// and returns the answer's first line: with the responder, the name of
    /// the server holding `addr`. `None` when nobody answers.
    pub fn client_fetch(&self, addr: &str, port: u16) -> Option<String> {
        let ip: Ipv4Addr = addr
            .parse()
            .unwrap_or_else(|_| panic!("{addr} is not an IPv4 address"));
        let target = SocketAddr::from((ip, port));
        in_netns(&self.client_ns(), move || {
            let mut conn = TcpStream::connect_timeout(&target, Duration::from_millis(500)).ok()?;
            conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            conn.shutdown(Shutdown::Write).ok()?;
            let mut text = String::new();
            conn.read_to_string(&mut text).ok()?;
            let first = text.lines().next()?.trim();
            (!first.is_empty()).then(|| first.to_string())
        })
    }

    /// Polls [`Lab::client_fetch`] until `want` answers (`None`: until
    /// nobody does); panics with the last answer after `timeout`.
    pub fn wait_fetch(&self, addr: &str, port: u16, want: Option<&str>, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let got = self.client_fetch(addr, port);
            if got.as_deref() == want {
                return;
            }
            if Instant::now() >= end {
                panic!("the client asked {addr}:{port} for {timeout:?}: wanted {want:?}, last answer {got:?}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Starts `tools/lab-responder.py` on `port` in server i's namespace
    /// (killed when the lab is dropped); returns once it accepts connections.
    pub fn start_responder(&mut self, i: usize, port: u16) {
        let ns = self.ns(i);
        let log = File::create(self.dir.join(&format!("responder-n{i}-{port}.log")))
            .expect("responder log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns])
            .arg(&self.python)
            .args([
                RESPONDER,
                "--port",
                &port.to_string(),
                "--strip-prefix",
                &self.prefix,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = spawn_locked(&mut cmd).expect("spawn the responder");
        self.helpers.push(child);
        let end = Instant::now() + DEADLINE;
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while !in_netns(&ns, move || TcpStream::connect(local).is_ok()) {
            let child = self.helpers.last_mut().expect("just pushed");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "the responder on n{i} exited with {status}: {}",
                    self.dir.read(&format!("responder-n{i}-{port}.log"))
                );
            }
            assert!(
                Instant::now() < end,
                "the responder on n{i} does not listen on {port}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// An executable start script for an exec resource (`start_mode:
    /// Async`): runs the responder on `port`, which answers with the name of
    /// the server it runs on.
    pub fn responder_script(&self, port: u16) -> PathBuf {
        self.dir.script(
            &format!("responder-{port}.sh"),
            &format!(
                "exec '{}' '{RESPONDER}' --port {port} --strip-prefix '{}'",
                self.python.display(),
                self.prefix
            ),
        )
    }

    /// Watches which servers hold `addr`; see [`AddressWatch`].
    pub fn watch_address(&self, addr: &str) -> AddressWatch {
        let namespaces = (1..=self.servers).map(|i| (i, self.ns(i))).collect();
        AddressWatch::start(addr, namespaces)
    }

    /// Watches in which servers a process whose command line contains
    /// `marker` runs; see [`ProcessWatch`].
    pub fn watch_process(&self, marker: &str) -> ProcessWatch {
        let namespaces = (1..=self.servers).map(|i| (i, self.ns(i))).collect();
        ProcessWatch::start(marker, namespaces)
    }

    /// Watches on which servers a filesystem is mounted; see
    /// [`MountWatch`]. `devices`: the device numbers (major, minor) the
    /// servers see the shared disk as.
    pub fn watch_mount(&self, devices: &[(u32, u32)]) -> MountWatch {
        let namespaces = (1..=self.servers).map(|i| (i, self.ns(i))).collect();
        MountWatch::start(devices, namespaces)
    }

    /// Watches in which servers the responder of [`Lab::responder_script`]
    /// on `port` runs: the application checker of a group that runs it.
    pub fn watch_responder(&self, port: u16) -> ProcessWatch {
        self.watch_process(&responder_marker(port))
    }

    // ---- packet filter ----

    /// `nft -f -` with `rules` inside namespace `ns`, which must succeed.
    pub fn nft(&self, ns: &str, rules: &str) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "nft", "-f", "-"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_locked(&mut cmd).expect("spawn nft");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("nft's stdin");
            stdin.write_all(rules.as_bytes()).expect("write nft rules");
        }
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft in {ns} failed ({}): {}\nrules:\n{rules}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The switch drops (or, with `false`, forwards again) every cluster
    /// packet between the servers: heartbeats (UDP to `heartbeat_port`) and
    /// peer-link requests (TCP to or from `peer_port`), on both networks.
    /// Everything else passes: links keep their carrier, ARP and the
    /// client's traffic go through. A table `bridge understudy_cut` in the
    /// switch namespace; needs `nft` (see [`nft_unavailable`]).
    pub fn cut_cluster_traffic(&self, cut: bool, heartbeat_port: u16, peer_port: u16) {
        let sw = self.switch_ns();
        if cut {
            let rules = format!(
                "table bridge understudy_cut {{
    chain through {{
        type filter hook forward priority 0; policy accept;
        udp dport {heartbeat_port} drop
        tcp dport {peer_port} drop
        tcp sport {peer_port} drop
    }}
}}
"
            );
            self.nft(&sw, &rules);
        } else {
            self.nft(&sw, "delete table bridge understudy_cut\n");
        }
    }
}

/// The lab's etcd witness ([`Lab::witness`]): its client URL, for the
/// `Etcd(endpoints: [...])` of a configuration.
pub const LAB_WITNESS: &str = "http://198.51.100.100:2379";

/// Why the lab's etcd witness cannot run here, if it cannot.
pub fn etcd_unavailable() -> Option<Missing> {
    skip::need_program("etcd", "etcd-server")
}

/// Why the packet filter of [`Lab::cut_cluster_traffic`] cannot be used
/// here, if it cannot.
pub fn nft_unavailable() -> Option<Missing> {
    skip::need_program("nft", "nftables")
}

/// What the command line of the responder started by
/// [`Lab::responder_script`] on `port` contains (arguments joined by spaces).
pub fn responder_marker(port: u16) -> String {
    format!("lab-responder.py --port {port} ")
}

/// The top-level field of a lab's configuration that mails the alerts to
/// the mail server of [`Lab::start_smtp`].
pub const LAB_MAIL_ALERTS: &str = r#"alerts: (mail: (server: "198.51.100.100", port: 2525, recipients: ["ops@example.com"],
                                  title: "lab", response_wait_secs: 5)),"#;

/// The floating IP of group `web` ([`web_group`]).
pub const WEB_VIP: &str = "198.51.100.50";
/// The port the responder of group `web` answers on.
pub const WEB_PORT: u16 = 8080;

/// A group `web` (with `attrs`, each followed by a comma) with a floating
/// IP ([`WEB_VIP`]) and a responder on [`WEB_PORT`] that answers with the
/// name of the server it runs on (the exec resource's `CLP_SERVER`).
pub fn web_group(lab: &Lab, attrs: &str) -> String {
    format!(
        r#"Group(name: "web", {attrs} resources: [
            Resource(name: "vip", kind: Fip(address: "{WEB_VIP}/24", duplicate_check_ms: 50)),
            Resource(name: "app", kind: Exec(
                start: "{responder}",
                stop: "/bin/true",
                start_mode: Async)),
        ])"#,
        responder = lab.responder_script(WEB_PORT).display()
    )
}

/// A lab of `servers` servers configured (not started) with group `web`
/// (with `attrs`, see [`web_group`]) and its alerts mailed
/// ([`LAB_MAIL_ALERTS`]) to the mail server it comes with
/// ([`Lab::start_smtp`]); `None`, after skipping the test, when the machine
/// cannot host them.
pub fn web_lab_with_mail(tag: &str, servers: usize, attrs: &str) -> Option<(Lab, Smtpd)> {
    let lab = Lab::new(tag, servers)?;
    let smtp = lab.start_smtp()?;
    let text = lab.config(&web_group(&lab, attrs), LAB_MAIL_ALERTS);
    lab.write_config(&text);
    Some((lab, smtp))
}

/// How many alerts server i raised itself (of the merged alert list it
/// shows) that contain every one of `needles`.
pub fn own_alerts(lab: &Lab, i: usize, needles: &[&str]) -> usize {
    let me = format!("n{i}");
    lab.ctl(i, &["alerts", "-n", "1000"])
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(me.as_str()))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Waits until server i has raised more than `before` alerts containing
/// every one of `needles`.
pub fn wait_own_alerts(lab: &Lab, i: usize, needles: &[&str], before: usize, within: Duration) {
    let end = Instant::now() + within;
    while own_alerts(lab, i, needles) <= before {
        if Instant::now() >= end {
            panic!(
                "n{i} raised no new alert with {needles:?} within {within:?}; its alerts:\n{}",
                lab.ctl(i, &["alerts", "-n", "300"]).stdout
            );
        }
        std::thread::sleep(POLL);
    }
}

/// How long a healthy lab gets for what comes quickly (its cluster formed,
/// a group started, a server declared down): long enough for a slow CI
/// machine.
pub const FORM_WAIT: Duration = Duration::from_secs(20);

/// The address checker and the application checker of group `web`
/// ([`web_group`]): its floating IP and its responder each on at most one
/// server at any moment.
pub struct Checkers {
    pub address: AddressWatch,
    pub app: ProcessWatch,
    /// About when both started: the times of their [`Watch::changes`] and
    /// double holdings count from here (within a sample or two).
    pub started: Instant,
}

impl Checkers {
    pub fn start(lab: &Lab) -> Checkers {
        let started = Instant::now();
        Checkers {
            address: lab.watch_address(WEB_VIP),
            app: lab.watch_responder(WEB_PORT),
            started,
        }
    }

    /// Waits until both see exactly `want` holding the group.
    pub fn wait_holders(&self, want: &[usize], timeout: Duration) {
        self.address.wait_holders(want, timeout);
        self.app.wait_holders(want, timeout);
    }

    /// Stops both; every time the address or the application was on two
    /// servers at once, as an error.
    pub fn check_never_double(self) -> Result<(), String> {
        let address = self.address.check_never_double();
        let app = self.app.check_never_double();
        let problems: Vec<String> = [address, app].into_iter().filter_map(Result::err).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Stops both; panics if the address or the application was ever on
    /// two servers at once.
    pub fn assert_never_double(self) {
        if let Err(e) = self.check_never_double() {
            panic!("{e}");
        }
    }
}

/// A lab of `servers` servers running group `web` on n1 (first in its
/// order), with `extra` top-level fields (see [`lab_config`]), answered
/// through the floating IP, both checkers running; `None` when the machine
/// cannot host the lab (the reason is printed).
pub fn web_on_n1(tag: &str, servers: usize, extra: &str) -> Option<(Lab, Checkers)> {
    web_lab_on(tag, servers, "", extra, 1)
}

/// Like [`web_on_n1`], with the group's `attrs` (see [`web_group`]) and
/// the server `on` it must run on once started (the first of its order).
pub fn web_lab_on(
    tag: &str,
    servers: usize,
    attrs: &str,
    extra: &str,
    on: usize,
) -> Option<(Lab, Checkers)> {
    let lab = Lab::new(tag, servers)?;
    let text = lab.config(&web_group(&lab, attrs), extra);
    Some(start_web(lab, &text, on))
}

/// Writes `config` (a configuration holding a group `web` with a floating
/// IP [`WEB_VIP`] and a responder on [`WEB_PORT`]) for `lab`, starts the
/// checkers and every server, and waits until `web` runs on server `on`
/// for every server, the client and the checkers.
pub fn start_web(mut lab: Lab, config: &str, on: usize) -> (Lab, Checkers) {
    lab.write_config(config);
    let checkers = Checkers::start(&lab);
    lab.start_all();
    let name = lab.server_name(on);
    for i in 1..=lab.servers() {
        lab.wait_group_on(i, "web", &name, FORM_WAIT);
    }
    lab.wait_fetch(WEB_VIP, WEB_PORT, Some(&name), FORM_WAIT);
    // The checkers see what runs where.
    checkers.wait_holders(&[on], FORM_WAIT);
    (lab, checkers)
}

/// `(state, current)` of group `web` in a status.
pub fn web_view(status: &Value) -> (String, String) {
    let g = group_of(status, "web").unwrap_or_else(|| panic!("no group web in {status}"));
    (
        g["state"].as_str().unwrap_or("?").to_string(),
        g["current"].as_str().unwrap_or("-").to_string(),
    )
}

/// The name of the server running `web` if the cluster (the daemons of
/// `servers`) is whole: exactly one of them runs it, Online; every one of
/// them reports it Online there; none shows an activation failure; the
/// client gets its answer through the floating IP from that server.
/// Otherwise what is wrong.
pub fn whole(lab: &Lab, servers: &[usize]) -> Result<String, String> {
    let mut views = Vec::new();
    for &i in servers {
        let status = lab
            .try_status(i)
            .ok_or_else(|| format!("n{i} does not answer status"))?;
        views.push((format!("n{i}"), web_view(&status)));
    }
    let describe = || {
        views
            .iter()
            .map(|(me, (state, current))| format!("{me} sees web {state} on {current}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if views
        .iter()
        .any(|(_, (state, _))| state.contains("Failure"))
    {
        return Err(format!("an activation failure is shown: {}", describe()));
    }
    // A server runs the group itself when its status names it as current.
    let running: Vec<&(String, (String, String))> = views
        .iter()
        .filter(|(me, (state, current))| current == me && state != "Offline")
        .collect();
    let [(holder, _)] = running.as_slice() else {
        return Err(format!(
            "web runs on {} servers, not one: {}",
            running.len(),
            describe()
        ));
    };
    if views
        .iter()
        .any(|(_, (state, current))| state != "Online" || current != holder)
    {
        return Err(format!("not Online on {holder} for all: {}", describe()));
    }
    match lab.client_fetch(WEB_VIP, WEB_PORT) {
        Some(name) if name == *holder => Ok(holder.clone()),
        other => Err(format!(
            "{}; but the client asking {WEB_VIP}:{WEB_PORT} got {other:?}",
            describe()
        )),
    }
}

/// Waits until the cluster is whole ([`whole`]); returns the server running
/// `web`, or what was still wrong after `within`.
pub fn try_wait_whole(lab: &Lab, servers: &[usize], within: Duration) -> Result<String, String> {
    let end = Instant::now() + within;
    loop {
        let last = match whole(lab, servers) {
            Ok(holder) => return Ok(holder),
            Err(e) => e,
        };
        if Instant::now() >= end {
            return Err(last);
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until the cluster is whole ([`whole`]); returns the server running
/// `web`. Panics with what was still wrong after `within`.
pub fn wait_whole(lab: &Lab, servers: &[usize], within: Duration, what: &str) -> String {
    try_wait_whole(lab, servers, within)
        .unwrap_or_else(|last| panic!("{what}: the service was not back within {within:?}: {last}"))
}

/// Watches the cluster for `period`: it must stay whole with `web` on
/// `holder` at every look; otherwise what went wrong, and when.
pub fn check_stays_whole(
    lab: &Lab,
    servers: &[usize],
    holder: &str,
    period: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < period {
        match whole(lab, servers) {
            Ok(h) if h == holder => {}
            Ok(h) => {
                return Err(format!(
                    "web moved from {holder} to {h} after {:?}",
                    start.elapsed()
                ))
            }
            Err(e) => {
                return Err(format!(
                    "whole with web on {holder}, then after {:?}: {e}",
                    start.elapsed()
                ))
            }
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// Watches the cluster for `period`: it must stay whole with `web` on
/// `holder` at every look; panics naming `what` otherwise.
pub fn stays_whole(lab: &Lab, servers: &[usize], holder: &str, period: Duration, what: &str) {
    if let Err(e) = check_stays_whole(lab, servers, holder, period) {
        panic!("{what}: {e}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        // A frozen daemon would not see the SIGTERM below.
        for (_, pid) in self.frozen.drain(..) {
            if pid_alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            }
        }
        // Politely first: the daemons stop their groups.
        let mut running: Vec<(usize, u32)> = Vec::new();
        for (k, slot) in self.daemons.iter_mut().enumerate() {
            if let Some(child) = slot {
                if matches!(child.try_wait(), Ok(None)) {
                    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
                    running.push((k, child.id()));
                }
            }
        }
        let end = Instant::now() + DROP_GRACE;
        while Instant::now() < end
            && self
                .daemons
                .iter_mut()
                .flatten()
                .any(|c| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(POLL);
        }
        for (k, pid) in running {
            let Some(child) = self.daemons[k].as_mut() else {
                continue;
            };
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!(
                    "lab {}: n{} did not stop within {DROP_GRACE:?} of SIGTERM; killing it",
                    self.tag,
                    k + 1
                );
                let pids = children_of(pid);
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                for p in pids {
                    let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
                }
                let _ = child.wait();
            }
        }
        for helper in &mut self.helpers {
            let _ = helper.kill();
            let _ = helper.wait();
        }
        // Ends whatever still runs in the namespaces, deletes them.
        let out = self.tool(&["down"]);
        if !out.success() {
            eprintln!("lab {}: tools/lab down failed: {out:?}", self.tag);
        }
        if panicking {
            eprintln!(
                "lab {}: logs kept in {} (nI.log: daemon logs, nI/: state folders)",
                self.tag,
                self.dir.path().display()
            );
            for i in 1..=self.servers {
                if self.log_path(i).exists() {
                    eprintln!("---- end of n{i}.log ----\n{}", self.log_tail(i));
                }
            }
        }
    }
}

/// A process's state letter from /proc (`R`, `S`, `T` for stopped, ...);
/// `None` when it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...: comm may hold anything.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Direct children of a process (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold anything.
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Deletes the namespaces of labs whose test process is gone (a test killed
/// before its lab was dropped), with whatever still runs in them. Once per
/// test process.
fn reap_stale_labs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir("/run/netns") else {
            return;
        };
        for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
            // us-TAG-PID-N-NODE
            let parts: Vec<&str> = name.split('-').collect();
            let Some(pid) = (parts.len() == 5 && parts[0] == "us")
                .then(|| parts[2].parse::<u32>().ok())
                .flatten()
            else {
                continue;
            };
            if pid == std::process::id() || pid_alive(pid) {
                continue;
            }
            let out = run_cmd(Command::new("ip").args(["netns", "pids", &name]));
            for p in out
                .stdout
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            let _ = run_cmd(Command::new("ip").args(["netns", "del", &name]));
            eprintln!("removed namespace {name} left by a test process that is gone");
        }
    });
}

/// One group of a status, by name.
pub fn group_of<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)
}

/// One server of a status, by name.
pub fn server_of<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

/// A configuration for a lab of `servers` servers: cluster `lab`, servers
/// n1..nN with both interconnects (198.51.100.(10+i), 203.0.113.(10+i)), a
/// heartbeat section (interval 100 ms, timeout 300 ms, the folder's key file,
/// startup wait 10 s), `os_actions` that only record the request (see
/// [`Lab::os_actions`]), then `extra` (top-level fields, each with its
/// trailing comma) and `groups` (the text inside `groups: [...]`).
///
/// A `heartbeat: (...)` field in `extra` is merged into the default one
/// instead of repeating it (RON forbids a field twice): its fields replace
/// the defaults of the same name, e.g. `heartbeat: (timeout_ms: 1000,
/// recovery: Manual),`.
pub fn lab_config(dir: &TestDir, servers: usize, groups: &str, extra: &str) -> String {
    let (extra, overrides) = take_field(extra, "heartbeat");
    let mut heartbeat: Vec<(String, String)> = vec![
        ("interval_ms".into(), "100".into()),
        ("timeout_ms".into(), "300".into()),
        (
            "key_file".into(),
            format!("{:?}", dir.key_file().display().to_string()),
        ),
        ("startup_wait_secs".into(), "10".into()),
    ];
    for item in split_top_level(overrides.as_deref().unwrap_or("")) {
        let (key, value) = item
            .split_once(':')
            .unwrap_or_else(|| panic!("heartbeat field {item:?} is not `name: value`"));
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        match heartbeat.iter_mut().find(|(k, _)| *k == key) {
            Some(field) => field.1 = value,
            None => heartbeat.push((key, value)),
        }
    }
    let heartbeat: Vec<String> = heartbeat.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let servers: Vec<String> = (1..=servers)
        .map(|i| {
            format!(
                "        Server(name: \"n{i}\", interconnects: [\"{}.{}\", \"{}.{}\"]),\n",
                NETS[0],
                10 + i,
                NETS[1],
                10 + i
            )
        })
        .collect();
    // Records "NAMESPACE ACTION": the script runs in the server's namespace.
    let recorder = dir.script(
        "os-action.sh",
        r#"echo "$(ip netns identify 2>/dev/null) $1" >> "$DIR/os-actions.log""#,
    );
    format!(
        "Cluster(\n    name: \"lab\",\n    servers: [\n{}    ],\n    heartbeat: ({}),\n    \
         os_actions: OsActions(shutdown: [\"{r}\", \"shutdown\"], reboot: [\"{r}\", \"reboot\"], panic: [\"{r}\", \"panic\"]),\n    \
         {extra}\n    groups: [\n{groups}\n    ],\n)\n",
        servers.concat(),
        heartbeat.join(", "),
        r = recorder.display()
    )
}

/// Removes the top-level field `name: (...)` (or `name: Struct(...)`) from
/// RON text; returns the rest and the text inside the parentheses.
fn take_field(text: &str, name: &str) -> (String, Option<String>) {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let skip_ws = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    let mut depth = 0i32;
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ if depth == 0
                && text[i..].starts_with(name)
                && (i == 0 || !ident(b[i - 1]))
                && !b.get(i + name.len()).is_some_and(|c| ident(*c)) =>
            {
                let mut j = skip_ws(i + name.len());
                if b.get(j) == Some(&b':') {
                    j = skip_ws(j + 1);
                    while j < b.len() && ident(b[j]) {
                        j += 1;
                    }
                    j = skip_ws(j);
                    assert_eq!(b.get(j), Some(&b'('), "`{name}:` must be followed by (...)");
                    let close = matching_paren(text, j);
                    let body = text[j + 1..close].to_string();
                    let mut end = skip_ws(close + 1);
                    if b.get(end) == Some(&b',') {
                        end += 1;
                    }
                    return (format!("{}{}", &text[..i], &text[end..]), Some(body));
                }
            }
            _ => {}
        }
        i += 1;
    }
    (text.to_string(), None)
}

/// Index of the parenthesis closing the one at `open`.
fn matching_paren(text: &str, open: usize) -> usize {
    let b = text.as_bytes();
    let (mut depth, mut in_str, mut i) = (0i32, false, open);
    while i < b.len() {
        match (in_str, b[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_str = false,
            (true, _) => {}
            (false, b'"') => in_str = true,
            (false, b'(' | b'[' | b'{') => depth += 1,
            (false, b')' | b']' | b'}') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced parentheses in {text:?}");
}

/// Splits RON text at the commas outside parentheses and strings; drops
/// empty items.
fn split_top_level(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
    let mut current = String::new();
    for c in text.chars() {
        if in_str {
            in_str = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else {
            match c {
                '"' => in_str = true,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs `f` on a fresh thread inside the network namespace `ns` (sockets it
/// opens belong to that namespace) and returns its result.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_netns(ns).unwrap_or_else(|e| panic!("cannot enter namespace {ns}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Moves the calling thread into the network namespace `/run/netns/NS`.
fn enter_netns(ns: &str) -> io::Result<()> {
    let file = File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns only reads the descriptor; it changes the calling
    // thread's network namespace and nothing of Rust's.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A time when an address was on two or more servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleHolding {
    /// The servers holding it (1-based).
    pub holders: Vec<usize>,
    /// First and last sample that saw it, from the start of the watch.
    pub first: Duration,
    pub last: Duration,
    /// Consecutive samples that saw it.
    pub samples: u64,
}

impl fmt::Display for DoubleHolding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.holders.iter().map(|i| format!("n{i}")).collect();
        write!(
            f,
            "on {} from {:.3}s to {:.3}s ({} samples)",
            names.join(" and "),
            self.first.as_secs_f64(),
            self.last.as_secs_f64(),
            self.samples
        )
    }
}

#[derive(Default)]
struct WatchState {
    samples: u64,
    holders: Vec<usize>,
    /// Every change of `holders`: when (from the start) and the new holders.
    changes: Vec<(Duration, Vec<usize>)>,
    doubles: Vec<DoubleHolding>,
    /// The previous sample was a double holding (the last of `doubles`).
    in_double: bool,
    error: Option<String>,
}

/// What a [`Watch`] looks for in every server namespace: an IPv4 address
/// ([`Address`], for an [`AddressWatch`]) or the process of an application
/// ([`Process`], for a [`ProcessWatch`]).
pub trait Watched: Send + Sync + 'static {
    /// What tells one sighting on a server from another: nothing for an
    /// address, the process id for a process.
    type Key: PartialEq;
    /// What the watch's thread keeps from one pass to the next.
    type Probe;
    /// How often the watch samples.
    const INTERVAL: Duration;
    /// What kind of watch this is, in messages ("address", "process").
    const KIND: &'static str;
    /// How a failed [`Watch::wait_holders`] says that the wanted servers
    /// did not hold it, and says which servers did.
    const NOT_ON: &'static str;
    const ON: &'static str;

    /// What is watched, in messages.
    fn what(&self) -> String;

    /// What a failed [`Watch::check_never_double`] says was on two servers
    /// at once.
    fn doubled(&self) -> String;

    /// Opens the probe of `namespaces` (server index, namespace name); runs
    /// in the watch's own thread, which may wander between namespaces.
    fn open(&self, namespaces: &[(usize, String)]) -> Result<Self::Probe, String>;

    /// One pass over every namespace: (server, key) of every sighting.
    fn look(&self, probe: &mut Self::Probe) -> Result<Vec<(usize, Self::Key)>, String>;
}

/// Watches which servers hold something ([`Watched`]), to check that it is
/// never on two servers at once.
///
/// A thread of its own samples every server namespace every
/// [`Watched::INTERVAL`]. Namespaces are looked at one after the other, so
/// a single pass could see the thing on n1 just before n1 lets it go and on
/// n2 just after n2 takes it: each sample therefore makes two passes, and a
/// server counts as holding it only when both passes saw the same sighting
/// there (for a process, the same process). Two servers holding it in both
/// passes held it at the same moment. Overlaps shorter than a sample
/// interval can go unseen.
pub struct Watch<T: Watched> {
    target: Arc<T>,
    state: Arc<Mutex<WatchState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Watched> Watch<T> {
    /// Starts watching `target` in the given namespaces (server index,
    /// namespace name); returns after the first sample.
    fn spawn(target: T, namespaces: Vec<(usize, String)>) -> Watch<T> {
        let target = Arc::new(target);
        let state = Arc::new(Mutex::new(WatchState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (target, state, stop) = (target.clone(), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("watch {}", target.what()))
                .spawn(move || watch_loop(&*target, namespaces, state, stop, ready_tx))
                .unwrap_or_else(|e| panic!("spawn the {} watch: {e}", T::KIND))
        };
        let name = || format!("{} watch of {}", T::KIND, target.what());
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{}: {e}", name()),
            Err(_) => panic!("{}: the thread ended before its first sample", name()),
        }
        Watch {
            target,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WatchState> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = &state.error {
            panic!("{} watch of {}: {e}", T::KIND, self.target.what());
        }
        state
    }

    /// The servers that held it through the latest sample, sorted.
    pub fn holders(&self) -> Vec<usize> {
        self.lock().holders.clone()
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.lock().samples
    }

    /// Every time it was seen on two or more servers so far.
    pub fn doubles(&self) -> Vec<DoubleHolding> {
        self.lock().doubles.clone()
    }

    /// Every change of the holders: when (from the start of the watch) and
    /// the new holders. Handy to measure how long nobody held it.
    pub fn changes(&self) -> Vec<(Duration, Vec<usize>)> {
        self.lock().changes.clone()
    }

    /// Waits for a sample taken after this call in which exactly `want`
    /// (any order) hold it.
    pub fn wait_holders(&self, want: &[usize], timeout: Duration) {
        let mut want = want.to_vec();
        want.sort_unstable();
        let after = self.samples();
        let end = Instant::now() + timeout;
        loop {
            {
                let state = self.lock();
                if state.samples > after && state.holders == want {
                    return;
                }
                if Instant::now() >= end {
                    panic!(
                        "{} {} exactly {want:?} within {timeout:?}: {} {:?}; changes: {:?}",
                        self.target.what(),
                        T::NOT_ON,
                        T::ON,
                        state.holders,
                        state.changes
                    );
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops the watch; panics listing every time it was on two or more
    /// servers.
    pub fn assert_never_double(self) {
        if let Err(e) = self.check_never_double() {
            panic!("{e}");
        }
    }

    /// Stops the watch; the list of every time it was on two or more
    /// servers as an error.
    pub fn check_never_double(mut self) -> Result<(), String> {
        self.finish();
        let state = self.lock();
        if state.doubles.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = state.doubles.iter().map(|d| format!("  {d}")).collect();
        Err(format!(
            "{} two servers at once ({} samples taken):\n{}",
            self.target.doubled(),
            state.samples,
            list.join("\n")
        ))
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<T: Watched> Drop for Watch<T> {
    fn drop(&mut self) {
        self.finish();
    }
}

fn watch_loop<T: Watched>(
    target: &T,
    namespaces: Vec<(usize, String)>,
    state: Arc<Mutex<WatchState>>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let mut probe = match target.open(&namespaces) {
        Ok(probe) => probe,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let start = Instant::now();
    let mut ready = Some(ready);
    while !stop.load(Ordering::SeqCst) {
        let seen = sample(target, &mut probe);
        let at = start.elapsed();
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        match seen {
            Ok(holders) => record(&mut st, at, holders),
            Err(e) => {
                st.error = Some(e.clone());
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(e));
                }
                return;
            }
        }
        drop(st);
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }
        std::thread::sleep(T::INTERVAL);
    }
}

/// The servers where both of two passes over every namespace saw the same
/// sighting, sorted.
fn sample<T: Watched>(target: &T, probe: &mut T::Probe) -> Result<Vec<usize>, String> {
    let first = target.look(probe)?;
    let second = target.look(probe)?;
    let mut holders: Vec<usize> = second
        .iter()
        .filter(|seen| first.contains(seen))
        .map(|(i, _)| *i)
        .collect();
    holders.sort_unstable();
    holders.dedup();
    Ok(holders)
}

fn record(st: &mut WatchState, at: Duration, holders: Vec<usize>) {
    st.samples += 1;
    if holders != st.holders {
        st.changes.push((at, holders.clone()));
    }
    if holders.len() >= 2 {
        match st.doubles.last_mut() {
            Some(d) if st.in_double && d.holders == holders => {
                d.last = at;
                d.samples += 1;
            }
            _ => st.doubles.push(DoubleHolding {
                holders: holders.clone(),
                first: at,
                last: at,
                samples: 1,
            }),
        }
        st.in_double = true;
    } else {
        st.in_double = false;
    }
    st.holders = holders;
}

// ---- the address checker ----

/// The address checker: watches which servers hold an IPv4 address, to
/// check that a floating IP is never on two servers at once.
///
/// It samples every [`WATCH_INTERVAL`] through rtnetlink sockets opened
/// inside the server namespaces (one RTM_GETADDR dump per namespace; no
/// process is spawned), two passes a sample as every [`Watch`]: a server
/// counts as holding the address only when both passes saw it there.
pub type AddressWatch = Watch<Address>;

/// An IPv4 address, as an [`AddressWatch`] looks for it.
pub struct Address(Ipv4Addr);

impl AddressWatch {
    /// Starts watching `addr` (with or without a /prefix) in the given
    /// namespaces (server index, namespace name); returns after the first
    /// sample.
    pub fn start(addr: &str, namespaces: Vec<(usize, String)>) -> AddressWatch {
        let ip: Ipv4Addr = addr
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{addr} is not an IPv4 address"));
        Watch::spawn(Address(ip), namespaces)
    }
}

impl Watched for Address {
    type Key = ();
    type Probe = Vec<(usize, RouteSocket)>;
    const INTERVAL: Duration = WATCH_INTERVAL;
    const KIND: &'static str = "address";
    const NOT_ON: &'static str = "was not held by";
    const ON: &'static str = "held by";

    fn what(&self) -> String {
        self.0.to_string()
    }

    fn doubled(&self) -> String {
        format!("{} was on", self.0)
    }

    fn open(&self, namespaces: &[(usize, String)]) -> Result<Self::Probe, String> {
        let mut sockets = Vec::new();
        for (i, ns) in namespaces {
            // This thread is the watch's own: it may wander between
            // namespaces. Each socket stays in the namespace it was opened in.
            match enter_netns(ns).and_then(|()| RouteSocket::open()) {
                Ok(socket) => sockets.push((*i, socket)),
                Err(e) => return Err(format!("rtnetlink socket in {ns}: {e}")),
            }
        }
        Ok(sockets)
    }

    fn look(&self, sockets: &mut Self::Probe) -> Result<Vec<(usize, ())>, String> {
        let mut seen = Vec::new();
        for (i, socket) in sockets.iter_mut() {
            if socket.holds(self.0)? {
                seen.push((*i, ()));
            }
        }
        Ok(seen)
    }
}

/// A NETLINK_ROUTE socket that dumps the IPv4 addresses of its namespace.
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

const NLMSG_HDRLEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

fn ne_u16(b: &[u8]) -> u16 {
    u16::from_ne_bytes([b[0], b[1]])
}

fn ne_u32(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl RouteSocket {
    fn open() -> io::Result<RouteSocket> {
        // SAFETY: plain socket(2); the descriptor is owned right after.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // A kernel that never answers must not hang the watch.
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: the option value is a timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RouteSocket {
            fd,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Whether an interface of the namespace has `addr`.
    fn holds(&mut self, addr: Ipv4Addr) -> Result<bool, String> {
        // A dump the kernel marks as interrupted (addresses changed during
        // it) may be inconsistent: take it again.
        for _ in 0..10 {
            if let Some(found) = self.dump(addr).map_err(|e| format!("RTM_GETADDR: {e}"))? {
                return Ok(found);
            }
        }
        Err("RTM_GETADDR: ten interrupted dumps in a row".into())
    }

    /// One RTM_GETADDR dump; `None` when it was interrupted.
    fn dump(&mut self, want: Ipv4Addr) -> io::Result<Option<bool>> {
        self.seq = self.seq.wrapping_add(1);
        let len = NLMSG_HDRLEN + IFADDRMSG_LEN;
        let mut req = [0u8; NLMSG_HDRLEN + IFADDRMSG_LEN];
        req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&libc::RTM_GETADDR.to_ne_bytes());
        req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // Port id 0 (the kernel assigns ours); then struct ifaddrmsg.
        req[NLMSG_HDRLEN] = libc::AF_INET as u8;
        // SAFETY: sends `len` bytes of `req` on our socket (to the kernel).
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), len, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let (mut found, mut interrupted) = (false, false);
        loop {
            // SAFETY: receives into our buffer, at most its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let data = &self.buf[..n as usize];
            if data.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut off = 0;
            while off + NLMSG_HDRLEN <= data.len() {
                let msg = &data[off..];
                let msg_len = ne_u32(&msg[0..4]) as usize;
                if msg_len < NLMSG_HDRLEN || msg_len > msg.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let kind = ne_u16(&msg[4..6]);
                let flags = ne_u16(&msg[6..8]);
                let seq = ne_u32(&msg[8..12]);
                if seq == self.seq {
                    if flags & libc::NLM_F_DUMP_INTR as u16 != 0 {
                        interrupted = true;
                    }
                    let payload = &msg[NLMSG_HDRLEN..msg_len];
                    if kind == libc::NLMSG_DONE as u16 {
                        return Ok((!interrupted).then_some(found));
                    } else if kind == libc::NLMSG_ERROR as u16 {
                        let errno = payload.get(0..4).map(ne_u32).unwrap_or(0) as i32;
                        if errno != 0 {
                            return Err(io::Error::from_raw_os_error(-errno));
                        }
                    } else if kind == libc::RTM_NEWADDR && has_address(payload, want) {
                        found = true;
                    }
                }
                off += align4(msg_len);
            }
        }
    }
}

/// Whether an RTM_NEWADDR payload (ifaddrmsg + attributes) is `want`.
fn has_address(payload: &[u8], want: Ipv4Addr) -> bool {
    if payload.len() < IFADDRMSG_LEN || payload[0] != libc::AF_INET as u8 {
        return false;
    }
    let mut off = IFADDRMSG_LEN;
    while off + 4 <= payload.len() {
        let len = ne_u16(&payload[off..off + 2]) as usize;
        let kind = ne_u16(&payload[off + 2..off + 4]);
        if len < 4 || off + len > payload.len() {
            break;
        }
        if (kind == libc::IFA_LOCAL || kind == libc::IFA_ADDRESS)
            && len == 8
            && payload[off + 4..off + 8] == want.octets()
        {
            return true;
        }
        off += align4(len);
    }
    false
}

/// How often a [`ProcessWatch`] looks at the servers' processes.
pub const PROCESS_WATCH_INTERVAL: Duration = Duration::from_millis(5);

/// The application checker: watches in which server namespaces a process
/// runs whose command line (arguments joined by spaces) contains a marker,
/// to check that a group's application never runs on two servers at once.
///
/// It scans `/proc` every [`PROCESS_WATCH_INTERVAL`]: a process belongs to
/// a server when its network namespace (`/proc/PID/ns/net`) is that
/// server's (what `ip netns pids` looks at; no process is spawned). Like
/// every [`Watch`], each sample makes two scans, and a server counts as
/// running the application only when the same process was seen there in
/// both: that process lived from the first scan to the second, so two
/// servers counted in one sample ran it at the same moment, while a process
/// that ended on one server just as another started elsewhere is not a
/// double. Overlaps shorter than a sample can go unseen.
pub type ProcessWatch = Watch<Process>;

/// A marker in a command line, as a [`ProcessWatch`] looks for it.
pub struct Process(String);

impl ProcessWatch {
    /// Starts watching for `marker` in the given namespaces (server index,
    /// namespace name); returns after the first sample.
    pub fn start(marker: &str, namespaces: Vec<(usize, String)>) -> ProcessWatch {
        assert!(!marker.is_empty(), "a process watch needs a marker");
        Watch::spawn(Process(marker.to_string()), namespaces)
    }
}

impl Watched for Process {
    /// The process id.
    type Key = u32;
    /// (namespace identity, server index) of every server.
    type Probe = NetnsServers;
    const INTERVAL: Duration = PROCESS_WATCH_INTERVAL;
    const KIND: &'static str = "process";
    const NOT_ON: &'static str = "did not run on";
    const ON: &'static str = "runs on";

    fn what(&self) -> String {
        format!("{:?}", self.0)
    }

    fn doubled(&self) -> String {
        format!("the application {:?} ran on", self.0)
    }

    fn open(&self, namespaces: &[(usize, String)]) -> Result<Self::Probe, String> {
        netns_ids(namespaces)
    }

    fn look(&self, servers: &mut Self::Probe) -> Result<Vec<(usize, u32)>, String> {
        Ok(scan_processes(servers, &self.0))
    }
}

/// A namespace's identity ([`netns_id`]) and its server.
type NetnsServers = Vec<((u64, u64), usize)>;

/// (identity, server) of each of `namespaces` (server, namespace name).
fn netns_ids(namespaces: &[(usize, String)]) -> Result<NetnsServers, String> {
    namespaces
        .iter()
        .map(|(i, ns)| {
            netns_id(&format!("/run/netns/{ns}"))
                .map(|id| (id, *i))
                .map_err(|e| format!("namespace {ns}: {e}"))
        })
        .collect()
}

/// (device, inode) of a network namespace file: the namespace's identity.
fn netns_id(path: &str) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// (server, pid) of every process in a server's namespace whose command
/// line contains `marker`. Processes that end during the scan are skipped.
fn scan_processes(servers: &[((u64, u64), usize)], marker: &str) -> Vec<(usize, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(id) = netns_id(&format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        let Some(&(_, server)) = servers.iter().find(|(ns, _)| *ns == id) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let line: String = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if line.contains(marker) {
            found.push((server, pid));
        }
    }
    found
}

// ---- the mount checker ----

/// The mount checker: watches on which servers a filesystem of the shared
/// disk is mounted, to check that it never is on two at once (two servers
/// writing to one filesystem destroy it).
///
/// A server's mounts are those of the mount namespaces of its processes:
/// it scans `/proc` every [`PROCESS_WATCH_INTERVAL`], takes every process
/// whose network namespace is a server's, and reads the `mountinfo` of one
/// process per mount namespace (no process is spawned). A mount of one of
/// the watched devices (by device number, the third field) counts. Like
/// every [`Watch`], each sample makes two scans, and a server holds the
/// filesystem only when both saw it mounted in the same mount namespace.
pub type MountWatch = Watch<Mount>;

/// The device numbers a [`MountWatch`] looks for, as `major:minor`.
pub struct Mount(Vec<String>);

impl MountWatch {
    /// Starts watching for mounts of `devices` in the given namespaces
    /// (server index, network namespace name); returns after the first
    /// sample.
    pub fn start(devices: &[(u32, u32)], namespaces: Vec<(usize, String)>) -> MountWatch {
        assert!(!devices.is_empty(), "a mount watch needs a device");
        Watch::spawn(
            Mount(devices.iter().map(|(a, b)| format!("{a}:{b}")).collect()),
            namespaces,
        )
    }
}

impl Watched for Mount {
    /// The mount namespace's inode.
    type Key = u64;
    /// (network namespace identity, server index) of every server.
    type Probe = NetnsServers;
    const INTERVAL: Duration = PROCESS_WATCH_INTERVAL;
    const KIND: &'static str = "mount";
    const NOT_ON: &'static str = "was not mounted on";
    const ON: &'static str = "mounted on";

    fn what(&self) -> String {
        format!("the filesystem of device {}", self.0.join(" / "))
    }

    fn doubled(&self) -> String {
        format!(
            "the filesystem of device {} was mounted on",
            self.0.join(" / ")
        )
    }

    fn open(&self, namespaces: &[(usize, String)]) -> Result<Self::Probe, String> {
        netns_ids(namespaces)
    }

    fn look(&self, servers: &mut Self::Probe) -> Result<Vec<(usize, u64)>, String> {
        Ok(scan_mounts(servers, &self.0))
    }
}

/// (server, mount namespace inode) of every mount namespace of a server's
/// processes that has one of `devices` mounted.
fn scan_mounts(servers: &[((u64, u64), usize)], devices: &[String]) -> Vec<(usize, u64)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut found = Vec::new();
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(id) = netns_id(&format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        let Some(&(_, server)) = servers.iter().find(|(ns, _)| *ns == id) else {
            continue;
        };
        let Ok(mnt) = fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino()) else {
            continue;
        };
        if seen.contains(&mnt) {
            continue;
        }
        seen.push(mnt);
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        let mounted = info.lines().any(|l| {
            l.split(' ')
                .nth(2)
                .is_some_and(|d| devices.iter().any(|w| w == d))
        });
        if mounted {
            found.push((server, mnt));
        }
    }
    found
}
