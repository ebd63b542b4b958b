//! `ocf` resource settings: an OCF resource agent (the agents of
//! Pacemaker's `resource-agents`, such as `heartbeat:IPaddr2`) started,
//! stopped and monitored the way the OCF standard says. The driver, which
//! runs the agent, is in the shell (`resource/ocf/driver.rs`); the monitor
//! kind that runs its `monitor` action is `monitor/ocf.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Where agents are installed when `ocf_root` is not given (Debian's
/// `resource-agents`, and the OCF standard's default).
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// Default of the start, stop and monitor timeouts, seconds (the agents'
/// own advice for most actions).
pub const DEFAULT_TIMEOUT_SECS: u32 = 20;
/// Longest parameter value, bytes (it goes into the agent's environment).
pub const MAX_VALUE_BYTES: usize = 4096;

/// `Ocf(agent: "heartbeat:IPaddr2", params: {"ip": "198.51.100.10"})`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Ocf")]
pub struct OcfConfig {
    /// `PROVIDER:TYPE` of an agent under `OCF_ROOT/resource.d/` (the class
    /// is always ocf; `ocf:heartbeat:Dummy` is accepted too).
    pub agent: String,
    /// The agent's parameters, passed as `OCF_RESKEY_<name>`; `config
    /// check` compares them with the agent's meta-data.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Seconds the start action may take (1-3600).
    #[serde(default = "default_timeout")]
    pub start_timeout: u32,
    /// Seconds the stop action may take (1-3600).
    #[serde(default = "default_timeout")]
    pub stop_timeout: u32,
    /// Where the agents are (`OCF_ROOT`); default `/usr/lib/ocf`.
    #[serde(default)]
    pub ocf_root: Option<String>,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_SECS
}

/// An agent's provider and type, from `PROVIDER:TYPE` or
/// `ocf:PROVIDER:TYPE`; `None` unless both are plain names (no path can be
/// smuggled through them).
pub fn split_agent(agent: &str) -> Option<(&str, &str)> {
    let rest = agent.strip_prefix("ocf:").unwrap_or(agent);
    let (provider, kind) = rest.split_once(':')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    };
    (plain(provider) && plain(kind)).then_some((provider, kind))
}

/// Checks an agent name, its parameters and its root (shared by the
/// resource and the monitor kinds).
pub fn validate_agent(
    path: &str,
    agent: &str,
    params: &BTreeMap<String, String>,
    ocf_root: Option<&str>,
    problems: &mut Problems,
) {
    if split_agent(agent).is_none() {
        problems.push(
            format!("{path}.agent"),
            format!("\"{agent}\" is not PROVIDER:TYPE (for example \"heartbeat:IPaddr2\")"),
        );
    }
    for (name, value) in params {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            problems.push(
                format!("{path}.params[{name}]"),
                "a parameter name is letters, digits and _ only",
            );
        }
        if value.len() > MAX_VALUE_BYTES || value.contains('\0') {
            problems.push(
                format!("{path}.params[{name}]"),
                format!("a value is at most {MAX_VALUE_BYTES} bytes, with no NUL"),
            );
        }
    }
    if let Some(root) = ocf_root {
        if !root.starts_with('/') {
            problems.push(format!("{path}.ocf_root"), "must be an absolute path");
        }
    }
}

impl OcfConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        validate_agent(
            path,
            &self.agent,
            &self.params,
            self.ocf_root.as_deref(),
            problems,
        );
        problems.range(
            &format!("{path}.start_timeout"),
            self.start_timeout,
            1,
            3600,
        );
        problems.range(&format!("{path}.stop_timeout"), self.stop_timeout, 1, 3600);
    }

    pub fn root(&self) -> &str {
        self.ocf_root.as_deref().unwrap_or(DEFAULT_OCF_ROOT)
    }
}

/// The OCF return codes an agent answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcfRc {
    Success,
    ErrGeneric,
    ErrArgs,
    ErrUnimplemented,
    ErrPerm,
    ErrInstalled,
    ErrConfigured,
    NotRunning,
    RunningPromoted,
    FailedPromoted,
    Degraded,
    DegradedPromoted,
    Other(i32),
}

impl OcfRc {
    pub fn from_code(code: i32) -> OcfRc {
        match code {
            0 => OcfRc::Success,
            1 => OcfRc::ErrGeneric,
            2 => OcfRc::ErrArgs,
            3 => OcfRc::ErrUnimplemented,
            4 => OcfRc::ErrPerm,
            5 => OcfRc::ErrInstalled,
            6 => OcfRc::ErrConfigured,
            7 => OcfRc::NotRunning,
            8 => OcfRc::RunningPromoted,
            9 => OcfRc::FailedPromoted,
            190 => OcfRc::Degraded,
            191 => OcfRc::DegradedPromoted,
            c => OcfRc::Other(c),
        }
    }

    /// The standard's name, for messages (`OCF_NOT_RUNNING (7)`).
    pub fn describe(self) -> String {
        let (name, code) = match self {
            OcfRc::Success => ("OCF_SUCCESS", 0),
            OcfRc::ErrGeneric => ("OCF_ERR_GENERIC", 1),
            OcfRc::ErrArgs => ("OCF_ERR_ARGS", 2),
            OcfRc::ErrUnimplemented => ("OCF_ERR_UNIMPLEMENTED", 3),
            OcfRc::ErrPerm => ("OCF_ERR_PERM", 4),
            OcfRc::ErrInstalled => ("OCF_ERR_INSTALLED", 5),
            OcfRc::ErrConfigured => ("OCF_ERR_CONFIGURED", 6),
            OcfRc::NotRunning => ("OCF_NOT_RUNNING", 7),
            OcfRc::RunningPromoted => ("OCF_RUNNING_PROMOTED", 8),
            OcfRc::FailedPromoted => ("OCF_FAILED_PROMOTED", 9),
            OcfRc::Degraded => ("OCF_DEGRADED", 190),
            OcfRc::DegradedPromoted => ("OCF_DEGRADED_PROMOTED", 191),
            OcfRc::Other(c) => return format!("exit status {c}"),
        };
        format!("{name} ({code})")
    }
}

