//! `userspace` monitor (the product's user-mode monitor, userw): the cluster
//! service's own liveness.
//!
//! Each check reads the engine's last sign of progress
//! ([`crate::fence::progress_age`]: the coordinator's tick ran and the
//! heartbeat thread sent in time, the very signal the guardian's fence and
//! systemd's watchdog rest on) and stores it as a proof of life, in
//! milliseconds since the probe's epoch, in an atomic. A watchdog thread of its own (it must not depend on the actors'
//! thread it watches) wakes every quarter of the monitor's timeout (between
//! 100 ms and 1 s) and compares the time since the last proof with the
//! timeout. The clock starts when the probe is built, so that a coordinator
//! hung before the first check is caught too.
//!
//! When the limit is passed the thread raises `rm 1100` and carries out the
//! monitor's final action itself, once:
//!
//! * `NoOperation` (and `StopResource` / `StopGroup`, which make no sense for
//!   the server's own liveness): the alert only. A later proof of life
//!   re-arms the watch and raises `rm 1101`.
//! * `StopClusterService`: the daemon is hung, so the process exits with
//!   status [`EXIT_HUNG`] (a service manager restarts it), after waiting
//!   briefly for the alert log to write the alert.
//! * `StopClusterServiceAndShutdownOs` / `...RebootOs`: `pm 23` / `pm 25`,
//!   the configured `os_actions` command (`pm 1001` if it fails), then the
//!   exit.
//!
//! With a `watchdog_device` the thread also pets that device at each wake-up
//! while the service answers, and stops petting while it is silent, so the
//! kernel resets the server if the silence outlasts the device's own
//! timeout. When the probe is dropped (monitor stopped, clean daemon exit)
//! the thread writes the magic close character `V`, so the kernel disarms
//! the device. A hung daemon that exits does not: the device stays armed
//! until the restarted daemon opens it again.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

pub use understudy_brain::monitor::userspace::UserspaceConfig;

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};
use crate::model::catalog::Event;
use crate::model::config::OsActions;
use crate::model::monitoring::MonitorFinalAction;
use crate::notify::alert_log::Alerter;
use crate::resource::exec::driver::describe_status;

/// Exit status of a daemon found hung (`EX_SOFTWARE`).
pub const EXIT_HUNG: i32 = 70;
/// How long the watchdog waits for the alert log before exiting.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// How long the shutdown or reboot command may take.
pub const OS_ACTION_WAIT: Duration = Duration::from_secs(60);
/// How long dropping the probe waits for the thread to close the device.
const STOP_WAIT: Duration = Duration::from_millis(100);

impl BuildProbe for UserspaceConfig {
    fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        let device = match &self.watchdog_device {
            None => None,
            Some(dev) => Some(open_device(Path::new(dev))?),
        };
        let watchdog = Watchdog::start(WatchSettings {
            monitor: build.monitor.clone(),
            limit: build.timeout,
            period: wake_period(build.timeout),
            action: StallAction::from(build.final_action),
            alerter: build.alerter.clone(),
            os_actions: build.os_actions.clone(),
            device,
            report: None,
        })?;
        Ok(Box::new(UserspaceProbe::new(
            watchdog,
            crate::fence::progress_age,
        )))
    }
}

fn open_device(path: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open watchdog device {}: {e}", path.display()))
}

/// The watchdog thread's wake-up period for a limit: a quarter of it,
/// between 100 ms and 1 s.
pub fn wake_period(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// What the watchdog does about a stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallAction {
    AlertOnly,
    /// Exit the process ([`EXIT_HUNG`]).
    Exit,
    ShutdownOs,
    RebootOs,
}

impl From<MonitorFinalAction> for StallAction {
    fn from(a: MonitorFinalAction) -> Self {
        match a {
            MonitorFinalAction::NoOperation
            | MonitorFinalAction::StopResource
            | MonitorFinalAction::StopGroup => StallAction::AlertOnly,
            MonitorFinalAction::StopClusterService => StallAction::Exit,
            MonitorFinalAction::StopClusterServiceAndShutdownOs => StallAction::ShutdownOs,
            MonitorFinalAction::StopClusterServiceAndRebootOs => StallAction::RebootOs,
        }
    }
}

