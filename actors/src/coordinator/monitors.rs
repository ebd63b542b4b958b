//! The coordinator's side of the monitors: it keeps their states for status,
//! tells them when their target resource changes, routes operator commands
//! and messages to them, and runs the recovery ladder when one turns Error.

use std::time::Duration;

use actix::prelude::*;

use super::group::{GroupOp, RunGroup, StartEvent, StopFactor};
use super::Coordinator;
use crate::control::protocol::Response;
use crate::model::catalog::Event;
use crate::model::config::FinalAction;
use crate::model::detection::MonitorState;
use crate::model::monitoring::{MonitorFinalAction, RecoveryTarget};
use crate::model::recovery::{RecoveryCounters, ScriptAction, Step};
use crate::model::state::MonitorStats;
use crate::monitor::actor::{Notice, Resume, Suspend, TargetState};
use crate::monitor::MonitorKind;
use crate::notify::alert_log::Alerter;
use crate::resource::exec::driver::{self as exec_driver, Script};

/// How a recovery target reads in status and alerts.
pub fn describe_target(target: Option<&RecoveryTarget>) -> String {
    match target {
        Some(RecoveryTarget::Resource(r)) => format!("resource {r}"),
        Some(RecoveryTarget::Group(g)) => format!("group {g}"),
        Some(RecoveryTarget::LocalServer) => "local server".into(),
        None => "none".into(),
    }
}

/// State change of a monitor, from its actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MonitorUpdate {
    pub monitor: String,
    pub state: MonitorState,
    pub detail: Option<String>,
}

impl Handler<MonitorUpdate> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: MonitorUpdate, _: &mut Context<Self>) {
        if let Some(m) = self
            .view
            .monitors
            .iter_mut()
            .find(|m| m.name == msg.monitor)
        {
            m.state = msg.state;
            m.last_error = msg.detail;
        }
    }
}

/// A monitor turned Error: run the next step of its recovery ladder. The
/// answer says whether the monitor should settle (not ask again while it
/// stays Error): true after a final action or when nothing could be done.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RecoverMonitor {
    pub monitor: String,
    pub detail: String,
}

/// What a finished step leaves for the coordinator to do.
struct StepDone {
    settled: bool,
    cluster_action: Option<FinalAction>,
}

impl Coordinator {
    /// Tells the monitors whose target is `resource` about its state.
    pub(super) fn tell_monitors(&self, resource: &str, active: bool, pid: Option<u32>) {
        for m in self.monitors.values() {
            if m.config.target.as_deref() == Some(resource) {
                if let Some(addr) = &m.addr {
                    addr.do_send(TargetState { active, pid });
                }
            }
        }
    }

    /// The group a recovery target belongs to.
    pub(super) fn target_group(&self, target: &RecoveryTarget) -> Option<String> {
        match target {
            RecoveryTarget::Resource(r) => self
                .settings
                .config
                .resource(r)
                .map(|(g, _)| g.name.clone()),
            RecoveryTarget::Group(g) => Some(g.clone()),
            RecoveryTarget::LocalServer => None,
        }
    }

    fn sync_counters(&mut self, monitor: &str, counters: RecoveryCounters) {
        if let Some(m) = self.view.monitors.iter_mut().find(|m| m.name == monitor) {
            m.reactivations = counters.reactivations;
            m.failovers = counters.failovers;
        }
    }

