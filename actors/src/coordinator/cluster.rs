//! The coordinator's cluster side: it feeds heartbeat facts to the pure
//! membership machine ([`crate::model::membership`]), keeps where every
//! group runs ([`GroupLocations`]), carries out the placement decisions
//! ([`crate::model::placement`]): takeover when a server goes down, startup
//! once the cluster has formed, failback), tells the other servers about
//! this one through the heartbeat adverts, and runs the operator commands
//! that span servers (group start on a server, stop where it runs, move,
//! cluster-wide stop, suspend, recover, config push).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;

use super::group::{GroupActor, GroupOp, RunGroup, StartEvent, StopFactor};
use super::peer::{PeerClient, PeerRequest};
use super::Coordinator;
use crate::atomic_file::write_atomically;
use crate::control::protocol::Response;
use crate::heartbeat::{HeartbeatEvent, SendLeaving, SetAdvert};
use crate::model::catalog::Event;
use crate::model::cluster::{Brain, Command, Input, Lamp};
use crate::model::config::{ClusterConfig, FinalAction};
use crate::model::membership::Membership;
use crate::model::partition::NpAction;
use crate::model::recovery::RecoveryCounters;
use crate::model::state::{ClusterStatus, RunState, ServerState};
use crate::notify::alert_log::Alerter;
use crate::wire::Rejection;

/// Rejected packets are reported at most this often (a flood of forged
/// packets must not become a flood of alerts).
const REJECT_ALERT_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct ClusterSide {
    /// Every cluster decision of this server ([`crate::model::cluster`]).
    pub brain: Brain,
    pub heartbeats: Vec<Addr<crate::heartbeat::lan::LanHeartbeat>>,
    /// The heartbeat actors' own thread.
    pub heartbeat_thread: Option<actix::Arbiter>,
    /// How late the beats left, every path together.
    pub beat_lateness: std::sync::Arc<std::sync::Mutex<crate::monitor::actor::Lateness>>,
    pub peers: Option<PeerClient>,
    rejected_since_alert: u64,
    last_rejected: String,
    last_reject_alert: Option<Instant>,
    /// The decision journal (`<state-dir>/journal.jsonl`), when it could be
    /// opened.
    pub journal: Option<crate::journal::Journal>,
    /// The fence deadline the guardian was last given.
    fence: Option<Duration>,
    /// The heartbeat thread's progress (its count of beats sent).
    beats: Progress,
    /// The witness's driver, when the configuration names one.
    pub witness: Option<crate::witness::etcd::EtcdWitness>,
    /// The witness's last report.
    pub witness_report: Option<crate::witness::WitnessReport>,
    /// The gates' probes (Ping, Http), while they run.
    pub gates: Vec<crate::np_target::GateTask>,
    /// Each gate's last report (index in `partition.methods`).
    pub target_reports: BTreeMap<usize, crate::np_target::TargetReport>,
    /// The pollers of the peers' BMCs, while they run.
    pub bmc_pollers: Vec<crate::heartbeat::bmc::BmcPoller>,
    /// The brain's next tick, when armed: its instant (the brain's clock)
    /// and the timer.
    tick: Option<(Duration, SpawnHandle)>,
    /// When the last tick ran (the brain's clock).
    last_tick: Option<Duration>,
}

impl ClusterSide {
    pub fn new(config: &ClusterConfig, local: &str, incarnation: u64) -> Self {
        ClusterSide {
            brain: Brain::new(config.clone(), local, incarnation, Duration::ZERO),
            heartbeats: Vec::new(),
            heartbeat_thread: None,
            beat_lateness: Default::default(),
            peers: None,
            rejected_since_alert: 0,
            last_rejected: String::new(),
            last_reject_alert: None,
            journal: None,
            fence: None,
            beats: Progress::default(),
            witness: None,
            witness_report: None,
            gates: Vec::new(),
            target_reports: BTreeMap::new(),
            bmc_pollers: Vec::new(),
            tick: None,
            last_tick: None,
        }
    }

    /// The brain's clock (boot time): the same as the beats' arrival times.
    pub fn now(&self) -> Duration {
        crate::heartbeat::since_start()
    }

    pub fn membership(&self) -> &Membership {
        self.brain.membership()
    }

    pub fn suspended(&self) -> bool {
        self.brain.suspended()
    }
}

/// A thread's progress as a counter it moves on (the heartbeat thread's
/// beats sent), read from another thread now and then.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Progress {
    /// The count as last read.
    count: u64,
    /// When it was last seen to move (the brain's clock).
    moved: Duration,
}

impl Progress {
    /// Reads `count` at `now`: whether it moved within `within` of now.
    /// (Any change counts: a reset of the counter is a sign of life too.)
    pub(crate) fn moved_within(&mut self, count: u64, now: Duration, within: Duration) -> bool {
        if count != self.count {
            self.count = count;
            self.moved = now;
        }
        now.saturating_sub(self.moved) <= within
    }
}

/// The shortest time between two ticks of the brain: a fiftieth of the
/// timeout, between 5 and 100 ms, so a silent server is declared down at
/// most 2 % of the timeout late. Between these, the brain is ticked only at
/// its next deadline (as the simulator does), at least every quarter of
/// the timeout (so it can tell its own stalls apart), not at a fixed rate:
/// an idle server then wakes a dozen times a second instead of 170.
pub(crate) fn tick_every(config: &ClusterConfig) -> Duration {
    Duration::from_millis((config.heartbeat.timeout_ms as u64 / 50).clamp(5, 100))
        .min(crate::model::cluster::tick_at_least_every(config))
}

/// How often the coordinator publishes its status (when it changed) and
/// shows progress: as often as it did when these rode on the brain's fixed
/// ticks, whose rate bounded them.
pub(crate) fn housekeeping_every(config: &ClusterConfig) -> Duration {
    tick_every(config).max(super::PUBLISH_EVERY)
}

