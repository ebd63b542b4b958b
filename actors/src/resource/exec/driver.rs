//! Running exec resource scripts: each in its own process group (so a timeout
//! kills everything it started), with its output copied line by line, with a
//! timestamp, into the resource's log. Everything is async: no script ever
//! blocks an actor's thread.

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

/// Describes an exit status in words ("exit status 3", "killed by signal 9").
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended".into(),
    }
}

async fn spawn(script: &Script) -> Result<(Child, LogFile, u32), String> {
    let log = open_log(&script.log).await?;
    let mut cmd = Command::new(&script.path);
    cmd.envs(script.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|e| {
        let msg = format!(
            "cannot run {} script {}: {e}",
            script.label,
            script.path.display()
        );
        msg
    })?;
    let pid = child.id().unwrap_or(0);
    let tag = format!("{} pid {pid}", script.label);
    log_line(&log, &tag, &format!("started {}", script.path.display())).await;
    if let Some(out) = child.stdout.take() {
        copy_output(out, log.clone(), tag.clone());
    }
    if let Some(err) = child.stderr.take() {
        copy_output(err, log.clone(), format!("{tag} stderr"));
    }
    Ok((child, log, pid))
}

/// Signals a whole process group; a group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid as i32), signal);
    }
}

/// Runs a script to completion. Success is exit status 0. At the timeout the
/// script's whole process group is killed.
pub async fn run_sync(script: &Script) -> Result<(), String> {
    let (mut child, log, pid) = spawn(script).await?;
    let tag = format!("{} pid {pid}", script.label);
    match tokio::time::timeout(script.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            log_line(&log, &tag, &describe_status(status)).await;
            if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} script {} failed: {}",
                    script.label,
                    script.path.display(),
                    describe_status(status)
                ))
            }
        }
        Ok(Err(e)) => Err(format!("waiting for {} script: {e}", script.label)),
        Err(_) => {
            signal_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
            let msg = format!(
                "{} script {} timed out after {} s; its process group was killed",
                script.label,
                script.path.display(),
                script.timeout.as_secs()
            );
            log_line(&log, &tag, &msg).await;
            Err(msg)
        }
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
    let (mut child, log, pid) = spawn(script).await?;
    let (tx, rx) = watch::channel(None);
    let tag = format!("{} pid {pid}", script.label);
    actix_rt::spawn(async move {
        let desc = match child.wait().await {
            Ok(s) => describe_status(s),
            Err(e) => format!("wait failed: {e}"),
        };
        log_line(&log, &tag, &desc).await;
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
