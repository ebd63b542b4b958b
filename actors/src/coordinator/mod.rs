//! The cluster coordinator: one per daemon. It owns the cluster view (states
//! of groups and resources), creates and supervises the group and resource
//! actors, answers control commands, and carries out cluster-level actions
//! (stopping the cluster service, shutting down or rebooting the OS).

pub mod cluster;
pub mod commands;
pub mod group;
pub mod monitors;
pub mod peer;
pub mod traps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use crate::control::protocol::{Command, Response};
use crate::model::catalog::Event;
use crate::model::cluster::Input as cluster_input;
use crate::model::config::{ClusterConfig, FinalAction};
use crate::model::monitoring::MonitorConfig;
use crate::model::recovery::Ladder;
use crate::model::state::{
    ClusterStatus, GroupStatus, ResourceStatus, RunState, ServerState, ServerStatus,
};
use crate::model::state::{MonitorState, MonitorStatus};
use crate::monitor::actor::{Halt, MonitorActor, SharedLateness};
use crate::monitor::ProbeBuild;
use crate::notify::alert_log::{AlertLogHandle, Alerter};
use crate::resource::actor::{ProcessExited, ResourceActor};
use group::{GroupActor, GroupOp, RunGroup, StartEvent, StopFactor};
use monitors::describe_target;
pub use monitors::{MonitorUpdate, RecoverMonitor};

/// Longest time an OS shutdown/reboot command may take before we give up on it.
const OS_ACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The status is published at most this often (from the tick).
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(50);

pub struct CoordinatorSettings {
    /// Enables test-only control commands (`debug stall`).
    pub test_hooks: bool,
    pub config: Arc<ClusterConfig>,
    pub local: String,
    /// Folder of the configuration file (relative script paths start there).
    pub base_dir: PathBuf,
    pub state_dir: PathBuf,
    pub alert_log: AlertLogHandle,
    /// The configuration file (a pushed configuration is written there).
    pub config_path: PathBuf,
    /// This daemon's incarnation (microseconds since the epoch at start).
    pub incarnation: u64,
    /// The cluster key; `None` on a one-server cluster without a key file.
    pub key: Option<Arc<crate::wire::key::ClusterKey>>,
    /// Peer-link listeners, bound by the daemon before the start.
    pub peer_listeners: Vec<std::net::TcpListener>,
    /// The notifiers and their router, when the daemon started them.
    pub alert_service: Option<crate::notify::service::AlertService>,
    /// Where the actors count events for the metrics.
    pub metrics: crate::metrics::Metrics,
}

pub struct Coordinator {
    settings: CoordinatorSettings,
    alerter: Alerter,
    groups: BTreeMap<String, Addr<GroupActor>>,
    view: ClusterStatus,
    /// Becomes true once the cluster service has stopped every group (and
    /// started the OS action, if any): the daemon exits then.
    stopped: watch::Sender<bool>,
    stopping: bool,
    /// Becomes true when the cluster service begins to stop (whatever
    /// stops it): the service manager is told (`STOPPING=1`).
    stopping_signal: watch::Sender<bool>,
    malformed_requests: u64,
    monitors: BTreeMap<String, MonitorEntry>,
    lateness: SharedLateness,
    cluster: cluster::ClusterSide,
    /// The SNMP trap endpoints of the message monitors (brain) and their
    /// receiver tasks.
    traps: crate::model::traps::TrapListeners,
    trap_tasks: BTreeMap<std::net::SocketAddr, tokio::task::JoinHandle<()>>,
    /// The status, published when it changes (see [`Coordinator::status_feed`]).
    status_feed: watch::Sender<Option<Arc<ClusterStatus>>>,
    published_at: Option<std::time::Instant>,
}

/// The coordinator's part of a monitor: its actor (when it runs here), its
/// settings on this server and its recovery ladder.
struct MonitorEntry {
    addr: Option<Addr<MonitorActor>>,
    config: MonitorConfig,
    ladder: Option<Ladder>,
}