    fn monitor_names(&self, names: &[String]) -> Result<Vec<String>, String> {
        if names.is_empty() {
            return Ok(self.monitors.keys().cloned().collect());
        }
        let unknown: Vec<&str> = names
            .iter()
            .filter(|n| !self.monitors.contains_key(*n))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            Ok(names.to_vec())
        } else {
            let known: Vec<&str> = self.monitors.keys().map(String::as_str).collect();
            Err(format!(
                "no monitor named {} (monitors: {})",
                unknown.join(", "),
                known.join(", ")
            ))
        }
    }

    /// `monitor suspend` / `monitor resume`.
    pub(super) fn suspend_resume(&mut self, names: &[String], suspend: bool) -> Response {
        let list = match self.monitor_names(names) {
            Ok(l) => l,
            Err(message) => return Response::Error { message },
        };
        let mut touched = Vec::new();
        for name in &list {
            if let Some(addr) = self.monitors.get(name).and_then(|m| m.addr.as_ref()) {
                if suspend {
                    addr.do_send(Suspend);
                } else {
                    addr.do_send(Resume);
                }
                touched.push(name.as_str());
            }
        }
        if names.is_empty() {
            self.alerter.raise(if suspend {
                Event::AllMonitorsSuspended
            } else {
                Event::AllMonitorsResumed
            });
        }
        let verb = if suspend { "suspended" } else { "resumed" };
        Response::Done {
            message: if touched.is_empty() {
                format!("no monitor {verb}: none of them runs on this server")
            } else {
                format!("{verb}: {}", touched.join(", "))
            },
        }
    }

    /// `monitor clear`.
    pub(super) fn clear_counters(&mut self, name: &str, by: &str) -> Response {
        let Some(entry) = self.monitors.get_mut(name) else {
            return Response::Error {
                message: self
                    .monitor_names(&[name.to_string()])
                    .err()
                    .unwrap_or_default(),
            };
        };
        let counters = match entry.ladder.as_mut() {
            Some(l) => {
                l.clear();
                l.counters()
            }
            None => RecoveryCounters::default(),
        };
        self.sync_counters(name, counters);
        self.alerter.raise(Event::MonitorCountersCleared {
            monitor: name.to_string(),
            by: by.to_string(),
        });
        Response::Done {
            message: format!("monitor {name}: reactivation and failover counters are 0"),
        }
    }

    /// `message send`: hands the notice to every matching message monitor.
    pub(super) fn deliver_message(
        &mut self,
        category: &str,
        keyword: &str,
        clear: bool,
    ) -> Response {
        let mut matched = Vec::new();
        for (name, m) in &self.monitors {
            let MonitorKind::Message(c) = &m.config.kind else {
                continue;
            };
            if !c.matches(category, keyword) {
                continue;
            }
            if let Some(addr) = &m.addr {
                let notice = (!clear).then(|| format!("message {category}/{keyword} received"));
                addr.do_send(Notice(notice));
                matched.push(name.clone());
            }
        }
        self.alerter.raise(Event::MessageReceived {
            category: category.to_string(),
            keyword: keyword.to_string(),
            clear,
            monitors: matched.clone(),
        });
        Response::Done {
            message: if matched.is_empty() {
                "no message monitor on this server matches".into()
            } else {
                format!("delivered to {}", matched.join(", "))
            },
        }
    }

    pub(super) fn monitor_stats(&mut self, reset: bool) -> Response {
        let mut l = self.lateness.borrow_mut();
        let (p50, p99, max) = l.percentiles();
        let (beats, hb) = match self.cluster.beat_lateness.lock() {
            Ok(mut b) => {
                let out = (b.checks, b.percentiles());
                if reset {
                    b.reset();
                }
                out
            }
            Err(_) => (0, (0, 0, 0)),
        };
        let stats = MonitorStats {
            checks: l.checks,
            late_p50_us: p50,
            late_p99_us: p99,
            late_max_us: max,
            beats,
            beat_late_p50_us: hb.0,
            beat_late_p99_us: hb.1,
            beat_late_max_us: hb.2,
        };
        if reset {
            l.reset();
        }
        Response::MonitorStats { stats }
    }
}

impl Handler<RecoverMonitor> for Coordinator {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, msg: RecoverMonitor, _: &mut Context<Self>) -> Self::Result {
        let ready = |b: bool| -> Self::Result { Box::pin(actix::fut::ready(b)) };
        // The step is the ladder's (pure, in the brain crate): none while
        // the cluster is suspended or this server is stopping.
        let suspended = self.stopping || self.cluster.suspended();
        let Some(entry) = self.monitors.get_mut(&msg.monitor) else {
            return ready(true);
        };
        let Some(ladder) = entry.ladder.as_mut() else {
            return ready(true);
        };
        let Some(step) = ladder.on_error_in(&self.view, suspended) else {
            return ready(true);
        };
        let target = ladder.target().clone();
        let fallback = ladder.failover_impossible();
        let counters = ladder.counters();
        let script = entry.config.recovery.script.clone();
        self.sync_counters(&msg.monitor, counters);

