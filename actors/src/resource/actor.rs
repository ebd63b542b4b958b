//! The resource actor: one per group resource. It carries out activation and
//! deactivation for its kind and reports an asynchronous start script's exit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;

use super::disk::driver as disk_driver;
use super::exec::driver::{self as exec_driver, AsyncChild, Script};
use super::exec::{ExecConfig, StartMode};
use super::fip::driver as fip_driver;
use super::ocf::driver::Agent as OcfAgent;
use super::ResourceKind;
use crate::model::config::ResourceConfig;

/// Why a script runs, as the seed templates read it from the environment.
#[derive(Debug, Clone)]
pub struct ScriptContext {
    /// `CLP_EVENT`: START or FAILOVER.
    pub event: &'static str,
    /// `CLP_FACTOR` (stop only): GROUPSTOP, GROUPMOVE, GROUPFAILOVER,
    /// RESOURCERESTART, CLUSTERSHUTDOWN, SERVERSHUTDOWN.
    pub factor: Option<&'static str>,
    /// `CLP_PRIORITY`: 1-based place of this server in the group's order.
    pub priority: usize,
    /// `CLP_DISK`: SUCCESS, or FAILURE when a disk resource this resource
    /// depends on is not active (see `understudy_brain::resource::disk::clp_disk`).
    pub disk: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    /// Pid of an asynchronous start script.
    pub pid: Option<u32>,
}

#[derive(Message)]
#[rtype(result = "Result<Activated, String>")]
pub struct Activate(pub ScriptContext);

#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Deactivate(pub ScriptContext);

/// Sent to whoever keeps the cluster view when an asynchronous start script
/// exits on its own.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct ProcessExited {
    pub group: String,
    pub resource: String,
    pub pid: u32,
    pub status: String,
}

pub struct ResourceActor {
    group: String,
    config: ResourceConfig,
    /// Folder of the configuration file: relative script paths start there.
    base_dir: PathBuf,
    log_dir: PathBuf,
    exits: Recipient<ProcessExited>,
    async_child: Option<AsyncChild>,
}

impl ResourceActor {
    pub fn new(
        group: &str,
        config: ResourceConfig,
        base_dir: &Path,
        log_dir: &Path,
        exits: Recipient<ProcessExited>,
    ) -> Self {
        ResourceActor {
            group: group.to_string(),
            config,
            base_dir: base_dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            exits,
            async_child: None,
        }
    }

    fn script(
        &self,
        exec: &ExecConfig,
        path: &str,
        label: &'static str,
        ctx: &ScriptContext,
    ) -> Script {
        let timeout = if label == "start" {
            exec.start_timeout
        } else {
            exec.stop_timeout
        };
        let mut env = vec![
            ("CLP_EVENT", ctx.event.to_string()),
            (
                "CLP_SERVER",
                if ctx.priority == 1 { "HOME" } else { "OTHER" }.to_string(),
            ),
            ("CLP_DISK", ctx.disk.to_string()),
            ("CLP_GROUPNAME", self.group.clone()),
            ("CLP_RESOURCENAME", self.config.name.clone()),
            ("CLP_PRIORITY", ctx.priority.to_string()),
            ("CLP_VERSION_FULL", env!("CARGO_PKG_VERSION").to_string()),
        ];
        if let Some(f) = ctx.factor {
            env.push(("CLP_FACTOR", f.to_string()));
        }
        if let Some(child) = &self.async_child {
            env.push(("CLP_PID", child.pid.to_string()));
        }
        Script {
            path: self.base_dir.join(path),
            label,
            env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            timeout: Duration::from_secs(timeout as u64),
            log: exec
                .log
                .as_ref()
                .map(|l| self.base_dir.join(l))
                .unwrap_or_else(|| self.log_dir.join(format!("{}.log", self.config.name))),
        }
    }

    /// Reports the exit of the current asynchronous child, unless it was
    /// replaced or stopped on purpose first.
    fn watch_child(&self, child: &AsyncChild, ctx: &mut Context<Self>) {
        let mut rx = child.exited.clone();
        let pid = child.pid;
        let fut = async move {
            let _ = rx.wait_for(|e| e.is_some()).await;
            rx.borrow().clone().unwrap_or_default()
        };
        ctx.spawn(fut.into_actor(self).map(move |status, act, _| {
            if act.async_child.as_ref().map(|c| c.pid) == Some(pid) {
                act.async_child = None;
                act.exits.do_send(ProcessExited {
                    group: act.group.clone(),
                    resource: act.config.name.clone(),
                    pid,
                    status,
                });
            }
        }));
    }
}

