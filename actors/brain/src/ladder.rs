//! The failure ladder of group resources, as two pure state machines:
//! [`ActivationRun`] walks a group's activation plan (retry, then failover,
//! then the final action); [`DeactivationRun`] walks the stop plan (retry,
//! then the final action).
//!
//! The caller (the group actor) carries out each action and feeds the result
//! back; the machines never touch a process or a socket.

use std::collections::BTreeMap;

use super::config::{ActivationRecovery, DeactivationRecovery, FinalAction};

/// Walks a plan resource by resource, counting attempts on the current one
/// and remembering the resources passed over after a failure. Both runs
/// below are a walk plus their own recovery policy.
#[derive(Debug, Clone)]
struct Walk {
    order: Vec<String>,
    index: usize,
    attempt: u32,
    passed_over: Vec<String>,
    finished: bool,
}

/// What a failed attempt leads to, before the run-specific steps.
enum AfterFailure {
    /// A retry of `resource` with this attempt number.
    Retry(String, u32),
    /// Retries are used up for `resource`.
    Exhausted(String),
}

impl Walk {
    fn new(order: Vec<String>) -> Self {
        Walk {
            order,
            index: 0,
            attempt: 1,
            passed_over: Vec::new(),
            finished: false,
        }
    }

    fn current(&self) -> Option<&str> {
        (!self.finished).then(|| self.order.get(self.index).map(|s| s.as_str()))?
    }

    fn advance(&mut self) {
        self.index += 1;
        self.attempt = 1;
    }

    /// The current resource failed and the walk goes on with the next one.
    fn pass_over(&mut self) {
        if let Some(r) = self.order.get(self.index) {
            self.passed_over.push(r.clone());
        }
        self.advance();
    }

    /// Applies a result; `None` for a success or a stray result after the
    /// end (the caller then asks [`Walk::next`]), else what the failure means
    /// given `retry` allowed retries.
    fn failed(&mut self, ok: bool, retry: impl Fn(&str) -> u32) -> Option<AfterFailure> {
        let resource = self.current()?.to_string();
        if ok {
            self.advance();
            return None;
        }
        if self.attempt <= retry(&resource) {
            self.attempt += 1;
            return Some(AfterFailure::Retry(resource, self.attempt));
        }
        Some(AfterFailure::Exhausted(resource))
    }