impl Coordinator {
    pub fn new(settings: CoordinatorSettings) -> Self {
        let config = &settings.config;
        let view = ClusterStatus {
            cluster: config.name.clone(),
            server: settings.local.clone(),
            pid: std::process::id(),
            config_digest: config.digest(),
            stopping: false,
            suspended: false,
            servers: config
                .servers
                .iter()
                .map(|s| ServerStatus {
                    name: s.name.clone(),
                    state: if s.name == settings.local {
                        ServerState::Online
                    } else {
                        ServerState::Unknown
                    },
                    local: s.name == settings.local,
                    paths: s
                        .interconnects
                        .iter()
                        .map(|a| crate::model::state::PathStatus {
                            address: a.clone(),
                            state: crate::model::state::PathState::Unknown,
                            received: 0,
                            lost: 0,
                        })
                        .collect(),
                    config_mismatch: false,
                    bmc: None,
                })
                .collect(),
            groups: config
                .groups
                .iter()
                .map(|g| GroupStatus {
                    name: g.name.clone(),
                    state: RunState::Offline,
                    current: None,
                    servers: config.group_servers(g),
                    resources: g
                        .resources
                        .iter()
                        .map(|r| ResourceStatus {
                            name: r.name.clone(),
                            kind: r.kind.type_name().to_string(),
                            state: RunState::Offline,
                            pid: None,
                            last_error: None,
                        })
                        .collect(),
                })
                .collect(),
            monitors: monitor_views(config, &settings.local),
            malformed_requests: 0,
            rejected: Default::default(),
            partition: None,
            restart_pending: Vec::new(),
            traps: Vec::new(),
        };
        let alerter = Alerter {
            log: settings.alert_log.clone(),
            server: settings.local.clone(),
            router: settings
                .alert_service
                .as_ref()
                .map(|a| a.router.clone().recipient()),
        };
        let mut cluster =
            cluster::ClusterSide::new(&settings.config, &settings.local, settings.incarnation);
        let start = crate::journal::Line::Start {
            server: settings.local.clone(),
            incarnation: settings.incarnation,
            config_digest: settings.config.digest(),
        };
        match crate::journal::Journal::open(&settings.state_dir, start) {
            Ok(j) => cluster.journal = Some(j),
            Err(e) => tracing::warn!(
                "decision journal in {}: {e}; decisions are not journaled",
                settings.state_dir.display()
            ),
        }
        Coordinator {
            cluster,
            settings,
            alerter,
            groups: BTreeMap::new(),
            view,
            stopped: watch::channel(false).0,
            stopping: false,
            stopping_signal: watch::channel(false).0,
            malformed_requests: 0,
            monitors: BTreeMap::new(),
            lateness: SharedLateness::default(),
            traps: Default::default(),
            trap_tasks: BTreeMap::new(),
            status_feed: watch::channel(None).0,
            published_at: None,
        }
    }

    /// The status as last published: at the coordinator's start, then
    /// within [`PUBLISH_EVERY`] (and a housekeeping round) of each change. Readers (the
    /// metrics, the service manager's status line) never send the
    /// coordinator a message for it.
    pub fn status_feed(&self) -> crate::metrics::StatusFeed {
        self.status_feed.subscribe()
    }

    /// Publishes the status if it changed, at most every [`PUBLISH_EVERY`]
    /// (a snapshot is a copy of the view).
    pub(crate) fn publish_status(&mut self) {
        let now = std::time::Instant::now();
        if self
            .published_at
            .is_some_and(|t| now.duration_since(t) < PUBLISH_EVERY)
        {
            return;
        }
        self.publish_now();
    }

    /// Publishes the status if it changed, at once.
    pub(crate) fn publish_now(&mut self) {
        self.published_at = Some(std::time::Instant::now());
        // The monitors' entries are most of the status (thousands, at
        // scale) and seldom change: compared in place, copied only when
        // something changed, not at every publication.
        let monitors = std::mem::take(&mut self.view.monitors);
        let mut snapshot = self.status_snapshot();
        self.view.monitors = monitors;
        let monitors = &self.view.monitors;
        self.status_feed.send_if_modified(|current| {
            if let Some(cur) = current.as_deref() {
                if cur.monitors == *monitors && same_but_monitors(cur, &snapshot) {
                    return false;
                }
            }
            snapshot.monitors = monitors.clone();
            *current = Some(Arc::new(snapshot));
            true
        });
    }