impl StallAction {
    pub fn describe(self) -> &'static str {
        match self {
            StallAction::AlertOnly => "none",
            StallAction::Exit => "exit the cluster service process",
            StallAction::ShutdownOs => "shut down the OS and exit the cluster service process",
            StallAction::RebootOs => "reboot the OS and exit the cluster service process",
        }
    }
}

/// What one look at the clock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The last proof of life is recent enough.
    Healthy,
    /// Silent for longer than the limit: alert and act, once.
    Stalled { silent_ms: u64 },
    /// Still silent after a stall was reported: nothing new to do.
    StillStalled,
    /// A proof of life arrived after a stall: armed again. `silent_ms` is
    /// the gap between the proofs on either side of the stall.
    Recovered { silent_ms: u64 },
}

/// The stall detection, free of clocks and threads: times are milliseconds
/// since the probe's epoch.
#[derive(Debug, Clone)]
pub struct StallDetector {
    limit_ms: u64,
    /// The proof of life that was the last one when the stall was found.
    stalled_at: Option<u64>,
}

impl StallDetector {
    pub fn new(limit: Duration) -> Self {
        StallDetector {
            limit_ms: limit.as_millis() as u64,
            stalled_at: None,
        }
    }

    /// Judges the time `now_ms` given the last proof of life `last_ms`.
    pub fn observe(&mut self, now_ms: u64, last_ms: u64) -> Step {
        match self.stalled_at {
            None => {
                let silent_ms = now_ms.saturating_sub(last_ms);
                if silent_ms > self.limit_ms {
                    self.stalled_at = Some(last_ms);
                    Step::Stalled { silent_ms }
                } else {
                    Step::Healthy
                }
            }
            Some(before) if last_ms > before => {
                self.stalled_at = None;
                Step::Recovered {
                    silent_ms: last_ms - before,
                }
            }
            Some(_) => Step::StillStalled,
        }
    }
}

