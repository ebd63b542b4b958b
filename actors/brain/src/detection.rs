//! Error detection of one monitor: turns a stream of check results into
//! monitor states, counting failed checks against the retry count. Pure; the
//! monitor actor feeds it and carries out what it returns.
//!
//! Rules (ExpressCluster's):
//! - a failed check is tolerated `retry` times in a row; the next one turns
//!   the monitor Error and asks for recovery;
//! - with "do not retry at timeout", a timeout turns it Error at once;
//! - with "no recovery at timeout", an Error caused by a timeout recovers
//!   nothing;
//! - while a recovery runs, results do not count; when it is done the
//!   failures start again from zero, so a target that fails again is caught
//!   after `retry + 1` more failed checks and the ladder goes one step on;
//! - after a final action the monitor stays Error without asking again until
//!   it has been Normal (or Offline) in between.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonitorState {
    /// Started, not checked yet.
    Pending,
    Normal,
    Warning,
    Error,
    /// Suspended by an operator.
    Suspended,
    /// Not monitoring: its target is inactive, or it does not run here.
    Offline,
}

impl MonitorState {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorState::Pending => "Pending",
            MonitorState::Normal => "Normal",
            MonitorState::Warning => "Warning",
            MonitorState::Error => "Error",
            MonitorState::Suspended => "Suspended",
            MonitorState::Offline => "Offline",
        }
    }
}

/// The result of one check, as detection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    Normal,
    Warning(String),
    Failed(String),
    /// A failure that needs no confirmation (an error notice received by a
    /// message receive monitor): no retries.
    Definitive(String),
    /// No answer within the timeout.
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectionPolicy {
    pub retry: u32,
    pub no_retry_on_timeout: bool,
    pub no_recovery_on_timeout: bool,
}

/// What the actor should do after a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The state changed (`detail` says why, for the alert).
    StateChanged {
        from: MonitorState,
        to: MonitorState,
        detail: String,
    },
    /// A failed check that is still within the retry count.
    Retrying { failures: u32, detail: String },
    /// Run the next step of the recovery ladder.
    Recover { detail: String },
    /// Error by timeout, recovery not wanted.
    NoRecoveryAtTimeout { detail: String },
}

#[derive(Debug, Clone)]
pub struct Detection {
    policy: DetectionPolicy,
    state: MonitorState,
    failures: u32,
    recovering: bool,
    /// A final action was taken for the current Error; do not ask again.
    settled: bool,
    last_detail: Option<String>,
}

impl Detection {
    pub fn new(policy: DetectionPolicy) -> Self {
        Detection {
            policy,
            state: MonitorState::Offline,
            failures: 0,
            recovering: false,
            settled: false,
            last_detail: None,
        }
    }