    /// Becomes true when the cluster service has stopped.
    pub fn stopped_signal(&self) -> watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// Becomes true when the cluster service begins to stop.
    pub fn stopping_signal(&self) -> watch::Receiver<bool> {
        self.stopping_signal.subscribe()
    }

    fn group_view_mut(&mut self, name: &str) -> Option<&mut GroupStatus> {
        self.view.groups.iter_mut().find(|g| g.name == name)
    }

    /// Begins stopping the cluster service (once); the returned receiver
    /// becomes true when every group has stopped and the OS action, if any,
    /// has been started.
    ///
    /// `handover`: this server alone stops (not the whole cluster), so each
    /// group active here is started on the next server of its order once it
    /// has stopped here.
    pub(crate) fn stop_cluster(
        &mut self,
        reason: String,
        factor: StopFactor,
        os_action: Option<FinalAction>,
        handover: bool,
        ctx: &mut Context<Self>,
    ) -> watch::Receiver<bool> {
        let rx = self.stopped.subscribe();
        if self.stopping {
            return rx;
        }
        self.stopping = true;
        self.stopping_signal.send_replace(true);
        // The trap ports are let go with the monitors.
        self.sync_trap_listeners(ctx);
        // Monitors stop first: nothing is recovered while the service stops,
        // and the userspace watchdog must not fire during a long stop.
        for m in self.monitors.values_mut() {
            if let Some(addr) = m.addr.take() {
                addr.do_send(Halt);
            }
        }
        let tx = self.stopped.clone();
        self.view.stopping = true;
        self.alerter.raise(Event::ClusterStopping {
            reason: reason.clone(),
        });
        // Destinations are chosen now, while this server still counts as
        // up for nobody (stopping) and the others' states are fresh.
        let local = self.settings.local.clone();
        let groups: Vec<(Addr<GroupActor>, Option<String>, Vec<_>)> = self
            .groups
            .iter()
            .map(|(name, addr)| {
                let active = self
                    .view
                    .groups
                    .iter()
                    .any(|g| &g.name == name && g.state.may_be_active());
                let dest = (handover && active && !self.cluster.suspended())
                    .then(|| self.destination_from(name, &local).ok())
                    .flatten();
                (addr.clone(), dest, self.counters_of_group(name))
            })
            .collect();
        // Groups handed over are "moving" until their destination has
        // answered: nobody else starts them meanwhile.
        let handed: Vec<String> = groups
            .iter()
            .zip(self.groups.keys())
            .filter(|((_, dest, _), _)| dest.is_some())
            .map(|(_, name)| name.clone())
            .collect();
        for group in &handed {
            self.feed(
                cluster_input::Moving {
                    group: group.clone(),
                    on: true,
                },
                ctx,
            );
        }
        self.feed(cluster_input::Stopping { handover }, ctx);
        // Readers see the stop at once (the service manager's STOPPING=1
        // goes with the state line that says so).
        self.publish_now();
        let alerter = self.alerter.clone();
        let os = self.settings.config.os_actions.clone();
        let peers = self.cluster.peers.clone();
        let leaving = self.leaving_future();
        // The witness's vote is handed over before the leave notice.
        let hand_over = self.cluster.witness.as_ref().map(|w| w.hand_over());
        let lamps = self.lamps();
        let local_name = self.settings.local.clone();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        let fut = async move {
            let stops = groups
                .into_iter()
                .zip(names)
                .map(|((g, dest, counters), name)| {
                    let reason = reason.clone();
                    let peers = peers.clone();
                    let alerter = alerter.clone();
                    async move {
                        let r = g
                            .send(RunGroup {
                                op: GroupOp::Stop(factor),
                                by: reason.clone(),
                                wait: true,
                                operator: false,
                            })
                            .await;
                        if let Ok(Err(e)) = &r {
                            tracing::warn!("while stopping the cluster service: {e}");
                            return;
                        }
                        let (Some(to), Some(peers)) = (dest, peers) else {
                            return;
                        };
                        alerter.raise(Event::FailoverStarted {
                            group: name.clone(),
                            from: peers.local().to_string(),
                            to: to.clone(),
                        });
                        let req = peer::PeerRequest::StartGroup {
                            group: name.clone(),
                            event: StartEvent::Failover,
                            by: reason,
                            counters,
                        };
                        // The destination reports completion or failure;
                        // here only a destination that cannot be reached.
                        if let Err(error) = peers.call(&to, &req).await {
                            alerter.raise(Event::FailoverFailed { group: name, error });
                        }
                    }
                });
            futures_util::future::join_all(stops).await;
            alerter.raise(Event::AlertServiceStopped);
            // A normal stop switches this server's lamp off (and waits for
            // the command, the daemon is about to exit).
            if let Some(l) = lamps {
                l.do_send(crate::notify::lamp::SetLamp {
                    server: local_name,
                    state: crate::notify::lamp::LampState::Off,
                });
                let _ = l.send(crate::notify::lamp::Drain).await;
            }
            if let Some(hand_over) = hand_over {
                hand_over.await;
            }
            leaving.await;
            let argv = match os_action {
                Some(FinalAction::StopClusterServiceAndShutdownOs) => {
                    alerter.raise(Event::SystemWillShutDown);
                    Some(("shut down", os.shutdown))
                }
                Some(FinalAction::StopClusterServiceAndRebootOs) => {
                    alerter.raise(Event::SystemWillReboot);
                    Some(("reboot", os.reboot))
                }
                _ => None,
            };
            if let Some((what, argv)) = argv {
                if let Err(error) = run_os_action(&argv).await {
                    alerter.raise(Event::OsActionFailed {
                        action: what.to_string(),
                        error,
                    });
                }
            }
            let _ = tx.send(true);
        };
        ctx.spawn(fut.into_actor(self));
        rx
    }
}

