//! The group actor: one per failover group. It runs activation and
//! deactivation by feeding resource results to the pure ladder machines of
//! [`crate::model::ladder`] and reporting every state change to the
//! coordinator, which keeps the cluster view.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;

use super::{
    ClusterFinalAction, Coordinator, FailoverGroup, FindFailoverDestination, GetGroup, GroupUpdate,
    ResourceUpdate,
};
use crate::model::catalog::Event;
use crate::model::config::{ClusterConfig, FinalAction, GroupConfig};
use crate::model::ladder::{
    ActivationAction, ActivationOutcome, ActivationRun, DeactivationAction, DeactivationOutcome,
    DeactivationRun,
};
use crate::model::placement;
use crate::model::plan;
use crate::model::resource::disk;
use crate::model::state::RunState;
use crate::notify::alert_log::Alerter;
use crate::resource::actor::{Activate, Deactivate, ResourceActor, ScriptContext};

/// `CLP_EVENT` of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StartEvent {
    Start,
    Failover,
}

impl StartEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            StartEvent::Start => "START",
            StartEvent::Failover => "FAILOVER",
        }
    }
}

/// `CLP_FACTOR` of a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StopFactor {
    GroupStop,
    GroupMove,
    GroupFailover,
    ResourceRestart,
    ClusterShutdown,
    ServerShutdown,
    GroupRestart,
}

impl StopFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            StopFactor::GroupStop => "GROUPSTOP",
            StopFactor::GroupMove => "GROUPMOVE",
            StopFactor::GroupFailover => "GROUPFAILOVER",
            StopFactor::ResourceRestart => "RESOURCERESTART",
            StopFactor::ClusterShutdown => "CLUSTERSHUTDOWN",
            StopFactor::ServerShutdown => "SERVERSHUTDOWN",
            StopFactor::GroupRestart => "GROUPRESTART",
        }
    }
}

#[derive(Debug, Clone)]
pub enum GroupOp {
    Start(StartEvent),
    Stop(StopFactor),
    /// Stop and start the whole group again (reactivation by a monitor).
    Restart,
    /// Stop a resource and those depending on it, then start them again
    /// (reactivation by a monitor).
    RestartResource(String),
    /// Stop a resource and those depending on it (a monitor's final action).
    StopResource(String),
}

/// Start or stop the group on this server. `wait`: queue behind a running
/// operation instead of refusing (used when the cluster service stops).
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct RunGroup {
    pub op: GroupOp,
    pub by: String,
    pub wait: bool,
    /// An operator command: resets the failover counters.
    pub operator: bool,
}

