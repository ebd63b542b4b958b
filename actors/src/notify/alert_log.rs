//! The alert log: every alert, kept in the state directory.
//!
//! Storage: `alerts.jsonl` (one JSON alert per line), appended with a single
//! `write` of a whole line followed by `fdatasync`, so a crash can at worst
//! leave a torn last line, which loading skips. When the file passes
//! `max_bytes` it is renamed to `alerts.1.jsonl` (the older generation is
//! dropped), so the log is bounded at about twice `max_bytes`.
//!
//! The log runs on a thread of its own, fed through a crossbeam channel
//! ([`AlertLogHandle`]): disk writes never stall the actors, and alerts raised
//! while the actors' thread is blocked (the userspace watchdog's) still
//! reach the disk.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::model::catalog::{Alert, Event};

/// Default size at which the log rotates.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Alerts kept in memory for `understudy alerts`.
pub const MEMORY_ALERTS: usize = 10_000;

pub struct AlertLog {
    dir: PathBuf,
    max_bytes: u64,
    file: Option<File>,
    size: u64,
    recent: VecDeque<Alert>,
    /// Counts each alert recorded, by module and id (the daemon's log).
    metrics: Option<crate::metrics::Metrics>,
    /// The newest alerts, republished after each one (the status page).
    published: Option<tokio::sync::watch::Sender<RecentAlerts>>,
}

/// The newest alerts, oldest first, as the alert log last published them.
pub type RecentAlerts = std::sync::Arc<Vec<Alert>>;

/// How many alerts [`AlertLog::publish_in`] publishes.
pub const PUBLISHED_ALERTS: usize = 20;

impl AlertLog {
    /// Opens (creating if needed) the log in `dir` and loads the newest alerts.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut recent = VecDeque::new();
        for name in ["alerts.1.jsonl", "alerts.jsonl"] {
            if let Ok(f) = File::open(dir.join(name)) {
                for line in BufReader::new(f).lines() {
                    let Ok(line) = line else { break };
                    // A torn or foreign line is skipped, never fatal.
                    if let Ok(a) = serde_json::from_str::<Alert>(&line) {
                        if recent.len() == MEMORY_ALERTS {
                            recent.pop_front();
                        }
                        recent.push_back(a);
                    }
                }
            }
        }
        let mut log = AlertLog {
            dir: dir.to_path_buf(),
            max_bytes,
            file: None,
            size: 0,
            recent,
            metrics: None,
            published: None,
        };
        log.reopen()?;
        Ok(log)
    }

    /// From now on, every alert recorded is counted in `metrics`.
    pub fn count_in(&mut self, metrics: crate::metrics::Metrics) {
        self.metrics = Some(metrics);
    }

    /// From now on, the newest [`PUBLISHED_ALERTS`] alerts are published
    /// on this channel after each one, so that readers never ask the log.
    pub fn publish_in(&mut self) -> tokio::sync::watch::Receiver<RecentAlerts> {
        let (tx, rx) =
            tokio::sync::watch::channel(std::sync::Arc::new(self.newest(PUBLISHED_ALERTS)));
        self.published = Some(tx);
        rx
    }

    fn path(&self) -> PathBuf {
        self.dir.join("alerts.jsonl")
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path())?;
        self.size = f.metadata()?.len();
        // A torn last line from a crash would glue onto the next alert: end it.
        if self.size > 0 {
            let mut last = [0u8; 1];
            File::open(self.path())?.read_exact_at(&mut last, self.size - 1)?;
            if last[0] != b'\n' {
                f.write_all(b"\n")?;
                self.size += 1;
            }
        }
        self.file = Some(f);
        Ok(())
    }

    fn append(&mut self, alert: &Alert) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(alert).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.file = None;
            fs::rename(self.path(), self.dir.join("alerts.1.jsonl"))?;
            self.reopen()?;
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let f = self.file.as_mut().expect("reopened above");
        f.write_all(&line)?;
        f.sync_data()?;
        self.size += line.len() as u64;
        Ok(())
    }

    pub fn record(&mut self, alert: Alert) {
        let line = format!(
            "{} {} {} {}: {}",
            alert.level.as_str(),
            alert.module,
            alert.event_id,
            alert.server,
            alert.message
        );
        match alert.level {
            crate::model::catalog::Level::Error => tracing::error!("{line}"),
            crate::model::catalog::Level::Warning => tracing::warn!("{line}"),
            crate::model::catalog::Level::Info => tracing::info!("{line}"),
        }
        if let Some(m) = &self.metrics {
            m.alert(&alert);
        }
        if let Err(e) = self.append(&alert) {
            tracing::error!("alert log {}: {e}", self.path().display());
            self.file = None;
        }
        if self.recent.len() == MEMORY_ALERTS {
            self.recent.pop_front();
        }
        self.recent.push_back(alert);
        if let Some(tx) = &self.published {
            tx.send_replace(std::sync::Arc::new(self.newest(PUBLISHED_ALERTS)));
        }
    }

    pub fn newest(&self, n: usize) -> Vec<Alert> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).cloned().collect()
    }
}

enum Command {
    Record(Alert),
    /// The newest `n` alerts go to the callback. Commands are handled in
    /// order, so when it is called every alert sent before is on disk.
    Newest(usize, Box<dyn FnOnce(Vec<Alert>) + Send>),
}