impl Coordinator {
    /// May `server` be given groups now?
    pub(crate) fn eligible(&self, server: &str) -> bool {
        self.cluster.brain.eligible(server)
    }

    /// Arms the brain's next tick at its next deadline, no sooner than
    /// [`tick_every`] after the last tick; an earlier tick already armed
    /// stays.
    pub(crate) fn arm_tick(&mut self, ctx: &mut Context<Self>) {
        let config = &self.settings.config;
        let now = self.cluster.now();
        let floor = self
            .cluster
            .last_tick
            .map_or(now, |t| t + tick_every(config));
        let at = self
            .cluster
            .brain
            .next_deadline()
            .unwrap_or(now + crate::model::cluster::tick_at_least_every(config))
            .max(floor);
        if let Some((armed, handle)) = self.cluster.tick {
            if armed <= at {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(at.saturating_sub(now), |act, ctx| {
            act.cluster.tick = None;
            act.on_tick(ctx);
        });
        self.cluster.tick = Some((at, handle));
    }

    /// The brain's tick (armed by [`Self::arm_tick`]).
    pub(crate) fn on_tick(&mut self, ctx: &mut Context<Self>) {
        self.cluster.last_tick = Some(self.cluster.now());
        self.feed(Input::Tick, ctx);
    }

    /// Every [`housekeeping_every`]: the status is published when it
    /// changed, and progress is shown.
    pub(crate) fn housekeeping(&mut self) {
        self.publish_status();
        // The progress beat to the guardian (when it asked for one): this
        // tick proves the actors' thread runs; the heartbeat thread, when
        // there is one, must have sent within the heartbeat timeout too (a
        // server silent that long is down in its peers' eyes).
        // The same verdict is the userspace monitor's proof of life.
        if self.heartbeats_progress() {
            crate::fence::progressed();
            if crate::fence::beating() {
                crate::fence::beat();
            }
        }
    }

    /// Whether the heartbeat thread (if any) sent a beat within the
    /// heartbeat timeout.
    fn heartbeats_progress(&mut self) -> bool {
        if self.cluster.heartbeats.is_empty() {
            return true;
        }
        let now = self.cluster.now();
        let sent = match self.cluster.beat_lateness.lock() {
            Ok(l) => l.checks,
            Err(_) => return false,
        };
        let timeout = Duration::from_millis(self.settings.config.heartbeat.timeout_ms as u64);
        self.cluster.beats.moved_within(sent, now, timeout)
    }

    /// Hands one fact to the brain and carries out what it decides; the
    /// answer, for inputs that have one.
    pub(crate) fn feed(
        &mut self,
        input: Input,
        ctx: &mut Context<Self>,
    ) -> Option<Result<String, String>> {
        let now = self.cluster.now();
        if let Some(j) = &self.cluster.journal {
            j.input(now, &input);
        }
        let commands = self.cluster.brain.handle(now, input);
        let fence = self.cluster.brain.fence_deadline();
        if fence != self.cluster.fence {
            self.cluster.fence = fence;
            crate::fence::arm(fence);
        }
        self.arm_tick(ctx);
        if commands.is_empty() {
            return None;
        }
        // Every decision, with what the brain knew, to the journal; starts,
        // stops and moves to the log as well.
        for c in &commands {
            let Some(reason) = self.cluster.brain.reason(c) else {
                continue;
            };
            if !reason.is_empty() {
                tracing::info!("brain: {c:?}; {reason}");
            }
            if let Some(j) = &self.cluster.journal {
                j.decision(now, format!("{c:?}"), reason);
            }
        }
        let reply = self.carry_out(commands, ctx);
        self.refresh_servers();
        reply
    }

    fn carry_out(
        &mut self,
        commands: Vec<Command>,
        ctx: &mut Context<Self>,
    ) -> Option<Result<String, String>> {
        let mut reply = None;
        for c in commands {
            match c {
                Command::Alert { event, mail: true } => self.alerter.raise(event),
                Command::Alert { event, mail: false } => self.alerter.raise_without_mail(event),
                Command::MailOnly(event) => self.alerter.mail_only(event),
                Command::Lamp {
                    server,
                    state: Lamp::RedBlinking,
                } => self.set_lamp(&server, crate::notify::lamp::LampState::RedBlinking),
                Command::Start {
                    group,
                    failover_from,
                    by,
                } => {
                    let event = if failover_from.is_some() {
                        StartEvent::Failover
                    } else {
                        StartEvent::Start
                    };
                    self.brain_op(group, GroupOp::Start(event), by, ctx);
                }
                Command::Stop { group, by } => {
                    self.brain_op(group, GroupOp::Stop(StopFactor::GroupStop), by, ctx);
                }
                Command::Move { group, to, by } => {
                    let Some(mover) = self.mover(&group) else {
                        continue;
                    };
                    ctx.spawn(
                        async move {
                            let _ = mover
                                .run(&to, StopFactor::GroupMove, StartEvent::Start, &by, vec![])
                                .await;
                        }
                        .into_actor(self)
                        .map(move |_, act, ctx| {
                            act.feed(Input::Moving { group, on: false }, ctx);
                        }),
                    );
                }
                Command::Advertise(advert) => {
                    for hb in &self.cluster.heartbeats {
                        hb.do_send(SetAdvert(advert.clone()));
                    }
                }
                Command::Reply(r) => reply = Some(r),
                Command::NpAction(action) => self.np_action(action, ctx),
                Command::ForcedStop { server } => self.forced_stop(server, ctx),
                Command::WitnessCampaign(campaign) => {
                    if let Some(w) = &self.cluster.witness {
                        w.set_campaign(campaign);
                    }
                }
            }
        }
        reply
    }

    /// The action at NP occurrence (the brain has already ordered the stop
    /// of every group held here).
    fn np_action(&mut self, action: NpAction, ctx: &mut Context<Self>) {
        self.alerter.raise(Event::NpActionTaken { action });
        let reason = format!("network partition: {}", action.describe());
        let os = match action {
            NpAction::None => return,
            NpAction::Panic => {
                let argv = self.settings.config.os_actions.panic.clone();
                let alerter = self.alerter.clone();
                ctx.spawn(
                    async move {
                        if let Err(error) = super::run_os_action(&argv).await {
                            alerter.raise(Event::OsActionFailed {
                                action: "panic".into(),
                                error,
                            });
                        }
                    }
                    .into_actor(self),
                );
                return;
            }
            NpAction::StopClusterService => None,
            NpAction::StopClusterServiceAndShutdownOs => {
                Some(FinalAction::StopClusterServiceAndShutdownOs)
            }
            NpAction::StopClusterServiceAndRebootOs => {
                Some(FinalAction::StopClusterServiceAndRebootOs)
            }
        };
        let _ = self.stop_cluster(reason, StopFactor::ClusterShutdown, os, false, ctx);
    }

    /// Starts the witness's driver (`partition: (methods: [.., Etcd(..)])`):
    /// its reports go to the brain. A driver that cannot start leaves the
    /// witness's vote out (the server is then quorate only by its peers),
    /// and says why.
    pub(crate) fn start_witness(&mut self, ctx: &mut Context<Self>) {
        let config = &self.settings.config;
        let Some(w) = config.partition.as_ref().and_then(|p| p.witness()) else {
            return;
        };
        let settings = crate::witness::etcd::EtcdWitnessSettings::from_config(
            w,
            &config.name,
            &self.settings.base_dir,
        );
        let me = ctx.address();
        match crate::witness::etcd::spawn(settings, self.settings.local.clone(), move |r| {
            me.do_send(r)
        }) {
            Ok(driver) => self.cluster.witness = Some(driver),
            Err(e) => {
                tracing::error!("partition: the etcd witness cannot start: {e}");
                self.alerter.raise(Event::WitnessUnavailable { error: e });
            }
        }
    }

    /// Starts the probes of the gates (`partition: (methods: [.., Ping(..),
    /// Http(..)])`): their reports go to the brain. A probe that cannot
    /// start leaves its gate without a verdict (this server is then quorate
    /// only while it hears every other server), and says why.
    pub(crate) fn start_targets(&mut self, ctx: &mut Context<Self>) {
        let config = self.settings.config.clone();
        let Some(p) = &config.partition else {
            return;
        };
        for (i, gate) in p.gates() {
            let me = ctx.address();
            match crate::np_target::spawn(&config, i, gate, move |r| me.do_send(r)) {
                Ok(task) => self.cluster.gates.push(task),
                Err(e) => {
                    tracing::error!("partition: {} cannot start: {e}", gate.describe());
                    let error = format!("the probe cannot start: {e}");
                    self.cluster.target_reports.insert(
                        i,
                        crate::np_target::TargetReport {
                            method: i,
                            reached: false,
                            until: Duration::ZERO,
                            error: Some(error.clone()),
                        },
                    );
                    self.alerter.raise(Event::TargetLost {
                        target: gate.describe(),
                        error,
                    });
                }
            }
        }
    }

    /// Starts polling every peer's BMC (`servers[].bmc`): the readings go
    /// to the brain. A poller that cannot start (its password file)
    /// leaves that BMC unread, which is as no BMC, and says why (nm 4).
    pub(crate) fn start_bmc_pollers(&mut self, ctx: &mut Context<Self>) {
        let config = self.settings.config.clone();
        for s in &config.servers {
            let Some(bmc) = &s.bmc else {
                continue;
            };
            if s.name == self.settings.local {
                continue;
            }
            let me = ctx.address();
            // do_send: a full mailbox must not end the poller (only a
            // coordinator that is gone does).
            match crate::heartbeat::bmc::spawn_poller(s.name.clone(), bmc.clone(), move |r| {
                if !me.connected() {
                    return false;
                }
                me.do_send(r);
                true
            }) {
                Ok(p) => self.cluster.bmc_pollers.push(p),
                Err(error) => {
                    tracing::error!("BMC of server {}: {error}", s.name);
                    self.alerter.raise(Event::BmcPathDown {
                        server: s.name.clone(),
                        address: bmc.endpoint(),
                        error,
                    });
                }
            }
        }
    }

    /// Stops a silent server by force and tells the brain the end.
    fn forced_stop(&mut self, server: String, ctx: &mut Context<Self>) {
        let Some(config) = self.settings.config.forced_stop.clone() else {
            self.feed(
                Input::ForcedStopDone {
                    server,
                    result: Err("no forced stop configured".into()),
                },
                ctx,
            );
            return;
        };
        let base = self.settings.base_dir.clone();
        let state = self.settings.state_dir.clone();
        let local = self.settings.local.clone();
        let bmc = self
            .settings
            .config
            .server(&server)
            .and_then(|s| s.bmc.clone());
        ctx.spawn(
            async move {
                let result =
                    crate::forced_stop::run(&config, &base, &state, &local, &server, bmc).await;
                (server, result)
            }
            .into_actor(self)
            .map(|(server, result), act, ctx| {
                act.feed(Input::ForcedStopDone { server, result }, ctx);
            }),
        );
    }

    /// Runs a start or stop the brain ordered and tells it the end.
    fn brain_op(&mut self, group: String, op: GroupOp, by: String, ctx: &mut Context<Self>) {
        let Some(addr) = self.groups.get(&group).cloned() else {
            // Cannot happen (the brain knows the same groups); keep the
            // brain's books straight anyway.
            self.feed(
                Input::Done {
                    group,
                    result: Err("no group actor".into()),
                },
                ctx,
            );
            return;
        };
        ctx.spawn(
            async move {
                addr.send(RunGroup {
                    op,
                    by,
                    wait: true,
                    operator: false,
                })
                .await
                .unwrap_or_else(|e| Err(format!("group actor unavailable: {e}")))
            }
            .into_actor(self)
            .map(move |r, act, ctx| {
                act.feed(
                    Input::Done {
                        group,
                        result: r.map(|_| ()),
                    },
                    ctx,
                );
            }),
        );
    }

    /// Copies membership into the status view.
    pub(crate) fn refresh_servers(&mut self) {
        fill_servers(&mut self.view, self.cluster.membership());
    }

    /// The status view with the other servers' groups filled in from their
    /// adverts.
    pub(crate) fn status_snapshot(&self) -> ClusterStatus {
        let mut status = self.view.clone();
        fill_servers(&mut status, self.cluster.membership());
        fill_bmc(&mut status, &self.cluster.brain);
        for g in &mut status.groups {
            if g.state.may_be_active() {
                continue;
            }
            let holders = self.cluster.brain.holders(&g.name);
            let found = holders.iter().find_map(|s| {
                (*s != self.settings.local)
                    .then(|| self.cluster.brain.peer_state(s, &g.name).map(|st| (s, st)))
                    .flatten()
            });
            if let Some((server, state)) = found {
                g.state = state;
                g.current = Some(server.clone());
                // Resource details live on that server.
                for r in &mut g.resources {
                    r.state = state;
                    r.pid = None;
                    r.last_error = None;
                }
            }
        }
        status.suspended = self.cluster.suspended();
        status.partition = partition_status(
            &self.cluster.brain,
            self.cluster.now(),
            self.cluster.witness_report.as_ref(),
            &self.cluster.target_reports,
        )
        .map(Box::new);
        status
    }

    pub(crate) fn check_group(&self, group: &str) -> Result<(), String> {
        if self.groups.contains_key(group) {
            return Ok(());
        }
        let known: Vec<&str> = self.groups.keys().map(|s| s.as_str()).collect();
        Err(format!(
            "no group named \"{group}\" (groups: {})",
            known.join(", ")
        ))
    }

    pub(crate) fn adopt_counters(&mut self, counters: &[(String, RecoveryCounters)]) {
        for (monitor, c) in counters {
            if let Some(l) = self
                .monitors
                .get_mut(monitor)
                .and_then(|m| m.ladder.as_mut())
            {
                l.adopt(*c);
            }
            if let Some(m) = self.view.monitors.iter_mut().find(|m| &m.name == monitor) {
                m.reactivations = c.reactivations;
                m.failovers = c.failovers;
            }
        }
    }

    /// The counters of the monitors whose recovery target is in `group`:
    /// they travel with it.
    pub(crate) fn counters_of_group(&self, group: &str) -> Vec<(String, RecoveryCounters)> {
        self.monitors
            .iter()
            .filter_map(|(name, m)| {
                let ladder = m.ladder.as_ref()?;
                (self.target_group(ladder.target()).as_deref() == Some(group))
                    .then(|| (name.clone(), ladder.counters()))
            })
            .collect()
    }

    pub(crate) fn mover(&self, group: &str) -> Option<GroupMover> {
        Some(GroupMover {
            group: group.to_string(),
            addr: self.groups.get(group)?.clone(),
            peers: self.cluster.peers.clone(),
            alerter: self.alerter.clone(),
        })
    }

    /// The first eligible server of the group's order other than `leaving`.
    pub(crate) fn destination_from(&self, group: &str, leaving: &str) -> Result<String, String> {
        self.cluster.brain.destination_from(group, leaving)
    }

    /// Whether this server could start `group` now (asked by a server about
    /// to move it here).
    pub(crate) fn can_start_here(&self, group: &str) -> Result<(), String> {
        let local = &self.settings.local;
        self.check_group(group)?;
        if !self.eligible(local) {
            return Err(format!(
                "server {local} takes no groups now (stopping or cut off)"
            ));
        }
        if self
            .view
            .groups
            .iter()
            .any(|g| g.name == group && g.state.may_be_active())
        {
            return Err(format!("group {group} is already active on {local}"));
        }
        let servers = self
            .settings
            .config
            .group(group)
            .map(|g| self.settings.config.group_servers(g))
            .unwrap_or_default();
        if !servers.contains(local) {
            return Err(format!("server {local} may not run group {group}"));
        }
        self.cluster.brain.may_start_here(group, self.cluster.now())
    }

    /// Moves a group that runs here to `to` (or the next server of its order).
    pub(crate) fn move_here_to(
        &mut self,
        group: &str,
        to: Option<String>,
        by: String,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Response> {
        let ready =
            |r: Response| -> ResponseActFuture<Self, Response> { Box::pin(actix::fut::ready(r)) };
        let local = self.settings.local.clone();
        let here = self
            .view
            .groups
            .iter()
            .any(|g| g.name == group && g.state == RunState::Online);
        if !here {
            return ready(Response::Error {
                message: format!("group {group} is not online on {local}"),
            });
        }
        let to = match to {
            Some(t) => {
                let order = self
                    .settings
                    .config
                    .group(group)
                    .map(|g| self.settings.config.group_servers(g))
                    .unwrap_or_default();
                if t == local {
                    return ready(Response::Error {
                        message: format!("group {group} already runs on {t}"),
                    });
                }
                if !order.contains(&t) {
                    return ready(Response::Error {
                        message: format!(
                            "server {t} may not run group {group} (its servers: {})",
                            order.join(", ")
                        ),
                    });
                }
                if !self.eligible(&t) {
                    return ready(Response::Error {
                        message: format!(
                            "server {t} cannot take group {group} now (state {})",
                            self.cluster.membership().state(&t).as_str()
                        ),
                    });
                }
                t
            }
            None => match self.destination_from(group, &local) {
                Ok(t) => t,
                Err(message) => {
                    return ready(Response::Error {
                        message: format!("group {group}: {message}"),
                    })
                }
            },
        };
        let Some(mover) = self.mover(group) else {
            return ready(Response::Error {
                message: format!("no group named {group}"),
            });
        };
        if self.cluster.brain.moving(group) {
            return ready(Response::Error {
                message: format!("group {group} is already being moved"),
            });
        }
        self.feed(
            Input::Moving {
                group: group.to_string(),
                on: true,
            },
            ctx,
        );
        self.alerter.raise(Event::MoveStarted {
            group: group.to_string(),
            to: to.clone(),
            by: by.clone(),
        });
        let name = group.to_string();
        Box::pin(
            async move {
                match mover
                    .run(&to, StopFactor::GroupMove, StartEvent::Start, &by, vec![])
                    .await
                {
                    Ok(message) => Response::Done { message },
                    Err(message) => Response::Error { message },
                }
            }
            .into_actor(self)
            .map(move |r, act, ctx| {
                act.feed(
                    Input::Moving {
                        group: name,
                        on: false,
                    },
                    ctx,
                );
                r
            }),
        )
    }

    pub(crate) fn alerts_response(&self, count: usize) -> ResponseActFuture<Self, Response> {
        let log = self.settings.alert_log.clone();
        Box::pin(
            async move {
                match log.newest(count).await {
                    Ok(alerts) => Response::Alerts { alerts },
                    Err(e) => Response::Error {
                        message: format!("alert log unavailable: {e}"),
                    },
                }
            }
            .into_actor(self),
        )
    }

    /// Stops the cluster service here and answers when it has stopped.
    pub(crate) fn stop_service_response(
        &mut self,
        by: String,
        os_action: Option<FinalAction>,
        handover: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Response> {
        self.alerter.raise(Event::StopRequested { by: by.clone() });
        let factor = if handover {
            StopFactor::ServerShutdown
        } else {
            StopFactor::ClusterShutdown
        };
        let mut rx = self.stop_cluster(
            format!("requested by {by}"),
            factor,
            os_action,
            handover,
            ctx,
        );
        let local = self.settings.local.clone();
        Box::pin(
            async move {
                let _ = rx.wait_for(|done| *done).await;
                Response::Done {
                    message: format!("{local}: cluster service stopped"),
                }
            }
            .into_actor(self),
        )
    }

    pub(crate) fn set_suspended(
        &mut self,
        suspend: bool,
        by: &str,
        ctx: &mut Context<Self>,
    ) -> Response {
        self.view.suspended = suspend;
        self.alerter.raise(if suspend {
            Event::SuspendRequested { by: by.to_string() }
        } else {
            Event::ResumeRequested { by: by.to_string() }
        });
        let by = by.to_string();
        self.feed(
            if suspend {
                Input::Suspend { by }
            } else {
                Input::Resume { by }
            },
            ctx,
        );
        Response::Done {
            message: format!(
                "{}: {}",
                self.settings.local,
                if suspend { "suspended" } else { "resumed" }
            ),
        }
    }

    /// `server recover NAME` as carried out on this server. When NAME is
    /// this server, it takes back every server it isolated itself (both
    /// sides of a healed cut see the other as returned).
    pub(crate) fn recover_server(
        &mut self,
        server: &str,
        by: &str,
        ctx: &mut Context<Self>,
    ) -> Response {
        let input = Input::Recover {
            server: server.to_string(),
            by: by.to_string(),
        };
        self.ask_brain(input, ctx)
    }

    /// Feeds an operator input to the brain; its answer as a response.
    fn ask_brain(&mut self, input: Input, ctx: &mut Context<Self>) -> Response {
        match self.feed(input, ctx) {
            Some(Ok(message)) => Response::Done { message },
            Some(Err(message)) => Response::Error { message },
            None => Response::Error {
                message: format!("{}: no answer from the cluster brain", self.settings.local),
            },
        }
    }

    /// `server confirm-down NAME` as carried out on this server: the brain
    /// refuses it when NAME is heard here (it is up), and otherwise clears
    /// NAME's groups for takeover without waiting for its lease (nm 34).
    pub(crate) fn confirm_down_server(
        &mut self,
        server: &str,
        by: &str,
        ctx: &mut Context<Self>,
    ) -> Response {
        let input = Input::ConfirmDown {
            server: server.to_string(),
            by: by.to_string(),
        };
        self.ask_brain(input, ctx)
    }

    /// Writes a pushed configuration to this server's config file
    /// (validated again here; atomically: temp file, fsync, rename).
    pub(crate) fn write_pushed_config(
        &mut self,
        text: &str,
        by: &str,
    ) -> ResponseActFuture<Self, Response> {
        let path = self.settings.config_path.clone();
        let file = path.display().to_string();
        let config = match crate::model::config::parse(&file, text) {
            Ok(c) => c,
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return Box::pin(actix::fut::ready(Response::Error {
                    message: format!(
                        "{}: the pushed configuration is not valid: {}",
                        self.settings.local,
                        list.join("; ")
                    ),
                }));
            }
        };
        // The disk work (read, two fsync'd writes, and the files of new
        // alert settings: mail password, spool) runs in the blocking pool:
        // a slow disk must not hold up the actors' thread.
        let bytes = text.as_bytes().to_vec();
        let change = crate::model::config::ConfigChange::between(&self.settings.config, &config);
        let alerts = (change.online() && change.sections.contains(&"alerts"))
            .then(|| self.settings.alert_service.as_ref().map(|s| s.preparer()))
            .flatten()
            .map(|p| (p, config.alerts.clone()));
        let write = tokio::task::spawn_blocking(move || {
            let written = write_config(&path, &bytes);
            let prepared = alerts.map(|(p, a)| p.prepare(&a));
            (written, prepared)
        });
        let by = by.to_string();
        Box::pin(write.into_actor(self).map(move |done, act, ctx| {
            let local = act.settings.local.clone();
            let (written, prepared) = match done {
                Ok(done) => done,
                Err(e) => (Err(std::io::Error::other(e.to_string())), None),
            };
            if let Err(e) = written {
                return Response::Error {
                    message: format!("{local}: cannot write {file}: {e}"),
                };
            }
            let changed = change.sections.clone();
            tracing::info!("configuration pushed by {by} written to {file}");
            // Compared with the configuration in force: what a restart
            // would apply (nothing once a push brings the file back).
            act.view.restart_pending = if change.online() {
                Vec::new()
            } else {
                changed.iter().map(|c| c.to_string()).collect()
            };
            let message = if changed.is_empty() {
                format!("{local}: {file} written (no change)")
            } else if change.online() {
                match act.apply_online(config, &changed, prepared, ctx) {
                    Ok(()) => format!(
                        "{local}: {file} written; {} applied at once",
                        changed.join(" and ")
                    ),
                    Err(e) => format!(
                        "{local}: {file} written, but applying it failed ({e}); restart the cluster service to apply"
                    ),
                }
            } else {
                format!(
                    "{local}: {file} written; changed: {}; restart the cluster service to apply",
                    changed.join(", ")
                )
            };
            Response::Done { message }
        }))
    }
}

/// Writes a pushed configuration over `path`, keeping the file it replaces
/// beside it (blocking).
fn write_config(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    // The file being replaced is kept beside it (a push may rewrite
    // a hand-written file in canonical form, comments included).
    // The file keeps its mode; a new one is readable by root only
    // (it may hold a mail password).
    let mode = std::fs::metadata(path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o600);
    if let Ok(previous) = std::fs::read(path) {
        if previous != bytes {
            let _ = write_atomically(&path.with_extension("ron.previous"), &previous, mode);
        }
    }
    write_atomically(path, bytes, mode)
}

impl Coordinator {
    /// A configuration whose only changes are in the monitors and the alert
    /// settings is applied online; heartbeats carry the new digest.
    fn apply_online(
        &mut self,
        config: ClusterConfig,
        changed: &[&str],
        alerts: Option<Result<crate::notify::service::PreparedAlerts, String>>,
        ctx: &mut Context<Self>,
    ) -> Result<(), String> {
        if let (Some(service), Some(prepared)) = (self.settings.alert_service.as_mut(), alerts) {
            service.apply_prepared(&config.alerts, prepared?);
        }
        let config = std::sync::Arc::new(config);
        self.settings.config = config.clone();
        let digest = config.digest();
        self.view.config_digest = digest.clone();
        self.feed(Input::Digest(digest.clone()), ctx);
        for hb in &self.cluster.heartbeats {
            hb.do_send(crate::heartbeat::SetConfigDigest(digest.clone()));
        }
        if changed.contains(&"monitors") {
            self.restart_monitors(ctx);
        }
        Ok(())
    }

    /// The old monitor actors stop, the new ones start and learn the state
    /// of their targets.
    fn restart_monitors(&mut self, ctx: &mut Context<Self>) {
        for m in std::mem::take(&mut self.monitors).into_values() {
            if let Some(addr) = m.addr {
                addr.do_send(crate::monitor::actor::Halt);
            }
        }
        self.view.monitors = super::monitor_views(&self.settings.config, &self.settings.local);
        self.start_monitors(ctx);
        let targets: Vec<(String, bool, Option<u32>)> = self
            .view
            .groups
            .iter()
            .flat_map(|g| g.resources.iter())
            .map(|r| (r.name.clone(), r.state == RunState::Online, r.pid))
            .collect();
        for (resource, active, pid) in targets {
            self.tell_monitors(&resource, active, pid);
        }
    }
}

/// Each peer's BMC path as this server polls it, into a status view.
fn fill_bmc(view: &mut ClusterStatus, brain: &Brain) {
    use crate::model::bmc::BmcReading;
    for s in &mut view.servers {
        let bmc = brain
            .config()
            .server(&s.name)
            .and_then(|c| c.bmc.as_ref())
            .filter(|_| !s.local);
        s.bmc = bmc.map(|b| {
            let reading = brain.bmc_reading(&s.name);
            crate::model::state::BmcPathStatus {
                address: b.endpoint(),
                state: reading.map_or("unknown", BmcReading::as_str).to_string(),
                error: match reading {
                    Some(BmcReading::Unreachable(e)) => Some(e.clone()),
                    _ => None,
                },
                takeover_held: brain.held_powered_on(&s.name),
            }
        });
    }
}

/// Copies server states, path states and counters from the membership
/// machine into a status view.
fn fill_servers(view: &mut ClusterStatus, m: &Membership) {
    for s in &mut view.servers {
        if !s.local {
            s.state = m.state(&s.name);
            s.config_mismatch = m.mismatch(&s.name);
        } else {
            s.state = if m.locally_isolated() {
                ServerState::Isolated
            } else {
                ServerState::Online
            };
        }
        s.paths = m.paths(&s.name);
    }
}

/// The partition state of this server for `status` (`None` when the
/// configuration has no partition resolution), at `now` on the brain's
/// clock.
pub(crate) fn partition_status(
    brain: &Brain,
    now: Duration,
    witness: Option<&crate::witness::WitnessReport>,
    targets: &BTreeMap<usize, crate::np_target::TargetReport>,
) -> Option<crate::model::state::PartitionStatus> {
    use crate::model::state::{PartitionStatus, SilentServer, TargetStatus};
    let p = brain.config().partition.as_ref()?;
    let ms_until = |t: Duration| t.saturating_sub(now).as_millis() as u64;
    let silent = brain
        .config()
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .filter(|s| *s != brain.local())
        .filter(|s| !brain.hears(s))
        .map(|s| {
            let cleared = brain.cleared(s);
            SilentServer {
                name: s.to_string(),
                cleared,
                takeover_ms_left: if cleared {
                    None
                } else {
                    brain.takeover_from(s).map(ms_until)
                },
                forced_stop: brain.forced_stop_state(s).map(String::from),
            }
        })
        .collect();
    Some(PartitionStatus {
        methods: p
            .methods
            .iter()
            .map(|m| match m {
                crate::model::partition::PartitionMethod::Majority => "Majority".to_string(),
                crate::model::partition::PartitionMethod::Etcd(_) => "Etcd".to_string(),
                crate::model::partition::PartitionMethod::Ping(_) => "Ping".to_string(),
                crate::model::partition::PartitionMethod::Http(_) => "Http".to_string(),
            })
            .collect(),
        quorate: brain.is_quorate(),
        lease_ms_left: brain
            .lease_end()
            .filter(|t| *t != Duration::MAX)
            .map(ms_until),
        silent,
        witness: p.witness().map(|_| crate::model::state::WitnessStatus {
            holds: witness.is_some_and(|r| r.holds && r.until > now),
            reachable: witness.is_some_and(|r| r.reachable),
            error: match witness {
                None => Some("no answer yet".into()),
                Some(r) => r.error.clone(),
            },
        }),
        targets: p
            .gates()
            .map(|(i, gate)| {
                let report = targets.get(&i);
                TargetStatus {
                    method: gate.kind().to_string(),
                    target: gate.describe(),
                    reachable: report.is_some_and(|r| r.reached),
                    verdict_ms_left: brain.target_until(i).filter(|t| *t > now).map(ms_until),
                    error: match report {
                        None => Some("no answer yet".into()),
                        Some(r) => r.error.clone(),
                    },
                }
            })
            .collect(),
    })
}

/// Moves one group from this server to another: stop here with the given
/// factor, then ask the destination to start it.
pub(crate) struct GroupMover {
    pub group: String,
    pub addr: Addr<GroupActor>,
    pub peers: Option<PeerClient>,
    pub alerter: Alerter,
}

impl GroupMover {
    pub fn run<'a>(
        self,
        to: &'a str,
        factor: StopFactor,
        event: StartEvent,
        by: &'a str,
        counters: Vec<(String, RecoveryCounters)>,
    ) -> LocalBoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let group = self.group.clone();
            let failover = event == StartEvent::Failover;
            // A failed move or failover is reported under its own id.
            let failed = |error: String| {
                if failover {
                    Event::FailoverFailed {
                        group: group.clone(),
                        error,
                    }
                } else {
                    Event::MoveFailed {
                        group: group.clone(),
                        error,
                    }
                }
            };
            let Some(peers) = self.peers.clone() else {
                return Err("this cluster has no peer link (one server, or no key)".into());
            };
            // The report that a failover starts comes from the server the
            // group leaves; the destination reports its completion.
            if failover {
                self.alerter.raise(Event::FailoverStarted {
                    group: group.clone(),
                    from: peers.local().to_string(),
                    to: to.to_string(),
                });
            }
            // The destination says it can start the group before anything
            // is stopped here: an unreachable or unwilling destination
            // leaves the group running where it is.
            if !failover {
                let ask = PeerRequest::CanStart {
                    group: group.clone(),
                };
                let refusal = match peers.call(to, &ask).await {
                    Ok(Response::Done { .. }) => None,
                    Ok(Response::Error { message }) | Ok(Response::Denied { message }) => {
                        Some(message)
                    }
                    Ok(other) => Some(format!("unexpected answer {other:?}")),
                    Err(e) => Some(e),
                };
                if let Some(why) = refusal {
                    let error =
                        format!("{to} cannot take group {group} ({why}); it keeps running here");
                    self.alerter.raise(failed(error.clone()));
                    return Err(error);
                }
            }
            let stop = self
                .addr
                .send(RunGroup {
                    op: GroupOp::Stop(factor),
                    by: by.to_string(),
                    wait: true,
                    operator: false,
                })
                .await
                .unwrap_or_else(|e| Err(format!("group actor unavailable: {e}")));
            if let Err(e) = stop {
                let error = format!("stopping it here failed: {e}");
                self.alerter.raise(failed(error.clone()));
                return Err(error);
            }
            let req = PeerRequest::StartGroup {
                group: group.clone(),
                event,
                by: by.to_string(),
                counters,
            };
            let error = match peers.call(to, &req).await {
                Ok(Response::Done { message }) => {
                    if !failover {
                        self.alerter.raise(Event::MoveCompleted {
                            group: group.clone(),
                            to: to.to_string(),
                        });
                    }
                    return Ok(message);
                }
                // The destination has reported its own failure.
                Ok(Response::Error { message }) | Ok(Response::Denied { message }) => {
                    return Err(format!("{to} could not start group {group}: {message}"));
                }
                Ok(other) => format!("unexpected answer {other:?}"),
                Err(e) => {
                    self.alerter.raise(Event::PeerUnreachable {
                        server: to.to_string(),
                        error: e.clone(),
                    });
                    e
                }
            };
            // Not started here again: the destination may have started
            // part of it, and a group must never run on two servers. The
            // operator decides.
            let error = format!(
                "{to} did not answer about group {group}: {error}; the group is stopped here (understudy group start {group})"
            );
            self.alerter.raise(failed(error.clone()));
            Err(error)
        })
    }
}

