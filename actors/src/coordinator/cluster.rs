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
use crate::model::config::{ClusterConfig, FinalAction};
use crate::model::membership::{DownCause, MemberEvent, Membership};
use crate::model::placement::{self, Decision, GroupLocations};
use crate::model::recovery::RecoveryCounters;
use crate::model::state::{ClusterStatus, PathState, RunState, ServerState};
use crate::notify::alert_log::Alerter;
use crate::wire::heartbeat::{Advert, GroupAdvert};
use crate::wire::Rejection;

/// Rejected packets are reported at most this often (a flood of forged
/// packets must not become a flood of alerts).
const REJECT_ALERT_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct ClusterSide {
    pub membership: Membership,
    pub locations: GroupLocations,
    epoch: Instant,
    pub heartbeats: Vec<Addr<crate::heartbeat::lan::LanHeartbeat>>,
    pub peers: Option<PeerClient>,
    advert: Advert,
    peer_adverts: BTreeMap<String, Advert>,
    rejected_since_alert: u64,
    last_rejected: String,
    last_reject_alert: Option<Instant>,
    pub suspended: bool,
    /// Groups reported active on several servers (alerted once each time).
    doubles: BTreeMap<String, Vec<String>>,
    /// Groups being moved away from here: no second decision about them
    /// until the move is over.
    pub moving: std::collections::BTreeSet<String>,
}

impl ClusterSide {
    pub fn new(config: &ClusterConfig, local: &str) -> Self {
        ClusterSide {
            membership: Membership::new(config, local, Duration::ZERO),
            locations: GroupLocations::default(),
            epoch: Instant::now(),
            heartbeats: Vec::new(),
            peers: None,
            advert: Advert::default(),
            peer_adverts: BTreeMap::new(),
            rejected_since_alert: 0,
            last_rejected: String::new(),
            last_reject_alert: None,
            suspended: false,
            doubles: BTreeMap::new(),
            moving: Default::default(),
        }
    }

    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

/// How often the membership machine looks for silent paths: a fiftieth of
/// the timeout, between 5 and 100 ms, so a silent server is declared down
/// at most 2 % of the timeout late (a tick is a few microseconds of work).
pub(crate) fn tick_every(config: &ClusterConfig) -> Duration {
    Duration::from_millis((config.heartbeat.timeout_ms as u64 / 50).clamp(5, 100))
}

impl Coordinator {
    /// May `server` be given groups now?
    pub(crate) fn eligible(&self, server: &str) -> bool {
        if server == self.settings.local {
            return !self.stopping && self.cluster.membership.eligible(server);
        }
        self.cluster.membership.eligible(server)
            && self
                .cluster
                .peer_adverts
                .get(server)
                .is_none_or(|a| !a.stopping && !a.isolated)
    }

    pub(crate) fn on_tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.cluster.now();
        let events = self.cluster.membership.tick(now);
        if !events.is_empty() {
            self.on_member_events(events, ctx);
        }
    }

    /// Handles membership events in order; server-down events use the group
    /// locations from before the server went.
    pub(crate) fn on_member_events(&mut self, events: Vec<MemberEvent>, ctx: &mut Context<Self>) {
        // Most heartbeats change nothing: no work for them beyond the
        // membership machine (status reads the counters when asked).
        if events.is_empty() {
            return;
        }
        for ev in events {
            self.on_member_event(ev, ctx);
        }
        self.refresh_servers();
        self.publish_advert();
    }

    fn path_address(&self, server: &str, path: usize) -> String {
        self.settings
            .config
            .server(server)
            .and_then(|s| s.interconnects.get(path).cloned())
            .unwrap_or_else(|| "?".into())
    }

