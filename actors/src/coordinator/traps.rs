//! The coordinator's side of the SNMP trap receiver: it opens and closes
//! one receiver task per endpoint as the brain's plan says
//! (`model::traps`), and turns what the brain makes of each datagram into
//! error notices for the message monitors, as `message send` does.

use std::net::SocketAddr;

use actix::prelude::*;

use super::Coordinator;
use crate::model::catalog::Event;
use crate::model::traps::{self, TrapPacket, Verdict};
use crate::monitor::actor::Notice;
use crate::monitor::message::trap::{self as receiver, TrapEvent};
use crate::monitor::message::BMC_CATEGORY;

impl Coordinator {
    /// Listens on the endpoints of the monitors in force here: opens the
    /// new ones, closes those no monitor names any more.
    pub(super) fn sync_trap_listeners(&mut self, ctx: &mut Context<Self>) {
        let plan = if self.stopping {
            Default::default()
        } else {
            traps::plan(&self.settings.config, &self.settings.local)
        };
        let (open, close) = self.traps.reconfigure(plan);
        for endpoint in close {
            if let Some(task) = self.trap_tasks.remove(&endpoint) {
                task.abort();
            }
        }
        for endpoint in open {
            let to = ctx.address().recipient();
            self.trap_tasks
                .insert(endpoint, actix::spawn(receiver::receive(endpoint, to)));
        }
        self.view.traps = self.traps.status();
    }

    fn deliver_trap(&mut self, endpoint: SocketAddr, from: SocketAddr, packet: &TrapPacket) {
        let verdict = self.traps.judge(endpoint, packet);
        self.view.traps = self.traps.status();
        let monitors = match verdict {
            Verdict::Deliver(monitors) => monitors,
            Verdict::Dropped => {
                // Never the community itself: it is a secret.
                let what = match packet {
                    TrapPacket::Trap { version, .. } => {
                        format!(
                            "an SNMP{} trap with a community no monitor here accepts",
                            version.as_str()
                        )
                    }
                    TrapPacket::Other(what) | TrapPacket::Garbled(what) => what.clone(),
                    TrapPacket::Oversized(n) => {
                        format!("{n} bytes (more than {})", traps::MAX_TRAP_BYTES)
                    }
                };
                tracing::info!("trap receiver {endpoint}: dropped {what} from {from}");
                return;
            }
        };
        let TrapPacket::Trap { version, .. } = packet else {
            return;
        };
        let text = format!(
            "SNMP{} trap from {} on {endpoint}",
            version.as_str(),
            from.ip()
        );
        let mut delivered = Vec::new();
        for name in monitors {
            if let Some(addr) = self.monitors.get(&name).and_then(|m| m.addr.as_ref()) {
                addr.do_send(Notice(Some(text.clone())));
                delivered.push(name);
            }
        }
        self.alerter.raise(Event::MessageReceived {
            category: BMC_CATEGORY.to_string(),
            keyword: endpoint.to_string(),
            clear: false,
            monitors: delivered,
        });
    }
}

impl Handler<TrapEvent> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: TrapEvent, _: &mut Context<Self>) {
        match msg {
            TrapEvent::Bound { endpoint, result } => {
                match &result {
                    Ok(()) => tracing::info!("trap receiver listens on {endpoint}"),
                    Err(e) => tracing::warn!(
                        "trap receiver cannot listen on {endpoint}: {e} (tries again every {} s)",
                        receiver::BIND_RETRY.as_secs()
                    ),
                }
                self.traps.bound(endpoint, result);
                self.view.traps = self.traps.status();
            }
            TrapEvent::Packet {
                endpoint,
                from,
                packet,
            } => self.deliver_trap(endpoint, from, &packet),
        }
    }
}