impl Handler<HeartbeatEvent> for Coordinator {
    type Result = ();

    fn handle(&mut self, ev: HeartbeatEvent, ctx: &mut Context<Self>) {
        match ev {
            HeartbeatEvent::Heard {
                path,
                beat,
                lost,
                arrived_ms,
            } => {
                let input = match beat.kind {
                    crate::wire::heartbeat::BeatKind::Alive(advert) => Input::Heard {
                        from: beat.from,
                        path,
                        incarnation: beat.incarnation,
                        digest: beat.config_digest,
                        lost,
                        sent_ms: beat.sent_ms,
                        arrived_ms,
                        advert,
                    },
                    crate::wire::heartbeat::BeatKind::Leaving { died } => Input::Leaving {
                        from: beat.from,
                        incarnation: beat.incarnation,
                        died,
                    },
                };
                self.feed(input, ctx);
            }
            HeartbeatEvent::Rejected {
                path,
                source,
                reason,
                detail,
            } => {
                let what = self.count_rejection(reason);
                self.note_rejected(format!(
                    "{what} packet from {source} on path {path}: {detail}"
                ));
            }
            HeartbeatEvent::LocalLink { path, up } => {
                self.feed(Input::LocalLink { path, up }, ctx);
            }
        }
    }
}

impl Coordinator {
    /// Sets a server's warning lamp (when lamps are in use).
    pub(crate) fn set_lamp(&self, server: &str, state: crate::notify::lamp::LampState) {
        if let Some(l) = &self.lamps() {
            l.do_send(crate::notify::lamp::SetLamp {
                server: server.to_string(),
                state,
            });
        }
    }

