//! The monitor actor: one per monitor resource that runs on this server. It
//! schedules checks at a fixed rate, applies the timeout, feeds each result
//! to the pure [`Detection`] machine and reports states to the coordinator.
//! When detection asks for recovery, the coordinator runs the recovery ladder
//! and answers when the step is done.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{BuildProbe, Check, MonitorKind, Probe, ProbeBuild, ProbeEnv};
use crate::coordinator::{Coordinator, MonitorUpdate, RecoverMonitor};
use crate::model::catalog::Event;
use crate::model::detection::{CheckResult, Detection, DetectionPolicy, Effect, MonitorState};
use crate::model::monitoring::{MonitorConfig, Timing};
use crate::notify::alert_log::Alerter;

/// How late checks start (actual minus scheduled), over the most recent
/// checks of every monitor; shared by the monitor actors of one daemon.
#[derive(Debug, Default)]
pub struct Lateness {
    samples_us: Vec<u32>,
    next: usize,
    pub checks: u64,
}

/// Samples kept for the percentiles.
const LATENESS_SAMPLES: usize = 100_000;

impl Lateness {
    pub fn record(&mut self, late: Duration) {
        let us = late.as_micros().min(u32::MAX as u128) as u32;
        self.checks += 1;
        if self.samples_us.len() < LATENESS_SAMPLES {
            self.samples_us.push(us);
        } else {
            self.samples_us[self.next] = us;
            self.next = (self.next + 1) % LATENESS_SAMPLES;
        }
    }

    pub fn reset(&mut self) {
        *self = Lateness::default();
    }

    /// (p50, p99, max) in microseconds, over the kept samples.
    pub fn percentiles(&self) -> (u32, u32, u32) {
        if self.samples_us.is_empty() {
            return (0, 0, 0);
        }
        // Two selections instead of a sort: this runs on the actors' thread.
        let mut v = self.samples_us.clone();
        let rank = |q: f64| ((v.len() - 1) as f64 * q).round() as usize;
        let (p50_at, p99_at) = (rank(0.50), rank(0.99));
        let p99 = *v.select_nth_unstable(p99_at).1;
        let p50 = *v[..=p99_at].select_nth_unstable(p50_at).1;
        let max = self.samples_us.iter().copied().max().unwrap_or(0);
        (p50, p99, max)
    }
}

pub type SharedLateness = Rc<RefCell<Lateness>>;

/// A fixed offset (below one second, and below the interval) for a monitor's
/// first check, from its name: monitors started together would otherwise
/// all be due in the same millisecond forever, and the last checks of each
/// burst would start late.
pub fn stagger(name: &str, interval: Duration) -> Duration {
    let span_ms = (interval.as_millis() as u64).clamp(1, 1000);
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    Duration::from_millis(h % span_ms)
}

/// Scheduled checks start on a grid of slots this long, shared by every
/// monitor of the daemon: the checks due in one slot share one wake-up of
/// the actors' thread, which costs more than a cheap check itself
/// (BENCHMARKS.md). A slot's burst is short (tens of checks at 1,000
/// monitors a second), so starts stay within a millisecond or so.
pub const CHECK_SLOT: Duration = Duration::from_millis(10);

static GRID: OnceLock<Instant> = OnceLock::new();

/// Fixes the slot grid's origin now. Called just before the actors'
/// runtime is made: tokio rounds a timer's deadline up to the next
/// millisecond counted from its own start, so slots that begin a few
/// microseconds before that start fire on time instead of up to a
/// millisecond late. Without the call, the grid starts at its first use.
pub fn start_slot_grid() {
    GRID.get_or_init(Instant::now);
}

/// The first slot boundary at or after `t`.
pub fn slot_at_or_after(t: Instant) -> Instant {
    let origin = *GRID.get_or_init(Instant::now);
    let since = t.saturating_duration_since(origin).as_nanos();
    let slot = CHECK_SLOT.as_nanos();
    let slots = since.div_ceil(slot);
    origin + Duration::from_nanos((slots * slot) as u64)
}

/// The target resource became active or inactive (or its process changed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TargetState {
    pub active: bool,
    pub pid: Option<u32>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Suspend;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Resume;

/// The cluster service stops: the monitor stops for good.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Halt;

impl Handler<Halt> for MonitorActor {
    type Result = ();
    fn handle(&mut self, _: Halt, ctx: &mut Context<Self>) {
        self.generation += 1;
        self.probe = None;
        ctx.stop();
    }
}

/// A message receive notice for this monitor: `Some(text)` raises an error,
/// `None` clears it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notice(pub Option<String>);