/// Whether two statuses are the same, their monitors apart. Every field is
/// named, so a new one cannot be forgotten here.
fn same_but_monitors(a: &ClusterStatus, b: &ClusterStatus) -> bool {
    let ClusterStatus {
        cluster,
        server,
        pid,
        config_digest,
        stopping,
        suspended,
        servers,
        groups,
        monitors: _,
        malformed_requests,
        rejected,
        partition,
        restart_pending,
        traps,
    } = a;
    *cluster == b.cluster
        && *server == b.server
        && *pid == b.pid
        && *config_digest == b.config_digest
        && *stopping == b.stopping
        && *suspended == b.suspended
        && *servers == b.servers
        && *groups == b.groups
        && *malformed_requests == b.malformed_requests
        && *rejected == b.rejected
        && *partition == b.partition
        && *restart_pending == b.restart_pending
        && *traps == b.traps
}

/// Status entries of the monitors of `config` as seen from `local`.
pub(crate) fn monitor_views(config: &ClusterConfig, local: &str) -> Vec<MonitorStatus> {
    config
        .monitors
        .iter()
        .map(|m| {
            let m = m.for_server(local);
            MonitorStatus {
                name: m.name.clone(),
                kind: m.kind.type_name().to_string(),
                state: MonitorState::Offline,
                runs_here: m.runs_on(local),
                target: m.target.clone(),
                recovery_target: describe_target(m.recovery_target().as_ref()),
                reactivations: 0,
                failovers: 0,
                last_error: None,
            }
        })
        .collect()
}