pub struct GroupActor {
    shared: Rc<Shared>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// What an operation needs, shared with its future.
struct Shared {
    group: GroupConfig,
    order: Vec<String>,
    local: String,
    resources: BTreeMap<String, Addr<ResourceActor>>,
    coordinator: Addr<Coordinator>,
    alerter: Alerter,
    /// Counts the ladder's retries and final actions, and starts by failover.
    metrics: crate::metrics::Metrics,
    /// Failovers caused by each resource's activation failure; reset by an
    /// operator's start or stop of the group.
    failovers: RefCell<BTreeMap<String, u32>>,
    /// Each resource's state as this actor last set it: only this actor
    /// changes them, so `CLP_DISK` needs no question to the coordinator.
    states: RefCell<BTreeMap<String, RunState>>,
}

impl GroupActor {
    pub fn new(
        config: &ClusterConfig,
        group: &GroupConfig,
        local: &str,
        resources: BTreeMap<String, Addr<ResourceActor>>,
        coordinator: Addr<Coordinator>,
        alerter: Alerter,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        GroupActor {
            shared: Rc::new(Shared {
                group: group.clone(),
                order: config.group_servers(group),
                local: local.to_string(),
                resources,
                coordinator,
                alerter,
                metrics,
                failovers: RefCell::new(BTreeMap::new()),
                states: RefCell::new(BTreeMap::new()),
            }),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

impl Actor for GroupActor {
    type Context = Context<Self>;
}

impl Handler<RunGroup> for GroupActor {
    type Result = ResponseFuture<Result<String, String>>;

    fn handle(&mut self, msg: RunGroup, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let lock = self.lock.clone();
        Box::pin(async move {
            let name = shared.group.name.clone();
            let _guard = if msg.wait {
                lock.lock_owned().await
            } else {
                lock.try_lock_owned().map_err(|_| {
                    format!("group {name} is busy with another operation; try again when it has finished")
                })?
            };
            if msg.operator {
                shared.failovers.borrow_mut().clear();
            }
            let outcome = match msg.op {
                GroupOp::Start(event) => shared.start(event, &msg.by).await,
                GroupOp::Stop(factor) => shared.stop(factor, &msg.by, None).await,
                GroupOp::Restart => {
                    let stopped = shared.stop(StopFactor::GroupRestart, &msg.by, None).await;
                    match stopped.result {
                        Ok(_) if stopped.cluster_action.is_none() => {
                            shared.start(StartEvent::Start, &msg.by).await
                        }
                        _ => stopped,
                    }
                }
                GroupOp::RestartResource(resource) => {
                    let set = plan::with_dependents(&shared.group, &resource);
                    let stopped = shared
                        .stop(StopFactor::ResourceRestart, &msg.by, Some(&set))
                        .await;
                    match stopped.result {
                        Ok(_) if stopped.cluster_action.is_none() => {
                            shared
                                .activate(StartEvent::Start, &msg.by, Some(&set))
                                .await
                        }
                        _ => stopped,
                    }
                }
                GroupOp::StopResource(resource) => {
                    let set = plan::with_dependents(&shared.group, &resource);
                    shared
                        .stop(StopFactor::ResourceRestart, &msg.by, Some(&set))
                        .await
                }
            };
            drop(_guard);
            // Cluster-level final actions are carried out once this group's
            // operation has let go of the group, so stopping the cluster can
            // stop this group too.
            if let Some((resource, action)) = outcome.cluster_action {
                shared.coordinator.do_send(ClusterFinalAction {
                    group: name.clone(),
                    resource,
                    action,
                });
            }
            if let Some((resource, to)) = outcome.failover_to {
                shared.coordinator.do_send(FailoverGroup {
                    group: name,
                    to,
                    by: format!("activation failure of resource {resource}"),
                });
            }
            outcome.result
        })
    }
}

struct Outcome {
    result: Result<String, String>,
    cluster_action: Option<(String, FinalAction)>,
    /// An activation failure moves the group: (resource, destination).
    failover_to: Option<(String, String)>,
}

impl Outcome {
    fn ok(msg: String) -> Self {
        Outcome {
            result: Ok(msg),
            cluster_action: None,
            failover_to: None,
        }
    }
    fn err(msg: String) -> Self {
        Outcome {
            result: Err(msg),
            cluster_action: None,
            failover_to: None,
        }
    }
}

fn is_cluster_action(a: FinalAction) -> bool {
    matches!(
        a,
        FinalAction::StopClusterService
            | FinalAction::StopClusterServiceAndShutdownOs
            | FinalAction::StopClusterServiceAndRebootOs
    )
}

impl Shared {
    fn name(&self) -> &str {
        &self.group.name
    }

    fn set_group(&self, state: RunState, current: Option<String>) {
        self.coordinator.do_send(GroupUpdate {
            group: self.name().to_string(),
            state,
            current,
        });
    }

    fn set_resource(
        &self,
        resource: &str,
        state: RunState,
        pid: Option<u32>,
        error: Option<String>,
    ) {
        self.states.borrow_mut().insert(resource.to_string(), state);
        self.coordinator.do_send(ResourceUpdate {
            group: self.name().to_string(),
            resource: resource.to_string(),
            state,
            pid,
            error,
        });
    }

    fn script_context(&self, event: &'static str, factor: Option<&'static str>) -> ScriptContext {
        ScriptContext {
            event,
            factor,
            priority: placement::priority(&self.order, &self.local).unwrap_or(self.order.len() + 1),
            disk: "SUCCESS",
        }
    }

    /// `CLP_DISK` for the scripts of `resource`, from the states this
    /// actor set (a resource never set here is not Online).
    fn clp_disk(&self, resource: &str) -> &'static str {
        let states = self.states.borrow();
        disk::clp_disk(&self.group, resource, |name| {
            states.get(name) == Some(&RunState::Online)
        })
    }

    async fn start(&self, event: StartEvent, by: &str) -> Outcome {
        let name = self.name().to_string();
        let view = self
            .coordinator
            .send(GetGroup(name.clone()))
            .await
            .ok()
            .flatten();
        if let Some(v) = &view {
            let active =
                v.state.may_be_active() || v.resources.iter().any(|r| r.state.may_be_active());
            if active {
                // Starting over a partly active group would run start scripts
                // twice; the operator stops it first.
                let advice = if v.state == RunState::Online {
                    String::new()
                } else {
                    format!("; stop it first (understudy group stop {name})")
                };
                return Outcome::err(format!(
                    "group {name} is already {} on {}{advice}",
                    v.state.as_str().to_lowercase(),
                    v.current.as_deref().unwrap_or("?")
                ));
            }
        }
        if placement::priority(&self.order, &self.local).is_none() {
            return Outcome::err(format!(
                "server {} is not among the servers that may run group {name} ({})",
                self.local,
                self.order.join(", ")
            ));
        }
        self.activate(event, by, None).await
    }

    /// Activates the group's resources in dependency order; `only`: just
    /// these (a resource restart), leaving the others as they are.
    async fn activate(&self, event: StartEvent, by: &str, only: Option<&[String]>) -> Outcome {
        let name = self.name().to_string();
        let order = match plan::activation_order(&self.group) {
            Ok(o) => o
                .into_iter()
                .filter(|r| only.is_none_or(|set| set.contains(r)))
                .collect(),
            Err(e) => return Outcome::err(format!("group {name}: no activation plan: {e:?}")),
        };
        let policies = self
            .group
            .resources
            .iter()
            .map(|r| (r.name.clone(), r.activation))
            .collect();
        let mut run = ActivationRun::new(order, policies, self.failovers.borrow().clone());
        if only.is_none() {
            if event == StartEvent::Failover {
                self.metrics.group_failover(&name);
            }
            self.alerter.raise(Event::GroupStarting {
                group: name.clone(),
                by: by.to_string(),
            });
        }
        self.set_group(RunState::OnlinePending, Some(self.local.clone()));

        let ctx = self.script_context(event.as_str(), None);
        let mut queue: std::collections::VecDeque<ActivationAction> = run.begin().into();
        let mut halted_final = None;
        let mut failover_to = None;
        while let Some(action) = queue.pop_front() {
            match action {
                ActivationAction::Start { resource, attempt } => {
                    if attempt > 1 {
                        self.metrics.resource_retry(&name, &resource, "activation");
                        self.alerter.raise(Event::ActivationRetry {
                            resource: resource.clone(),
                            attempt,
                        });
                    }
                    let ok = self.drive_resource(&resource, Direction::Start, &ctx).await;
                    queue.extend(run.on_result(ok));
                }
                ActivationAction::Failover { resource } => {
                    *self
                        .failovers
                        .borrow_mut()
                        .entry(resource.clone())
                        .or_insert(0) += 1;
                    let dest = self
                        .coordinator
                        .send(FindFailoverDestination(name.clone()))
                        .await
                        .unwrap_or_else(|e| Err(format!("coordinator unavailable: {e}")));
                    match dest {
                        Ok(to) => {
                            // The move itself runs once this operation has
                            // let go of the group (see the RunGroup handler).
                            self.alerter.raise(Event::ActivationFailover {
                                group: name.clone(),
                                resource: resource.clone(),
                                to: to.clone(),
                            });
                            failover_to = Some((resource, to));
                        }
                        Err(reason) => {
                            self.alerter.raise(Event::NoDestination {
                                group: name.clone(),
                                reason,
                            });
                            self.alerter
                                .raise(Event::ActivationContinuesAfterFailedFailover {
                                    group: name.clone(),
                                });
                            // The failed failover was counted above.
                            queue.clear();
                            queue.extend(run.failover_impossible());
                        }
                    }
                }
                ActivationAction::FinalAction { resource, action } => {
                    self.metrics
                        .resource_final_action(&name, &resource, "activation");
                    self.alerter.raise(Event::ActivationFinalAction {
                        group: name.clone(),
                        resource: resource.clone(),
                        action,
                    });
                    halted_final = Some((resource, action));
                }
                ActivationAction::Finished(outcome) => {
                    let mut out = self
                        .finish_start(outcome, halted_final.take(), only.is_some())
                        .await;
                    out.failover_to = failover_to.take();
                    return out;
                }
            }
        }
        Outcome::err(format!("group {name}: activation ended without an outcome"))
    }

    async fn finish_start(
        &self,
        outcome: ActivationOutcome,
        final_action: Option<(String, FinalAction)>,
        partial: bool,
    ) -> Outcome {
        let name = self.name().to_string();
        match outcome {
            ActivationOutcome::Online => {
                self.set_group(RunState::Online, Some(self.local.clone()));
                if !partial {
                    self.alerter.raise(Event::GroupStarted {
                        group: name.clone(),
                    });
                }
                Outcome::ok(format!("group {name} is online on {}", self.local))
            }
            ActivationOutcome::Partial { failed } => {
                self.set_group(RunState::OnlineFailure, Some(self.local.clone()));
                let detail = format!("resources not activated: {}", failed.join(", "));
                self.alerter.raise(Event::GroupStartFailed {
                    group: name.clone(),
                    detail: detail.clone(),
                });
                Outcome::err(format!(
                    "group {name} started on {} with failures ({detail})",
                    self.local
                ))
            }
            ActivationOutcome::FailingOver { resource } => {
                self.set_group(RunState::OnlineFailure, Some(self.local.clone()));
                Outcome::err(format!(
                    "group {name}: resource {resource} failed; the group is failing over"
                ))
            }
            ActivationOutcome::Halted { resource, action } => {
                self.set_group(RunState::OnlineFailure, Some(self.local.clone()));
                let detail = format!(
                    "resource {resource} could not be activated; final action: {}",
                    crate::model::catalog::describe(action, true)
                );
                self.alerter.raise(Event::GroupStartFailed {
                    group: name.clone(),
                    detail: detail.clone(),
                });
                let mut out = Outcome::err(format!("group {name}: {detail}"));
                if action == FinalAction::StopGroup {
                    let stopped = self.stop(StopFactor::GroupStop, "final action", None).await;
                    if let Err(e) = stopped.result {
                        out.result = Err(format!(
                            "group {name}: {detail}; stopping it failed too: {e}"
                        ));
                    }
                    out.cluster_action = stopped.cluster_action;
                } else if is_cluster_action(action) {
                    out.cluster_action = final_action.or(Some((resource, action)));
                }
                out
            }
        }
    }

    /// Stops every resource that may be active, in reverse dependency order.
    /// An offline group is left as it is (success).
    /// `only`: stop just these resources (a resource restart or stop); the
    /// group stays (partly) online.
    async fn stop(&self, factor: StopFactor, by: &str, only: Option<&[String]>) -> Outcome {
        let name = self.name().to_string();
        let view = self
            .coordinator
            .send(GetGroup(name.clone()))
            .await
            .ok()
            .flatten();
        let Some(view) = view else {
            return Outcome::err(format!("group {name} is unknown"));
        };
        if !view.state.may_be_active() && view.resources.iter().all(|r| !r.state.may_be_active()) {
            // Stopping a stopped group is done, not an error: scripts may
            // stop what they find without asking first.
            return Outcome::ok(format!("group {name} is already offline: nothing to do"));
        }
        let active: Vec<&str> = view
            .resources
            .iter()
            .filter(|r| r.state.may_be_active())
            .filter(|r| only.is_none_or(|set| set.contains(&r.name)))
            .map(|r| r.name.as_str())
            .collect();
        let order: Vec<String> = match plan::deactivation_order(&self.group) {
            Ok(o) => o
                .into_iter()
                .filter(|r| active.contains(&r.as_str()))
                .collect(),
            Err(e) => return Outcome::err(format!("group {name}: no stop plan: {e:?}")),
        };
        let policies = self
            .group
            .resources
            .iter()
            .map(|r| (r.name.clone(), r.deactivation))
            .collect();
        let mut run = DeactivationRun::new(order, policies);
        if only.is_none() {
            self.alerter.raise(Event::GroupStopping {
                group: name.clone(),
                by: by.to_string(),
            });
            self.set_group(RunState::OfflinePending, view.current.clone());
        }
        let event = if factor == StopFactor::GroupFailover {
            StartEvent::Failover
        } else {
            StartEvent::Start
        };
        let ctx = self.script_context(event.as_str(), Some(factor.as_str()));
        let mut queue: std::collections::VecDeque<DeactivationAction> = run.begin().into();
        let mut cluster_action = None;
        while let Some(action) = queue.pop_front() {
            match action {
                DeactivationAction::Stop { resource, attempt } => {
                    if attempt > 1 {
                        self.metrics
                            .resource_retry(&name, &resource, "deactivation");
                        self.alerter.raise(Event::DeactivationRetry {
                            resource: resource.clone(),
                            attempt,
                        });
                    }
                    let ok = self.drive_resource(&resource, Direction::Stop, &ctx).await;
                    queue.extend(run.on_result(ok));
                }
                DeactivationAction::FinalAction { resource, action } => {
                    self.metrics
                        .resource_final_action(&name, &resource, "deactivation");
                    self.alerter.raise(Event::DeactivationFinalAction {
                        group: name.clone(),
                        resource: resource.clone(),
                        action,
                    });
                    if is_cluster_action(action) && cluster_action.is_none() {
                        cluster_action = Some((resource, action));
                    }
                }
                DeactivationAction::Finished(outcome) => {
                    let result = match outcome {
                        DeactivationOutcome::Offline if only.is_some() => {
                            // Part of the group is stopped; the rest runs on.
                            self.set_group(RunState::OnlineFailure, view.current.clone());
                            Ok(format!("group {name}: {} stopped", active.join(", ")))
                        }
                        DeactivationOutcome::Offline => {
                            self.set_group(RunState::Offline, None);
                            self.alerter.raise(Event::GroupStopped {
                                group: name.clone(),
                            });
                            Ok(format!("group {name} is offline"))
                        }
                        DeactivationOutcome::Partial { failed } => {
                            self.set_group(RunState::OfflineFailure, view.current.clone());
                            let detail = format!("could not stop: {}", failed.join(", "));
                            self.alerter.raise(Event::GroupStopFailed {
                                group: name.clone(),
                                detail: detail.clone(),
                            });
                            Err(format!("group {name}: {detail}"))
                        }
                        DeactivationOutcome::Halted { resource } => {
                            self.set_group(RunState::OfflineFailure, view.current.clone());
                            let detail = format!("could not stop {resource}; the resources after it are left running");
                            self.alerter.raise(Event::GroupStopFailed {
                                group: name.clone(),
                                detail: detail.clone(),
                            });
                            Err(format!("group {name}: {detail}"))
                        }
                    };
                    return Outcome {
                        result,
                        cluster_action,
                        failover_to: None,
                    };
                }
            }
        }
        Outcome::err(format!("group {name}: stop ended without an outcome"))
    }

    /// Activates or deactivates one resource, reporting its states and alerts.
    async fn drive_resource(&self, resource: &str, dir: Direction, ctx: &ScriptContext) -> bool {
        let Some(addr) = self.resources.get(resource) else {
            return false;
        };
        let r = resource.to_string();
        let (begin, pending, done, failed) = match dir {
            Direction::Start => (
                Event::ResourceStarting {
                    resource: r.clone(),
                },
                RunState::OnlinePending,
                RunState::Online,
                RunState::OnlineFailure,
            ),
            Direction::Stop => (
                Event::ResourceStopping {
                    resource: r.clone(),
                },
                RunState::OfflinePending,
                RunState::Offline,
                RunState::OfflineFailure,
            ),
        };
        self.alerter.raise(begin);
        self.set_resource(resource, pending, None, None);
        let ctx = &ScriptContext {
            disk: self.clp_disk(resource),
            ..ctx.clone()
        };
        let sent = match dir {
            Direction::Start => addr
                .send(Activate(ctx.clone()))
                .await
                .map(|r| r.map(|a| a.pid)),
            Direction::Stop => addr
                .send(Deactivate(ctx.clone()))
                .await
                .map(|r| r.map(|()| None)),
        };
        match sent.unwrap_or_else(|e| Err(format!("resource actor unavailable: {e}"))) {
            Ok(pid) => {
                self.set_resource(resource, done, pid, None);
                self.alerter.raise(match dir {
                    Direction::Start => Event::ResourceStarted { resource: r },
                    Direction::Stop => Event::ResourceStopped { resource: r },
                });
                true
            }
            Err(error) => {
                self.set_resource(resource, failed, None, Some(error.clone()));
                self.alerter.raise(match dir {
                    Direction::Start => Event::ResourceStartFailed { resource: r, error },
                    Direction::Stop => Event::ResourceStopFailed { resource: r, error },
                });
                false
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Start,
    Stop,
}