        let group_name = self.target_group(&target);
        let destination = match &group_name {
            Some(g) => self.failover_destination(g),
            None => Err("the recovery target has no group".into()),
        };
        let mover = group_name.as_deref().and_then(|g| self.mover(g));
        let travelling = group_name
            .as_deref()
            .map(|g| self.counters_of_group(g))
            .unwrap_or_default();
        let run = StepRun {
            mover,
            travelling,
            monitor: msg.monitor.clone(),
            target_text: describe_target(Some(&target)),
            target: target.clone(),
            group: group_name
                .as_ref()
                .and_then(|g| self.groups.get(g).cloned()),
            group_name,
            alerter: self.alerter.clone(),
            metrics: self.settings.metrics.clone(),
            script: script.map(|s| Script {
                path: self.settings.base_dir.join(&s.path),
                label: "preaction",
                env: vec![
                    ("CLP_MONITORNAME".into(), msg.monitor.clone()),
                    (
                        "CLP_RESTARTCOUNT".into(),
                        counters.reactivations.to_string(),
                    ),
                    ("CLP_FAILOVERCOUNT".into(), counters.failovers.to_string()),
                    (
                        "CLP_VERSION_FULL".into(),
                        env!("CARGO_PKG_VERSION").to_string(),
                    ),
                ],
                timeout: Duration::from_secs(s.timeout as u64),
                log: self
                    .settings
                    .state_dir
                    .join("log")
                    .join(format!("monitor-{}.log", msg.monitor)),
            }),
        };
        Box::pin(
            async move { run.execute(step, fallback, destination).await }
                .into_actor(self)
                .map(|done, act, ctx| {
                    if let Some(action) = done.cluster_action {
                        let reason = format!("final action of a monitor: {}", describe_os(action));
                        let _ = act.stop_cluster(
                            reason,
                            StopFactor::ClusterShutdown,
                            Some(action),
                            true,
                            ctx,
                        );
                    }
                    done.settled
                }),
        )
    }
}

fn describe_os(action: FinalAction) -> &'static str {
    crate::model::catalog::describe(action, true)
}

/// Everything one recovery step needs, detached from the coordinator.
struct StepRun {
    /// Moves the target's group to another server (failover step).
    mover: Option<super::cluster::GroupMover>,
    /// Recovery counters that go with the group.
    travelling: Vec<(String, RecoveryCounters)>,
    monitor: String,
    target: RecoveryTarget,
    target_text: String,
    group: Option<Addr<super::group::GroupActor>>,
    group_name: Option<String>,
    alerter: Alerter,
    metrics: crate::metrics::Metrics,
    script: Option<Script>,
}