/// Records proofs of life; cheap to clone into a check future.
#[derive(Debug, Clone)]
pub struct Proof {
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Proof {
    fn new() -> Self {
        Proof {
            epoch: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Time since the probe was built.
    fn since_epoch(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The cluster service showed progress `age` ago.
    pub fn record(&self, age: Duration) {
        let at = self.now_ms().saturating_sub(age.as_millis() as u64);
        self.last_ms.fetch_max(at, Ordering::AcqRel);
    }

    fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Acquire)
    }
}

/// Everything the watchdog thread needs.
pub struct WatchSettings {
    pub monitor: String,
    /// Silence longer than this is a stall (the monitor's timeout).
    pub limit: Duration,
    /// Time between two looks at the clock (see [`wake_period`]).
    pub period: Duration,
    pub action: StallAction,
    pub alerter: Alerter,
    pub os_actions: OsActions,
    /// The opened watchdog device, if any.
    pub device: Option<File>,
    /// Receives every step the thread has acted on (for tests).
    pub report: Option<Sender<Step>>,
}

/// The watchdog thread; dropping this stops it.
pub struct Watchdog {
    proof: Proof,
    /// Silence longer than this is a stall.
    limit: Duration,
    /// Dropped to stop the thread.
    stop: Option<Sender<()>>,
    /// Disconnects when the thread has finished.
    done: Receiver<()>,
}

impl Watchdog {
    pub fn start(settings: WatchSettings) -> Result<Watchdog, String> {
        let proof = Proof::new();
        let (stop, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let (done_tx, done) = crossbeam_channel::bounded::<()>(1);
        let thread_proof = proof.clone();
        let limit = settings.limit;
        std::thread::Builder::new()
            .name(format!("watchdog {}", settings.monitor))
            .spawn(move || {
                watch(settings, thread_proof, stop_rx);
                drop(done_tx);
            })
            .map_err(|e| format!("cannot start the watchdog thread: {e}"))?;
        Ok(Watchdog {
            proof,
            limit,
            stop: Some(stop),
            done,
        })
    }

    pub fn proof(&self) -> Proof {
        self.proof.clone()
    }
}

impl Drop for Watchdog {
    /// Stops the thread and waits a moment for it to close the device (so a
    /// probe built right after can open it again). The thread answers at
    /// once unless it is carrying out a final action, when the process is
    /// about to end anyway.
    fn drop(&mut self) {
        self.stop.take();
        let _ = self.done.recv_timeout(STOP_WAIT);
    }
}

/// The watchdog thread's loop.
fn watch(mut s: WatchSettings, proof: Proof, stop: Receiver<()>) {
    let mut detector = StallDetector::new(s.limit);
    let mut pet_failed = false;
    // Any message, or the probe's end, stops the loop.
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(s.period) {
        let step = detector.observe(proof.now_ms(), proof.last_ms());
        match step {
            Step::Healthy | Step::Recovered { .. } => {
                if let Some(dev) = &mut s.device {
                    // Any byte but 'V' pets the device.
                    if let Err(e) = dev.write_all(b"\0").and_then(|_| dev.flush()) {
                        if !pet_failed {
                            tracing::error!("monitor {}: watchdog device: {e}", s.monitor);
                        }
                        pet_failed = true;
                    }
                }
                if let Step::Recovered { silent_ms } = step {
                    s.alerter.raise(Event::UserspaceRecovered {
                        monitor: s.monitor.clone(),
                        seconds: silent_ms / 1000,
                    });
                }
            }
            Step::Stalled { silent_ms } => {
                s.alerter.raise(Event::UserspaceStall {
                    monitor: s.monitor.clone(),
                    seconds: silent_ms / 1000,
                    action: s.action.describe().to_string(),
                });
                if s.action != StallAction::AlertOnly {
                    act(&s);
                }
            }
            Step::StillStalled => {}
        }
        if let Some(report) = &s.report {
            let _ = report.send(step);
        }
    }
    if let Some(mut dev) = s.device.take() {
        // The magic close: the service stops cleanly, disarm the device.
        let _ = dev.write_all(b"V").and_then(|_| dev.flush());
    }
}

/// Carries out an irreversible final action; never returns.
fn act(s: &WatchSettings) -> ! {
    let os = match s.action {
        StallAction::ShutdownOs => Some((
            "shut down",
            &s.os_actions.shutdown,
            Event::SystemWillShutDown,
        )),
        StallAction::RebootOs => Some(("reboot", &s.os_actions.reboot, Event::SystemWillReboot)),
        StallAction::AlertOnly | StallAction::Exit => None,
    };
    if let Some((what, argv, event)) = os {
        s.alerter.raise(event);
        // Written before the command can take the server down.
        flush_alerts(&s.alerter);
        if let Err(error) = run_os_command(argv, OS_ACTION_WAIT) {
            s.alerter.raise(Event::OsActionFailed {
                action: what.to_string(),
                error,
            });
        }
    }
    flush_alerts(&s.alerter);
    tracing::error!(
        "monitor {}: the cluster service is hung; exiting with status {EXIT_HUNG}",
        s.monitor
    );
    std::process::exit(EXIT_HUNG)
}

/// Waits (briefly) until the alert log has written every alert raised so
/// far: it handles messages in order, so the answer to a query comes after.
fn flush_alerts(alerter: &Alerter) {
    let _ = alerter.log.newest_blocking(0, FLUSH_WAIT);
}

/// Runs the shutdown or reboot command, giving up on waiting after `within`.
/// Plain threads only (the guardian uses it too).
pub fn run_os_command(argv: &[String], within: Duration) -> Result<(), String> {
    let (prog, args) = argv.split_first().ok_or("no command configured")?;
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(within) {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!("{prog}: {}", describe_status(s))),
        Ok(Err(e)) => Err(format!("{prog}: {e}")),
        Err(_) => Err(format!("{prog}: no result after {} s", within.as_secs())),
    }
}

/// Records the engine's last sign of progress at each check; the watchdog
/// thread does the rest.
pub struct UserspaceProbe {
    watchdog: Watchdog,
    /// How long ago the engine last made progress (`None`: not yet).
    progress_age: fn() -> Option<Duration>,
}

impl UserspaceProbe {
    pub fn new(watchdog: Watchdog, progress_age: fn() -> Option<Duration>) -> Self {
        UserspaceProbe {
            watchdog,
            progress_age,
        }
    }
}

impl Probe for UserspaceProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let proof = self.watchdog.proof();
        // No progress yet: the probe's epoch stands (the watchdog thread
        // counts from it), and so does the check until the limit.
        let age = (self.progress_age)().unwrap_or_else(|| proof.since_epoch());
        let limit = self.watchdog.limit;
        Box::pin(async move {
            if age <= limit {
                proof.record(age);
                Check::Normal
            } else {
                Check::Error(format!(
                    "the cluster service has made no progress for {} ms",
                    age.as_millis()
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::model::catalog::Level;
    use crate::notify::alert_log::{AlertLog, AlertLogHandle, DEFAULT_MAX_BYTES};

    const S: u64 = 1000;

    #[test]
    fn stall_is_reported_once_and_recovery_rearms() {
        let mut d = StallDetector::new(Duration::from_secs(10));
        assert_eq!(d.observe(0, 0), Step::Healthy);
        assert_eq!(d.observe(10 * S, 0), Step::Healthy);
        assert_eq!(
            d.observe(10 * S + 1, 0),
            Step::Stalled {
                silent_ms: 10 * S + 1
            }
        );
        assert_eq!(d.observe(30 * S, 0), Step::StillStalled);
        // A proof stored after the thread read the clock.
        assert_eq!(
            d.observe(31 * S, 32 * S),
            Step::Recovered { silent_ms: 32 * S }
        );
        assert_eq!(d.observe(33 * S, 32 * S), Step::Healthy);
        assert_eq!(
            d.observe(43 * S, 32 * S),
            Step::Stalled { silent_ms: 11 * S }
        );
        assert_eq!(d.observe(44 * S, 32 * S), Step::StillStalled);
    }

    #[test]
    fn a_proof_newer_than_now_is_healthy() {
        let mut d = StallDetector::new(Duration::from_secs(1));
        assert_eq!(d.observe(5 * S, 6 * S), Step::Healthy);
    }

    #[test]
    fn wake_period_is_a_quarter_within_bounds() {
        assert_eq!(
            wake_period(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            wake_period(Duration::from_millis(200)),
            Duration::from_millis(100)
        );
        assert_eq!(wake_period(Duration::from_secs(90)), Duration::from_secs(1));
    }

    #[test]
    fn final_actions() {
        use MonitorFinalAction::*;
        assert_eq!(StallAction::from(NoOperation), StallAction::AlertOnly);
        assert_eq!(StallAction::from(StopGroup), StallAction::AlertOnly);
        assert_eq!(StallAction::from(StopResource), StallAction::AlertOnly);
        assert_eq!(StallAction::from(StopClusterService), StallAction::Exit);
        assert_eq!(
            StallAction::from(StopClusterServiceAndShutdownOs),
            StallAction::ShutdownOs
        );
        assert_eq!(
            StallAction::from(StopClusterServiceAndRebootOs),
            StallAction::RebootOs
        );
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("us-userspace-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn alerter(dir: &Path) -> Alerter {
        let log = AlertLog::open(dir, DEFAULT_MAX_BYTES).unwrap();
        Alerter {
            log: AlertLogHandle::spawn(log).unwrap(),
            server: "s1".into(),
            router: None,
        }
    }

    fn settings(alerter: Alerter, limit: Duration, report: Sender<Step>) -> WatchSettings {
        WatchSettings {
            monitor: "userw".into(),
            limit,
            period: wake_period(limit),
            action: StallAction::AlertOnly,
            alerter,
            os_actions: OsActions::default(),
            device: None,
            report: Some(report),
        }
    }

    /// The next step other than `Healthy` (blocking: the watchdog runs on a
    /// thread of its own, the alert log on another).
    fn next_event(steps: &Receiver<Step>) -> Step {
        loop {
            match steps.recv_timeout(Duration::from_secs(60)) {
                Ok(Step::Healthy) => {}
                Ok(step) => return step,
                Err(e) => panic!("no step from the watchdog: {e}"),
            }
        }
    }

    #[actix_rt::test]
    async fn a_silent_service_is_reported_then_its_recovery() {
        let dir = tmpdir("stall");
        let alerter = alerter(&dir);
        let (tx, steps) = crossbeam_channel::unbounded();
        let dog = Watchdog::start(settings(alerter.clone(), Duration::from_secs(1), tx)).unwrap();

        // Never a proof of life: the stall is found.
        assert!(matches!(next_event(&steps), Step::Stalled { .. }));
        let newest = alerter.log.newest(1).await.unwrap();
        let a = &newest[0];
        assert_eq!((a.module.as_str(), a.event_id), ("rm", 1100));
        assert_eq!(a.level, Level::Error);
        assert!(a.message.contains("userw"), "{}", a.message);

        // Then the service answers again.
        dog.proof().record(Duration::ZERO);
        assert!(matches!(next_event(&steps), Step::Recovered { .. }));
        let newest = alerter.log.newest(1).await.unwrap();
        assert_eq!((newest[0].event_id, newest[0].level), (1101, Level::Info));

        // Dropping the watchdog ends the thread (its report sender goes).
        drop(dog);
        while steps.recv_timeout(Duration::from_secs(60)).is_ok() {}
        assert!(steps.recv().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[actix_rt::test]
    async fn the_device_is_petted_then_closed_with_v() {
        let dir = tmpdir("device");
        let alerter = alerter(&dir);
        let dev = dir.join("watchdog");
        std::fs::write(&dev, b"").unwrap();
        let (tx, steps) = crossbeam_channel::unbounded();
        let mut s = settings(alerter, Duration::from_secs(3600), tx);
        s.period = Duration::from_millis(10);
        s.device = Some(open_device(&dev).unwrap());
        let dog = Watchdog::start(s).unwrap();
        for _ in 0..2 {
            assert_eq!(
                steps.recv_timeout(Duration::from_secs(60)).unwrap(),
                Step::Healthy
            );
        }
        drop(dog);
        // The report sender goes when the thread ends, after the close.
        while steps.recv_timeout(Duration::from_secs(60)).is_ok() {}
        let written = std::fs::read(&dev).unwrap();
        assert!(written.len() >= 3, "{written:?}");
        assert_eq!(written.last(), Some(&b'V'));
        assert!(written[..written.len() - 1].iter().all(|b| *b == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[actix_rt::test]
    async fn a_check_records_a_proof_of_life() {
        let dir = tmpdir("check");
        let (tx, _steps) = crossbeam_channel::unbounded();
        let dog = Watchdog::start(settings(alerter(&dir), Duration::from_secs(3600), tx)).unwrap();
        let proof = dog.proof();
        let mut probe = UserspaceProbe::new(dog, || Some(Duration::ZERO));
        // Some time must pass for the proof to differ from the epoch.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(probe.check(&ProbeEnv::default()).await, Check::Normal);
        assert!(proof.last_ms() > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[actix_rt::test]
    async fn no_progress_for_longer_than_the_timeout_is_an_error() {
        let dir = tmpdir("stale");
        let (tx, _steps) = crossbeam_channel::unbounded();
        let dog = Watchdog::start(settings(alerter(&dir), Duration::from_secs(10), tx)).unwrap();
        let proof = dog.proof();
        let mut probe = UserspaceProbe::new(dog, || Some(Duration::from_secs(11)));
        let Check::Error(e) = probe.check(&ProbeEnv::default()).await else {
            panic!("a stalled engine checked Normal");
        };
        assert!(e.contains("no progress for 11000 ms"), "{e}");
        assert_eq!(proof.last_ms(), 0, "no proof of life recorded");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
