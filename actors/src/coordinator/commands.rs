//! Operator commands that span servers: whichever server is asked, it
//! finds where a group runs and forwards the work there over the peer link,
//! or fans a cluster-wide command out to every server. Also the start of
//! the cluster side (heartbeat actors, peer-link listeners, the membership
//! tick).

use std::net::{IpAddr, SocketAddr};

use actix::prelude::*;
use futures_util::future::join_all;

use super::group::{GroupOp, StartEvent, StopFactor};
use super::peer::{PeerCall, PeerClient, PeerRequest};
use super::Coordinator;
use crate::control::protocol::Response;
use crate::heartbeat::lan::{LanHeartbeat, LanSettings};
use crate::model::catalog::Event;
use crate::model::config::FinalAction;
use crate::model::state::ServerState;

type Reply = ResponseActFuture<Coordinator, Response>;

fn ready(r: Response) -> Reply {
    Box::pin(actix::fut::ready(r))
}

/// Joins the answers of several servers into one response: an error if any
/// server failed, naming each.
fn summarise(parts: Vec<(String, Response)>) -> Response {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (server, r) in parts {
        match r {
            Response::Done { message } => ok.push(message),
            Response::Error { message } | Response::Denied { message } => {
                failed.push(format!("{server}: {message}"))
            }
            other => ok.push(format!("{server}: {other:?}")),
        }
    }
    if failed.is_empty() {
        Response::Done {
            message: ok.join("\n"),
        }
    } else {
        let mut lines = failed;
        lines.extend(ok);
        Response::Error {
            message: lines.join("\n"),
        }
    }
}

