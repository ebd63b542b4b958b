//! The recovery ladder of a monitor: what to do each time it turns Error.
//! Pure; the monitor actor asks it for the next step and carries it out.
//!
//! Each error goes one step up: reactivate the recovery target while fewer
//! than `reactivation_threshold` reactivations were done, else fail its group
//! over while fewer than `failover_threshold` failovers were done, else the
//! final action. A failover that finds no destination counts as done and goes
//! straight on to the final action. A target that is not active is not
//! recovered (and nothing is counted).
//!
//! The counters belong to the monitor and are reset only by an operator
//! (`understudy monitor clear`) or a restart of the cluster service; they are
//! not reset when the monitor returns to Normal, so a target that keeps
//! failing climbs the whole ladder.

use serde::{Deserialize, Serialize};

use super::monitoring::{MonitorFinalAction, MonitorRecovery, RecoveryTarget};
use super::state::{ClusterStatus, RunState};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCounters {
    pub reactivations: u32,
    pub failovers: u32,
}

/// The `CLP_ACTION` of the script run before a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptAction {
    Restart,
    Failover,
    FinalAction,
}

impl ScriptAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptAction::Restart => "RESTART",
            ScriptAction::Failover => "FAILOVER",
            ScriptAction::FinalAction => "FINALACTION",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The target is not active: nothing is done (rm 25).
    TargetInactive,
    /// Restart the target; `count` is this reactivation's number.
    Reactivate { count: u32, script: bool },
    /// Fail the target's group over; `count` is this failover's number.
    Failover { count: u32, script: bool },
    FinalAction {
        action: MonitorFinalAction,
        script: bool,
    },
}

