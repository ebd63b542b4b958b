//! The cluster coordinator: one per daemon. It owns the cluster view (states
//! of groups and resources), creates and supervises the group and resource
//! actors, answers control commands, and carries out cluster-level actions
//! (stopping the cluster service, shutting down or rebooting the OS).

pub mod group;
pub mod monitors;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use crate::control::protocol::{Command, Response};
use crate::model::catalog::Event;
use crate::model::config::{ClusterConfig, FinalAction, StartupAttribute};
use crate::model::monitoring::MonitorConfig;
use crate::model::placement;
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

pub struct CoordinatorSettings {
    /// Enables test-only control commands (`debug stall`).
    pub test_hooks: bool,
    pub config: Arc<ClusterConfig>,
    pub local: String,
    /// Folder of the configuration file (relative script paths start there).
    pub base_dir: PathBuf,
    pub state_dir: PathBuf,
    pub alert_log: AlertLogHandle,
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
    malformed_requests: u64,
    monitors: BTreeMap<String, MonitorEntry>,
    lateness: SharedLateness,
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
            monitors: config
                .monitors
                .iter()
                .map(|m| {
                    let m = m.for_server(&settings.local);
                    MonitorStatus {
                        name: m.name.clone(),
                        kind: m.kind.type_name().to_string(),
                        state: MonitorState::Offline,
                        runs_here: m.runs_on(&settings.local),
                        target: m.target.clone(),
                        recovery_target: describe_target(m.recovery_target().as_ref()),
                        reactivations: 0,
                        failovers: 0,
                        last_error: None,
                    }
                })
                .collect(),
            malformed_requests: 0,
            rejected: Default::default(),
        };
        let alerter = Alerter {
            log: settings.alert_log.clone(),
            server: settings.local.clone(),
        };
        Coordinator {
            settings,
            alerter,
            groups: BTreeMap::new(),
            view,
            stopped: watch::channel(false).0,
            stopping: false,
            malformed_requests: 0,
            monitors: BTreeMap::new(),
            lateness: SharedLateness::default(),
        }
    }

    /// Becomes true when the cluster service has stopped.
    pub fn stopped_signal(&self) -> watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    fn group_view_mut(&mut self, name: &str) -> Option<&mut GroupStatus> {
        self.view.groups.iter_mut().find(|g| g.name == name)
    }

    /// Servers that are up. Only this one until heartbeats exist.
    pub(crate) fn server_up(&self, name: &str) -> bool {
        self.view
            .servers
            .iter()
            .any(|s| s.name == name && s.state == ServerState::Online)
    }

    /// Begins stopping the cluster service (once); the returned receiver
    /// becomes true when every group has stopped and the OS action, if any,
    /// has been started.
    pub(crate) fn stop_cluster(
        &mut self,
        reason: String,
        factor: StopFactor,
        os_action: Option<FinalAction>,
        ctx: &mut Context<Self>,
    ) -> watch::Receiver<bool> {
        let rx = self.stopped.subscribe();
        if self.stopping {
            return rx;
        }
        self.stopping = true;
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
        let groups: Vec<Addr<GroupActor>> = self.groups.values().cloned().collect();
        let alerter = self.alerter.clone();
        let os = self.settings.config.os_actions.clone();
        let fut = async move {
            let stops = groups.iter().map(|g| {
                g.send(RunGroup {
                    op: GroupOp::Stop(factor),
                    by: reason.clone(),
                    wait: true,
                    operator: false,
                })
            });
            for r in futures_util::future::join_all(stops).await {
                if let Ok(Err(e)) = r {
                    tracing::warn!("while stopping the cluster service: {e}");
                }
            }
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
            )
            .start();
            self.groups.insert(g.name.clone(), addr);
        }
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
                    timeout_secs: resolved.timeout,
                    alerter: self.alerter.clone(),
                    os_actions: config.os_actions.clone(),
                    liveness: me.clone().recipient(),
                    final_action: resolved.recovery.final_action,
                };
                MonitorActor::new(resolved.clone(), build, me.clone(), self.lateness.clone())
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
        // Groups with startup attribute Auto start on the first server of
        // their order that is up. Only this server is known to be up until
        // heartbeats exist, so a group starts here when this server is in
        // its list.
        for g in &config.groups {
            if g.startup != StartupAttribute::Auto {
                continue;
            }
            let order = config.group_servers(g);
            if placement::startup_server(&order, |s| self.server_up(s)) == Some(local.as_str()) {
                if let Some(addr) = self.groups.get(&g.name) {
                    addr.do_send(RunGroup {
                        op: GroupOp::Start(StartEvent::Start),
                        by: "startup attribute auto".into(),
                        wait: true,
                        operator: false,
                    });
                }
            }
        }
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
    fn handle(&mut self, msg: GroupUpdate, _: &mut Context<Self>) {
        if let Some(g) = self.group_view_mut(&msg.group) {
            g.state = msg.state;
            g.current = msg.current;
        }
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
        let Some(config) = self.settings.config.group(group) else {
            return Err(format!("unknown group {group}"));
        };
        let order = self.settings.config.group_servers(config);
        placement::failover_destination(&order, &self.settings.local, |s| self.server_up(s))
            .map(str::to_string)
            .ok_or_else(|| "no other server of the group is up".to_string())
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
        let _ = self.stop_cluster(reason, StopFactor::ClusterShutdown, Some(msg.action), ctx);
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
        let mut rx = self.stop_cluster(msg.reason, msg.factor, None, ctx);
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
                status: self.view.clone(),
            }),
            Command::Alerts { count } => {
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
            Command::ClusterStop => {
                self.alerter
                    .raise(Event::StopRequested { by: msg.by.clone() });
                let mut rx = self.stop_cluster(
                    format!("requested by {}", msg.by),
                    StopFactor::ClusterShutdown,
                    None,
                    ctx,
                );
                Box::pin(
                    async move {
                        let _ = rx.wait_for(|done| *done).await;
                        Response::Done {
                            message: "cluster service stopped: every group is offline".into(),
                        }
                    }
                    .into_actor(self),
                )
            }
            Command::MonitorStats { reset } => ready(self.monitor_stats(reset)),
            Command::MessageSend {
                category,
                keyword,
                clear,
            } => ready(self.deliver_message(&category, &keyword, clear)),
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
            Command::GroupStart { group } | Command::GroupStop { group }
                if !self.groups.contains_key(&group) =>
            {
                let known: Vec<&str> = self.groups.keys().map(|s| s.as_str()).collect();
                ready(Response::Error {
                    message: format!("no group named \"{group}\" (groups: {})", known.join(", ")),
                })
            }
            _ if self.stopping => ready(Response::Error {
                message: "the cluster service is stopping; no new group operations".into(),
            }),
            Command::GroupStart { group } => {
                self.run_group(&group, GroupOp::Start(StartEvent::Start), msg.by)
            }
            Command::GroupStop { group } => {
                self.run_group(&group, GroupOp::Stop(StopFactor::GroupStop), msg.by)
            }
            Command::MonitorSuspend { monitors } => ready(self.suspend_resume(&monitors, true)),
            Command::MonitorResume { monitors } => ready(self.suspend_resume(&monitors, false)),
            Command::MonitorClear { monitor } => ready(self.clear_counters(&monitor, &msg.by)),
        }
    }
}

impl Coordinator {
    fn run_group(
        &mut self,
        group: &str,
        op: GroupOp,
        by: String,
    ) -> ResponseActFuture<Self, Response> {
        let addr = self.groups[group].clone();
        Box::pin(
            async move {
                match addr
                    .send(RunGroup {
                        op,
                        by,
                        wait: false,
                        operator: true,
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

/// Answered at once: proves the coordinator still handles messages (the
/// userspace monitor's liveness check).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Liveness;

impl Handler<Liveness> for Coordinator {
    type Result = ();
    fn handle(&mut self, _: Liveness, _: &mut Context<Self>) {}
}