impl ResourceActor {
    /// The OCF agent of this resource, its output in the resource's log.
    fn ocf_agent(&self, c: &super::ocf::OcfConfig) -> Result<OcfAgent, String> {
        let log = self.log_dir.join(format!("{}.log", self.config.name));
        OcfAgent::for_resource(c, &self.config.name, log)
    }
}

impl Actor for ResourceActor {
    type Context = Context<Self>;
}

impl Handler<Activate> for ResourceActor {
    type Result = ResponseActFuture<Self, Result<Activated, String>>;

    fn handle(&mut self, msg: Activate, _: &mut Context<Self>) -> Self::Result {
        match self.config.kind.clone() {
            ResourceKind::Exec(exec) => {
                let script = self.script(&exec, &exec.start, "start", &msg.0);
                match exec.start_mode {
                    StartMode::Sync => Box::pin(
                        async move { exec_driver::run_sync(&script).await }
                            .into_actor(self)
                            .map(|r, _, _| r.map(|_| Activated { pid: None })),
                    ),
                    StartMode::Async => Box::pin(
                        async move { exec_driver::spawn_async(&script).await }
                            .into_actor(self)
                            .map(|r, act, ctx| {
                                let child = r?;
                                let pid = child.pid;
                                act.watch_child(&child, ctx);
                                act.async_child = Some(child);
                                Ok(Activated { pid: Some(pid) })
                            }),
                    ),
                }
            }
            ResourceKind::Fip(fip) => Box::pin(
                async move { fip_driver::activate(&fip).await }
                    .into_actor(self)
                    .map(|r, _, _| r.map(|_| Activated { pid: None })),
            ),
            ResourceKind::Disk(disk) => {
                let log = disk_driver::log_file(&self.log_dir, &self.config.name);
                Box::pin(
                    async move { disk_driver::activate(&disk, &log).await }
                        .into_actor(self)
                        .map(|r, _, _| r.map(|()| Activated { pid: None })),
                )
            }
            ResourceKind::Ocf(ocf) => {
                let agent = self.ocf_agent(&ocf);
                let timeout = Duration::from_secs(ocf.start_timeout.into());
                let stop_timeout = Duration::from_secs(ocf.stop_timeout.into());
                Box::pin(
                    async move { agent?.start(timeout, stop_timeout).await }
                        .into_actor(self)
                        .map(|r, _, _| r.map(|()| Activated { pid: None })),
                )
            }
        }
    }
}

impl Handler<Deactivate> for ResourceActor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, msg: Deactivate, _: &mut Context<Self>) -> Self::Result {
        match self.config.kind.clone() {
            ResourceKind::Exec(exec) => {
                let stop = exec
                    .stop
                    .as_ref()
                    .map(|p| self.script(&exec, p, "stop", &msg.0));
                // Taken now, so its exit is not reported as a failure.
                let mut child = self.async_child.take();
                let grace = Duration::from_secs(exec.stop_timeout.min(10) as u64);
                Box::pin(
                    async move {
                        let result = match &stop {
                            Some(s) => exec_driver::run_sync(s).await,
                            None => Ok(()),
                        };
                        // Whatever the stop script did, nothing of the
                        // asynchronous start script may outlive the resource.
                        if let Some(c) = child.as_mut() {
                            exec_driver::terminate(c, grace).await;
                        }
                        result
                    }
                    .into_actor(self),
                )
            }
            ResourceKind::Fip(fip) => Box::pin(
                async move { fip_driver::deactivate(&fip).await.map(|_| ()) }.into_actor(self),
            ),
            ResourceKind::Disk(disk) => {
                let log = disk_driver::log_file(&self.log_dir, &self.config.name);
                Box::pin(async move { disk_driver::deactivate(&disk, &log).await }.into_actor(self))
            }
            ResourceKind::Ocf(ocf) => {
                let agent = self.ocf_agent(&ocf);
                let timeout = Duration::from_secs(ocf.stop_timeout.into());
                Box::pin(async move { agent?.stop(timeout).await }.into_actor(self))
            }
        }
    }
}
