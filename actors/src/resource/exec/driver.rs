//! Running exec resource scripts: each in its own process group (so a timeout
//! kills everything it started), with its output copied line by line, with a
//! timestamp, into the resource's log. Everything is async: no script ever
//! blocks an actor's thread.
//!
//! Every process group started here is written down in the ownership
//! records ([`crate::resource::owned`]) and struck off once it is empty, so
//! that nothing of it outlives a daemon that dies.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{watch, Mutex};

use crate::notify::alert_log::now_rfc3339;
use crate::resource::owned;

/// One script invocation.
#[derive(Debug, Clone)]
pub struct Script {
    pub path: PathBuf,
    /// `start` or `stop`: tags the log lines.
    pub label: &'static str,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub log: PathBuf,
}

type LogFile = Arc<Mutex<tokio::fs::File>>;

async fn open_log(path: &Path) -> Result<LogFile, String> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create log folder {}: {e}", dir.display()))?;
    }
    let f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|e| format!("cannot open script log {}: {e}", path.display()))?;
    Ok(Arc::new(Mutex::new(f)))
}

async fn log_line(log: &LogFile, tag: &str, text: &str) {
    let line = format!("{} [{tag}] {text}\n", now_rfc3339());
    let mut f = log.lock().await;
    let _ = f.write_all(line.as_bytes()).await;
}

fn copy_output<R: AsyncRead + Unpin + 'static>(reader: R, log: LogFile, tag: String) {
    actix_rt::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log_line(&log, &tag, &line).await;
        }
    });
}

/// How often a spawn that fails with ETXTBSY is tried again, and the pause
/// before the first retry (doubled each time: about 0.6 s in all).
const BUSY_RETRIES: u32 = 7;
const BUSY_FIRST_PAUSE: Duration = Duration::from_millis(5);

/// Spawns `cmd`, trying again a few times, with a growing pause, while the
/// kernel refuses with ETXTBSY ("text file busy"). That refusal means the
/// script is open for writing somewhere, which is usually brief: a child
/// forked by another thread of this process (a script starting, a monitor
/// probe) holds a copy of a descriptor on the script until it execs, and an
/// operator's editor saving the script holds one while it writes.
async fn spawn_when_not_busy(cmd: &mut Command) -> std::io::Result<Child> {
    let mut pause = BUSY_FIRST_PAUSE;
    for _ in 0..BUSY_RETRIES {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    cmd.spawn()
}

/// Describes an exit status in words ("exit status 3", "killed by signal 9").
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// A script started by [`spawn_in_group`], its output being copied into its
/// log.
pub struct Spawned {
    pub child: Child,
    /// The script's pid, which is also its process group id.
    pub pid: u32,
    log: Option<LogFile>,
    tag: String,
}

impl Spawned {
    /// Waits for the script (the group's leader) to exit; then the group
    /// comes off the ownership records once nothing of it runs. Cancel
    /// safe like [`Child::wait`].
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        owned::group_reaped(self.pid).await;
        Ok(status)
    }

    /// Waits for the script at most `timeout`; its exit status, noted in its
    /// log. At the timeout its whole process group is killed and the error
    /// says so, naming it `what` ("start script /etc/app/start.sh").
    pub async fn wait_within(
        &mut self,
        timeout: Duration,
        what: &str,
    ) -> Result<ExitStatus, String> {
        match tokio::time::timeout(timeout, self.wait()).await {
            Ok(Ok(status)) => {
                self.note(&describe_status(status)).await;
                Ok(status)
            }
            Ok(Err(e)) => Err(format!("waiting for {what}: {e}")),
            Err(_) => {
                signal_group(self.pid, Signal::SIGKILL);
                let _ = self.wait().await;
                let msg = format!(
                    "{what} timed out after {} s; its process group was killed",
                    timeout.as_secs()
                );
                self.note(&msg).await;
                Err(msg)
            }
        }
    }

    /// Appends a timestamped line about the script to its log, if it has one.
    pub async fn note(&self, text: &str) {
        if let Some(log) = &self.log {
            log_line(log, &self.tag, text).await;
        }
    }
}