    fn on_member_event(&mut self, ev: MemberEvent, ctx: &mut Context<Self>) {
        match ev {
            MemberEvent::PathUp { server, path } => {
                // Only a path that had been down is news.
                let was_down = self
                    .view
                    .servers
                    .iter()
                    .find(|s| s.name == server)
                    .and_then(|s| s.paths.get(path))
                    .is_some_and(|p| p.state == PathState::Down);
                if was_down {
                    self.alerter.raise(Event::PathUp {
                        address: self.path_address(&server, path),
                        server,
                        path,
                    });
                }
            }
            MemberEvent::PathDown { server, path } => {
                self.alerter.raise(Event::PathDown {
                    address: self.path_address(&server, path),
                    server,
                    path,
                });
            }
            MemberEvent::PathLoss { server, path, lost } => {
                self.alerter.raise(Event::PathLoss {
                    address: self.path_address(&server, path),
                    server,
                    path,
                    lost,
                });
            }
            MemberEvent::ServerUp { server, returned } => {
                self.alerter.raise(Event::ServerJoined {
                    server: server.clone(),
                    returned,
                });
                self.decide_failback(ctx);
            }
            MemberEvent::ServerDown { server, cause } => self.server_down(&server, cause, ctx),
            MemberEvent::ServerIsolated { server } => {
                self.alerter.raise(Event::ServerIsolated { server });
            }
            MemberEvent::ServerRecovered { .. } => self.decide_failback(ctx),
            MemberEvent::ConfigMismatch { server, digest } => {
                self.alerter.raise(Event::ConfigMismatch { server, digest });
            }
            MemberEvent::ConfigMatch { server } => {
                self.alerter.raise(Event::ConfigMatch { server });
            }
            MemberEvent::LocalIsolated => {
                self.alerter.raise(Event::LocalLinksDown);
                self.fence_local_groups();
            }
            MemberEvent::LocalRejoined => {
                self.alerter.raise(Event::LocalLinksBack);
            }
            MemberEvent::Formed { missing } => {
                if self.settings.config.servers.len() < 2 {
                    // One server: nothing to wait for, nothing to report.
                } else if missing.is_empty() {
                    self.alerter.raise(Event::AllServersStarted);
                } else {
                    self.alerter.raise(Event::StartupWaitOver { missing });
                }
                let decisions = placement::startup(
                    &self.settings.config,
                    &self.settings.local,
                    &self.cluster.locations,
                    |s| self.eligible(s),
                );
                self.carry_out(decisions, ctx);
            }
        }
    }

    fn server_down(&mut self, server: &str, cause: DownCause, ctx: &mut Context<Self>) {
        let before = self.cluster.locations.clone();
        self.cluster.locations.clear_server(server);
        self.cluster.peer_adverts.remove(server);
        // Every survivor logs it; one of them (the first eligible server
        // of the cluster, the same on all) reports it by mail.
        let reporter = self
            .settings
            .config
            .server_names()
            .into_iter()
            .find(|s| s != server && self.eligible(s));
        let alerter = self.alerter.clone();
        let raise = |e: Event| {
            if reporter.as_deref() == Some(self.settings.local.as_str()) {
                alerter.raise(e)
            } else {
                alerter.raise_without_mail(e)
            }
        };
        match cause {
            DownCause::Left => raise(Event::ServerLeft {
                server: server.to_string(),
            }),
            other => raise(Event::ServerDown {
                server: server.to_string(),
                cause: match other {
                    DownCause::Silent => "every heartbeat path is silent".into(),
                    DownCause::Died => {
                        "its daemon died; its guardian released its resources".into()
                    }
                    DownCause::Restarted => "its daemon restarted".into(),
                    DownCause::Left => unreachable!(),
                },
            }),
        }
        // The down server's lamp blinks red, driven by the same one survivor
        // that reports it (a server that left in order or restarted is not
        // down in that sense).
        if matches!(cause, DownCause::Silent | DownCause::Died)
            && reporter.as_deref() == Some(self.settings.local.as_str())
        {
            self.set_lamp(server, crate::notify::lamp::LampState::RedBlinking);
        }
        if self.cluster.suspended {
            if !before.groups_on(server).is_empty() {
                self.alerter.raise(Event::FailoverSkippedSuspended {
                    server: server.to_string(),
                });
            }
            return;
        }
        let decisions = placement::takeover(
            &self.settings.config,
            &self.settings.local,
            server,
            &before,
            |s| self.eligible(s),
        );
        self.carry_out(decisions, ctx);
    }

