//! The peer link: authenticated requests from one server's coordinator to
//! another's (group start / stop / move on a given server, cluster-wide
//! stop, suspend, recovery of an isolated server, an operator's
//! confirm-down of a silent server, configuration push,
//! status and alerts). The framing and authentication live in
//! [`crate::wire::peer`]; this module holds the requests and what the
//! receiving coordinator does with them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::group::{GroupOp, StartEvent, StopFactor};
use super::Coordinator;
use crate::control::protocol::Response;
use crate::model::config::{ClusterConfig, FinalAction};
use crate::model::recovery::RecoveryCounters;
use crate::wire::key::ClusterKey;

/// Requests that answer at once (status, suspend, recover, ...).
pub const QUICK: Duration = Duration::from_secs(5);
/// Requests that run a group operation and answer when it is over: start
/// scripts may take long, so the wait is generous. A peer that dies in the
/// middle closes the connection, which ends the wait at once.
pub const GROUP_OP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum PeerRequest {
    Status,
    Alerts {
        count: usize,
    },
    /// Start a group on the receiving server. `counters`: the recovery
    /// counters of the monitors that follow the group (failover by a
    /// monitor), adopted before the start.
    StartGroup {
        group: String,
        event: StartEvent,
        by: String,
        #[serde(default)]
        counters: Vec<(String, RecoveryCounters)>,
    },
    StopGroup {
        group: String,
        factor: StopFactor,
        by: String,
    },
    /// Move a group that runs on the receiving server to `to` (or to the
    /// next server of its order).
    MoveGroup {
        group: String,
        to: Option<String>,
        by: String,
    },
    /// Stop the cluster service on the receiving server (part of a
    /// cluster-wide stop: its groups are not handed over).
    StopService {
        by: String,
        os_action: Option<FinalAction>,
    },
    Suspend {
        suspend: bool,
        by: String,
    },
    /// Take `server` back after it was isolated.
    Recover {
        server: String,
        by: String,
    },
    /// An operator checked that `server` is off: its groups need not wait
    /// for its lease (`server confirm-down`).
    ConfirmDown {
        server: String,
        by: String,
    },
    /// Write this configuration text to the receiving server's config file.
    PushConfig {
        text: String,
        by: String,
    },
    /// Suspend or resume alert notification on the receiving server.
    AlertNotification {
        suspend: bool,
        by: String,
    },
    /// Asked before a move stops the group where it runs: could the
    /// receiving server start it now? (A server that does not know this
    /// request refuses it, and the move does not happen.)
    CanStart {
        group: String,
    },
}

impl PeerRequest {
    fn timeout(&self) -> Duration {
        match self {
            PeerRequest::StartGroup { .. }
            | PeerRequest::StopGroup { .. }
            | PeerRequest::MoveGroup { .. }
            | PeerRequest::StopService { .. } => GROUP_OP,
            _ => QUICK,
        }
    }
}

/// Sends peer requests: knows every server's interconnect addresses.
#[derive(Clone)]
pub struct PeerClient {
    key: Arc<ClusterKey>,
    local: String,
    addrs: Arc<BTreeMap<String, Vec<SocketAddr>>>,
}

impl PeerClient {
    pub fn new(config: &ClusterConfig, local: &str, key: Arc<ClusterKey>) -> Self {
        let port = config.heartbeat.peer_port;
        let addrs = config
            .servers
            .iter()
            .map(|s| {
                let list = s
                    .interconnects
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect();
                (s.name.clone(), list)
            })
            .collect();
        PeerClient {
            key,
            local: local.to_string(),
            addrs: Arc::new(addrs),
        }
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    /// Sends `req` to `server` (first interconnect first) and returns its
    /// answer; `Err` says why no answer came.
    pub async fn call(&self, server: &str, req: &PeerRequest) -> Result<Response, String> {
        let Some(addrs) = self.addrs.get(server) else {
            return Err(format!("unknown server {server}"));
        };
        crate::wire::peer::call(&self.key, &self.local, addrs, req, req.timeout()).await
    }

    /// Like [`call`](Self::call), folding a transport error into an error
    /// response that names the server.
    pub async fn ask(&self, server: &str, req: &PeerRequest) -> Response {
        match self.call(server, req).await {
            Ok(r) => r,
            Err(e) => Response::Error {
                message: format!("server {server} did not answer: {e}"),
            },
        }
    }
}

/// A request from another server, authenticated by the transport.
#[derive(Message)]
#[rtype(result = "Response")]
pub struct PeerCall {
    pub from: String,
    pub request: PeerRequest,
}

impl Handler<PeerCall> for Coordinator {
    type Result = ResponseActFuture<Self, Response>;

