//! `custom` monitor (the product's custom monitor, genw): a script of the
//! user's says whether all is well.
//!
//! Scripts are started the way exec resource scripts are (see
//! [`crate::resource::exec::driver`]): in their own process group, with
//! `CLP_MONITORNAME` set, their output appended with timestamps to
//! `<log-dir>/monitor-<monitor>.log`.
//!
//! * `Sync`: every check runs the script and waits for it. The check is
//!   Normal when the exit status is `normal_exit`. When the monitor actor
//!   gives up on a check (its timeout drops the check future), the script's
//!   whole process group is killed.
//! * `Async`: the script is meant to run for as long as the monitor does.
//!   The first check starts it; a check is Normal while it runs. The first
//!   check after it has exited answers Error for that exit and starts the
//!   script again at once, so that the next check judges the new run: a
//!   script that keeps dying gives Error at every check (and the monitor's
//!   retries count them), one that died once gives a single Error. Dropping
//!   the probe (monitor stopped or suspended, daemon exit) ends the running
//!   script's process group: SIGTERM, then SIGKILL after [`ASYNC_GRACE`].

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::{oneshot, watch};

pub use understudy_brain::monitor::custom::{CustomConfig, CustomMode};

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};
use crate::resource::exec::driver::{
    describe_status, signal_group, spawn_in_group, GroupGuard, Spawned,
};

/// How long an asynchronous script may take to end after SIGTERM before its
/// process group is killed.
pub const ASYNC_GRACE: Duration = Duration::from_secs(3);

impl BuildProbe for CustomConfig {
    fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(CustomProbe::new(
            self,
            &build.monitor,
            &build.base_dir,
            &build.log_dir,
        )))
    }
}

/// Everything needed to start the script once more.
#[derive(Debug, Clone)]
struct Launch {
    path: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
}

impl Launch {
    async fn spawn(&self) -> Result<Spawned, String> {
        spawn_in_group(
            &self.path,
            &self.args,
            &self.env,
            "monitor",
            self.log.as_deref(),
        )
        .await
    }
}

/// An asynchronous script left running, reaped by its own task.
struct Running {
    pid: u32,
    /// Becomes `Some(description)` when the script has exited.
    exited: watch::Receiver<Option<String>>,
    /// Sending (or dropping) this asks the task to end the script.
    stop: Option<oneshot::Sender<()>>,
}