    /// Counts a rejected packet or request in status; returns its kind.
    pub(crate) fn count_rejection(&mut self, reason: Rejection) -> &'static str {
        let r = &mut self.view.rejected;
        match reason {
            Rejection::Garbled => {
                r.garbled += 1;
                "garbled"
            }
            Rejection::Forged => {
                r.forged += 1;
                "forged"
            }
            Rejection::Version => {
                r.unknown_version += 1;
                "unknown-version"
            }
            Rejection::Replayed => {
                r.replayed += 1;
                "replayed"
            }
        }
    }

    /// Alerts about rejected traffic at most once a minute.
    pub(crate) fn note_rejected(&mut self, last: String) {
        tracing::debug!("{last}");
        let c = &mut self.cluster;
        c.rejected_since_alert += 1;
        c.last_rejected = last;
        let due = c
            .last_reject_alert
            .is_none_or(|t| t.elapsed() >= REJECT_ALERT_EVERY);
        if due {
            self.alerter.raise(Event::TrafficRejected {
                what: "heartbeat packets or peer requests".into(),
                count: c.rejected_since_alert,
                last: c.last_rejected.clone(),
            });
            c.rejected_since_alert = 0;
            c.last_reject_alert = Some(Instant::now());
        }
    }

    /// Tells the peers this server is leaving (orderly stop), so they do not
    /// wait for the heartbeat timeout.
    pub(crate) fn leaving_future(&self) -> LocalBoxFuture<'static, ()> {
        let hbs = self.cluster.heartbeats.clone();
        Box::pin(async move {
            for hb in hbs {
                let _ = hb.send(SendLeaving { died: false }).await;
            }
        })
    }
}