async fn run_os_action(argv: &[String]) -> Result<(), String> {
    let (prog, args) = argv.split_first().ok_or("no command configured")?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("{prog}: {e}"))?;
    match tokio::time::timeout(OS_ACTION_TIMEOUT, child.wait()).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!(
            "{prog}: {}",
            crate::resource::exec::driver::describe_status(s)
        )),
        Ok(Err(e)) => Err(format!("{prog}: {e}")),
        Err(_) => Err(format!(
            "{prog}: no result after {} s",
            OS_ACTION_TIMEOUT.as_secs()
        )),
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let config = self.settings.config.clone();
        let local = self.settings.local.clone();
        self.alerter.raise(Event::ClusterStarting {
            server: local.clone(),
            config_digest: self.view.config_digest.clone(),
        });
        let log_dir = self.settings.state_dir.join("log");
        let me = ctx.address();
        for g in &config.groups {
            let resources = g
                .resources
                .iter()
                .map(|r| {
                    let actor = ResourceActor::new(
                        &g.name,
                        r.clone(),
                        &self.settings.base_dir,
                        &log_dir,
                        me.clone().recipient(),
                    );
                    (r.name.clone(), actor.start())
                })
                .collect();
            let addr = GroupActor::new(
                &config,
                g,
                &local,
                resources,
                me.clone(),
                self.alerter.clone(),
                self.settings.metrics.clone(),
            )
            .start();
            self.groups.insert(g.name.clone(), addr);
        }
        self.start_monitors(ctx);
        self.start_cluster_side(ctx);
        self.set_lamp(&local, crate::notify::lamp::LampState::Green);
    }
}

impl Coordinator {
    /// The warning-lamp notifier, when lamps are in use.
    pub(crate) fn lamps(&self) -> Option<Addr<crate::notify::lamp::LampNotifier>> {
        self.settings.alert_service.as_ref()?.lamps.clone()
    }

    /// Creates the monitor actors of the current configuration (those that
    /// run here) and their ladders.
    pub(crate) fn start_monitors(&mut self, ctx: &mut Context<Self>) {
        let config = self.settings.config.clone();
        let local = self.settings.local.clone();
        let log_dir = self.settings.state_dir.join("log");
        let me = ctx.address();
        for m in &config.monitors {
            let resolved = m.for_server(&local);
            let ladder = resolved
                .recovery_target()
                .map(|t| Ladder::new(resolved.recovery.clone(), t));
            let addr = resolved.runs_on(&local).then(|| {
                let build = ProbeBuild {
                    monitor: resolved.name.clone(),
                    config: config.clone(),
                    target: resolved.target.clone(),
                    base_dir: self.settings.base_dir.clone(),
                    log_dir: log_dir.clone(),
                    timeout: resolved.timeout_duration(),
                    alerter: self.alerter.clone(),
                    os_actions: config.os_actions.clone(),
                    final_action: resolved.recovery.final_action,
                };
                MonitorActor::new(
                    resolved.clone(),
                    build,
                    me.clone(),
                    self.lateness.clone(),
                    self.settings.metrics.clone(),
                )
                .start()
            });
            self.monitors.insert(
                m.name.clone(),
                MonitorEntry {
                    addr,
                    config: resolved,
                    ladder,
                },
            );
        }
        self.sync_trap_listeners(ctx);
    }
}

/// State change of a group, from its group actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GroupUpdate {
    pub group: String,
    pub state: RunState,
    pub current: Option<String>,
}

impl Handler<GroupUpdate> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: GroupUpdate, ctx: &mut Context<Self>) {
        if let Some(g) = self.group_view_mut(&msg.group) {
            g.state = msg.state;
            g.current = msg.current;
        }
        self.feed(
            cluster_input::GroupState {
                group: msg.group,
                state: msg.state,
            },
            ctx,
        );
    }
}

/// State change of a resource, from its group actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResourceUpdate {
    pub group: String,
    pub resource: String,
    pub state: RunState,
    pub pid: Option<u32>,
    pub error: Option<String>,
}