impl Running {
    /// Hands the script to a task that waits for it and publishes its exit,
    /// or ends its process group when asked to (or when the task itself is
    /// dropped, e.g. as the runtime shuts down: then at once with SIGKILL).
    fn watch(mut script: Spawned) -> Running {
        let pid = script.pid;
        let (exited_tx, exited) = watch::channel(None);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let mut guard = GroupGuard::new(pid);
        actix_rt::spawn(async move {
            tokio::select! {
                status = script.wait() => {
                    guard.disarm();
                    let desc = match status {
                        Ok(s) => describe_status(s),
                        Err(e) => format!("wait failed: {e}"),
                    };
                    script.note(&desc).await;
                    let _ = exited_tx.send(Some(desc));
                }
                // A message or a dropped sender: the monitor is going away.
                _ = stop_rx => {
                    signal_group(pid, Signal::SIGTERM);
                    if tokio::time::timeout(ASYNC_GRACE, script.wait())
                        .await
                        .is_ok()
                    {
                        guard.disarm();
                    } else {
                        drop(guard);
                        let _ = script.wait().await;
                    }
                    script.note("ended: the monitor stopped").await;
                }
            }
        });
        Running {
            pid,
            exited,
            stop: Some(stop),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs the custom monitor's script (see the module documentation).
pub struct CustomProbe {
    launch: Launch,
    mode: CustomMode,
    normal_exit: i32,
    /// The asynchronous script, shared with the check future that starts it.
    running: Rc<RefCell<Option<Running>>>,
}

impl CustomProbe {
    /// `base_dir` resolves a relative script path; the log goes to
    /// `log_dir/monitor-<monitor>.log`.
    pub fn new(config: &CustomConfig, monitor: &str, base_dir: &Path, log_dir: &Path) -> Self {
        CustomProbe {
            launch: Launch {
                path: base_dir.join(&config.script),
                args: config.args.clone(),
                env: vec![("CLP_MONITORNAME".to_string(), monitor.to_string())],
                log: config
                    .log
                    .then(|| log_dir.join(format!("monitor-{monitor}.log"))),
            },
            mode: config.mode,
            normal_exit: config.normal_exit,
            running: Rc::new(RefCell::new(None)),
        }
    }

    /// Pid (and process group) of the asynchronous script while it is
    /// known to run.
    pub fn async_pid(&self) -> Option<u32> {
        let slot = self.running.borrow();
        slot.as_ref()
            .filter(|r| r.exited.borrow().is_none())
            .map(|r| r.pid)
    }

    fn check_sync(&self) -> CheckFuture {
        let launch = self.launch.clone();
        let normal = self.normal_exit;
        Box::pin(async move {
            let mut script = match launch.spawn().await {
                Ok(s) => s,
                Err(e) => return Check::Error(e),
            };
            // The monitor's timeout drops this future: the group goes too.
            let mut guard = GroupGuard::new(script.pid);
            let status = script.wait().await;
            guard.disarm();
            match status {
                Err(e) => Check::Error(format!("waiting for the script: {e}")),
                Ok(status) => {
                    let desc = describe_status(status);
                    script.note(&desc).await;
                    match status.code() {
                        Some(c) if c == normal => Check::Normal,
                        Some(_) => Check::Error(format!("{desc} (normal is {normal})")),
                        None => Check::Error(desc),
                    }
                }
            }
        })
    }

    fn check_async(&self) -> CheckFuture {
        let exit = {
            let mut slot = self.running.borrow_mut();
            let exit = match slot.as_ref() {
                None => None,
                Some(r) => match r.exited.borrow().clone() {
                    None => return Box::pin(std::future::ready(Check::Normal)),
                    Some(desc) => Some(desc),
                },
            };
            *slot = None;
            exit
        };
        let launch = self.launch.clone();
        let slot = self.running.clone();
        Box::pin(async move {
            let started = launch.spawn().await.map(|s| {
                *slot.borrow_mut() = Some(Running::watch(s));
            });
            match (exit, started) {
                (None, Ok(())) => Check::Normal,
                (None, Err(e)) => Check::Error(e),
                (Some(exit), Ok(())) => Check::Error(format!("script exited: {exit}")),
                (Some(exit), Err(e)) => Check::Error(format!("script exited: {exit}; {e}")),
            }
        })
    }
}

impl Probe for CustomProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        match self.mode {
            CustomMode::Sync => self.check_sync(),
            CustomMode::Async => self.check_async(),
        }
    }
}

impl Drop for CustomProbe {
    /// Ends the asynchronous script (its task sends SIGTERM, then SIGKILL).
    fn drop(&mut self) {
        if let Ok(mut slot) = self.running.try_borrow_mut() {
            slot.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    /// A temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("us-custom-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }

        fn script(&self, name: &str, body: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(script: &str, mode: CustomMode) -> CustomConfig {
        CustomConfig {
            script: script.into(),
            args: vec![],
            mode,
            normal_exit: 0,
            log: true,
        }
    }

    fn probe(dir: &TempDir, c: &CustomConfig) -> CustomProbe {
        CustomProbe::new(c, "genw", &dir.0, &dir.0.join("log"))
    }

    /// Gone or a zombie: either way no longer running.
    fn gone(pid: u32) -> bool {
        matches!(super::super::pid::process_state(pid), Check::Error(_))
    }

    /// Waits (polling /proc: a process's death in another group sends us
    /// nothing to await) until `pid` is gone.
    async fn await_gone(pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gone(pid) {
            assert!(Instant::now() < deadline, "process {pid} still runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a script to write its background child's pid.
    async fn read_pid(file: &Path) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(file) {
                if text.ends_with('\n') {
                    return text.trim().parse().unwrap();
                }
            }
            assert!(Instant::now() < deadline, "the script never wrote its pid");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[actix_rt::test]
    async fn sync_exit_status_decides() {
        let dir = TempDir::new("sync");
        dir.script("ok.sh", "echo fine; exit 0");
        dir.script("three.sh", "echo \"$CLP_MONITORNAME $1\" >&2; exit 3");
        let env = ProbeEnv::default();

        let mut ok = probe(&dir, &config("ok.sh", CustomMode::Sync));
        assert_eq!(ok.check(&env).await, Check::Normal);

        let mut c = config("three.sh", CustomMode::Sync);
        c.args = vec!["arg1".into()];
        let mut three = probe(&dir, &c);
        assert_eq!(
            three.check(&env).await,
            Check::Error("exit status 3 (normal is 0)".into())
        );

        c.normal_exit = 3;
        let mut three_is_normal = probe(&dir, &c);
        assert_eq!(three_is_normal.check(&env).await, Check::Normal);

        let mut missing = probe(&dir, &config("missing.sh", CustomMode::Sync));
        assert!(matches!(missing.check(&env).await, Check::Error(e) if e.contains("missing.sh")));

        // The exit statuses are in the log; the output is copied by tasks of
        // its own, so only the lines written before the answer are checked.
        let log = std::fs::read_to_string(dir.0.join("log/monitor-genw.log")).unwrap();
        assert!(log.contains("exit status 0"), "{log}");
        assert!(log.contains("exit status 3"), "{log}");
    }

    #[actix_rt::test]
    async fn relative_paths_start_in_the_base_folder() {
        let dir = TempDir::new("relative");
        std::fs::create_dir_all(dir.0.join("scripts")).unwrap();
        dir.script("scripts/check.sh", "exit 0");
        let mut p = probe(&dir, &config("scripts/check.sh", CustomMode::Sync));
        assert_eq!(p.launch.path, dir.0.join("scripts/check.sh"));
        assert_eq!(p.check(&ProbeEnv::default()).await, Check::Normal);
        // An absolute path stays as it is.
        let abs = dir.0.join("scripts/check.sh");
        let p = CustomProbe::new(
            &config(abs.to_str().unwrap(), CustomMode::Sync),
            "genw",
            Path::new("/elsewhere"),
            &dir.0,
        );
        assert_eq!(p.launch.path, abs);
    }

    #[actix_rt::test]
    async fn dropping_a_sync_check_kills_the_whole_group() {
        let dir = TempDir::new("drop-sync");
        let pidfile = dir.0.join("child.pid");
        dir.script(
            "hang.sh",
            &format!("sleep 1000 &\necho $! > {}\nwait", pidfile.display()),
        );
        let mut c = config("hang.sh", CustomMode::Sync);
        c.log = false;
        let mut p = probe(&dir, &c);
        let mut check = p.check(&ProbeEnv::default());
        // Drive the check until the script has started its child, as the
        // monitor actor would until its timeout.
        let child = tokio::select! {
            v = &mut check => panic!("the script ended: {v:?}"),
            pid = read_pid(&pidfile) => pid,
        };
        assert!(!gone(child));
        drop(check);
        await_gone(child).await;
    }

    #[actix_rt::test]
    async fn async_script_runs_until_it_exits() {
        let dir = TempDir::new("async");
        dir.script("loop.sh", "exec sleep 1000");
        let env = ProbeEnv::default();
        let mut p = probe(&dir, &config("loop.sh", CustomMode::Async));
        assert_eq!(p.check(&env).await, Check::Normal);
        let (pid, mut exited) = {
            let slot = p.running.borrow();
            let r = slot.as_ref().unwrap();
            (r.pid, r.exited.clone())
        };
        assert_eq!(p.check(&env).await, Check::Normal);

        signal_group(pid, Signal::SIGKILL);
        exited.wait_for(|e| e.is_some()).await.unwrap();
        assert_eq!(
            p.check(&env).await,
            Check::Error("script exited: killed by signal 9".into())
        );
        // That check started it again.
        let again = p.async_pid().unwrap();
        assert_ne!(again, pid);
        assert_eq!(p.check(&env).await, Check::Normal);
        drop(p);
        await_gone(again).await;
    }

    #[actix_rt::test]
    async fn async_exit_status_is_reported() {
        let dir = TempDir::new("async-exit");
        dir.script("once.sh", "exit 1");
        let env = ProbeEnv::default();
        let mut p = probe(&dir, &config("once.sh", CustomMode::Async));
        assert_eq!(p.check(&env).await, Check::Normal);
        let mut exited = p.running.borrow().as_ref().unwrap().exited.clone();
        exited.wait_for(|e| e.is_some()).await.unwrap();
        assert_eq!(
            p.check(&env).await,
            Check::Error("script exited: exit status 1".into())
        );
    }

    #[actix_rt::test]
    async fn dropping_the_probe_ends_the_async_group() {
        let dir = TempDir::new("drop-async");
        let pidfile = dir.0.join("child.pid");
        // The script and its child ignore SIGTERM: SIGKILL after the grace
        // ends them.
        dir.script(
            "keep.sh",
            &format!(
                "trap '' TERM\nsleep 1000 &\necho $! > {}\nwhile :; do sleep 1; done",
                pidfile.display()
            ),
        );
        let mut p = probe(&dir, &config("keep.sh", CustomMode::Async));
        assert_eq!(p.check(&ProbeEnv::default()).await, Check::Normal);
        let script = p.async_pid().unwrap();
        let child = read_pid(&pidfile).await;
        drop(p);
        await_gone(child).await;
        await_gone(script).await;
    }
}
