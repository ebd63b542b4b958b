//! `LampNotifier`: the actor that carries out lamp commands.
//!
//! Each command runs as a spawned future, so the mailbox never waits on a
//! lamp. Commands to one server's lamp run one at a time, in the order they
//! came; while one runs, only the newest waiting command is kept (the lamp
//! should end up showing the latest state, and a slow lamp must not build a
//! backlog). Lamps of different servers are driven side by side.

use std::collections::HashMap;

use actix::prelude::*;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{drive, Lamp, LampConfig, LampOutcome, LampState, LampTiming};
use crate::notify::alert_log::Alerter;

/// Show `state` on the lamp of `server`. Ignored while lamps are disabled
/// and for servers without a lamp.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct SetLamp {
    pub server: String,
    pub state: LampState,
}

/// Drive the lamp of `server` (every lamp when `None`) to `state` now and
/// answer how each command ended (`understudy alert test --lamp`). The
/// commands queue like any other and raise the same alerts. Refused when
/// lamps are disabled or the server has no lamp.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<TestReport>, String>")]
pub struct SendTest {
    pub server: Option<String>,
    pub state: LampState,
}

/// How one test command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub server: String,
    /// `address:port`
    pub lamp: String,
    pub state: LampState,
    pub outcome: LampOutcome,
}

/// Answered once no command is running or waiting (for an orderly exit:
/// the `Off` of a normal stop should reach the lamp before the daemon goes).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Drain;

/// New settings (configuration pushed online). Commands already running
/// finish with the lamp they started with.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Reconfigure(pub LampConfig);

pub struct LampNotifier {
    config: LampConfig,
    alerter: Alerter,
    timing: LampTiming,
    /// Per server: is a command running, and the newest one waiting.
    slots: HashMap<String, Slot>,
    drained: Vec<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Slot {
    busy: bool,
    waiting: Option<Job>,
}

struct Job {
    state: LampState,
    /// Test commands want to hear the outcome.
    reply: Option<oneshot::Sender<LampOutcome>>,
}

impl Job {
    fn finish(self, outcome: LampOutcome) {
        if let Some(tx) = self.reply {
            let _ = tx.send(outcome);
        }
    }
}

impl LampNotifier {
    pub fn new(config: LampConfig, alerter: Alerter) -> LampNotifier {
        LampNotifier {
            config,
            alerter,
            timing: LampTiming::default(),
            slots: HashMap::new(),
            drained: Vec::new(),
        }
    }

    /// Other time limits (tests).
    pub fn with_timing(mut self, timing: LampTiming) -> LampNotifier {
        self.timing = timing;
        self
    }

    fn submit(&mut self, server: String, job: Job, ctx: &mut Context<Self>) {
        let slot = self.slots.entry(server.clone()).or_default();
        if slot.busy {
            if let Some(older) = slot.waiting.replace(job) {
                tracing::debug!(
                    "warning lamp of {server}: {} skipped, {} came after it",
                    older.state,
                    slot.waiting.as_ref().map_or("?", |j| j.state.as_str())
                );
                older.finish(LampOutcome::Superseded);
            }
            return;
        }
        self.start(server, job, ctx);
    }

    fn start(&mut self, server: String, job: Job, ctx: &mut Context<Self>) {
        // Looked up now: the settings may have changed while it waited.
        let lamp = match self.config.lamp_of(&server) {
            Some(lamp) if self.config.enabled => lamp.clone(),
            _ => {
                job.finish(LampOutcome::Superseded);
                self.idle(&server);
                return;
            }
        };
        self.slots.entry(server.clone()).or_default().busy = true;
        let timing = self.timing;
        let state = job.state;
        let command = async move {
            let outcome = drive(&lamp, state, timing).await;
            (lamp, outcome)
        };
        ctx.spawn(command.into_actor(self).map(
            move |(lamp, outcome): (Lamp, LampOutcome), act, ctx| {
                if let Some(event) = outcome.event(&lamp, state) {
                    act.alerter.raise(event);
                }
                job.finish(outcome);
                let next = act.slots.get_mut(&server).and_then(|s| s.waiting.take());
                match next {
                    Some(next) => act.start(server, next, ctx),
                    None => act.idle(&server),
                }
            },
        ));
    }

