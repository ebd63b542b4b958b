//! The SNMP trap notifier: every alert routed to it becomes one SNMPv2c
//! trap (SNMPv2-Trap-PDU, encoded with `rasn-snmp`) sent over UDP to each
//! manager of `alerts.snmp`. Traps are not acknowledged: "sent" means
//! handed to the kernel. A manager that cannot be resolved or reached
//! raises `alert 1013`, at most once a minute per manager (that alert is
//! the notifiers' own, never routed back here).
//!
//! What a trap holds is numbered under the configured enterprise OID
//! ([`TrapOids`]): `sysUpTime.0` (the notifier's uptime), `snmpTrapOID.0`
//! (`E.0.level`), then cluster, server, module, event id, level, message
//! and time as `E.1.1` to `E.1.7`. The community is only ever put into
//! the packet.

/// The notifier's settings live in the brain crate.
pub use understudy_brain::notify::snmp as config;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_smi::v1::TimeTicks;
use rasn_smi::v2::{ApplicationSyntax, ObjectSyntax, SimpleSyntax};
use rasn_snmp::{v2, v2c};

pub use config::{Manager, Secret, SnmpConfig, TrapOids};

use super::alert_log::Alerter;
use super::Notify;
use crate::model::catalog::{Alert, Event, Level};

/// Least time between two `SnmpTrapFailed` alerts of one manager.
pub const RAISE_EVERY: Duration = Duration::from_secs(60);

/// `sysUpTime.0` and `snmpTrapOID.0` (SNMPv2-MIB): the first two
/// variables of every v2 trap.
const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
const SNMP_TRAP_OID: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];

/// The community of the settings: `community`, the first line of
/// `community_file`, or `public`.
pub fn load_community(c: &SnmpConfig) -> Result<Secret, String> {
    if let Some(s) = &c.community {
        return Ok(s.clone());
    }
    match &c.community_file {
        Some(file) => {
            super::mail::password::read_secret_file(file, "community", config::MAX_COMMUNITY)
        }
        None => Ok(Secret::new(config::DEFAULT_COMMUNITY)),
    }
}

fn level_number(l: Level) -> u32 {
    match l {
        Level::Info => 1,
        Level::Warning => 2,
        Level::Error => 3,
    }
}

fn oid(arcs: &[u32]) -> ObjectIdentifier {
    // Arcs come from `parse_oid` (checked) or the constants above.
    ObjectIdentifier::new(arcs.to_vec())
        .unwrap_or_else(|| ObjectIdentifier::new_unchecked(vec![1, 3].into()))
}

fn text(s: &str) -> v2::VarBindValue {
    v2::VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::String(
        OctetString::from_slice(s.as_bytes()),
    )))
}

/// One alert as an SNMPv2c trap message (BER).
pub fn encode(
    oids: &TrapOids,
    community: &Secret,
    request_id: i32,
    uptime_cs: u32,
    cluster: &str,
    alert: &Alert,
) -> Result<Vec<u8>, String> {
    let bind = |name: Vec<u32>, value: v2::VarBindValue| v2::VarBind {
        name: oid(&name),
        value,
    };
    let variables = vec![
        bind(
            SYS_UPTIME.to_vec(),
            v2::VarBindValue::Value(ObjectSyntax::ApplicationWide(ApplicationSyntax::Ticks(
                TimeTicks(uptime_cs),
            ))),
        ),
        bind(
            SNMP_TRAP_OID.to_vec(),
            v2::VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::ObjectId(oid(
                &oids.trap(level_number(alert.level))
            )))),
        ),
        bind(oids.variable(1), text(cluster)),
        bind(oids.variable(2), text(&alert.server)),
        bind(oids.variable(3), text(&alert.module)),
        bind(
            oids.variable(4),
            v2::VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::Integer(Integer::from(
                i64::from(alert.event_id),
            )))),
        ),
        bind(oids.variable(5), text(alert.level.as_str())),
        bind(oids.variable(6), text(&alert.message)),
        bind(oids.variable(7), text(&alert.time)),
    ];
    let message = v2c::Message {
        version: Integer::from(1),
        community: OctetString::from_slice(community.expose().as_bytes()),
        data: v2::Pdus::Trap(v2::Trap(v2::Pdu {
            request_id,
            error_status: 0,
            error_index: 0,
            variable_bindings: variables,
        })),
    };
    rasn::ber::encode(&message).map_err(|e| format!("cannot encode the trap: {e}"))
}

/// Sends one datagram to `manager` from a fresh socket of its family.
async fn send_to(manager: &Manager, bytes: &[u8]) -> Result<(), String> {
    let addr: SocketAddr = tokio::net::lookup_host((manager.address.as_str(), manager.port))
        .await
        .map_err(|e| {
            format!(
                "cannot resolve {}: {}",
                manager.address,
                crate::model::host::io_text(&e)
            )
        })?
        .next()
        .ok_or_else(|| format!("{} has no address", manager.address))?;
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| crate::model::host::io_text(&e))?;
    socket
        .send_to(bytes, addr)
        .await
        .map(|_| ())
        .map_err(|e| crate::model::host::io_text(&e))
}

/// Figures for tests: traps handed to the kernel and failed sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnmpCounts {
    pub sent: u64,
    pub failed: u64,
}

