//! The Internet Server Agent's commands under test: `clp_httpmon` and
//! `clp_smtpmon` as symlinks to the binary under test (as the install
//! makes them), each run with a private identifier registry, a control
//! socket (a daemon's, or one where nothing listens) and a syslog socket.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{run_cmd, spawn_locked, wait_for, CmdOut, TestDir, BIN, DEADLINE, POLL};

pub struct Agents {
    /// Folder holding the `clp_httpmon` and `clp_smtpmon` symlinks.
    pub bin: PathBuf,
    /// The identifier registry (`UNDERSTUDY_AGENT_DIR`).
    pub registry: PathBuf,
    /// `UNDERSTUDY_SOCKET`: a daemon's socket, or a path nothing listens on.
    pub socket: PathBuf,
    /// `UNDERSTUDY_SYSLOG_SOCKET`.
    pub syslog: PathBuf,
    dir: PathBuf,
}

impl Agents {
    /// Symlinks in `t/bin`, registry in `t/agents`, no daemon, syslog to
    /// `t/syslog.sock` (see [`Agents::syslog_receiver`]).
    pub fn new(t: &TestDir) -> Agents {
        let bin = t.join("bin");
        fs::create_dir_all(&bin).expect("mkdir bin");
        for name in ["clp_httpmon", "clp_smtpmon"] {
            let link = bin.join(name);
            if !link.exists() {
                std::os::unix::fs::symlink(BIN, &link).expect("symlink");
            }
        }
        Agents {
            bin,
            registry: t.join("agents"),
            socket: t.join("no-daemon.sock"),
            syslog: t.join("syslog.sock"),
            dir: t.path().to_path_buf(),
        }
    }

    /// The environment that points the commands here (also for a daemon
    /// whose scripts run them: `PATH` first finds the symlinks).
    pub fn env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH".into(), path),
            (
                "UNDERSTUDY_AGENT_DIR".into(),
                self.registry.display().to_string(),
            ),
            (
                "UNDERSTUDY_SYSLOG_SOCKET".into(),
                self.syslog.display().to_string(),
            ),
        ]
    }

    /// `NAME ARGS...` (through its symlink), ready to run.
    pub fn command(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.args(args)
            .envs(self.env())
            .env("UNDERSTUDY_SOCKET", &self.socket);
        cmd
    }

    /// Runs a command to completion.
    pub fn run(&self, name: &str, args: &[&str]) -> CmdOut {
        run_cmd(&mut self.command(name, args))
    }

    /// Starts a monitoring command; its stderr goes to `t/NAME-N.err`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Watched {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, Ordering::SeqCst);
        let stderr = self.dir.join(format!("{name}-{n}.err"));
        let file = fs::File::create(&stderr).expect("create stderr file");
        let mut cmd = self.command(name, args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        let child = spawn_locked(&mut cmd).unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Watched {
            child,
            stderr,
            status: None,
        }
    }

    /// The registry entry of `id`, if any.
    pub fn entry(&self, id: &str) -> Option<Value> {
        let text = fs::read_to_string(self.registry.join(id)).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    }

    /// Waits until `id` is registered (the command runs) and returns its
    /// entry.
    pub fn wait_entry(&self, id: &str, watched: &mut Watched) -> Value {
        let mut found = None;
        wait_for(&format!("{id} to be registered"), DEADLINE, || {
            watched.assert_running();
            found = self.entry(id);
            found.is_some()
        });
        found.unwrap()
    }

    /// A datagram socket bound where the commands send syslog lines.
    pub fn syslog_receiver(&self) -> UnixDatagram {
        let _ = fs::remove_file(&self.syslog);
        let sock = UnixDatagram::bind(&self.syslog).expect("bind the syslog socket");
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        sock
    }
}

/// A monitoring command running in the background; killed when dropped.
pub struct Watched {
    child: Child,
    pub stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Watched {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Panics, with its stderr, if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(s) = self.child.try_wait().expect("try_wait") {
            self.status = Some(s);
            panic!("the command exited ({s}):\n{}", self.stderr_text());
        }
    }

    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(s) => {
                self.status = Some(s);
                false
            }
            None => true,
        }
    }

    /// Waits for its exit (panics after `deadline`, with its stderr).
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        while self.is_running() {
            if Instant::now() >= end {
                panic!(
                    "the command did not exit within {deadline:?}:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(POLL);
        }
        self.status.unwrap()
    }

    /// Waits until its stderr holds `needle`.
    pub fn wait_said(&mut self, needle: &str) {
        wait_for(&format!("{needle:?} on stderr"), DEADLINE, || {
            self.stderr_text().contains(needle)
        });
    }

    /// SIGKILL, and reaped.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        if let Ok(s) = self.child.wait() {
            self.status = Some(s);
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill9();
        }
    }
}

/// The templates folder of the repository.
pub fn templates() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/templates"))
}
