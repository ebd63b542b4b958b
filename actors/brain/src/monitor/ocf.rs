//! `ocf` monitor settings: an OCF resource agent's `monitor` action as a
//! monitor resource. Without `agent` it watches its target, an ocf
//! resource, with that resource's agent, parameters and instance name;
//! with `agent` it runs that agent on its own (instance: the monitor's
//! name). The probe is in the shell (`monitor/ocf.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;
use crate::resource::ocf::validate_agent;

/// `Ocf()` (the target ocf resource's agent) or
/// `Ocf(agent: "heartbeat:Dummy", params: {"state": "/run/d.state"})`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename = "OcfMonitor")]
pub struct OcfMonitorConfig {
    /// `PROVIDER:TYPE`; `None`: the target resource's.
    #[serde(default)]
    pub agent: Option<String>,
    /// Parameters (`OCF_RESKEY_*`) of a monitor's own agent.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `OCF_ROOT` of a monitor's own agent (default `/usr/lib/ocf`).
    #[serde(default)]
    pub ocf_root: Option<String>,
}

impl OcfMonitorConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        match &self.agent {
            Some(agent) => validate_agent(
                path,
                agent,
                &self.params,
                self.ocf_root.as_deref(),
                problems,
            ),
            None => {
                if !self.params.is_empty() || self.ocf_root.is_some() {
                    problems.push(
                        format!("{path}.params"),
                        "params and ocf_root come with agent; without agent the target resource's are used",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::testing::problems_of;

    #[test]
    fn params_need_an_agent() {
        let mut c = OcfMonitorConfig::default();
        assert!(problems_of(|p, q| c.validate(p, q)).is_empty());
        c.params.insert("state".into(), "/run/x".into());
        assert_eq!(
            problems_of(|p, q| c.validate(p, q)),
            ["monitors[w].kind.params: params and ocf_root come with agent; without agent the target resource's are used"]
        );
        c.agent = Some("heartbeat:Dummy".into());
        assert!(problems_of(|p, q| c.validate(p, q)).is_empty());
        c.agent = Some("Dummy".into());
        assert_eq!(problems_of(|p, q| c.validate(p, q)).len(), 1);
    }
}