/// Asks for the [`SnmpCounts`].
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "SnmpCounts")]
pub struct SnmpStats;

pub struct SnmpNotifier {
    managers: Vec<Manager>,
    community: Secret,
    oids: TrapOids,
    started: Instant,
    request_id: i32,
    own: Alerter,
    /// When each manager's failure was last raised.
    raised: Rc<RefCell<HashMap<String, Instant>>>,
    counts: Rc<RefCell<SnmpCounts>>,
}

impl SnmpNotifier {
    /// The notifier of `config` with its community ([`load_community`],
    /// read beforehand: off the actors' thread); fails on a bad OID.
    pub fn new(
        config: SnmpConfig,
        community: Secret,
        own: Alerter,
    ) -> Result<SnmpNotifier, String> {
        let oids = TrapOids::new(&config.enterprise)?;
        Ok(SnmpNotifier {
            managers: config.managers,
            community,
            oids,
            started: Instant::now(),
            request_id: 0,
            own,
            raised: Rc::default(),
            counts: Rc::default(),
        })
    }
}

impl Actor for SnmpNotifier {
    type Context = Context<Self>;
}

impl Handler<Notify> for SnmpNotifier {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        self.request_id = self.request_id.wrapping_add(1) & i32::MAX;
        let uptime_cs = (self.started.elapsed().as_millis() / 10).min(u32::MAX as u128) as u32;
        let bytes = match encode(
            &self.oids,
            &self.community,
            self.request_id,
            uptime_cs,
            &msg.cluster,
            &msg.alert,
        ) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("SNMP trap notifier: {e}");
                return;
            }
        };
        for manager in self.managers.clone() {
            let bytes = bytes.clone();
            let own = self.own.clone();
            let raised = self.raised.clone();
            let counts = self.counts.clone();
            ctx.spawn(
                async move {
                    let destination = format!("{}:{}", manager.address, manager.port);
                    match send_to(&manager, &bytes).await {
                        Ok(()) => counts.borrow_mut().sent += 1,
                        Err(error) => {
                            counts.borrow_mut().failed += 1;
                            let now = Instant::now();
                            let mut r = raised.borrow_mut();
                            let due = r
                                .get(&destination)
                                .is_none_or(|t| now.duration_since(*t) >= RAISE_EVERY);
                            if due {
                                r.insert(destination.clone(), now);
                                own.raise(Event::SnmpTrapFailed { destination, error });
                            }
                        }
                    }
                }
                .into_actor(self),
            );
        }
    }
}

impl Handler<SnmpStats> for SnmpNotifier {
    type Result = MessageResult<SnmpStats>;
    fn handle(&mut self, _: SnmpStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(*self.counts.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::message::trap::{decode, SnmpVersion, TrapPacket};

    fn alert() -> Alert {
        Alert {
            time: "2026-11-22T00:00:00.000Z".into(),
            server: "s1".into(),
            module: "rm".into(),
            event_id: 9,
            level: Level::Error,
            message: "monitor mrw1: error detected".into(),
        }
    }

    #[test]
    fn an_alert_becomes_a_v2c_trap_with_its_fields() {
        let oids = TrapOids::new(config::DEFAULT_ENTERPRISE).unwrap();
        let bytes = encode(&oids, &Secret::new("c0mm"), 7, 1234, "lab", &alert()).unwrap();
        // Our own receiver takes it as a v2c trap with that community.
        assert_eq!(
            decode(&bytes),
            TrapPacket::Trap {
                version: SnmpVersion::V2c,
                community: b"c0mm".to_vec()
            }
        );
        let m: v2c::Message<v2::Pdus> = rasn::ber::decode(&bytes).unwrap();
        let v2::Pdus::Trap(v2::Trap(pdu)) = m.data else {
            panic!("not a trap: {:?}", m.data);
        };
        assert_eq!(pdu.request_id, 7);
        let names: Vec<String> = pdu
            .variable_bindings
            .iter()
            .map(|b| {
                b.name
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        assert_eq!(names[0], "1.3.6.1.2.1.1.3.0");
        assert_eq!(names[1], "1.3.6.1.6.3.1.1.4.1.0");
        assert_eq!(names[7], "1.3.6.1.4.1.8072.9999.9999.1.6");
        assert_eq!(
            pdu.variable_bindings[1].value,
            v2::VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::ObjectId(oid(&[
                1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 0, 3
            ]))))
        );
        assert_eq!(
            pdu.variable_bindings[7].value,
            text("monitor mrw1: error detected")
        );
    }

    #[test]
    fn the_community_comes_from_the_settings_or_its_file() {
        use std::os::unix::fs::PermissionsExt;
        let mut c: SnmpConfig =
            ron::from_str(r#"Snmp(managers: [Manager(address: "198.51.100.100")])"#).unwrap();
        assert_eq!(load_community(&c).unwrap().expose(), "public");
        let dir = std::env::temp_dir().join(format!("us-snmpc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("community");
        std::fs::write(&file, "tr4p\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        c.community_file = Some(file.display().to_string());
        let err = load_community(&c).unwrap_err();
        assert!(
            err.starts_with("community file") && !err.contains("tr4p"),
            "{err}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_community(&c).unwrap().expose(), "tr4p");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