    pub fn state(&self) -> MonitorState {
        self.state
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn recovering(&self) -> bool {
        self.recovering
    }

    /// Why the monitor last failed or warned.
    pub fn last_detail(&self) -> Option<&str> {
        self.last_detail.as_deref()
    }

    /// Whether the actor should run checks now.
    pub fn checking(&self) -> bool {
        !self.recovering
            && matches!(
                self.state,
                MonitorState::Pending
                    | MonitorState::Normal
                    | MonitorState::Warning
                    | MonitorState::Error
            )
    }

    fn go(&mut self, to: MonitorState, detail: String, out: &mut Vec<Effect>) {
        if self.state != to {
            out.push(Effect::StateChanged {
                from: self.state,
                to,
                detail,
            });
            self.state = to;
        }
    }

    /// Monitoring begins (cluster start, target became active, resume).
    /// A new watch: the reason of an earlier failure is not this one's
    /// (status would show it beside Pending, as if the new check failed).
    pub fn start(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        self.failures = 0;
        self.settled = false;
        self.recovering = false;
        self.last_detail = None;
        self.go(MonitorState::Pending, String::new(), &mut out);
        out
    }

    /// Monitoring stops because the target is inactive.
    pub fn stop(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.state == MonitorState::Suspended {
            return out;
        }
        self.failures = 0;
        self.settled = false;
        self.go(
            MonitorState::Offline,
            "target is not active".into(),
            &mut out,
        );
        out
    }

    /// An operator suspends the monitor: checks stop, failures are forgotten.
    pub fn suspend(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        self.failures = 0;
        self.go(MonitorState::Suspended, String::new(), &mut out);
        out
    }

    /// An operator resumes a suspended monitor. `target_active`: whether
    /// it may check now (else it goes Offline until the target is active).
    pub fn resume(&mut self, target_active: bool) -> Vec<Effect> {
        if self.state != MonitorState::Suspended {
            return Vec::new();
        }
        if target_active {
            self.start()
        } else {
            let mut out = Vec::new();
            self.go(
                MonitorState::Offline,
                "target is not active".into(),
                &mut out,
            );
            out
        }
    }

    /// One check result.
    pub fn on_result(&mut self, result: CheckResult) -> Vec<Effect> {
        let mut out = Vec::new();
        if !self.checking() {
            return out;
        }
        let (detail, timeout) = match result {
            CheckResult::Normal => {
                self.failures = 0;
                self.settled = false;
                self.last_detail = None;
                self.go(MonitorState::Normal, String::new(), &mut out);
                return out;
            }
            CheckResult::Warning(w) => {
                self.failures = 0;
                self.settled = false;
                self.last_detail = Some(w.clone());
                self.go(MonitorState::Warning, w, &mut out);
                return out;
            }
            CheckResult::Failed(d) => (d, false),
            CheckResult::Definitive(d) => {
                self.failures = self.policy.retry;
                (d, false)
            }
            CheckResult::Timeout => ("no result within the timeout".to_string(), true),
        };
        self.failures += 1;
        self.last_detail = Some(detail.clone());
        let exhausted =
            self.failures > self.policy.retry || (timeout && self.policy.no_retry_on_timeout);
        if !exhausted {
            out.push(Effect::Retrying {
                failures: self.failures,
                detail,
            });
            return out;
        }
        let was_error = self.state == MonitorState::Error;
        self.go(MonitorState::Error, detail.clone(), &mut out);
        if was_error && self.settled {
            return out;
        }
        if timeout && self.policy.no_recovery_on_timeout {
            self.settled = true;
            out.push(Effect::NoRecoveryAtTimeout { detail });
        } else {
            self.recovering = true;
            out.push(Effect::Recover { detail });
        }
        out
    }

    /// The recovery step asked for has finished. `settled`: it was the final
    /// action (or nothing could be done), so the monitor does not ask again
    /// while it stays Error.
    pub fn recovery_done(&mut self, settled: bool) {
        self.recovering = false;
        self.failures = 0;
        self.settled = settled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retry: u32) -> DetectionPolicy {
        DetectionPolicy {
            retry,
            no_retry_on_timeout: false,
            no_recovery_on_timeout: false,
        }
    }

    fn failed() -> CheckResult {
        CheckResult::Failed("connection refused".into())
    }

    fn recovers(effects: &[Effect]) -> bool {
        effects.iter().any(|e| matches!(e, Effect::Recover { .. }))
    }

    #[test]
    fn retries_then_error_then_recovery() {
        let mut d = Detection::new(policy(2));
        d.start();
        assert!(!recovers(&d.on_result(failed())));
        assert!(!recovers(&d.on_result(failed())));
        assert_eq!(d.state(), MonitorState::Pending);
        let e = d.on_result(failed());
        assert!(recovers(&e));
        assert_eq!(d.state(), MonitorState::Error);
        assert!(e.contains(&Effect::StateChanged {
            from: MonitorState::Pending,
            to: MonitorState::Error,
            detail: "connection refused".into()
        }));
        // While recovering, nothing is checked or counted.
        assert!(!d.checking());
        assert!(d.on_result(failed()).is_empty());
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let mut d = Detection::new(policy(1));
        d.start();
        d.on_result(failed());
        d.on_result(CheckResult::Normal);
        assert!(!recovers(&d.on_result(failed())));
        assert!(recovers(&d.on_result(failed())));
    }

    #[test]
    fn after_recovery_the_next_failure_needs_retry_plus_one_checks() {
        let mut d = Detection::new(policy(1));
        d.start();
        d.on_result(failed());
        assert!(recovers(&d.on_result(failed())));
        d.recovery_done(false);
        assert!(d.checking());
        assert!(!recovers(&d.on_result(failed())));
        assert!(recovers(&d.on_result(failed())));
    }

    #[test]
    fn error_to_normal() {
        let mut d = Detection::new(policy(0));
        d.start();
        d.on_result(failed());
        d.recovery_done(false);
        let e = d.on_result(CheckResult::Normal);
        assert_eq!(
            e,
            vec![Effect::StateChanged {
                from: MonitorState::Error,
                to: MonitorState::Normal,
                detail: String::new()
            }]
        );
    }

    #[test]
    fn a_new_watch_forgets_the_last_failure() {
        let mut d = Detection::new(policy(0));
        d.start();
        d.on_result(failed());
        d.recovery_done(true);
        // The target stops (failover): Offline still says why it failed.
        d.stop();
        assert_eq!(d.state(), MonitorState::Offline);
        assert_eq!(d.last_detail(), Some("connection refused"));
        // The group comes back here: Pending, nothing checked yet.
        d.start();
        assert_eq!(d.state(), MonitorState::Pending);
        assert_eq!(d.last_detail(), None);
        // A failure within the retries is shown while Pending.
        let mut d = Detection::new(policy(1));
        d.start();
        d.on_result(failed());
        assert_eq!(d.state(), MonitorState::Pending);
        assert_eq!(d.last_detail(), Some("connection refused"));
    }

    #[test]
    fn settled_error_does_not_ask_again_until_normal() {
        let mut d = Detection::new(policy(0));
        d.start();
        assert!(recovers(&d.on_result(failed())));
        d.recovery_done(true);
        assert!(!recovers(&d.on_result(failed())));
        assert!(!recovers(&d.on_result(failed())));
        d.on_result(CheckResult::Normal);
        assert!(recovers(&d.on_result(failed())));
    }

    #[test]
    fn timeout_with_and_without_retries() {
        let mut d = Detection::new(policy(2));
        d.start();
        assert!(!recovers(&d.on_result(CheckResult::Timeout)));
        let mut d = Detection::new(DetectionPolicy {
            retry: 2,
            no_retry_on_timeout: true,
            no_recovery_on_timeout: false,
        });
        d.start();
        assert!(recovers(&d.on_result(CheckResult::Timeout)));
        // An ordinary failure still gets its retries.
        let mut d = Detection::new(DetectionPolicy {
            retry: 1,
            no_retry_on_timeout: true,
            no_recovery_on_timeout: false,
        });
        d.start();
        assert!(!recovers(&d.on_result(failed())));
    }

    #[test]
    fn a_definitive_failure_skips_the_retries() {
        let mut d = Detection::new(policy(3));
        d.start();
        assert!(recovers(
            &d.on_result(CheckResult::Definitive("notice".into()))
        ));
    }

    #[test]
    fn no_recovery_at_timeout() {
        let mut d = Detection::new(DetectionPolicy {
            retry: 0,
            no_retry_on_timeout: false,
            no_recovery_on_timeout: true,
        });
        d.start();
        let e = d.on_result(CheckResult::Timeout);
        assert_eq!(d.state(), MonitorState::Error);
        assert!(!recovers(&e));
        assert!(e
            .iter()
            .any(|x| matches!(x, Effect::NoRecoveryAtTimeout { .. })));
        // A real failure afterwards does not ask again while still Error...
        assert!(!recovers(&d.on_result(failed())));
        // ...but once Normal, a failure does.
        d.on_result(CheckResult::Normal);
        assert!(recovers(&d.on_result(failed())));
    }

    #[test]
    fn suspend_in_the_middle_of_retries_forgets_them() {
        let mut d = Detection::new(policy(1));
        d.start();
        d.on_result(failed());
        d.suspend();
        assert_eq!(d.state(), MonitorState::Suspended);
        assert!(!d.checking());
        assert!(d.on_result(failed()).is_empty());
        d.resume(true);
        assert_eq!(d.state(), MonitorState::Pending);
        assert!(!recovers(&d.on_result(failed())));
        assert!(recovers(&d.on_result(failed())));
    }

    #[test]
    fn resume_with_inactive_target_goes_offline() {
        let mut d = Detection::new(policy(1));
        d.start();
        d.suspend();
        d.resume(false);
        assert_eq!(d.state(), MonitorState::Offline);
        assert!(!d.checking());
    }

    #[test]
    fn target_stop_keeps_a_suspension() {
        let mut d = Detection::new(policy(1));
        d.start();
        d.suspend();
        assert!(d.stop().is_empty());
        assert_eq!(d.state(), MonitorState::Suspended);
    }

    #[test]
    fn warning_is_not_a_failure() {
        let mut d = Detection::new(policy(0));
        d.start();
        d.on_result(CheckResult::Warning("cpu 91 %".into()));
        assert_eq!(d.state(), MonitorState::Warning);
        assert_eq!(d.failures(), 0);
        let e = d.on_result(CheckResult::Normal);
        assert!(e.contains(&Effect::StateChanged {
            from: MonitorState::Warning,
            to: MonitorState::Normal,
            detail: String::new()
        }));
    }
}