impl Handler<ResourceUpdate> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: ResourceUpdate, _: &mut Context<Self>) {
        if let Some(g) = self.group_view_mut(&msg.group) {
            if let Some(r) = g.resources.iter_mut().find(|r| r.name == msg.resource) {
                r.state = msg.state;
                r.pid = msg.pid;
                if msg.error.is_some() || msg.state == RunState::Online {
                    r.last_error = msg.error;
                }
            }
        }
        self.tell_monitors(&msg.resource, msg.state == RunState::Online, msg.pid);
    }
}

impl Handler<ProcessExited> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: ProcessExited, _: &mut Context<Self>) {
        let mut still_online = None;
        if let Some(g) = self.group_view_mut(&msg.group) {
            if let Some(r) = g.resources.iter_mut().find(|r| r.name == msg.resource) {
                if r.pid == Some(msg.pid) {
                    r.pid = None;
                    still_online = Some(r.state == RunState::Online);
                }
            }
        }
        if let Some(active) = still_online {
            self.tell_monitors(&msg.resource, active, None);
        }
        self.alerter.raise(Event::AsyncProcessExited {
            resource: msg.resource,
            pid: msg.pid,
            status: msg.status,
        });
    }
}

/// The coordinator's view of one group.
#[derive(Message)]
#[rtype(result = "Option<GroupStatus>")]
pub struct GetGroup(pub String);

impl Handler<GetGroup> for Coordinator {
    type Result = Option<GroupStatus>;
    fn handle(&mut self, msg: GetGroup, _: &mut Context<Self>) -> Self::Result {
        self.view.groups.iter().find(|g| g.name == msg.0).cloned()
    }
}

/// Where a failing group should go: the first server of its order, other
/// than this one, that is up. `Err` gives the reason there is none.
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct FindFailoverDestination(pub String);

impl Handler<FindFailoverDestination> for Coordinator {
    type Result = Result<String, String>;
    fn handle(&mut self, msg: FindFailoverDestination, _: &mut Context<Self>) -> Self::Result {
        self.failover_destination(&msg.0)
    }
}

impl Coordinator {
    /// The first server of the group's order, other than this one, that is
    /// up; `Err` says why there is none.
    pub(crate) fn failover_destination(&self, group: &str) -> Result<String, String> {
        self.destination_from(group, &self.settings.local)
    }
}

/// Move a group that failed to activate here to `to` (the group ladder's
/// failover step): stop it here (`GROUPFAILOVER`), start it there
/// (`FAILOVER`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailoverGroup {
    pub group: String,
    pub to: String,
    pub by: String,
}

impl Handler<FailoverGroup> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: FailoverGroup, ctx: &mut Context<Self>) {
        let Some(mover) = self.mover(&msg.group) else {
            return;
        };
        if self.cluster.brain.moving(&msg.group) {
            return;
        }
        self.feed(
            cluster_input::Moving {
                group: msg.group.clone(),
                on: true,
            },
            ctx,
        );
        let counters = self.counters_of_group(&msg.group);
        ctx.spawn(
            async move {
                // The mover reports the start; the destination the end.
                let _ = mover
                    .run(
                        &msg.to,
                        StopFactor::GroupFailover,
                        StartEvent::Failover,
                        &msg.by,
                        counters,
                    )
                    .await;
            }
            .into_actor(self)
            .map(move |_, act, ctx| {
                act.feed(
                    cluster_input::Moving {
                        group: msg.group,
                        on: false,
                    },
                    ctx,
                );
            }),
        );
    }
}

/// A group's final action asks for the cluster service to stop (and maybe
/// for the OS to shut down or reboot).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClusterFinalAction {
    pub group: String,
    pub resource: String,
    pub action: FinalAction,
}

impl Handler<ClusterFinalAction> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: ClusterFinalAction, ctx: &mut Context<Self>) {
        let reason = format!(
            "final action of resource {} in group {}: {}",
            msg.resource,
            msg.group,
            crate::model::catalog::describe(msg.action, true)
        );
        // The daemon exits once the stop is done (see `stopped_signal`).
        let _ = self.stop_cluster(
            reason,
            StopFactor::ClusterShutdown,
            Some(msg.action),
            true,
            ctx,
        );
    }
}