    fn decide_failback(&mut self, ctx: &mut Context<Self>) {
        if self.cluster.suspended || self.stopping {
            return;
        }
        let decisions = placement::failback(
            &self.settings.config,
            &self.settings.local,
            &self.cluster.locations,
            |s| self.eligible(s),
        );
        self.carry_out(decisions, ctx);
    }

    fn carry_out(&mut self, decisions: Vec<Decision>, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        for d in decisions {
            match d {
                Decision::Failover { group, from } => {
                    let Some(addr) = self.groups.get(&group).cloned() else {
                        continue;
                    };
                    let local = self.settings.local.clone();
                    self.alerter.raise(Event::DestinationChosen {
                        group: group.clone(),
                        server: local.clone(),
                        reason: format!("server {from} is down"),
                    });
                    self.alerter.raise(Event::FailoverStarted {
                        group: group.clone(),
                        from: from.clone(),
                        to: local,
                    });
                    let alerter = self.alerter.clone();
                    ctx.spawn(
                        async move {
                            let r = addr
                                .send(RunGroup {
                                    op: GroupOp::Start(StartEvent::Failover),
                                    by: format!("failover from {from}"),
                                    wait: true,
                                    operator: false,
                                })
                                .await
                                .unwrap_or_else(|e| Err(format!("group actor unavailable: {e}")));
                            match r {
                                Ok(_) => alerter.raise(Event::FailoverCompleted { group }),
                                Err(error) => alerter.raise(Event::FailoverFailed { group, error }),
                            }
                        }
                        .into_actor(self),
                    );
                }
                Decision::Start { group } => {
                    if let Some(addr) = self.groups.get(&group) {
                        addr.do_send(RunGroup {
                            op: GroupOp::Start(StartEvent::Start),
                            by: "startup attribute auto".into(),
                            wait: true,
                            operator: false,
                        });
                    }
                }
                Decision::Move { group, to } => {
                    let Some(mover) = self.mover(&group) else {
                        continue;
                    };
                    if !self.cluster.moving.insert(group.clone()) {
                        continue;
                    }
                    self.alerter.raise(Event::FailbackStarted {
                        group: group.clone(),
                        to: to.clone(),
                    });
                    let by = "failback".to_string();
                    ctx.spawn(
                        async move {
                            let _ = mover
                                .run(&to, StopFactor::GroupMove, StartEvent::Start, &by, vec![])
                                .await;
                        }
                        .into_actor(self)
                        .map(move |_, act, _| {
                            act.cluster.moving.remove(&group);
                        }),
                    );
                }
                Decision::NoDestination { group, from } => {
                    self.alerter.raise(Event::NoDestination {
                        group,
                        reason: format!(
                            "server {from} is down and no other server of the group is up"
                        ),
                    });
                }
            }
        }
    }

    /// Every local interconnect is down: nobody can reach this server's
    /// groups and the others will take them over, so they stop here first.
    fn fence_local_groups(&mut self) {
        for g in &self.view.groups {
            if g.state.may_be_active() {
                if let Some(addr) = self.groups.get(&g.name) {
                    addr.do_send(RunGroup {
                        op: GroupOp::Stop(StopFactor::GroupStop),
                        by: "every interconnect link of this server is down".into(),
                        wait: true,
                        operator: false,
                    });
                }
            }
        }
    }

    /// Copies membership into the status view.
    pub(crate) fn refresh_servers(&mut self) {
        fill_servers(&mut self.view, &self.cluster.membership);
    }

    /// Sends this server's advert to the heartbeat actors when it changed.
    pub(crate) fn publish_advert(&mut self) {
        let advert = Advert {
            groups: self
                .view
                .groups
                .iter()
                .filter(|g| g.state.may_be_active())
                .map(|g| GroupAdvert {
                    name: g.name.clone(),
                    state: g.state,
                })
                .collect(),
            stopping: self.stopping,
            isolated: self.cluster.membership.locally_isolated(),
            suspended: self.cluster.suspended,
        };
        if advert == self.cluster.advert {
            return;
        }
        let local = self.settings.local.clone();
        self.cluster.locations.set_server(
            &local,
            advert.groups.iter().map(|g| (g.name.clone(), g.state)),
        );
        self.cluster.advert = advert.clone();
        for hb in &self.cluster.heartbeats {
            hb.do_send(SetAdvert(advert.clone()));
        }
        self.check_double_activity();
    }