impl Handler<crate::heartbeat::bmc::BmcReport> for Coordinator {
    type Result = ();

    fn handle(&mut self, r: crate::heartbeat::bmc::BmcReport, ctx: &mut Context<Self>) {
        self.feed(
            Input::Bmc {
                server: r.server,
                reading: r.reading,
                asked: r.asked,
            },
            ctx,
        );
    }
}

impl Handler<crate::np_target::TargetReport> for Coordinator {
    type Result = ();

    fn handle(&mut self, r: crate::np_target::TargetReport, ctx: &mut Context<Self>) {
        let was_reached = self
            .cluster
            .target_reports
            .get(&r.method)
            .is_none_or(|p| p.reached);
        if let (Some(e), true) = (&r.error, was_reached) {
            tracing::warn!("partition: target of method {}: {e}", r.method);
        }
        let input = Input::Target {
            method: r.method,
            reached: r.reached,
            until: r.until,
            error: r.error.clone(),
        };
        self.cluster.target_reports.insert(r.method, r);
        self.feed(input, ctx);
    }
}

impl Handler<crate::witness::WitnessReport> for Coordinator {
    type Result = ();

    fn handle(&mut self, r: crate::witness::WitnessReport, ctx: &mut Context<Self>) {
        // The vote is left out from now on: say so once per outage, as when
        // the driver cannot start.
        if r.lost_since(self.cluster.witness_report.as_ref()) {
            self.alerter.raise(Event::WitnessUnavailable {
                error: r
                    .error
                    .clone()
                    .unwrap_or_else(|| "the witness does not answer".into()),
            });
        }
        if let Some(e) = &r.error {
            if self
                .cluster
                .witness_report
                .as_ref()
                .is_none_or(|p| p.error.is_none())
            {
                tracing::warn!("partition: etcd witness: {e}");
            }
        }
        let input = Input::Witness {
            holds: r.holds,
            until: r.until,
        };
        self.cluster.witness_report = Some(r);
        self.feed(input, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_that_stops_moving_is_no_progress_after_the_limit() {
        let ms = Duration::from_millis;
        let mut p = Progress::default();
        let within = ms(300);
        // Moving: progress.
        assert!(p.moved_within(1, ms(1_000), within));
        assert!(p.moved_within(2, ms(1_100), within));
        // Still, but not for long: still progress.
        assert!(p.moved_within(2, ms(1_400), within));
        // Still for longer than the limit: none.
        assert!(!p.moved_within(2, ms(1_401), within));
        assert!(!p.moved_within(2, ms(5_000), within));
        // Moving again (a reset to 0 counts as a move): progress again.
        assert!(p.moved_within(0, ms(5_001), within));
    }
}