impl Coordinator {
    /// Starts heartbeats, the peer link and the membership tick; starts the
    /// Auto groups at once when the cluster is already formed (one server,
    /// or no startup wait).
    pub(crate) fn start_cluster_side(&mut self, ctx: &mut Context<Self>) {
        let config = self.settings.config.clone();
        let local = self.settings.local.clone();
        self.start_witness(ctx);
        self.start_targets(ctx);
        self.start_bmc_pollers(ctx);
        if let Some(key) = self.settings.key.clone() {
            if config.servers.len() > 1 {
                self.cluster.peers = Some(PeerClient::new(&config, &local, key.clone()));
                let me = ctx.address();
                let own = config.server(&local).map(|s| s.interconnects.clone());
                for (path, addr) in own.unwrap_or_default().iter().enumerate() {
                    let Ok(local_addr) = addr.parse::<IpAddr>() else {
                        continue;
                    };
                    let peers = config
                        .servers
                        .iter()
                        .filter(|s| s.name != local)
                        .filter_map(|s| {
                            let ip = s.interconnects.get(path)?.parse::<IpAddr>().ok()?;
                            Some((s.name.clone(), ip))
                        })
                        .collect();
                    let hb = match LanHeartbeat::new(
                        LanSettings {
                            path,
                            local_addr,
                            port: config.heartbeat.port,
                            peers,
                            interval: std::time::Duration::from_millis(
                                config.heartbeat.interval_ms as u64,
                            ),
                            key: key.clone(),
                            local: local.clone(),
                            incarnation: self.settings.incarnation,
                            config_digest: self.view.config_digest.clone(),
                            lateness: self.cluster.beat_lateness.clone(),
                            metrics: self.settings.metrics.clone(),
                        },
                        me.clone().recipient(),
                    ) {
                        // Heartbeats run on a thread of their own: blocking
                        // work on the actors' thread (a slow disk, a long
                        // handler) must not silence this server.
                        Ok(hb) => {
                            let realtime = config.heartbeat.realtime;
                            let arbiter = self
                                .cluster
                                .heartbeat_thread
                                .get_or_insert_with(|| {
                                    let a = actix::Arbiter::new();
                                    if realtime {
                                        a.spawn_fn(crate::heartbeat::go_realtime);
                                    }
                                    a
                                })
                                .handle();
                            LanHeartbeat::start_in_arbiter(&arbiter, move |_| hb)
                        }
                        Err(e) => {
                            // Without its heartbeats this server would look
                            // dead to the others: do not run half-deaf.
                            eprintln!("understudy: {e}");
                            tracing::error!("{e}");
                            System::current().stop_with_code(1);
                            return;
                        }
                    };
                    self.cluster.heartbeats.push(hb);
                }
                let names: Vec<String> = config
                    .server_names()
                    .into_iter()
                    .filter(|s| *s != local)
                    .collect();
                // The other servers' interconnect addresses: connections
                // from them keep slots of their own on the peer link.
                let peer_addrs: Vec<std::net::IpAddr> = config
                    .servers
                    .iter()
                    .filter(|s| s.name != local)
                    .flat_map(|s| s.interconnects.iter())
                    .filter_map(|a| a.parse().ok())
                    .collect();
                for listener in std::mem::take(&mut self.settings.peer_listeners) {
                    let listener = match listener
                        .set_nonblocking(true)
                        .and_then(|_| tokio::net::TcpListener::from_std(listener))
                    {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("peer link listener: {e}");
                            continue;
                        }
                    };
                    let handler_addr = me.clone();
                    let reject_addr = me.clone();
                    crate::wire::peer::serve(
                        listener,
                        key.clone(),
                        names.clone(),
                        peer_addrs.clone(),
                        move |from: String, request: PeerRequest| {
                            let addr = handler_addr.clone();
                            async move {
                                addr.send(PeerCall { from, request })
                                    .await
                                    .unwrap_or_else(|e| Response::Error {
                                        message: format!("coordinator unavailable: {e}"),
                                    })
                            }
                        },
                        Box::new(move |reason, detail| {
                            reject_addr.do_send(PeerRejected { reason, detail });
                        }),
                    );
                }
            }
        }
        ctx.run_interval(super::cluster::housekeeping_every(&config), |act, _| {
            act.housekeeping()
        });
        self.refresh_servers();
        // The first tick; each input arms the next one (`arm_tick`).
        self.on_tick(ctx);
        self.housekeeping();
        // Auto groups start when the membership machine says the cluster
        // has formed (at its first tick for one server or no startup wait).
        if config.servers.len() > 1 && !self.cluster.membership().formed() {
            self.alerter.raise(Event::WaitingForServers {
                seconds: config.heartbeat.startup_wait_secs,
            });
        }
    }

    /// Other servers that may answer (heard and not declared down).
    fn reachable_peers(&self) -> Vec<String> {
        self.settings
            .config
            .server_names()
            .into_iter()
            .filter(|s| *s != self.settings.local)
            .filter(|s| {
                matches!(
                    self.cluster.membership().state(s),
                    ServerState::Online | ServerState::Isolated
                )
            })
            .collect()
    }

    /// Sends `req` to each of `servers` at once; answers in server order.
    fn fan_out(
        &self,
        servers: Vec<String>,
        req: PeerRequest,
    ) -> futures_util::future::LocalBoxFuture<'static, Vec<(String, Response)>> {
        let peers = self.cluster.peers.clone();
        Box::pin(async move {
            let Some(peers) = peers else {
                return Vec::new();
            };
            let calls = servers.iter().map(|s| peers.ask(s, &req));
            servers
                .clone()
                .into_iter()
                .zip(join_all(calls).await)
                .collect()
        })
    }

    /// This server's answer `own` joined with the answers of `servers` to
    /// `req`, as one response.
    fn with_answers_of(&self, own: Response, servers: Vec<String>, req: PeerRequest) -> Reply {
        let others = self.fan_out(servers, req);
        let local = self.settings.local.clone();
        Box::pin(
            async move {
                let mut all = vec![(local, own)];
                all.extend(others.await);
                summarise(all)
            }
            .into_actor(self),
        )
    }

    /// `alerts`: this server's newest alerts merged with the other servers'.
    pub(crate) fn cluster_alerts(&mut self, count: usize) -> Reply {
        let log = self.settings.alert_log.clone();
        let remote = self.fan_out(self.reachable_peers(), PeerRequest::Alerts { count });
        Box::pin(
            async move {
                let mut alerts = match log.newest(count).await {
                    Ok(a) => a,
                    Err(e) => {
                        return Response::Error {
                            message: format!("alert log unavailable: {e}"),
                        }
                    }
                };
                for (_, r) in remote.await {
                    if let Response::Alerts { alerts: more } = r {
                        alerts.extend(more);
                    }
                }
                // RFC 3339 UTC times sort as text.
                alerts.sort_by(|a, b| a.time.cmp(&b.time));
                let skip = alerts.len().saturating_sub(count);
                Response::Alerts {
                    alerts: alerts.split_off(skip),
                }
            }
            .into_actor(self),
        )
    }

    /// `cluster stop` / `cluster shutdown`: every other server first (no
    /// handover: the whole cluster stops), then this one.
    pub(crate) fn cluster_wide_stop(
        &mut self,
        by: String,
        os_action: Option<FinalAction>,
        ctx: &mut Context<Self>,
    ) -> Reply {
        let others = self.fan_out(
            self.reachable_peers(),
            PeerRequest::StopService {
                by: by.clone(),
                os_action,
            },
        );
        // This server stops no group while the others stop theirs, and
        // takes nothing over from them.
        self.feed(
            crate::model::cluster::Input::Suspend { by: by.clone() },
            ctx,
        );
        let local = self.settings.local.clone();
        Box::pin(others.into_actor(self).then(move |parts, act, ctx| {
            act.stop_service_response(by, os_action, false, ctx)
                .map(move |r, _, _| {
                    let mut all = parts;
                    all.push((local, r));
                    summarise(all)
                })
        }))
    }

    pub(crate) fn cluster_wide_suspend(
        &mut self,
        suspend: bool,
        by: String,
        ctx: &mut Context<Self>,
    ) -> Reply {
        let own = self.set_suspended(suspend, &by, ctx);
        self.with_answers_of(
            own,
            self.reachable_peers(),
            PeerRequest::Suspend { suspend, by },
        )
    }

    /// The error for a server name the configuration does not have.
    fn unknown_server(&self, server: &str) -> Option<Response> {
        self.settings
            .config
            .server(server)
            .is_none()
            .then(|| Response::Error {
                message: format!(
                    "no server named \"{server}\" (servers: {})",
                    self.settings.config.server_names().join(", ")
                ),
            })
    }

    pub(crate) fn cluster_wide_recover(
        &mut self,
        server: String,
        by: String,
        ctx: &mut Context<Self>,
    ) -> Reply {
        if let Some(unknown) = self.unknown_server(&server) {
            return ready(unknown);
        }
        let own = self.recover_server(&server, &by, ctx);
        self.with_answers_of(
            own,
            self.reachable_peers(),
            PeerRequest::Recover { server, by },
        )
    }

    /// `server confirm-down NAME`: this server and every server that it
    /// hears record that NAME is off. When this server hears NAME, nobody is
    /// told; a peer that still hears it refuses, and the answer is an error
    /// naming that peer: NAME is not off after all.
    pub(crate) fn cluster_wide_confirm_down(
        &mut self,
        server: String,
        by: String,
        ctx: &mut Context<Self>,
    ) -> Reply {
        if let Some(unknown) = self.unknown_server(&server) {
            return ready(unknown);
        }
        if server == self.settings.local {
            return ready(Response::Error {
                message: format!(
                    "{server} is the server answering this command: it is up, nothing to confirm (run it on a surviving server)"
                ),
            });
        }
        // Refused here (NAME is heard: it is up): nobody else is told.
        let own = self.confirm_down_server(&server, &by, ctx);
        if matches!(own, Response::Error { .. }) {
            return ready(own);
        }
        self.with_answers_of(
            own,
            self.reachable_peers(),
            PeerRequest::ConfirmDown { server, by },
        )
    }

    /// `config push`: validated here first; then written on every server
    /// (each validates again). A server that cannot be reached is named in
    /// the answer.
    pub(crate) fn cluster_wide_push(&mut self, text: String, by: String) -> Reply {
        if let Err(problems) = crate::model::config::parse("pushed configuration", &text) {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return ready(Response::Error {
                message: format!(
                    "the configuration is not valid; nothing was written:\n{}",
                    list.join("\n")
                ),
            });
        }
        let own = self.write_pushed_config(&text, &by);
        let everyone: Vec<String> = self
            .settings
            .config
            .server_names()
            .into_iter()
            .filter(|s| *s != self.settings.local)
            .collect();
        let others = self.fan_out(everyone, PeerRequest::PushConfig { text, by });
        let local = self.settings.local.clone();
        Box::pin(own.then(move |own, act, _| {
            async move {
                let mut all = vec![(local, own)];
                all.extend(others.await);
                summarise(all)
            }
            .into_actor(act)
        }))
    }

    /// Suspends or resumes this server's alert notification.
    pub(crate) fn set_notification(&mut self, suspend: bool, by: String) -> Reply {
        let Some(router) = self
            .settings
            .alert_service
            .as_ref()
            .map(|a| a.router.clone())
        else {
            return ready(Response::Error {
                message: "this daemon has no alert router".into(),
            });
        };
        let alerter = self.alerter.clone();
        let local = self.settings.local.clone();
        Box::pin(
            async move {
                match router
                    .send(crate::notify::router::SetNotification { suspend })
                    .await
                {
                    Ok(Ok(message)) => {
                        let hours = router
                            .send(crate::notify::router::RouterState)
                            .await
                            .ok()
                            .and_then(|(_, until)| until)
                            .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
                            .map(|d| d.as_secs().div_ceil(3600) as u32)
                            .unwrap_or(0);
                        alerter.raise(crate::notify::router::suspend_event(suspend, &by, hours));
                        Response::Done {
                            message: format!("{local}: {message}"),
                        }
                    }
                    Ok(Err(message)) => Response::Error {
                        message: format!("{local}: {message}"),
                    },
                    Err(e) => Response::Error {
                        message: format!("{local}: alert router unavailable: {e}"),
                    },
                }
            }
            .into_actor(self),
        )
    }

    /// `alert suspend` / `alert resume`: on every reachable server.
    pub(crate) fn cluster_wide_notification(&mut self, suspend: bool, by: String) -> Reply {
        let others = self.fan_out(
            self.reachable_peers(),
            PeerRequest::AlertNotification {
                suspend,
                by: by.clone(),
            },
        );
        let local = self.settings.local.clone();
        Box::pin(self.set_notification(suspend, by).then(move |own, act, _| {
            async move {
                let mut all = vec![(local, own)];
                all.extend(others.await);
                summarise(all)
            }
            .into_actor(act)
        }))
    }

    /// `lamp off --server NAME` (also `clpdn1000s -h NAME`).
    pub(crate) fn lamp_off(&mut self, server: String) -> Reply {
        if let Some(unknown) = self.unknown_server(&server) {
            return ready(unknown);
        }
        let Some(lamps) = self.lamps() else {
            return ready(Response::Error {
                message: "warning lamps are not in use (alerts.lamps.enabled)".into(),
            });
        };
        Box::pin(
            async move {
                report_lamps(
                    lamps
                        .send(crate::notify::lamp::SendTest {
                            server: Some(server),
                            state: crate::notify::lamp::LampState::Off,
                        })
                        .await,
                )
            }
            .into_actor(self),
        )
    }

    /// `alert test [--mail] [--syslog] [--lamp] [--snmp]` (none: all of them).
    pub(crate) fn alert_test(
        &mut self,
        mail: bool,
        syslog: bool,
        lamp: bool,
        snmp: bool,
        by: String,
    ) -> Reply {
        // Only notifiers this server has: without flags, every one of them;
        // a flag for one it lacks sends nothing at all.
        let alerts = &self.settings.config.alerts;
        let have = [
            (alerts.mail.is_some(), "alerts.mail"),
            (alerts.syslog.is_some(), "alerts.syslog"),
            (
                alerts.lamps.as_ref().is_some_and(|l| l.enabled),
                "alerts.lamps",
            ),
            (alerts.snmp.is_some(), "alerts.snmp"),
        ];
        let all = !(mail || syslog || lamp || snmp);
        if all && have.iter().all(|(on, _)| !on) {
            return ready(Response::Error {
                message: "no notifier is configured on this server (alerts.mail, alerts.syslog, alerts.lamps, alerts.snmp): nothing to test".into(),
            });
        }
        let missing: Vec<&str> = [mail, syslog, lamp, snmp]
            .iter()
            .zip(have)
            .filter(|(asked, (on, _))| **asked && !on)
            .map(|(_, (_, field))| field)
            .collect();
        if !missing.is_empty() {
            return ready(Response::Error {
                message: format!(
                    "not configured on this server: {}; nothing was sent",
                    missing.join(", ")
                ),
            });
        }
        let (mail, syslog, lamp, snmp) = (
            (mail || all) && have[0].0,
            (syslog || all) && have[1].0,
            (lamp || all) && have[2].0,
            (snmp || all) && have[3].0,
        );
        let mut to = Vec::new();
        if mail {
            to.push("mail");
        }
        if syslog {
            to.push("syslog");
        }
        if snmp {
            to.push("snmp");
        }
        if mail || syslog || snmp {
            self.alerter.raise_to(
                Event::AlertTest {
                    by,
                    to: to.join(" and "),
                },
                crate::model::routing::Destinations { syslog, mail, snmp },
            );
        }
        let sent = if to.is_empty() {
            String::new()
        } else {
            format!(
                "test alert handed to {}; how it went is in the alert log (alert 5 / 6, alert 1010, alert 1013)",
                to.join(" and ")
            )
        };
        let lamps = self.lamps().filter(|_| lamp);
        let local = self.settings.local.clone();
        Box::pin(
            async move {
                let Some(lamps) = lamps else {
                    return Response::Done { message: sent };
                };
                // The lamp of this server shows green while it runs: the
                // test drives it to that state and reports the answer.
                let r = report_lamps(
                    lamps
                        .send(crate::notify::lamp::SendTest {
                            server: Some(local),
                            state: crate::notify::lamp::LampState::Green,
                        })
                        .await,
                );
                match r {
                    Response::Done { message } => Response::Done {
                        message: [sent, message]
                            .into_iter()
                            .filter(|m| !m.is_empty())
                            .collect::<Vec<_>>()
                            .join("\n"),
                    },
                    other => other,
                }
            }
            .into_actor(self),
        )
    }

    /// `alert import FILE`: the file's alert settings replace the running
    /// ones in the configuration, which is then pushed to every server
    /// (alert settings apply at once). The text pushed is this server's
    /// configuration file with only its `alerts` section replaced, the
    /// operator's comments and layout kept, when that file holds the
    /// configuration in force; otherwise (a file changed since, a text the
    /// edit cannot handle) the configuration in force in canonical form.
    pub(crate) fn alert_import(&mut self, text: String, by: String) -> Reply {
        let alerts = match crate::model::config::parse_alerts(
            "imported alert settings",
            &text,
            &self.settings.config,
        ) {
            Ok(a) => a,
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return ready(Response::Error {
                    message: format!(
                        "the alert settings are not valid; nothing was changed:\n{}",
                        list.join("\n")
                    ),
                });
            }
        };
        let running = self.settings.config.clone();
        let mut config = (*running).clone();
        config.alerts = alerts.clone();
        let canonical = match crate::model::config::to_ron(&config) {
            Ok(text) => text,
            Err(e) => {
                return ready(Response::Error {
                    message: format!("cannot write the configuration: {e}"),
                })
            }
        };
        // Reading and parsing the file run in the blocking pool.
        let path = self.settings.config_path.clone();
        let edit = tokio::task::spawn_blocking(move || {
            let text = std::fs::read_to_string(&path).ok()?;
            crate::model::config::with_alerts(&text, &running, &alerts)
        });
        Box::pin(edit.into_actor(self).then(move |edited, act, _| {
            let text = edited.ok().flatten().unwrap_or(canonical);
            act.cluster_wide_push(text, by)
        }))
    }

    /// `group start NAME [--server S]`.
    pub(crate) fn group_start_on(
        &mut self,
        group: String,
        server: Option<String>,
        by: String,
    ) -> Reply {
        let local = self.settings.local.clone();
        let target = server.unwrap_or_else(|| local.clone());
        let holders = self.cluster.brain.holders(&group);
        if let Some(h) = holders.iter().find(|h| **h != local) {
            return ready(Response::Error {
                message: format!("group {group} is already active on {h}"),
            });
        }
        if target == local {
            let now = self.cluster.now();
            if let Err(message) = self.cluster.brain.may_start_here(&group, now) {
                return ready(Response::Error { message });
            }
            return self.run_group(&group, GroupOp::Start(StartEvent::Start), by);
        }
        if self.settings.config.server(&target).is_none() {
            return ready(Response::Error {
                message: format!(
                    "no server named \"{target}\" (servers: {})",
                    self.settings.config.server_names().join(", ")
                ),
            });
        }
        if !self.eligible(&target) {
            return ready(Response::Error {
                message: format!(
                    "server {target} cannot start groups now (state {})",
                    self.cluster.membership().state(&target).as_str()
                ),
            });
        }
        let call = self.fan_out(
            vec![target],
            PeerRequest::StartGroup {
                group,
                event: StartEvent::Start,
                by,
                counters: vec![],
            },
        );
        Box::pin(async move { summarise(call.await) }.into_actor(self))
    }

    /// `group stop NAME`: wherever it runs.
    pub(crate) fn group_stop_anywhere(&mut self, group: String, by: String) -> Reply {
        let local = self.settings.local.clone();
        let holders = self.cluster.brain.holders(&group);
        let here = self
            .view
            .groups
            .iter()
            .any(|g| g.name == group && g.state.may_be_active());
        if here || holders.is_empty() {
            return self.run_group(&group, GroupOp::Stop(StopFactor::GroupStop), by);
        }
        let remote: Vec<String> = holders.into_iter().filter(|h| *h != local).collect();
        let call = self.fan_out(
            remote,
            PeerRequest::StopGroup {
                group,
                factor: StopFactor::GroupStop,
                by,
            },
        );
        Box::pin(async move { summarise(call.await) }.into_actor(self))
    }

    /// `group move NAME [--to S]`: carried out by the server it runs on.
    pub(crate) fn group_move_anywhere(
        &mut self,
        group: String,
        to: Option<String>,
        by: String,
        ctx: &mut Context<Self>,
    ) -> Reply {
        let local = self.settings.local.clone();
        let holders = self.cluster.brain.holders(&group);
        match holders.as_slice() {
            [] => ready(Response::Error {
                message: format!("group {group} is not active anywhere; start it instead"),
            }),
            [h] if *h == local => self.move_here_to(&group, to, by, ctx),
            [h] => {
                let call = self.fan_out(vec![h.clone()], PeerRequest::MoveGroup { group, to, by });
                Box::pin(async move { summarise(call.await) }.into_actor(self))
            }
            many => ready(Response::Error {
                message: format!(
                    "group {group} is active on several servers ({}); stop it first",
                    many.join(", ")
                ),
            }),
        }
    }
}