pub struct MonitorActor {
    config: MonitorConfig,
    build: ProbeBuild,
    probe: Option<Box<dyn Probe>>,
    detection: Detection,
    env: ProbeEnv,
    target_active: bool,
    /// Bumped whenever monitoring starts or stops, so results and timers of
    /// an earlier run are ignored.
    generation: u64,
    /// The fixed-rate schedule: one interval after the previous check was
    /// due (or at the first slot after the wait time).
    ideal_due: Instant,
    /// When the next check starts: the first slot at or after `ideal_due`
    /// (or at once, for a message).
    next_due: Instant,
    timer: Option<SpawnHandle>,
    in_flight: bool,
    coordinator: Addr<Coordinator>,
    alerter: Alerter,
    lateness: SharedLateness,
    /// This monitor's lateness histogram (metrics), looked up once.
    late_metric: prometheus_client::metrics::histogram::Histogram,
    /// What the coordinator last heard: states are sent on change only,
    /// not after every check.
    reported: Option<(MonitorState, Option<String>)>,
}

impl MonitorActor {
    /// `config` is already resolved for this server.
    pub fn new(
        mut config: MonitorConfig,
        build: ProbeBuild,
        coordinator: Addr<Coordinator>,
        lateness: SharedLateness,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        let detection = Detection::new(DetectionPolicy {
            retry: config.retry,
            no_retry_on_timeout: config.no_retry_on_timeout,
            no_recovery_on_timeout: config.no_recovery_on_timeout,
        });
        let alerter = build.alerter.clone();
        // Some kinds fix their timing whatever the configuration says.
        match config.kind.fixed_timing() {
            super::FixedTiming::Active { .. } => config.timing = Timing::Active,
            super::FixedTiming::Always => config.timing = Timing::Always,
            super::FixedTiming::Free => {}
        }
        // The userspace watchdog's clock starts with its probe: waiting
        // before the first proof of life would look like a stall.
        if matches!(config.kind, MonitorKind::Userspace(_)) {
            config.first_wait = 0;
        }
        let config_name = config.name.clone();
        MonitorActor {
            config,
            build,
            probe: None,
            detection,
            env: ProbeEnv::default(),
            target_active: false,
            generation: 0,
            ideal_due: Instant::now(),
            next_due: Instant::now(),
            timer: None,
            in_flight: false,
            coordinator,
            alerter,
            lateness,
            late_metric: metrics.check_lateness_of(&config_name),
            reported: None,
        }
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the monitor may check now (timing and target).
    fn may_check(&self) -> bool {
        match self.config.timing {
            Timing::Always => true,
            Timing::Active => self.target_active,
        }
    }

    /// Tells the coordinator the state and detail, when they changed.
    fn report(&mut self) {
        let state = self.detection.state();
        let detail = self.detection.last_detail();
        if let Some((s, d)) = &self.reported {
            if *s == state && d.as_deref() == detail {
                return;
            }
        }
        let detail = detail.map(str::to_string);
        self.reported = Some((state, detail.clone()));
        self.coordinator.do_send(MonitorUpdate {
            monitor: self.config.name.clone(),
            state,
            detail,
        });
    }

    fn apply(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        if effects.is_empty() {
            self.report();
            return;
        }
        let monitor = self.name().to_string();
        for effect in effects {
            match effect {
                Effect::StateChanged { from, to, detail } => {
                    use MonitorState::*;
                    let event = match (from, to) {
                        (_, Error) => Some(Event::MonitorError {
                            monitor: monitor.clone(),
                            detail,
                        }),
                        (_, Warning) => Some(Event::MonitorWarning {
                            monitor: monitor.clone(),
                            detail,
                        }),
                        (Error, Normal) => Some(Event::MonitorErrorToNormal {
                            monitor: monitor.clone(),
                        }),
                        (Warning, Normal) => Some(Event::MonitorWarningToNormal {
                            monitor: monitor.clone(),
                        }),
                        (Offline, Pending) => Some(Event::MonitorStarted {
                            monitor: monitor.clone(),
                        }),
                        (Pending | Normal | Warning | Error, Offline) => {
                            Some(Event::MonitorStopped {
                                monitor: monitor.clone(),
                            })
                        }
                        (_, Suspended) => Some(Event::MonitorSuspended {
                            monitor: monitor.clone(),
                        }),
                        (Suspended, _) => Some(Event::MonitorResumed {
                            monitor: monitor.clone(),
                        }),
                        _ => None,
                    };
                    if let Some(e) = event {
                        self.alerter.raise(e);
                    }
                }
                Effect::Retrying { failures, detail } => {
                    tracing::info!(
                        "monitor {monitor}: check failed ({detail}); {failures} of {} tolerated",
                        self.config.retry
                    );
                }
                Effect::NoRecoveryAtTimeout { .. } => {
                    self.alerter.raise(Event::NoRecoveryAtTimeout {
                        monitor: monitor.clone(),
                    });
                }
                Effect::Recover { detail } => self.recover(detail, ctx),
            }
        }
        self.report();
    }

    /// Asks the coordinator to run the next recovery step; checks pause
    /// until it answers.
    fn recover(&mut self, detail: String, ctx: &mut Context<Self>) {
        if matches!(self.config.kind, MonitorKind::Userspace(_)) {
            // Its watchdog thread takes the final action itself; a slow
            // (not hung) coordinator must not get it a second time.
            self.detection.recovery_done(true);
            return;
        }
        let msg = RecoverMonitor {
            monitor: self.name().to_string(),
            detail,
        };
        let fut = self.coordinator.send(msg);
        ctx.spawn(fut.into_actor(self).map(|settled, act, ctx| {
            // A lost coordinator means the daemon is going away.
            let settled = settled.unwrap_or(true);
            act.detection.recovery_done(settled);
            act.report();
            if act.detection.checking() && act.timer.is_none() && !act.in_flight {
                act.due_at(Instant::now() + act.interval());
                act.schedule(ctx);
            }
        }));
    }

    fn interval(&self) -> Duration {
        self.config.interval_duration()
    }

    /// The next check is due at `ideal` and starts at the slot after it.
    fn due_at(&mut self, ideal: Instant) {
        self.ideal_due = ideal;
        self.next_due = slot_at_or_after(ideal);
    }

    /// Starts monitoring (first check after the wait time).
    fn begin(&mut self, ctx: &mut Context<Self>) {
        if self.detection.state() == MonitorState::Suspended {
            return;
        }
        if self.probe.is_none() {
            match self.config.kind.probe(&self.build) {
                Ok(p) => self.probe = Some(p),
                Err(error) => {
                    self.alerter.raise(Event::MonitorStartFailed {
                        monitor: self.name().to_string(),
                        error: error.clone(),
                    });
                    tracing::error!("monitor {}: {error}", self.name());
                    return;
                }
            }
        }
        self.generation += 1;
        self.in_flight = false;
        let effects = self.detection.start();
        self.apply(effects, ctx);
        self.due_at(
            Instant::now()
                + Duration::from_secs(self.config.first_wait as u64)
                + stagger(&self.config.name, self.config.interval_duration()),
        );
        self.schedule(ctx);
    }

    /// Stops monitoring (target inactive): timers and checks in flight are
    /// dropped; an asynchronous probe (custom) is stopped.
    fn end(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        self.in_flight = false;
        self.probe = None;
        let effects = self.detection.stop();
        self.apply(effects, ctx);
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        let gen = self.generation;
        // A deadline, not a wait: the monitors due in one slot then fall in
        // the same tick of tokio's timer wheel, hence one wake-up.
        let sleep = tokio::time::sleep_until(self.next_due.into());
        self.timer = Some(ctx.spawn(sleep.into_actor(self).map(move |_, act, ctx| {
            act.timer = None;
            act.tick(gen, ctx);
        })));
    }

    fn tick(&mut self, gen: u64, ctx: &mut Context<Self>) {
        if gen != self.generation || !self.detection.checking() || self.in_flight {
            return;
        }
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        let started = Instant::now();
        let late = started.saturating_duration_since(self.next_due);
        self.lateness.borrow_mut().record(late);
        self.late_metric.observe(late.as_secs_f64());
        self.in_flight = true;
        let timeout = self.config.timeout_duration();
        let check = tokio::time::timeout(timeout, probe.check(&self.env));
        ctx.spawn(check.into_actor(self).map(move |result, act, ctx| {
            if gen != act.generation {
                return;
            }
            act.in_flight = false;
            act.finished(result.ok(), started.elapsed(), ctx);
            // Fixed rate: the next check is due one interval after this one
            // was due; a check that overran starts the next one at the next
            // slot.
            let now = Instant::now();
            let ideal = (act.ideal_due + act.interval()).max(now);
            act.due_at(ideal);
            if act.detection.checking() {
                act.schedule(ctx);
            }
        }));
    }

    fn finished(&mut self, check: Option<Check>, took: Duration, ctx: &mut Context<Self>) {
        let timeout_ms = self.config.timeout_duration().as_millis() as u64;
        let took_ms = took.as_millis() as u64;
        let rate = self.config.delay_warning;
        if check.is_some() && rate > 0 && took_ms * 100 > timeout_ms * rate as u64 {
            self.alerter.raise(Event::MonitorDelay {
                monitor: self.name().to_string(),
                timeout_ms,
                took_ms,
                rate,
            });
        }
        let definitive = matches!(self.config.kind, MonitorKind::Message(_));
        let result = match check {
            None => CheckResult::Timeout,
            Some(Check::Normal) => CheckResult::Normal,
            Some(Check::Warning(w)) => CheckResult::Warning(w),
            Some(Check::Error(e)) if definitive => CheckResult::Definitive(e),
            Some(Check::Error(e)) => CheckResult::Failed(e),
        };
        let effects = self.detection.on_result(result);
        self.apply(effects, ctx);
    }

    /// Runs a check now (a message arrived), unless one is in flight.
    fn check_now(&mut self, ctx: &mut Context<Self>) {
        if self.detection.checking() && !self.in_flight {
            // At once, off the slot grid: a message is acted on now.
            let now = Instant::now();
            self.ideal_due = now;
            self.next_due = now;
            self.schedule(ctx);
        }
    }
}

impl Actor for MonitorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.report();
        if self.may_check() {
            self.begin(ctx);
        }
    }
}