    /// `server`'s lamp has nothing running or waiting.
    fn idle(&mut self, server: &str) {
        if let Some(slot) = self.slots.get_mut(server) {
            slot.busy = false;
        }
        if self.slots.values().all(|s| !s.busy && s.waiting.is_none()) {
            for tx in self.drained.drain(..) {
                let _ = tx.send(());
            }
        }
    }
}

impl Actor for LampNotifier {
    type Context = Context<Self>;
}

impl Handler<SetLamp> for LampNotifier {
    type Result = ();

    fn handle(&mut self, msg: SetLamp, ctx: &mut Context<Self>) {
        if !self.config.enabled || self.config.lamp_of(&msg.server).is_none() {
            return;
        }
        let job = Job {
            state: msg.state,
            reply: None,
        };
        self.submit(msg.server, job, ctx);
    }
}

impl Handler<SendTest> for LampNotifier {
    type Result = ResponseFuture<Result<Vec<TestReport>, String>>;

    fn handle(&mut self, msg: SendTest, ctx: &mut Context<Self>) -> Self::Result {
        let lamps: Vec<Lamp> = match select(&self.config, msg.server.as_deref()) {
            Ok(lamps) => lamps.into_iter().cloned().collect(),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let mut waits = Vec::new();
        for lamp in lamps {
            let (tx, rx) = oneshot::channel();
            let job = Job {
                state: msg.state,
                reply: Some(tx),
            };
            self.submit(lamp.server.clone(), job, ctx);
            waits.push(async move {
                let outcome = rx.await.unwrap_or_else(|_| {
                    LampOutcome::Unreachable("the lamp notifier stopped".into())
                });
                TestReport {
                    server: lamp.server.clone(),
                    lamp: lamp.label(),
                    state: msg.state,
                    outcome,
                }
            });
        }
        Box::pin(async move { Ok(join_all(waits).await) })
    }
}

impl Handler<Drain> for LampNotifier {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.slots.values().all(|s| !s.busy && s.waiting.is_none()) {
            let _ = tx.send(());
        } else {
            self.drained.push(tx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Reconfigure> for LampNotifier {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        self.config = msg.0;
    }
}

/// The lamps a test addresses: the one of `server`, or all of them.
fn select<'a>(config: &'a LampConfig, server: Option<&str>) -> Result<Vec<&'a Lamp>, String> {
    if !config.enabled {
        return Err("network warning lamps are not enabled (lamps.enabled is false)".into());
    }
    match server {
        Some(server) => config
            .lamp_of(server)
            .map(|l| vec![l])
            .ok_or_else(|| format!("server {server} has no warning lamp")),
        None if config.lamps.is_empty() => Err("no warning lamp is configured".into()),
        None => {
            // One per server, as `lamp_of` picks them.
            let mut seen = std::collections::HashSet::new();
            Ok(config
                .lamps
                .iter()
                .filter(|l| seen.insert(l.server.as_str()))
                .collect())
        }
    }
}

/// The test without a running daemon: drives the lamps directly (side by
/// side), raises no alerts, and answers how each command ended.
pub async fn send_test(
    config: &LampConfig,
    server: Option<&str>,
    state: LampState,
    timing: LampTiming,
) -> Result<Vec<TestReport>, String> {
    let lamps = select(config, server)?;
    Ok(join_all(lamps.into_iter().map(|lamp| async move {
        TestReport {
            server: lamp.server.clone(),
            lamp: lamp.label(),
            state,
            outcome: drive(lamp, state, timing).await,
        }
    }))
    .await)
}