    fn check_double_activity(&mut self) {
        let now: BTreeMap<String, Vec<String>> =
            placement::double_active(&self.cluster.locations, &self.settings.config)
                .into_iter()
                .collect();
        for (group, servers) in &now {
            if self.cluster.doubles.get(group) != Some(servers) {
                self.alerter.raise(Event::DoubleActivity {
                    group: group.clone(),
                    servers: servers.clone(),
                });
            }
        }
        self.cluster.doubles = now;
    }

    /// The status view with the other servers' groups filled in from their
    /// adverts.
    pub(crate) fn status_snapshot(&self) -> ClusterStatus {
        let mut status = self.view.clone();
        fill_servers(&mut status, &self.cluster.membership);
        for g in &mut status.groups {
            if g.state.may_be_active() {
                continue;
            }
            let holders = self.cluster.locations.holders(&g.name);
            if let Some(server) = holders.iter().find(|s| **s != self.settings.local) {
                if let Some(state) = self.cluster.locations.state(server, &g.name) {
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
        }
        status.suspended = self.cluster.suspended;
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
        let Some(config) = self.settings.config.group(group) else {
            return Err(format!("unknown group {group}"));
        };
        let order = self.settings.config.group_servers(config);
        placement::failover_destination(&order, leaving, |s| self.eligible(s))
            .map(str::to_string)
            .ok_or_else(|| "no other server of the group is up".to_string())
    }

    /// Moves a group that runs here to `to` (or the next server of its order).
    pub(crate) fn move_here_to(
        &mut self,
        group: &str,
        to: Option<String>,
        by: String,
        _ctx: &mut Context<Self>,
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
                            self.cluster.membership.state(&t).as_str()
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
        if !self.cluster.moving.insert(group.to_string()) {
            return ready(Response::Error {
                message: format!("group {group} is already being moved"),
            });
        }
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
            .map(move |r, act, _| {
                act.cluster.moving.remove(&name);
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

    pub(crate) fn set_suspended(&mut self, suspend: bool, by: &str) -> Response {
        self.cluster.suspended = suspend;
        self.view.suspended = suspend;
        self.alerter.raise(if suspend {
            Event::SuspendRequested { by: by.to_string() }
        } else {
            Event::ResumeRequested { by: by.to_string() }
        });
        self.publish_advert();
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
        let now = self.cluster.now();
        let names: Vec<String> = if server == self.settings.local {
            self.settings
                .config
                .server_names()
                .into_iter()
                .filter(|s| self.cluster.membership.state(s) == ServerState::Isolated)
                .collect()
        } else {
            vec![server.to_string()]
        };
        let mut events = Vec::new();
        let mut done = Vec::new();
        for name in &names {
            match self.cluster.membership.recover(now, name) {
                Ok(evs) => {
                    events.extend(evs);
                    done.push(name.clone());
                    self.alerter.raise(Event::ServerRecovered {
                        server: name.clone(),
                        by: by.to_string(),
                    });
                }
                Err(message) if server != self.settings.local => {
                    return Response::Error {
                        message: format!("{}: {message}", self.settings.local),
                    }
                }
                Err(_) => {}
            }
        }
        self.on_member_events(events, ctx);
        Response::Done {
            message: if done.is_empty() {
                format!("{}: nothing to recover", self.settings.local)
            } else {
                format!("{}: recovered {}", self.settings.local, done.join(", "))
            },
        }
    }

    /// Writes a pushed configuration to this server's config file
    /// (validated again here; atomically: temp file, fsync, rename).
    pub(crate) fn write_pushed_config(
        &mut self,
        text: &str,
        by: &str,
        ctx: &mut Context<Self>,
    ) -> Response {
        let path = self.settings.config_path.clone();
        let file = path.display().to_string();
        let config = match crate::model::config::parse(&file, text) {
            Ok(c) => c,
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return Response::Error {
                    message: format!(
                        "{}: the pushed configuration is not valid: {}",
                        self.settings.local,
                        list.join("; ")
                    ),
                };
            }
        };
        // The file being replaced is kept beside it (a push may rewrite a
        // hand-written file in canonical form, comments included).
        // The file keeps its mode; a new one is readable by root only (it
        // may hold a mail password).
        let mode = std::fs::metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o600);
        if let Ok(previous) = std::fs::read(&path) {
            if previous != text.as_bytes() {
                let _ = write_atomically(&path.with_extension("ron.previous"), &previous, mode);
            }
        }
        if let Err(e) = write_atomically(&path, text.as_bytes(), mode) {
            return Response::Error {
                message: format!("{}: cannot write {file}: {e}", self.settings.local),
            };
        }
        let changed = changed_sections(&self.settings.config, &config);
        tracing::info!("configuration pushed by {by} written to {file}");
        let local = self.settings.local.clone();
        let message = if changed.is_empty() {
            format!("{local}: {file} written (no change)")
        } else if changed.iter().all(|c| matches!(*c, "monitors" | "alerts")) {
            match self.apply_online(config, &changed, ctx) {
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
    }
}

impl Coordinator {
    /// A configuration whose only changes are in the monitors and the alert
    /// settings is applied online; heartbeats carry the new digest.
    fn apply_online(
        &mut self,
        config: ClusterConfig,
        changed: &[&str],
        ctx: &mut Context<Self>,
    ) -> Result<(), String> {
        if changed.contains(&"alerts") {
            if let Some(service) = self.settings.alert_service.as_mut() {
                service.apply(&config.alerts)?;
            }
        }
        let config = std::sync::Arc::new(config);
        self.settings.config = config.clone();
        let digest = config.digest();
        self.view.config_digest = digest.clone();
        self.cluster.membership.set_digest(digest.clone());
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

/// Which top-level sections differ between two configurations.
fn changed_sections(old: &ClusterConfig, new: &ClusterConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.name != new.name {
        out.push("name");
    }
    if old.servers != new.servers {
        out.push("servers");
    }
    if old.groups != new.groups {
        out.push("groups");
    }
    if old.monitors != new.monitors {
        out.push("monitors");
    }
    if old.alerts != new.alerts {
        out.push("alerts");
    }
    if old.heartbeat != new.heartbeat {
        out.push("heartbeat");
    }
    if old.os_actions != new.os_actions
        || old.control != new.control
        || old.guardian != new.guardian
    {
        out.push("os_actions/control/guardian");
    }
    out
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
        let now = self.cluster.now();
        match ev {
            HeartbeatEvent::Heard { path, beat, lost } => match beat.kind {
                crate::wire::heartbeat::BeatKind::Alive(advert) => {
                    let events = self.cluster.membership.heard(
                        now,
                        &beat.from,
                        path,
                        beat.incarnation,
                        &beat.config_digest,
                        lost,
                    );
                    // A restart (new incarnation) is a server-down: it must
                    // see the groups the old daemon held, before the new
                    // advert replaces them.
                    let (downs, rest): (Vec<_>, Vec<_>) = events
                        .into_iter()
                        .partition(|e| matches!(e, MemberEvent::ServerDown { .. }));
                    for e in downs {
                        self.on_member_event(e, ctx);
                    }
                    self.cluster.locations.set_server(
                        &beat.from,
                        advert.groups.iter().map(|g| (g.name.clone(), g.state)),
                    );
                    let changed = self.cluster.peer_adverts.get(&beat.from) != Some(&advert);
                    self.cluster.peer_adverts.insert(beat.from.clone(), advert);
                    self.on_member_events(rest, ctx);
                    if changed {
                        self.check_double_activity();
                        self.decide_failback(ctx);
                    }
                }
                crate::wire::heartbeat::BeatKind::Leaving { died } => {
                    let mut events =
                        self.cluster
                            .membership
                            .leaving(now, &beat.from, beat.incarnation, died);
                    // Its paths go quiet because it left, not because of
                    // the network: the server-down alert says it all.
                    events.retain(|e| !matches!(e, MemberEvent::PathDown { .. }));
                    self.on_member_events(events, ctx);
                }
            },
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
                let events = self.cluster.membership.local_link(now, path, up);
                self.on_member_events(events, ctx);
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