impl Handler<TargetState> for MonitorActor {
    type Result = ();
    fn handle(&mut self, msg: TargetState, ctx: &mut Context<Self>) {
        let was = self.target_active;
        self.target_active = msg.active;
        self.env.target_pid = msg.pid;
        if self.config.timing != Timing::Active {
            return;
        }
        match (was, msg.active) {
            (false, true) => self.begin(ctx),
            (true, false) => self.end(ctx),
            _ => {}
        }
    }
}

impl Handler<Suspend> for MonitorActor {
    type Result = ();
    fn handle(&mut self, _: Suspend, ctx: &mut Context<Self>) {
        self.generation += 1;
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        self.in_flight = false;
        self.probe = None;
        let effects = self.detection.suspend();
        self.apply(effects, ctx);
    }
}

impl Handler<Resume> for MonitorActor {
    type Result = ();
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        if self.detection.state() != MonitorState::Suspended {
            return;
        }
        let may = self.may_check();
        let effects = self.detection.resume(may);
        self.apply(effects, ctx);
        if may {
            // `begin` sees Pending now and starts the schedule.
            self.begin(ctx);
        }
    }
}

impl Handler<Notice> for MonitorActor {
    type Result = ();
    fn handle(&mut self, msg: Notice, ctx: &mut Context<Self>) {
        self.env.message = msg.0;
        self.check_now(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staggered_offsets_spread_over_a_second() {
        let offsets: Vec<Duration> = (0..1000)
            .map(|i| stagger(&format!("t{i:04}"), Duration::from_secs(1)))
            .collect();
        assert!(offsets.iter().all(|d| *d < Duration::from_secs(1)));
        // Spread: no 10 ms slot holds more than a few dozen of 1,000.
        let mut slots = [0u32; 100];
        for d in &offsets {
            slots[(d.as_millis() / 10) as usize] += 1;
        }
        assert!(slots.iter().all(|n| *n < 40), "{slots:?}");
        let minute = Duration::from_secs(60);
        assert_eq!(stagger("a", minute), stagger("a", minute));
        // Sub-second: within the interval.
        assert!(stagger("a", Duration::from_millis(100)) < Duration::from_millis(100));
    }

    #[test]
    fn checks_due_close_together_share_a_slot() {
        let t = Instant::now();
        let a = slot_at_or_after(t);
        assert!(a >= t && a - t <= CHECK_SLOT);
        // A slot boundary is its own slot; anything up to the next boundary
        // joins the next one.
        assert_eq!(slot_at_or_after(a), a);
        assert_eq!(
            slot_at_or_after(a + Duration::from_nanos(1)),
            a + CHECK_SLOT
        );
        assert_eq!(slot_at_or_after(a + CHECK_SLOT), a + CHECK_SLOT);
        // 1,000 monitors staggered over a second fall in 100 slots, not
        // 1,000 different instants.
        let starts: std::collections::BTreeSet<Instant> = (0..1000)
            .map(|i| slot_at_or_after(t + stagger(&format!("t{i:04}"), Duration::from_secs(1))))
            .collect();
        assert!(starts.len() <= 101, "{}", starts.len());
        // A 155 ms interval keeps its rate on average: ten checks take
        // 1,550 ms give or take one slot.
        let mut ideal = a;
        for _ in 0..10 {
            ideal += Duration::from_millis(155);
        }
        let tenth = slot_at_or_after(ideal);
        assert!(tenth - a >= Duration::from_millis(1550));
        assert!(tenth - a < Duration::from_millis(1550) + CHECK_SLOT);
    }

    #[test]
    fn lateness_percentiles() {
        let mut l = Lateness::default();
        for us in 1..=100u64 {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.checks, 100);
        let (p50, p99, max) = l.percentiles();
        assert!((50..=51).contains(&p50), "{p50}");
        assert!((98..=100).contains(&p99), "{p99}");
        assert_eq!(max, 100);
        l.reset();
        assert_eq!(l.percentiles(), (0, 0, 0));
    }
}
