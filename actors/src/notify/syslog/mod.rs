//! The syslog notifier: every alert it is handed becomes one syslog line,
//! sent to the local syslog socket and to remote collectors over UDP or TCP.
//!
//! Formatting is our own (`format.rs`, RFC 5424 and RFC 3164) rather than
//! the `syslog` crate's: that crate only takes numbers as MSGID (we want
//! `rc32`), adds no framing on TCP, and sends with blocking sockets, while
//! here every destination is an async task on the actor's arbiter.
//!
//! Each destination has a bounded queue ([`QUEUE`] lines) and a task that
//! empties it, so the actor's handler only formats and enqueues: a slow or
//! dead destination never holds up the mailbox or another destination. A
//! full queue drops the new line and counts it. TCP keeps a failed line and
//! retries it after a backoff (1 s doubling up to 60 s); datagram
//! destinations lose it. Failures and drops raise `Event::SyslogFailed`, at
//! most once a minute per destination: that alert may come back to this
//! notifier, and the limit keeps such a loop to one line a minute.

pub mod format;
pub mod sink;

/// The syslog settings live in the brain crate.
pub use understudy_brain::notify::syslog as config;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::{Facility, Format, Remote, SyslogConfig, Transport};
use format::LineSettings;
use sink::{Sink, Target};

use super::alert_log::Alerter;
use super::Notify;
use crate::model::catalog::Event;

/// Lines waiting per destination before new ones are dropped.
pub const QUEUE: usize = 10_000;
/// Least time between two `SyslogFailed` alerts of one destination.
pub const RAISE_EVERY: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Figures of one destination, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationStats {
    /// `unix /dev/log`, `udp 10.0.0.5:514`, `tcp collector:514`.
    pub destination: String,
    /// Lines handed to the kernel.
    pub sent: u64,
    /// Failed attempts (a TCP line retried three times counts three).
    pub failed: u64,
    /// Lines dropped because the queue was full.
    pub dropped: u64,
    /// Lines waiting.
    pub queued: usize,
}

/// Asks for every destination's [`DestinationStats`].
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<DestinationStats>")]
pub struct SyslogStats;

/// Sends one alert at once to every destination, on fresh sockets, and
/// tells how each went (for `understudy alert test --syslog`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<TestOutcome>")]
pub struct SendTest(pub Notify);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub destination: String,
    /// `Ok` means handed to the kernel: a UDP or datagram line may still be
    /// lost on the way.
    pub result: Result<(), String>,
}

/// Sends `notify` once to every destination of `config`, all at once, each
/// on a socket of its own; returns when every attempt has ended (each is
/// bounded by the sink's time limits). Needs a tokio runtime (any flavour),
/// not an actor.
pub async fn send_test(config: &SyslogConfig, notify: &Notify) -> Vec<TestOutcome> {
    let settings = line_settings(config);
    let attempts = Target::all(config).into_iter().map(|target| {
        let line = format::line(
            &settings,
            &notify.alert,
            &notify.cluster,
            !target.is_local(),
        );
        async move {
            let mut sink = Sink::new(target);
            let result = sink.send(&line).await;
            TestOutcome {
                destination: sink.target().to_string(),
                result,
            }
        }
    });
    futures_util::future::join_all(attempts).await
}

fn line_settings(config: &SyslogConfig) -> LineSettings {
    LineSettings {
        facility: config.facility,
        format: config.format,
        app_name: config.app_name.clone(),
        procid: std::process::id(),
    }
}

/// Lets an event through at most once per period.
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
}

impl RateLimit {
    pub fn new(every: Duration) -> RateLimit {
        RateLimit { every, last: None }
    }

    /// True (and the period starts again) when the last event let through
    /// is at least a period before `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let open = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if open {
            self.last = Some(now);
        }
        open
    }
}

/// What the handler and a destination's task share (same thread).
struct DestState {
    name: String,
    sent: Cell<u64>,
    failed: Cell<u64>,
    dropped: Cell<u64>,
    limit: RefCell<RateLimit>,
    alerter: Alerter,
}