impl StepRun {
    async fn execute(
        mut self,
        step: Step,
        fallback: Step,
        destination: Result<String, String>,
    ) -> StepDone {
        let by = format!("monitor {}", self.monitor);
        match step {
            Step::TargetInactive => {
                self.alerter.raise(Event::RecoveryTargetInactive {
                    monitor: self.monitor.clone(),
                    target: self.target_text.clone(),
                });
                StepDone {
                    settled: true,
                    cluster_action: None,
                }
            }
            Step::Reactivate { .. } => {
                self.metrics.reactivation(&self.monitor);
                self.pre_script(step.script_action()).await;
                let op = match &self.target {
                    RecoveryTarget::Resource(r) => GroupOp::RestartResource(r.clone()),
                    _ => GroupOp::Restart,
                };
                match self.group_op(op, &by).await {
                    Ok(_) => self.alerter.raise(Event::RecoveryTargetRestarted {
                        monitor: self.monitor.clone(),
                        target: self.target_text.clone(),
                    }),
                    Err(error) => self.alerter.raise(Event::RecoveryTargetRestartFailed {
                        monitor: self.monitor.clone(),
                        target: self.target_text.clone(),
                        error,
                    }),
                }
                StepDone {
                    settled: false,
                    cluster_action: None,
                }
            }
            Step::Failover { .. } => {
                self.metrics.monitor_failover(&self.monitor);
                self.pre_script(step.script_action()).await;
                let reason = match (destination, self.mover.take()) {
                    (Ok(to), Some(mover)) => {
                        let moved = mover
                            .run(
                                &to,
                                StopFactor::GroupFailover,
                                StartEvent::Failover,
                                &by,
                                std::mem::take(&mut self.travelling),
                            )
                            .await;
                        match moved {
                            Ok(_) => {
                                self.alerter.raise(Event::RecoveryTargetFailedOver {
                                    monitor: self.monitor.clone(),
                                    target: self.target_text.clone(),
                                    to,
                                });
                                // The group left: nothing more to do here.
                                return StepDone {
                                    settled: true,
                                    cluster_action: None,
                                };
                            }
                            Err(e) => e,
                        }
                    }
                    (Ok(_), None) => "the group cannot be moved from here".into(),
                    (Err(reason), _) => reason,
                };
                self.alerter.raise(Event::RecoveryFailoverFailed {
                    monitor: self.monitor.clone(),
                    target: self.target_text.clone(),
                    reason,
                });
                Box::pin(self.execute(fallback.clone(), fallback, Err(String::new()))).await
            }
            Step::FinalAction { action, .. } => {
                self.metrics.monitor_final_action(&self.monitor);
                self.pre_script(step.script_action()).await;
                self.alerter.raise(Event::MonitorFinalActionTaken {
                    monitor: self.monitor.clone(),
                    action,
                });
                let cluster_action = match action {
                    MonitorFinalAction::NoOperation => None,
                    MonitorFinalAction::StopResource | MonitorFinalAction::StopGroup => {
                        let op = match (&self.target, action) {
                            (RecoveryTarget::Resource(r), MonitorFinalAction::StopResource) => {
                                GroupOp::StopResource(r.clone())
                            }
                            _ => GroupOp::Stop(StopFactor::GroupStop),
                        };
                        let what = match &op {
                            GroupOp::StopResource(_) => self.target_text.clone(),
                            _ => format!("group {}", self.group_name.clone().unwrap_or_default()),
                        };
                        match self.group_op(op, &by).await {
                            Ok(_) => self.alerter.raise(Event::RecoveryTargetStopped {
                                monitor: self.monitor.clone(),
                                target: what,
                            }),
                            Err(error) => self.alerter.raise(Event::RecoveryTargetStopFailed {
                                monitor: self.monitor.clone(),
                                target: what,
                                error,
                            }),
                        }
                        None
                    }
                    MonitorFinalAction::StopClusterService => Some(FinalAction::StopClusterService),
                    MonitorFinalAction::StopClusterServiceAndShutdownOs => {
                        Some(FinalAction::StopClusterServiceAndShutdownOs)
                    }
                    MonitorFinalAction::StopClusterServiceAndRebootOs => {
                        Some(FinalAction::StopClusterServiceAndRebootOs)
                    }
                };
                StepDone {
                    settled: true,
                    cluster_action,
                }
            }
        }
    }

    async fn group_op(&self, op: GroupOp, by: &str) -> Result<String, String> {
        let Some(group) = &self.group else {
            return Err("the recovery target has no group".into());
        };
        group
            .send(RunGroup {
                op,
                by: by.to_string(),
                wait: true,
                operator: false,
            })
            .await
            .unwrap_or_else(|e| Err(format!("group actor unavailable: {e}")))
    }

    /// Runs the script before a step, when configured. Its failure is
    /// reported; the step runs anyway.
    async fn pre_script(&self, action: Option<ScriptAction>) {
        let (Some(action), Some(script)) = (action, &self.script) else {
            return;
        };
        let mut script = script.clone();
        script
            .env
            .push(("CLP_ACTION".into(), action.as_str().to_string()));
        let what = match action {
            ScriptAction::Restart => "reactivation",
            ScriptAction::Failover => "failover",
            ScriptAction::FinalAction => "the final action",
        }
        .to_string();
        match exec_driver::run_sync(&script).await {
            Ok(()) => self.alerter.raise(Event::RecoveryScriptDone {
                monitor: self.monitor.clone(),
                action: what,
            }),
            Err(error) => self.alerter.raise(Event::RecoveryScriptFailed {
                monitor: self.monitor.clone(),
                action: what,
                error,
            }),
        }
    }
}