/// The alert log's address: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct AlertLogHandle {
    tx: Sender<Command>,
}

impl AlertLogHandle {
    /// Moves the log onto a thread of its own. The thread ends when every
    /// handle is gone.
    pub fn spawn(mut log: AlertLog) -> std::io::Result<AlertLogHandle> {
        let (tx, rx): (Sender<Command>, Receiver<Command>) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("alert-log".into())
            .spawn(move || {
                for cmd in rx {
                    match cmd {
                        Command::Record(alert) => log.record(alert),
                        Command::Newest(n, reply) => reply(log.newest(n)),
                    }
                }
            })?;
        Ok(AlertLogHandle { tx })
    }

    pub fn record(&self, alert: Alert) {
        // Fails only when the thread is gone (the daemon is exiting).
        let _ = self.tx.send(Command::Record(alert));
    }

    /// The newest `n` alerts, oldest first. `newest(0)` is a flush: it
    /// returns once every alert recorded before is on disk.
    pub async fn newest(&self, n: usize) -> Result<Vec<Alert>, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Command::Newest(
                n,
                Box::new(move |alerts| {
                    let _ = tx.send(alerts);
                }),
            ))
            .map_err(|_| "the alert log has stopped".to_string())?;
        rx.await
            .map_err(|_| "the alert log has stopped".to_string())
    }

    /// `newest` for plain threads, giving up after `within`.
    pub fn newest_blocking(&self, n: usize, within: Duration) -> Option<Vec<Alert>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx
            .send(Command::Newest(
                n,
                Box::new(move |alerts| {
                    let _ = tx.send(alerts);
                }),
            ))
            .ok()?;
        rx.recv_timeout(within).ok()
    }
}

/// A cheap handle every actor uses to raise alerts.
#[derive(Clone)]
pub struct Alerter {
    pub log: AlertLogHandle,
    pub server: String,
    /// The alert router (notifiers); `None` where there is none (tests,
    /// the guardian).
    pub router: Option<actix::Recipient<super::router::Routed>>,
}

impl Alerter {
    /// Records the alert and hands it to the router.
    pub fn raise(&self, event: Event) {
        self.raise_with(event, true, None);
    }

    /// Like [`raise`](Self::raise), but never by mail from this server:
    /// another server reports the same event.
    pub fn raise_without_mail(&self, event: Event) {
        self.raise_with(event, false, None);
    }

    /// Mails an alert already recorded here (another server should have
    /// reported it, and went down first): no second line in the log.
    pub fn mail_only(&self, event: Event) {
        if let Some(router) = &self.router {
            router.do_send(super::router::Routed {
                alert: event.to_alert(now_rfc3339(), &self.server),
                mail_allowed: true,
                force: None,
                only_mail: true,
            });
        }
    }

    /// Records the alert and sends it to exactly these notifiers (a test).
    pub fn raise_to(&self, event: Event, to: crate::model::routing::Destinations) {
        self.raise_with(event, true, Some(to));
    }

    fn raise_with(
        &self,
        event: Event,
        mail_allowed: bool,
        force: Option<crate::model::routing::Destinations>,
    ) {
        let alert = event.to_alert(now_rfc3339(), &self.server);
        if let Some(router) = &self.router {
            router.do_send(super::router::Routed {
                alert: alert.clone(),
                mail_allowed,
                force,
                only_mail: false,
            });
        }
        self.log.record(alert);
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Level;

    fn alert(i: usize) -> Alert {
        Alert {
            time: now_rfc3339(),
            server: "s1".into(),
            module: "rc".into(),
            event_id: 31,
            level: Level::Info,
            message: format!("alert number {i}"),
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("us-alertlog-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn survives_reopen_and_skips_a_torn_line() {
        let d = tmpdir("torn");
        let mut log = AlertLog::open(&d, DEFAULT_MAX_BYTES).unwrap();
        log.record(alert(1));
        log.record(alert(2));
        drop(log);
        // Simulate a crash in the middle of a write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.join("alerts.jsonl"))
            .unwrap();
        f.write_all(b"{\"time\":\"2026-").unwrap();
        drop(f);
        let mut log = AlertLog::open(&d, DEFAULT_MAX_BYTES).unwrap();
        log.record(alert(3));
        let got: Vec<String> = log.newest(10).into_iter().map(|a| a.message).collect();
        assert_eq!(
            got,
            vec!["alert number 1", "alert number 2", "alert number 3"]
        );
        drop(log);
        let log = AlertLog::open(&d, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(log.newest(10).len(), 3);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotates_and_stays_bounded() {
        let d = tmpdir("rotate");
        let mut log = AlertLog::open(&d, 2_000).unwrap();
        for i in 0..200 {
            log.record(alert(i));
        }
        let cur = fs::metadata(d.join("alerts.jsonl")).unwrap().len();
        let old = fs::metadata(d.join("alerts.1.jsonl")).unwrap().len();
        assert!(cur <= 2_000 && old <= 2_000, "{cur} {old}");
        assert_eq!(log.newest(1)[0].message, "alert number 199");
        drop(log);
        // After a restart the newest alerts are still there, in order.
        let log = AlertLog::open(&d, 2_000).unwrap();
        let newest = log.newest(3);
        assert_eq!(newest[2].message, "alert number 199");
        assert_eq!(newest[0].message, "alert number 197");
        fs::remove_dir_all(&d).unwrap();
    }
}