impl DestState {
    /// A problem of this destination: logged, and raised as an alert unless
    /// one was raised within the last minute.
    fn trouble(&self, error: String) {
        if self.limit.borrow_mut().allow(Instant::now()) {
            tracing::warn!("syslog to {}: {error}", self.name);
            self.alerter.raise(Event::SyslogFailed {
                destination: self.name.clone(),
                error,
            });
        } else {
            tracing::debug!("syslog to {}: {error}", self.name);
        }
    }
}

struct Destination {
    is_local: bool,
    tx: mpsc::Sender<String>,
    state: Rc<DestState>,
    task: JoinHandle<()>,
}

/// The actor. Start it on the arbiter whose runtime should own the sockets;
/// its destination tasks run there too.
pub struct SyslogNotifier {
    config: SyslogConfig,
    settings: LineSettings,
    alerter: Alerter,
    destinations: Vec<Destination>,
}

impl SyslogNotifier {
    pub fn new(config: SyslogConfig, alerter: Alerter) -> SyslogNotifier {
        SyslogNotifier {
            settings: line_settings(&config),
            config,
            alerter,
            destinations: Vec::new(),
        }
    }
}

impl Actor for SyslogNotifier {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        for target in Target::all(&self.config) {
            let (tx, rx) = mpsc::channel(QUEUE);
            let state = Rc::new(DestState {
                name: target.to_string(),
                sent: Cell::new(0),
                failed: Cell::new(0),
                dropped: Cell::new(0),
                limit: RefCell::new(RateLimit::new(RAISE_EVERY)),
                alerter: self.alerter.clone(),
            });
            let is_local = target.is_local();
            let task = actix::spawn(deliver(rx, Sink::new(target), state.clone()));
            self.destinations.push(Destination {
                is_local,
                tx,
                state,
                task,
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // A task retrying a dead TCP collector would otherwise live on.
        for d in &self.destinations {
            d.task.abort();
        }
    }
}

impl Handler<Notify> for SyslogNotifier {
    type Result = ();

    fn handle(&mut self, msg: Notify, _ctx: &mut Context<Self>) {
        // RFC 5424 lines are the same everywhere; RFC 3164 ones differ
        // (no hostname on the local socket): format at most twice.
        let mut local_line = None;
        let mut remote_line = None;
        for d in &self.destinations {
            let slot = if d.is_local {
                &mut local_line
            } else {
                &mut remote_line
            };
            let line = slot
                .get_or_insert_with(|| {
                    format::line(&self.settings, &msg.alert, &msg.cluster, !d.is_local)
                })
                .clone();
            if d.tx.try_send(line).is_err() {
                let dropped = d.state.dropped.get() + 1;
                d.state.dropped.set(dropped);
                d.state.trouble(format!(
                    "queue full ({QUEUE} lines waiting), {dropped} dropped so far"
                ));
            }
        }
    }
}

impl Handler<SyslogStats> for SyslogNotifier {
    type Result = MessageResult<SyslogStats>;

    fn handle(&mut self, _msg: SyslogStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.destinations
                .iter()
                .map(|d| DestinationStats {
                    destination: d.state.name.clone(),
                    sent: d.state.sent.get(),
                    failed: d.state.failed.get(),
                    dropped: d.state.dropped.get(),
                    queued: d.tx.max_capacity() - d.tx.capacity(),
                })
                .collect(),
        )
    }
}

impl Handler<SendTest> for SyslogNotifier {
    type Result = ResponseFuture<Vec<TestOutcome>>;

    fn handle(&mut self, msg: SendTest, _ctx: &mut Context<Self>) -> Self::Result {
        let config = self.config.clone();
        Box::pin(async move { send_test(&config, &msg.0).await })
    }
}

/// A destination's task: sends queued lines in order until the queue is
/// closed (the actor is gone).
async fn deliver(mut rx: mpsc::Receiver<String>, mut sink: Sink, state: Rc<DestState>) {
    let mut backoff = FIRST_BACKOFF;
    while let Some(line) = rx.recv().await {
        loop {
            match sink.send(&line).await {
                Ok(()) => {
                    state.sent.set(state.sent.get() + 1);
                    backoff = FIRST_BACKOFF;
                    break;
                }
                Err(error) => {
                    state.failed.set(state.failed.get() + 1);
                    state.trouble(error);
                    if !sink.target().retries() {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
