//! `ocf` monitor: an OCF resource agent's `monitor` action. Running
//! (`OCF_SUCCESS`, or promoted) is Normal, degraded is a Warning, anything
//! else (not running, an error code, no answer in time) is an Error naming
//! the code. The agent's output goes to `<log-dir>/monitor-<monitor>.log`.

use std::time::Duration;

pub use understudy_brain::monitor::ocf::OcfMonitorConfig;

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};
use crate::model::config::ClusterConfig;
use crate::resource::ocf::config::{Outcome, DEFAULT_OCF_ROOT};
use crate::resource::ocf::driver::Agent;
use crate::resource::ResourceKind;

impl BuildProbe for OcfMonitorConfig {
    fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        let log = build.log_dir.join(format!("monitor-{}.log", build.monitor));
        let agent = match &self.agent {
            Some(agent) => Agent::new(
                agent,
                &self.params,
                self.ocf_root.as_deref().unwrap_or(DEFAULT_OCF_ROOT),
                &build.monitor,
                log,
            )?,
            None => target_agent(&build.config, build.target.as_deref(), log)?,
        };
        Ok(Box::new(OcfProbe {
            agent,
            timeout: build.timeout,
        }))
    }
}

/// The agent of the ocf resource named `target`, for its own instance.
fn target_agent(
    config: &ClusterConfig,
    target: Option<&str>,
    log: std::path::PathBuf,
) -> Result<Agent, String> {
    let name = target.ok_or("an ocf monitor without agent needs a target (ocf resource)")?;
    let (_, resource) = config
        .resource(name)
        .ok_or_else(|| format!("unknown resource \"{name}\""))?;
    match &resource.kind {
        ResourceKind::Ocf(c) => Agent::for_resource(c, name, log),
        other => Err(format!(
            "resource \"{name}\" is of kind {}, not ocf",
            other.type_name()
        )),
    }
}

pub struct OcfProbe {
    agent: Agent,
    timeout: Duration,
}

impl Probe for OcfProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let agent = self.agent.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            match agent.monitor(timeout).await {
                Ok((Outcome::Running, _)) => Check::Normal,
                Ok((Outcome::Degraded, rc)) => {
                    Check::Warning(format!("ocf:{} monitor: {}", agent.name, rc.describe()))
                }
                Ok((_, rc)) => {
                    Check::Error(format!("ocf:{} monitor: {}", agent.name, rc.describe()))
                }
                Err(e) => Check::Error(e),
            }
        })
    }
}