    fn handle(&mut self, msg: PeerCall, ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r: Response| -> Self::Result { Box::pin(actix::fut::ready(r)) };
        let from = msg.from;
        match msg.request {
            PeerRequest::Status => ready(Response::Status {
                status: Box::new(self.status_snapshot()),
            }),
            PeerRequest::Alerts { count } => self.alerts_response(count),
            PeerRequest::CanStart { group } => ready(match self.can_start_here(&group) {
                Ok(()) => Response::Done {
                    message: format!("{} can start group {group}", self.settings.local),
                },
                Err(message) => Response::Error { message },
            }),
            PeerRequest::StartGroup {
                group,
                event,
                by,
                counters,
            } => {
                if let Err(message) = self.check_group(&group) {
                    return ready(Response::Error { message });
                }
                if self.stopping {
                    return ready(Response::Error {
                        message: format!("server {} is stopping", self.settings.local),
                    });
                }
                if !self.cluster.brain.is_quorate() {
                    let message = self.cluster.brain.not_quorate();
                    return ready(Response::Error { message });
                }
                // Already here (a repeated request): nothing to do, and
                // nothing the sender should undo.
                let local = self.settings.local.clone();
                if self
                    .view
                    .groups
                    .iter()
                    .any(|g| g.name == group && g.state == crate::model::state::RunState::Online)
                {
                    return ready(Response::Done {
                        message: format!("group {group} is online on {local}"),
                    });
                }
                // The sender stopped its copy before asking (a move or a
                // failover); its advert saying so may still be on its way.
                self.feed(
                    crate::model::cluster::Input::Accepting {
                        group: group.clone(),
                        from: from.clone(),
                    },
                    ctx,
                );
                self.adopt_counters(&counters);
                let started = self.run_group_as(
                    &group,
                    GroupOp::Start(event),
                    format!("{by} (via {from})"),
                    true,
                );
                // The brain counts the group as starting here until then.
                let name = group.clone();
                let started: ResponseActFuture<Self, Response> =
                    Box::pin(started.map(move |r, act, ctx| {
                        let result = match &r {
                            Response::Done { .. } => Ok(()),
                            Response::Error { message } | Response::Denied { message } => {
                                Err(message.clone())
                            }
                            other => Err(format!("{other:?}")),
                        };
                        act.feed(
                            crate::model::cluster::Input::Done {
                                group: name,
                                result,
                            },
                            ctx,
                        );
                        r
                    }));
                if event != StartEvent::Failover {
                    return started;
                }
                // The destination of a failover reports how it ended.
                let alerter = self.alerter.clone();
                Box::pin(started.map(move |r, _, _| {
                    match &r {
                        Response::Done { .. } => {
                            alerter.raise(crate::model::catalog::Event::FailoverCompleted { group })
                        }
                        Response::Error { message } | Response::Denied { message } => alerter
                            .raise(crate::model::catalog::Event::FailoverFailed {
                                group,
                                error: message.clone(),
                            }),
                        _ => {}
                    }
                    r
                }))
            }
            PeerRequest::StopGroup { group, factor, by } => {
                if let Err(message) = self.check_group(&group) {
                    return ready(Response::Error { message });
                }
                self.run_group_as(
                    &group,
                    GroupOp::Stop(factor),
                    format!("{by} (via {from})"),
                    true,
                )
            }
            PeerRequest::MoveGroup { group, to, by } => {
                if let Err(message) = self.check_group(&group) {
                    return ready(Response::Error { message });
                }
                self.move_here_to(&group, to, format!("{by} (via {from})"), ctx)
            }
            PeerRequest::StopService { by, os_action } => {
                self.stop_service_response(format!("{by} (via {from})"), os_action, false, ctx)
            }
            PeerRequest::Suspend { suspend, by } => {
                ready(self.set_suspended(suspend, &format!("{by} (via {from})"), ctx))
            }
            PeerRequest::Recover { server, by } => {
                ready(self.recover_server(&server, &format!("{by} (via {from})"), ctx))
            }
            PeerRequest::ConfirmDown { server, by } => {
                ready(self.confirm_down_server(&server, &format!("{by} (via {from})"), ctx))
            }
            PeerRequest::AlertNotification { suspend, by } => {
                self.set_notification(suspend, format!("{by} (via {from})"))
            }
            PeerRequest::PushConfig { text, by } => {
                self.write_pushed_config(&text, &format!("{by} (via {from})"))
            }
        }
    }
}