/// What an action's return code means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action did what was asked (start: running; stop: stopped).
    Done,
    /// monitor: running (promoted counts: it runs).
    Running,
    /// monitor: running but degraded (a warning, not a failure).
    Degraded,
    /// monitor: cleanly not running.
    NotRunning,
    /// The action failed.
    Failed,
}

/// start: only success is running. stop: success, and "not running" (the
/// standard asks a stop of a stopped resource to succeed, and some agents
/// say 7). monitor: see [`Outcome`].
pub fn outcome(action: &str, rc: OcfRc) -> Outcome {
    match (action, rc) {
        ("start", OcfRc::Success) => Outcome::Done,
        ("stop", OcfRc::Success | OcfRc::NotRunning) => Outcome::Done,
        ("monitor", OcfRc::Success | OcfRc::RunningPromoted) => Outcome::Running,
        ("monitor", OcfRc::Degraded | OcfRc::DegradedPromoted) => Outcome::Degraded,
        ("monitor", OcfRc::NotRunning) => Outcome::NotRunning,
        _ => Outcome::Failed,
    }
}

/// One parameter of an agent's meta-data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaParameter {
    pub name: String,
    pub required: bool,
}

/// The parameters given against those the agent declares: unknown ones and
/// missing required ones, at `path.params[...]`.
pub fn check_params(
    path: &str,
    agent: &str,
    params: &BTreeMap<String, String>,
    declared: &[MetaParameter],
    problems: &mut Problems,
) {
    for name in params.keys() {
        if !declared.iter().any(|d| &d.name == name) {
            let known: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            problems.push(
                format!("{path}.params[{name}]"),
                format!(
                    "{agent} has no parameter \"{name}\" (its parameters: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }
    for d in declared.iter().filter(|d| d.required) {
        if !params.contains_key(&d.name) {
            problems.push(
                format!("{path}.params"),
                format!("{agent} requires the parameter \"{}\"", d.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(f: impl FnOnce(&mut Problems)) -> Vec<String> {
        let mut p = Problems::default();
        f(&mut p);
        p.into_vec().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn agent_names_are_provider_and_type_only() {
        assert_eq!(
            split_agent("heartbeat:IPaddr2"),
            Some(("heartbeat", "IPaddr2"))
        );
        assert_eq!(
            split_agent("ocf:heartbeat:Dummy"),
            Some(("heartbeat", "Dummy"))
        );
        for bad in [
            "Dummy",
            "heartbeat:",
            ":Dummy",
            "heartbeat:../../bin/sh",
            "..:x",
            "a/b:c",
        ] {
            assert_eq!(split_agent(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut params = BTreeMap::new();
        params.insert("bad name".to_string(), "x".to_string());
        let c = OcfConfig {
            agent: "IPaddr2".into(),
            params,
            start_timeout: 0,
            stop_timeout: 20,
            ocf_root: Some("lib/ocf".into()),
        };
        let p = problems(|p| c.validate("groups[g].resources[r].kind", p));
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(
            p[0].starts_with("groups[g].resources[r].kind.agent: \"IPaddr2\" is not PROVIDER:TYPE")
        );
        assert!(p[1].starts_with("groups[g].resources[r].kind.params[bad name]: "));
        assert!(p[2].starts_with("groups[g].resources[r].kind.ocf_root: "));
        assert!(p[3].starts_with("groups[g].resources[r].kind.start_timeout: 0 is out of range"));
    }

    #[test]
    fn return_codes_mean_what_the_standard_says() {
        let o = |a, c| outcome(a, OcfRc::from_code(c));
        assert_eq!(o("start", 0), Outcome::Done);
        assert_eq!(o("start", 7), Outcome::Failed);
        assert_eq!(o("stop", 0), Outcome::Done);
        assert_eq!(o("stop", 7), Outcome::Done);
        assert_eq!(o("stop", 1), Outcome::Failed);
        assert_eq!(o("monitor", 0), Outcome::Running);
        assert_eq!(o("monitor", 8), Outcome::Running);
        assert_eq!(o("monitor", 190), Outcome::Degraded);
        assert_eq!(o("monitor", 7), Outcome::NotRunning);
        assert_eq!(o("monitor", 9), Outcome::Failed);
        assert_eq!(o("monitor", 5), Outcome::Failed);
        assert_eq!(OcfRc::from_code(6).describe(), "OCF_ERR_CONFIGURED (6)");
        assert_eq!(OcfRc::from_code(42).describe(), "exit status 42");
    }

    #[test]
    fn params_are_checked_against_the_meta_data() {
        let declared = vec![
            MetaParameter {
                name: "ip".into(),
                required: true,
            },
            MetaParameter {
                name: "cidr_netmask".into(),
                required: false,
            },
        ];
        let mut params = BTreeMap::new();
        params.insert("netmask".to_string(), "24".to_string());
        let p = problems(|p| check_params("r.kind", "heartbeat:IPaddr2", &params, &declared, p));
        assert_eq!(
            p,
            [
                "r.kind.params[netmask]: heartbeat:IPaddr2 has no parameter \"netmask\" (its parameters: ip, cidr_netmask)",
                "r.kind.params: heartbeat:IPaddr2 requires the parameter \"ip\"",
            ]
        );
    }
}