    /// The next resource and its attempt number, or, at the end, the
    /// resources passed over (the walk is then finished).
    fn next(&mut self) -> Result<(String, u32), Vec<String>> {
        match self.order.get(self.index) {
            Some(r) => Ok((r.clone(), self.attempt)),
            None => {
                self.finished = true;
                Err(self.passed_over.clone())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationAction {
    /// Activate `resource`; `attempt` 1 is the first try, higher ones are retries.
    Start { resource: String, attempt: u32 },
    /// Retries are used up and the failover threshold allows a failover: move
    /// the group. If no server can take it, call
    /// [`ActivationRun::failover_impossible`].
    Failover { resource: String },
    /// Retries and failovers are used up: carry out `action`.
    FinalAction {
        resource: String,
        action: FinalAction,
    },
    /// Nothing more to do.
    Finished(ActivationOutcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationOutcome {
    /// Every resource is active.
    Online,
    /// The run went through every resource, but these failed and were passed
    /// over (final action "no operation, next resource").
    Partial { failed: Vec<String> },
    /// The run stopped at `resource`; resources after it were not activated.
    Halted {
        resource: String,
        action: FinalAction,
    },
    /// The group is being moved to another server.
    FailingOver { resource: String },
}

#[derive(Debug, Clone)]
pub struct ActivationRun {
    walk: Walk,
    policies: BTreeMap<String, ActivationRecovery>,
    /// Failovers already caused by each resource (kept by the caller across
    /// runs and servers, so the threshold bounds a ping-pong).
    failovers: BTreeMap<String, u32>,
}

impl ActivationRun {
    pub fn new(
        order: Vec<String>,
        policies: BTreeMap<String, ActivationRecovery>,
        failovers: BTreeMap<String, u32>,
    ) -> Self {
        ActivationRun {
            walk: Walk::new(order),
            policies,
            failovers,
        }
    }

    /// The first action.
    pub fn begin(&mut self) -> Vec<ActivationAction> {
        vec![self.start_next()]
    }

    /// The resource being activated, if any.
    pub fn current(&self) -> Option<&str> {
        self.walk.current()
    }

    /// Feeds the result of the last `Start`.
    pub fn on_result(&mut self, ok: bool) -> Vec<ActivationAction> {
        if self.walk.current().is_none() {
            return vec![];
        }
        let policies = &self.policies;
        match self.walk.failed(ok, |r| policy(policies, r).retry) {
            None => vec![self.start_next()],
            Some(AfterFailure::Retry(resource, attempt)) => {
                vec![ActivationAction::Start { resource, attempt }]
            }
            Some(AfterFailure::Exhausted(resource)) => {
                let policy = policy(&self.policies, &resource);
                let done = self.failovers.get(&resource).copied().unwrap_or(0);
                if done < policy.failover_threshold {
                    self.walk.finished = true;
                    return vec![
                        ActivationAction::Failover {
                            resource: resource.clone(),
                        },
                        ActivationAction::Finished(ActivationOutcome::FailingOver { resource }),
                    ];
                }
                self.final_action(resource, policy.final_action)
            }
        }
    }

    /// The failover asked for could not happen (no server can take the
    /// group): it counts as a failed failover and the ladder goes on to the
    /// final action on this server.
    pub fn failover_impossible(&mut self) -> Vec<ActivationAction> {
        let Some(resource) = self.walk.order.get(self.walk.index).cloned() else {
            return vec![];
        };
        self.walk.finished = false;
        *self.failovers.entry(resource.clone()).or_insert(0) += 1;
        let action = policy(&self.policies, &resource).final_action;
        self.final_action(resource, action)
    }

    fn final_action(&mut self, resource: String, action: FinalAction) -> Vec<ActivationAction> {
        let mut out = vec![ActivationAction::FinalAction {
            resource: resource.clone(),
            action,
        }];
        if action == FinalAction::NoOperationNextResource {
            self.walk.pass_over();
            out.push(self.start_next());
        } else {
            self.walk.finished = true;
            out.push(ActivationAction::Finished(ActivationOutcome::Halted {
                resource,
                action,
            }));
        }
        out
    }

    fn start_next(&mut self) -> ActivationAction {
        match self.walk.next() {
            Ok((resource, attempt)) => ActivationAction::Start { resource, attempt },
            Err(failed) if failed.is_empty() => {
                ActivationAction::Finished(ActivationOutcome::Online)
            }
            Err(failed) => ActivationAction::Finished(ActivationOutcome::Partial { failed }),
        }
    }
}

fn policy<P: Copy + Default>(policies: &BTreeMap<String, P>, resource: &str) -> P {
    policies.get(resource).copied().unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeactivationAction {
    Stop {
        resource: String,
        attempt: u32,
    },
    /// Retries are used up: carry out `action`. For the cluster-level actions
    /// (stop the cluster service, shut down or reboot the OS) the run goes on
    /// stopping the remaining resources first, so the caller carries the
    /// action out once the run has finished.
    FinalAction {
        resource: String,
        action: FinalAction,
    },
    Finished(DeactivationOutcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeactivationOutcome {
    Offline,
    /// Every resource was visited; these could not be stopped.
    Partial {
        failed: Vec<String>,
    },
    /// Stopped at `resource` (final action "no operation"); the resources
    /// after it are still active.
    Halted {
        resource: String,
    },
}

#[derive(Debug, Clone)]
pub struct DeactivationRun {
    walk: Walk,
    policies: BTreeMap<String, DeactivationRecovery>,
}

impl DeactivationRun {
    /// `order`: the resources to stop, already in stop order.
    pub fn new(order: Vec<String>, policies: BTreeMap<String, DeactivationRecovery>) -> Self {
        DeactivationRun {
            walk: Walk::new(order),
            policies,
        }
    }

    pub fn begin(&mut self) -> Vec<DeactivationAction> {
        vec![self.stop_next()]
    }

    pub fn on_result(&mut self, ok: bool) -> Vec<DeactivationAction> {
        if self.walk.current().is_none() {
            return vec![];
        }
        let policies = &self.policies;
        match self.walk.failed(ok, |r| policy(policies, r).retry) {
            None => vec![self.stop_next()],
            Some(AfterFailure::Retry(resource, attempt)) => {
                vec![DeactivationAction::Stop { resource, attempt }]
            }
            Some(AfterFailure::Exhausted(resource)) => {
                let action = policy(&self.policies, &resource).final_action;
                let mut out = vec![DeactivationAction::FinalAction {
                    resource: resource.clone(),
                    action,
                }];
                if action == FinalAction::NoOperation {
                    self.walk.finished = true;
                    out.push(DeactivationAction::Finished(DeactivationOutcome::Halted {
                        resource,
                    }));
                } else {
                    self.walk.pass_over();
                    out.push(self.stop_next());
                }
                out
            }
        }
    }

    fn stop_next(&mut self) -> DeactivationAction {
        match self.walk.next() {
            Ok((resource, attempt)) => DeactivationAction::Stop { resource, attempt },
            Err(failed) if failed.is_empty() => {
                DeactivationAction::Finished(DeactivationOutcome::Offline)
            }
            Err(failed) => DeactivationAction::Finished(DeactivationOutcome::Partial { failed }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ActivationAction as A;
    use super::ActivationOutcome as O;
    use super::DeactivationAction as D;
    use super::*;
    use FinalAction::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn act(
        order: &[&str],
        policies: &[(&str, u32, u32, FinalAction)],
        failovers: &[(&str, u32)],
    ) -> ActivationRun {
        ActivationRun::new(
            names(order),
            policies
                .iter()
                .map(|(n, retry, fo, fa)| {
                    (
                        n.to_string(),
                        ActivationRecovery {
                            retry: *retry,
                            failover_threshold: *fo,
                            final_action: *fa,
                        },
                    )
                })
                .collect(),
            failovers.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        )
    }

    fn start(r: &str, attempt: u32) -> A {
        A::Start {
            resource: r.into(),
            attempt,
        }
    }

    #[test]
    fn all_resources_start_in_order() {
        let mut run = act(&["ip", "app"], &[], &[]);
        assert_eq!(run.begin(), vec![start("ip", 1)]);
        assert_eq!(run.current(), Some("ip"));
        assert_eq!(run.on_result(true), vec![start("app", 1)]);
        assert_eq!(run.on_result(true), vec![A::Finished(O::Online)]);
        assert_eq!(run.current(), None);
        assert_eq!(
            run.on_result(true),
            vec![],
            "a finished run ignores stray results"
        );
    }

    #[test]
    fn an_empty_group_is_online_at_once() {
        let mut run = act(&[], &[], &[]);
        assert_eq!(run.begin(), vec![A::Finished(O::Online)]);
    }

    #[test]
    fn retries_come_first_and_a_success_resets_them() {
        let mut run = act(
            &["a", "b"],
            &[("a", 2, 0, NoOperation), ("b", 1, 0, NoOperation)],
            &[],
        );
        run.begin();
        assert_eq!(run.on_result(false), vec![start("a", 2)]);
        assert_eq!(run.on_result(false), vec![start("a", 3)]);
        assert_eq!(run.on_result(true), vec![start("b", 1)]);
        assert_eq!(run.on_result(false), vec![start("b", 2)]);
        assert_eq!(run.on_result(true), vec![A::Finished(O::Online)]);
    }

    #[test]
    fn failover_after_the_retries_when_below_the_threshold() {
        let mut run = act(&["a"], &[("a", 1, 1, StopGroup)], &[]);
        run.begin();
        assert_eq!(run.on_result(false), vec![start("a", 2)]);
        assert_eq!(
            run.on_result(false),
            vec![
                A::Failover {
                    resource: "a".into()
                },
                A::Finished(O::FailingOver {
                    resource: "a".into()
                })
            ]
        );
    }

    #[test]
    fn no_destination_counts_as_a_failed_failover_then_final_action() {
        let mut run = act(&["a", "b"], &[("a", 0, 1, StopGroup)], &[]);
        run.begin();
        assert_eq!(
            run.on_result(false)[0],
            A::Failover {
                resource: "a".into()
            }
        );
        assert_eq!(
            run.failover_impossible(),
            vec![
                A::FinalAction {
                    resource: "a".into(),
                    action: StopGroup
                },
                A::Finished(O::Halted {
                    resource: "a".into(),
                    action: StopGroup
                })
            ]
        );
    }

    #[test]
    fn threshold_reached_goes_straight_to_the_final_action() {
        // Two failovers already happened for "a" with a threshold of 2.
        let mut run = act(&["a"], &[("a", 0, 2, StopClusterService)], &[("a", 2)]);
        run.begin();
        assert_eq!(
            run.on_result(false),
            vec![
                A::FinalAction {
                    resource: "a".into(),
                    action: StopClusterService
                },
                A::Finished(O::Halted {
                    resource: "a".into(),
                    action: StopClusterService
                })
            ]
        );
    }

    #[test]
    fn threshold_zero_never_fails_over() {
        let mut run = act(&["a"], &[("a", 0, 0, StopClusterServiceAndRebootOs)], &[]);
        run.begin();
        assert_eq!(
            run.on_result(false)[0],
            A::FinalAction {
                resource: "a".into(),
                action: StopClusterServiceAndRebootOs
            }
        );
    }

    #[test]
    fn no_operation_next_resource_goes_on_and_reports_partial() {
        let mut run = act(
            &["a", "b", "c"],
            &[("b", 0, 0, NoOperationNextResource)],
            &[],
        );
        run.begin();
        assert_eq!(run.on_result(true), vec![start("b", 1)]);
        assert_eq!(
            run.on_result(false),
            vec![
                A::FinalAction {
                    resource: "b".into(),
                    action: NoOperationNextResource
                },
                start("c", 1)
            ]
        );
        assert_eq!(
            run.on_result(true),
            vec![A::Finished(O::Partial {
                failed: vec!["b".into()]
            })]
        );
    }

    #[test]
    fn no_operation_next_on_the_last_resource_finishes() {
        let mut run = act(&["a"], &[("a", 0, 0, NoOperationNextResource)], &[]);
        run.begin();
        assert_eq!(
            run.on_result(false),
            vec![
                A::FinalAction {
                    resource: "a".into(),
                    action: NoOperationNextResource
                },
                A::Finished(O::Partial {
                    failed: vec!["a".into()]
                })
            ]
        );
    }

    #[test]
    fn default_policy_is_one_failover_then_no_operation() {
        let mut run = act(&["a", "b"], &[], &[]);
        run.begin();
        assert_eq!(
            run.on_result(false)[0],
            A::Failover {
                resource: "a".into()
            }
        );
        assert_eq!(
            run.failover_impossible(),
            vec![
                A::FinalAction {
                    resource: "a".into(),
                    action: NoOperation
                },
                A::Finished(O::Halted {
                    resource: "a".into(),
                    action: NoOperation
                })
            ]
        );
    }

    #[test]
    fn every_final_action_except_next_resource_halts_activation() {
        for fa in [
            NoOperation,
            StopGroup,
            StopClusterService,
            StopClusterServiceAndShutdownOs,
            StopClusterServiceAndRebootOs,
        ] {
            let mut run = act(&["a", "b"], &[("a", 0, 0, fa)], &[]);
            run.begin();
            let out = run.on_result(false);
            assert_eq!(out.len(), 2, "{fa:?}");
            assert_eq!(
                out[1],
                A::Finished(O::Halted {
                    resource: "a".into(),
                    action: fa
                }),
                "{fa:?}"
            );
        }
    }

    fn deact(order: &[&str], policies: &[(&str, u32, FinalAction)]) -> DeactivationRun {
        DeactivationRun::new(
            names(order),
            policies
                .iter()
                .map(|(n, retry, fa)| {
                    (
                        n.to_string(),
                        DeactivationRecovery {
                            retry: *retry,
                            final_action: *fa,
                        },
                    )
                })
                .collect(),
        )
    }

    fn stop(r: &str, attempt: u32) -> D {
        D::Stop {
            resource: r.into(),
            attempt,
        }
    }

    #[test]
    fn deactivation_walks_the_order() {
        let mut run = deact(&["app", "ip"], &[]);
        assert_eq!(run.begin(), vec![stop("app", 1)]);
        assert_eq!(run.on_result(true), vec![stop("ip", 1)]);
        assert_eq!(
            run.on_result(true),
            vec![D::Finished(DeactivationOutcome::Offline)]
        );
    }

    #[test]
    fn deactivation_retries_then_final_action_and_goes_on() {
        let mut run = deact(
            &["app", "ip"],
            &[("app", 1, StopClusterServiceAndShutdownOs)],
        );
        run.begin();
        assert_eq!(run.on_result(false), vec![stop("app", 2)]);
        assert_eq!(
            run.on_result(false),
            vec![
                D::FinalAction {
                    resource: "app".into(),
                    action: StopClusterServiceAndShutdownOs
                },
                stop("ip", 1)
            ]
        );
        assert_eq!(
            run.on_result(true),
            vec![D::Finished(DeactivationOutcome::Partial {
                failed: vec!["app".into()]
            })]
        );
    }

    #[test]
    fn deactivation_no_operation_halts() {
        let mut run = deact(&["app", "ip"], &[("app", 0, NoOperation)]);
        run.begin();
        assert_eq!(
            run.on_result(false),
            vec![
                D::FinalAction {
                    resource: "app".into(),
                    action: NoOperation
                },
                D::Finished(DeactivationOutcome::Halted {
                    resource: "app".into()
                })
            ]
        );
    }

    #[test]
    fn deactivation_default_is_shutdown_after_no_retry() {
        let mut run = deact(&["app"], &[]);
        run.begin();
        assert_eq!(
            run.on_result(false)[0],
            D::FinalAction {
                resource: "app".into(),
                action: StopClusterServiceAndShutdownOs
            }
        );
    }
}