/// How lamp commands ended, as one answer.
fn report_lamps(
    r: Result<Result<Vec<crate::notify::lamp::TestReport>, String>, MailboxError>,
) -> Response {
    match r {
        Ok(Ok(reports)) if reports.is_empty() => Response::Error {
            message: "no warning lamp is configured for that server".into(),
        },
        Ok(Ok(reports)) => {
            use crate::notify::lamp::LampOutcome;
            let mut failed = false;
            let lines: Vec<String> = reports
                .iter()
                .map(|t| {
                    let how = match &t.outcome {
                        LampOutcome::Done => "done".to_string(),
                        LampOutcome::Superseded => "replaced by a newer command".to_string(),
                        LampOutcome::Refused(e) => {
                            failed = true;
                            format!("refused: {e}")
                        }
                        LampOutcome::Unreachable(e) => {
                            failed = true;
                            format!("not carried out: {e}")
                        }
                    };
                    format!(
                        "lamp {} of server {} set to {}: {how}",
                        t.lamp, t.server, t.state
                    )
                })
                .collect();
            let message = lines.join("\n");
            if failed {
                Response::Error { message }
            } else {
                Response::Done { message }
            }
        }
        Ok(Err(message)) => Response::Error { message },
        Err(e) => Response::Error {
            message: format!("lamp notifier unavailable: {e}"),
        },
    }
}

/// A peer request that failed authentication, from the peer-link server.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerRejected {
    pub reason: crate::wire::Rejection,
    pub detail: String,
}

impl Handler<PeerRejected> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: PeerRejected, _: &mut Context<Self>) {
        let what = self.count_rejection(msg.reason);
        self.note_rejected(format!("{what} peer request: {}", msg.detail));
    }
}

/// Binds the peer-link listeners on this server's interconnect addresses
/// (done by the daemon before the start, so a port in use is a clear error
/// at once).
pub fn bind_peer_listeners(
    config: &crate::model::config::ClusterConfig,
    local: &str,
) -> Result<Vec<std::net::TcpListener>, String> {
    if config.servers.len() < 2 {
        return Ok(Vec::new());
    }
    let Some(me) = config.server(local) else {
        return Ok(Vec::new());
    };
    me.interconnects
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| {
            let addr = SocketAddr::new(ip, config.heartbeat.peer_port);
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("cannot listen for the peer link on {addr}: {e}"))
        })
        .collect()
}