/// Starts a script the way exec resource scripts are started: in its own
/// process group (so [`signal_group`] reaches everything it starts), stdin
/// from `/dev/null`, and its stdout and stderr copied line by line, with a
/// timestamp, into `log` (discarded when `log` is `None`). `label` names the
/// script in messages and log lines. The child is not killed on drop.
pub async fn spawn_in_group(
    path: &Path,
    args: &[String],
    env: &[(String, String)],
    label: &str,
    log: Option<&Path>,
) -> Result<Spawned, String> {
    let log = match log {
        Some(p) => Some(open_log(p).await?),
        None => None,
    };
    let output = || {
        if log.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let mut cmd = Command::new(path);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = spawn_when_not_busy(&mut cmd)
        .await
        .map_err(|e| format!("cannot run {label} script {}: {e}", path.display()))?;
    let pid = child.id().unwrap_or(0);
    let tag = format!("{label} pid {pid}");
    // Should this future be dropped while the record or the log line is
    // written, the script must not be left running with nobody to wait for it.
    let mut guard = GroupGuard::new(pid);
    owned::record_group(pid).await;
    if let Some(log) = &log {
        log_line(log, &tag, &format!("started {}", path.display())).await;
        if let Some(out) = child.stdout.take() {
            copy_output(out, log.clone(), tag.clone());
        }
        if let Some(err) = child.stderr.take() {
            copy_output(err, log.clone(), format!("{tag} stderr"));
        }
    }
    guard.disarm();
    Ok(Spawned {
        child,
        pid,
        log,
        tag,
    })
}

async fn spawn(script: &Script) -> Result<Spawned, String> {
    spawn_in_group(
        &script.path,
        &[],
        &script.env,
        script.label,
        Some(&script.log),
    )
    .await
}

/// Signals a whole process group; a group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid as i32), signal);
    }
}

/// Kills a process group with SIGKILL when dropped, unless disarmed first:
/// whoever abandons a script (a dropped future, a stopped monitor) takes
/// everything it started down with it.
pub struct GroupGuard(Option<u32>);

impl GroupGuard {
    pub fn new(pgid: u32) -> Self {
        GroupGuard(Some(pgid))
    }

    /// The group no longer needs killing (the script was waited for).
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs a script to completion. Success is exit status 0. At the timeout the
/// script's whole process group is killed.
pub async fn run_sync(script: &Script) -> Result<(), String> {
    let mut s = spawn(script).await?;
    let what = format!("{} script {}", script.label, script.path.display());
    let status = s.wait_within(script.timeout, &what).await?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}", describe_status(status)))
    }
}

/// A start script left running (asynchronous mode).
pub struct AsyncChild {
    pub pid: u32,
    /// Becomes `Some(description)` when the process has exited.
    pub exited: watch::Receiver<Option<String>>,
}

/// Launches a script and leaves it running; a task reaps it and publishes its
/// exit on `exited`.
pub async fn spawn_async(script: &Script) -> Result<AsyncChild, String> {
    let mut s = spawn(script).await?;
    let pid = s.pid;
    let (tx, rx) = watch::channel(None);
    actix_rt::spawn(async move {
        let desc = match s.wait().await {
            Ok(status) => describe_status(status),
            Err(e) => format!("wait failed: {e}"),
        };
        s.note(&desc).await;
        let _ = tx.send(Some(desc));
    });
    Ok(AsyncChild { pid, exited: rx })
}

/// Stops an asynchronous start script's process group: SIGTERM, then SIGKILL
/// if it is still there after `grace`.
pub async fn terminate(child: &mut AsyncChild, grace: Duration) {
    if child.exited.borrow().is_some() {
        return;
    }
    signal_group(child.pid, Signal::SIGTERM);
    let wait = child.exited.wait_for(|e| e.is_some());
    if tokio::time::timeout(grace, wait).await.is_err() {
        signal_group(child.pid, Signal::SIGKILL);
        let _ = child.exited.wait_for(|e| e.is_some()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::Instant;

    /// A script in a fresh folder, still open for writing: while the file
    /// is held, exec fails with ETXTBSY.
    fn busy_script(tag: &str) -> (PathBuf, std::fs::File) {
        let dir = std::env::temp_dir().join(format!("us-busy-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("busy.sh");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&path)
            .unwrap();
        f.write_all(b"#!/bin/sh\nexit 0\n").unwrap();
        (path, f)
    }

    #[actix_rt::test]
    async fn a_script_busy_for_a_moment_still_starts() {
        let (path, writer) = busy_script("moment");
        // Let go of the file shortly after the first attempt.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(writer);
        });
        let mut s = spawn_in_group(&path, &[], &[], "start", None)
            .await
            .expect("started once the file was let go");
        assert!(s.wait().await.unwrap().success());
        release.join().unwrap();
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[actix_rt::test]
    async fn a_script_that_stays_busy_is_reported_after_the_retries() {
        let (path, writer) = busy_script("stays");
        let started = Instant::now();
        let err = match spawn_in_group(&path, &[], &[], "start", None).await {
            Ok(_) => panic!("a script open for writing cannot run"),
            Err(e) => e,
        };
        assert!(err.contains("Text file busy"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(300), "retried");
        drop(writer);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