/// Stop the cluster service on this server (SIGTERM, `cluster stop`).
/// Resolves once every group has stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopClusterService {
    pub reason: String,
    pub factor: StopFactor,
}

impl Handler<StopClusterService> for Coordinator {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: StopClusterService, ctx: &mut Context<Self>) -> Self::Result {
        let handover = msg.factor == StopFactor::ServerShutdown;
        let mut rx = self.stop_cluster(msg.reason, msg.factor, None, handover, ctx);
        Box::pin(async move {
            let _ = rx.wait_for(|done| *done).await;
        })
    }
}

/// A garbled or oversized request reached the control socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MalformedRequest;

impl Handler<MalformedRequest> for Coordinator {
    type Result = ();
    fn handle(&mut self, _: MalformedRequest, _: &mut Context<Self>) {
        self.malformed_requests += 1;
        self.view.malformed_requests = self.malformed_requests;
    }
}

/// A control command from an authorised caller (`by` names the caller).
#[derive(Message)]
#[rtype(result = "Response")]
pub struct Control {
    pub command: Command,
    pub by: String,
}

impl Handler<Control> for Coordinator {
    type Result = ResponseActFuture<Self, Response>;

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r: Response| -> Self::Result { Box::pin(actix::fut::ready(r)) };
        match msg.command {
            Command::Status => ready(Response::Status {
                status: Box::new(self.status_snapshot()),
            }),
            Command::Alerts { count } => self.cluster_alerts(count),
            Command::ClusterStop => self.cluster_wide_stop(msg.by, None, ctx),
            Command::ClusterShutdown { reboot } => {
                let action = if reboot {
                    FinalAction::StopClusterServiceAndRebootOs
                } else {
                    FinalAction::StopClusterServiceAndShutdownOs
                };
                self.cluster_wide_stop(msg.by, Some(action), ctx)
            }
            Command::ServerShutdown { reboot } => {
                let action = if reboot {
                    FinalAction::StopClusterServiceAndRebootOs
                } else {
                    FinalAction::StopClusterServiceAndShutdownOs
                };
                self.stop_service_response(msg.by, Some(action), true, ctx)
            }
            Command::ClusterSuspend => self.cluster_wide_suspend(true, msg.by, ctx),
            Command::ClusterResume => self.cluster_wide_suspend(false, msg.by, ctx),
            Command::ServerRecover { server } => self.cluster_wide_recover(server, msg.by, ctx),
            Command::ServerConfirmDown { server } => {
                self.cluster_wide_confirm_down(server, msg.by, ctx)
            }
            Command::ConfigPush { text } => self.cluster_wide_push(text, msg.by),
            Command::AlertNotification { suspend } => {
                self.cluster_wide_notification(suspend, msg.by)
            }
            Command::AlertTest {
                mail,
                syslog,
                lamp,
                snmp,
            } => self.alert_test(mail, syslog, lamp, snmp, msg.by),
            Command::LampOff { server } => self.lamp_off(server),
            // The settings may hold a mail password: only for those who may
            // change them (the command counts as mutating).
            Command::AlertExport => ready(
                match crate::model::config::to_ron(&self.settings.config.alerts) {
                    Ok(text) => Response::Done { message: text },
                    Err(e) => Response::Error {
                        message: format!("cannot write the alert settings: {e}"),
                    },
                },
            ),
            Command::AlertImport { text } => self.alert_import(text, msg.by),
            Command::MonitorStats { reset } => ready(self.monitor_stats(reset)),
            Command::MessageSend {
                category,
                keyword,
                clear,
            } => ready(self.deliver_message(&category, &keyword, clear)),
            Command::AgentReport { report } => {
                let (module, id, _) = report.id();
                self.alerter.raise(Event::Agent(report));
                ready(Response::Done {
                    message: format!("{module} {id} recorded"),
                })
            }
            Command::Log { level, message } => {
                ready(match crate::model::catalog::user_message(&message) {
                    Ok(text) => {
                        let event = Event::UserMessage { level, text };
                        let (module, id, _) = event.id();
                        // The alert log only: `--syslog` is written by the
                        // command itself, and mails and traps are not asked
                        // for.
                        self.alerter
                            .raise_to(event, crate::model::routing::Destinations::default());
                        Response::Done {
                            message: format!("{module} {id} recorded in the alert log"),
                        }
                    }
                    Err(e) => Response::Error { message: e },
                })
            }
            Command::DebugBurst { count } => {
                if !self.settings.test_hooks {
                    return ready(Response::Error {
                        message:
                            "test hooks are off (start the daemon with UNDERSTUDY_TEST_HOOKS=1)"
                                .into(),
                    });
                }
                for i in 1..=count {
                    self.alerter.raise_to(
                        Event::AlertTest {
                            by: format!("the burst hook ({i} of {count})"),
                            to: "mail".into(),
                        },
                        crate::model::routing::Destinations {
                            syslog: false,
                            mail: true,
                            snmp: false,
                        },
                    );
                }
                ready(Response::Done {
                    message: format!("{count} test alerts raised"),
                })
            }
            Command::DebugPanic => {
                if !self.settings.test_hooks {
                    return ready(Response::Error {
                        message:
                            "test hooks are off (start the daemon with UNDERSTUDY_TEST_HOOKS=1)"
                                .into(),
                    });
                }
                panic!("test hook: a panic in the coordinator");
            }
            Command::DebugStall { seconds } => {
                if !self.settings.test_hooks {
                    return ready(Response::Error {
                        message:
                            "test hooks are off (start the daemon with UNDERSTUDY_TEST_HOOKS=1)"
                                .into(),
                    });
                }
                // Blocks the actors' thread on purpose: the userspace
                // monitor's watchdog must notice.
                std::thread::sleep(Duration::from_secs(seconds));
                ready(Response::Done {
                    message: format!("the coordinator was blocked for {seconds} s"),
                })
            }
            Command::GroupStart { group, .. }
            | Command::GroupStop { group }
            | Command::GroupMove { group, .. }
                if !self.groups.contains_key(&group) =>
            {
                ready(Response::Error {
                    message: self.check_group(&group).err().unwrap_or_default(),
                })
            }
            _ if self.stopping => ready(Response::Error {
                message: "the cluster service is stopping; no new group operations".into(),
            }),
            Command::GroupStart { group, server } => self.group_start_on(group, server, msg.by),
            Command::GroupStop { group } => self.group_stop_anywhere(group, msg.by),
            Command::GroupMove { group, to } => self.group_move_anywhere(group, to, msg.by, ctx),
            Command::MonitorSuspend { monitors } => ready(self.suspend_resume(&monitors, true)),
            Command::MonitorResume { monitors } => ready(self.suspend_resume(&monitors, false)),
            Command::MonitorClear { monitor } => ready(self.clear_counters(&monitor, &msg.by)),
        }
    }
}

impl Coordinator {
    pub(crate) fn run_group(
        &mut self,
        group: &str,
        op: GroupOp,
        by: String,
    ) -> ResponseActFuture<Self, Response> {
        self.run_group_as(group, op, by, false)
    }

    /// `from_peer`: the request comes from another server's coordinator (a
    /// move or failover in progress): it queues behind a running operation
    /// instead of being refused, and does not count as an operator command.
    pub(crate) fn run_group_as(
        &mut self,
        group: &str,
        op: GroupOp,
        by: String,
        from_peer: bool,
    ) -> ResponseActFuture<Self, Response> {
        let addr = self.groups[group].clone();
        Box::pin(
            async move {
                match addr
                    .send(RunGroup {
                        op,
                        by,
                        wait: from_peer,
                        operator: !from_peer,
                    })
                    .await
                {
                    Ok(Ok(message)) => Response::Done { message },
                    Ok(Err(message)) => Response::Error { message },
                    Err(e) => Response::Error {
                        message: format!("group actor unavailable: {e}"),
                    },
                }
            }
            .into_actor(self),
        )
    }
}