impl Step {
    /// The script to run before this step, if the policy asks for one.
    pub fn script_action(&self) -> Option<ScriptAction> {
        match self {
            Step::Reactivate { script: true, .. } => Some(ScriptAction::Restart),
            Step::Failover { script: true, .. } => Some(ScriptAction::Failover),
            Step::FinalAction { script: true, .. } => Some(ScriptAction::FinalAction),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ladder {
    policy: MonitorRecovery,
    target: RecoveryTarget,
    counters: RecoveryCounters,
}

impl Ladder {
    pub fn new(policy: MonitorRecovery, target: RecoveryTarget) -> Self {
        Ladder {
            policy,
            target,
            counters: RecoveryCounters::default(),
        }
    }

    pub fn counters(&self) -> RecoveryCounters {
        self.counters
    }

    pub fn target(&self) -> &RecoveryTarget {
        &self.target
    }

    /// Takes over the counters the monitor had on the server its group came
    /// from: they follow the monitor across a failover.
    pub fn adopt(&mut self, counters: RecoveryCounters) {
        self.counters = counters;
    }

    /// `understudy monitor clear`.
    pub fn clear(&mut self) {
        self.counters = RecoveryCounters::default();
    }

    fn script(&self, action: ScriptAction) -> bool {
        self.policy.script.as_ref().is_some_and(|s| match action {
            ScriptAction::Restart => s.before_reactivation,
            ScriptAction::Failover => s.before_failover,
            ScriptAction::FinalAction => s.before_final_action,
        })
    }

    fn final_action(&self) -> Step {
        Step::FinalAction {
            action: self.policy.final_action,
            script: self.script(ScriptAction::FinalAction),
        }
    }

    /// The step for a new error. `target_active`: whether the recovery
    /// target is active on this server (ignored for the local server).
    pub fn on_error(&mut self, target_active: bool) -> Step {
        if self.target == RecoveryTarget::LocalServer {
            return self.final_action();
        }
        if !target_active {
            return Step::TargetInactive;
        }
        if self.counters.reactivations < self.policy.reactivation_threshold {
            self.counters.reactivations += 1;
            return Step::Reactivate {
                count: self.counters.reactivations,
                script: self.script(ScriptAction::Restart),
            };
        }
        if self.counters.failovers < self.policy.failover_threshold {
            self.counters.failovers += 1;
            return Step::Failover {
                count: self.counters.failovers,
                script: self.script(ScriptAction::Failover),
            };
        }
        self.final_action()
    }

    /// The failover just asked for found no destination: it stays counted,
    /// and the final action follows at once.
    pub fn failover_impossible(&mut self) -> Step {
        self.final_action()
    }

    /// The step for a monitor that turned Error on this server, whose
    /// status is `view`; none while automatic recovery is off (the cluster
    /// suspended for maintenance, or this server's service stopping).
    pub fn on_error_in(&mut self, view: &ClusterStatus, suspended: bool) -> Option<Step> {
        if view.stopping || suspended {
            return None;
        }
        let active = target_active(&self.target, view);
        Some(self.on_error(active))
    }
}

/// Whether a recovery target is active on the server whose status is
/// `view`: a resource Online there, a group that may be active there.
pub fn target_active(target: &RecoveryTarget, view: &ClusterStatus) -> bool {
    match target {
        RecoveryTarget::Resource(r) => view.groups.iter().any(|g| {
            g.resources
                .iter()
                .any(|x| &x.name == r && x.state == RunState::Online)
        }),
        RecoveryTarget::Group(name) => view.groups.iter().any(|g| {
            &g.name == name
                && g.state.may_be_active()
                && g.current.as_deref() == Some(view.server.as_str())
        }),
        RecoveryTarget::LocalServer => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::RecoveryScript;

    fn ladder(reactivation: u32, failover: u32, action: MonitorFinalAction) -> Ladder {
        Ladder::new(
            MonitorRecovery {
                target: None,
                reactivation_threshold: reactivation,
                failover_threshold: failover,
                final_action: action,
                script: None,
            },
            RecoveryTarget::Resource("app".into()),
        )
    }

    #[test]
    fn manual_example_reactivate_then_failover_then_final_action() {
        // Reactivation 1, failover 1, final action stop group.
        let mut l = ladder(1, 1, MonitorFinalAction::StopGroup);
        assert_eq!(
            l.on_error(true),
            Step::Reactivate {
                count: 1,
                script: false
            }
        );
        assert_eq!(
            l.on_error(true),
            Step::Failover {
                count: 1,
                script: false
            }
        );
        // One server: no destination, so the final action follows.
        assert_eq!(
            l.failover_impossible(),
            Step::FinalAction {
                action: MonitorFinalAction::StopGroup,
                script: false
            }
        );
        assert_eq!(
            l.counters(),
            RecoveryCounters {
                reactivations: 1,
                failovers: 1
            }
        );
        // Every later error goes straight to the final action.
        assert!(matches!(l.on_error(true), Step::FinalAction { .. }));
    }

    #[test]
    fn thresholds_of_three_reactivations() {
        let mut l = ladder(3, 0, MonitorFinalAction::NoOperation);
        for n in 1..=3 {
            assert_eq!(
                l.on_error(true),
                Step::Reactivate {
                    count: n,
                    script: false
                }
            );
        }
        assert!(matches!(
            l.on_error(true),
            Step::FinalAction {
                action: MonitorFinalAction::NoOperation,
                ..
            }
        ));
    }

    #[test]
    fn only_the_final_action() {
        let mut l = ladder(0, 0, MonitorFinalAction::StopClusterService);
        assert!(matches!(
            l.on_error(true),
            Step::FinalAction {
                action: MonitorFinalAction::StopClusterService,
                ..
            }
        ));
    }

    #[test]
    fn inactive_target_is_not_recovered_and_not_counted() {
        let mut l = ladder(1, 1, MonitorFinalAction::StopGroup);
        assert_eq!(l.on_error(false), Step::TargetInactive);
        assert_eq!(l.counters(), RecoveryCounters::default());
        assert!(matches!(
            l.on_error(true),
            Step::Reactivate { count: 1, .. }
        ));
    }

    #[test]
    fn local_server_target_runs_the_final_action_even_when_nothing_is_active() {
        let mut l = Ladder::new(
            MonitorRecovery {
                reactivation_threshold: 3,
                final_action: MonitorFinalAction::StopClusterServiceAndRebootOs,
                ..Default::default()
            },
            RecoveryTarget::LocalServer,
        );
        assert!(matches!(
            l.on_error(false),
            Step::FinalAction {
                action: MonitorFinalAction::StopClusterServiceAndRebootOs,
                ..
            }
        ));
    }

    #[test]
    fn clear_starts_the_ladder_again() {
        let mut l = ladder(1, 0, MonitorFinalAction::StopGroup);
        l.on_error(true);
        assert!(matches!(l.on_error(true), Step::FinalAction { .. }));
        l.clear();
        assert!(matches!(
            l.on_error(true),
            Step::Reactivate { count: 1, .. }
        ));
    }

    #[test]
    fn scripts_only_before_the_steps_asked_for() {
        let mut l = Ladder::new(
            MonitorRecovery {
                reactivation_threshold: 1,
                failover_threshold: 1,
                final_action: MonitorFinalAction::StopGroup,
                script: Some(RecoveryScript {
                    path: "pre.sh".into(),
                    timeout: 5,
                    before_reactivation: true,
                    before_failover: false,
                    before_final_action: true,
                }),
                target: None,
            },
            RecoveryTarget::Group("web".into()),
        );
        let s = l.on_error(true);
        assert_eq!(s.script_action(), Some(ScriptAction::Restart));
        let s = l.on_error(true);
        assert_eq!(s.script_action(), None);
        let s = l.failover_impossible();
        assert_eq!(s.script_action(), Some(ScriptAction::FinalAction));
    }

    fn view(stopping: bool, web_on: Option<&str>, app: RunState) -> ClusterStatus {
        use crate::state::{GroupStatus, RejectedTraffic, ResourceStatus};
        ClusterStatus {
            cluster: "c".into(),
            server: "s1".into(),
            pid: 1,
            config_digest: String::new(),
            stopping,
            suspended: false,
            servers: Vec::new(),
            groups: vec![GroupStatus {
                name: "web".into(),
                state: if web_on.is_some() {
                    RunState::Online
                } else {
                    RunState::Offline
                },
                current: web_on.map(String::from),
                servers: vec!["s1".into(), "s2".into()],
                resources: vec![ResourceStatus {
                    name: "app".into(),
                    kind: "exec".into(),
                    state: app,
                    pid: None,
                    last_error: None,
                }],
            }],
            monitors: Vec::new(),
            malformed_requests: 0,
            rejected: RejectedTraffic::default(),
            partition: None,
            restart_pending: Vec::new(),
            traps: Vec::new(),
        }
    }

    #[test]
    fn a_target_is_active_where_this_server_runs_it() {
        let group = RecoveryTarget::Group("web".into());
        let app = RecoveryTarget::Resource("app".into());
        assert!(target_active(
            &group,
            &view(false, Some("s1"), RunState::Online)
        ));
        assert!(!target_active(
            &group,
            &view(false, Some("s2"), RunState::Offline)
        ));
        assert!(!target_active(
            &group,
            &view(false, None, RunState::Offline)
        ));
        assert!(target_active(
            &app,
            &view(false, Some("s1"), RunState::Online)
        ));
        assert!(!target_active(
            &app,
            &view(false, Some("s1"), RunState::OnlineFailure)
        ));
        assert!(target_active(
            &RecoveryTarget::LocalServer,
            &view(false, None, RunState::Offline)
        ));
    }

    #[test]
    fn no_step_while_recovery_is_off() {
        let mut l = ladder(1, 0, MonitorFinalAction::NoOperation);
        let on = view(false, Some("s1"), RunState::Online);
        assert_eq!(l.on_error_in(&on, true), None, "suspended");
        assert_eq!(
            l.on_error_in(&view(true, Some("s1"), RunState::Online), false),
            None
        );
        assert_eq!(l.counters().reactivations, 0);
        assert!(matches!(
            l.on_error_in(&on, false),
            Some(Step::Reactivate { count: 1, .. })
        ));
        let off = view(false, Some("s2"), RunState::Offline);
        assert_eq!(l.on_error_in(&off, false), Some(Step::TargetInactive));
    }
}
