//! The SNMP trap receiver of the `BMCNOTICE` message monitors: one UDP
//! socket per endpoint the brain's plan names (`model::traps::plan`), each
//! read by a task that decodes every datagram with `rasn-snmp` into a
//! [`TrapPacket`] and hands it to the coordinator ([`TrapEvent`]), which
//! asks the brain (`TrapListeners::judge`) what it means.
//!
//! Decoding never panics and never reads past the datagram: a packet
//! longer than [`MAX_TRAP_BYTES`] is not decoded at all, and anything
//! rasn cannot decode is [`TrapPacket::Garbled`].

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use rasn_snmp::{v1, v2, v2c};

pub use crate::model::traps::{SnmpVersion, TrapPacket, MAX_TRAP_BYTES};

/// How long a receiver waits before trying to bind its endpoint again.
pub const BIND_RETRY: Duration = Duration::from_secs(5);

/// From a receiver task to the coordinator.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum TrapEvent {
    /// The socket is bound (`Ok`), or could not be (`Err`: why).
    Bound {
        endpoint: SocketAddr,
        result: Result<(), String>,
    },
    /// One datagram arrived.
    Packet {
        endpoint: SocketAddr,
        from: SocketAddr,
        packet: TrapPacket,
    },
}

/// What one datagram holds.
pub fn decode(bytes: &[u8]) -> TrapPacket {
    if bytes.len() > MAX_TRAP_BYTES {
        return TrapPacket::Oversized(bytes.len());
    }
    // The version comes first in every SNMP message; v1 and v2c differ in
    // their PDUs, so each is tried with its own PDU set.
    if let Ok(m) = rasn::ber::decode::<v2c::Message<v2::Pdus>>(bytes) {
        return match (version_of(&m.version), m.data) {
            (Some(1), v2::Pdus::Trap(_)) => TrapPacket::Trap {
                version: SnmpVersion::V2c,
                community: m.community.to_vec(),
            },
            (Some(1), v2::Pdus::InformRequest(_)) => {
                TrapPacket::Other("an SNMPv2c inform (not answered)".into())
            }
            (Some(1), _) => TrapPacket::Other("an SNMPv2c request or response".into()),
            (Some(0), _) => TrapPacket::Other("an SNMPv1 request or response".into()),
            (v, _) => TrapPacket::Other(format!("SNMP of version {}", describe_version(v))),
        };
    }
    if let Ok(m) = rasn::ber::decode::<v1::Message<v1::Pdus>>(bytes) {
        return match (version_of(&m.version), m.data) {
            (Some(0), v1::Pdus::Trap(_)) => TrapPacket::Trap {
                version: SnmpVersion::V1,
                community: m.community.to_vec(),
            },
            (Some(0), _) => TrapPacket::Other("an SNMPv1 request or response".into()),
            (v, _) => TrapPacket::Garbled(format!(
                "an SNMPv1 trap PDU in a message of version {}",
                describe_version(v)
            )),
        };
    }
    // Neither: another version (v3) or no SNMP at all.
    match version_only(bytes) {
        Some(v) if v > 1 => TrapPacket::Other(format!(
            "SNMP of version {} (only v1 and v2c traps are taken)",
            describe_version(Some(v))
        )),
        _ => TrapPacket::Garbled(if bytes.is_empty() {
            "an empty datagram".into()
        } else {
            format!(
                "{} bytes that are not an SNMP v1 or v2c message",
                bytes.len()
            )
        }),
    }
}

/// The version of a message that is a SEQUENCE whose first element is
/// an INTEGER (every SNMP version's layout), whatever follows.
fn version_only(bytes: &[u8]) -> Option<i64> {
    let items: Vec<rasn::types::Any> = rasn::ber::decode(bytes).ok()?;
    let version: rasn::types::Integer = rasn::ber::decode(items.first()?.as_bytes()).ok()?;
    version_of(&version)
}

fn version_of(v: &rasn::types::Integer) -> Option<i64> {
    i64::try_from(v).ok()
}

fn describe_version(v: Option<i64>) -> String {
    match v {
        Some(0) => "1".into(),
        Some(1) => "2c".into(),
        Some(3) => "3".into(),
        Some(n) => format!("number {n}"),
        None => "(too large)".into(),
    }
}

/// Receives on `endpoint` until aborted: binds (trying again every
/// [`BIND_RETRY`] while it cannot), then reports every datagram. Runs on
/// the actors' thread as a task (it awaits the socket; decoding is quick).
pub async fn receive(endpoint: SocketAddr, to: Recipient<TrapEvent>) {
    // One more byte than the largest datagram UDP carries: the length of
    // an oversized one is still known.
    let mut buf = vec![0u8; 65_536];
    let mut last_error: Option<String> = None;
    loop {
        let socket = match tokio::net::UdpSocket::bind(endpoint).await {
            Ok(s) => s,
            Err(e) => {
                let e = e.to_string();
                if last_error.as_ref() != Some(&e) {
                    to.do_send(TrapEvent::Bound {
                        endpoint,
                        result: Err(e.clone()),
                    });
                    last_error = Some(e);
                }
                tokio::time::sleep(BIND_RETRY).await;
                continue;
            }
        };
        to.do_send(TrapEvent::Bound {
            endpoint,
            result: Ok(()),
        });
        loop {
            match socket.recv_from(&mut buf).await {
                Ok((n, from)) => to.do_send(TrapEvent::Packet {
                    endpoint,
                    from,
                    packet: decode(&buf[..n]),
                }),
                // ICMP errors of earlier sends and the like: nothing to
                // do with the next datagram.
                Err(e) => tracing::debug!("trap receiver {endpoint}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `snmptrap -v 2c -c public HOST '' 1.3.6.1.4.1.8072.2.3.0.1
    /// 1.3.6.1.2.1.1.5.0 s "bmc says"` (net-snmp 5.9), as captured.
    const V2C: &str = "305d02010104067075626c6963a750020442b2d7d10201000201003042300f06082b0601020101030043032fe85e3019060a2b060106030101040100060b2b06010401bf0802030001301406082b060102010105000408626d632073617973";
    /// `snmptrap -v 1 -c public HOST 1.3.6.1.4.1.8072.2.3 198.51.100.11 6 17 ''`.
    const V1: &str = "302b02010004067075626c6963a41e06092b06010401bf0802034004c633640b02010602011143032fe8943000";

    /// `snmptrap -v 3 -u bmcuser -l noAuthNoPriv -e 0x8000000001020304 HOST ''
    /// 1.3.6.1.4.1.8072.2.3.0.1`.
    const V3: &str = "30818c020103301102047be28614020300ffe30401000201030421301f0408800000000102030402010102033409980407626d6375736572040004003051041180001f8880dd0aa8501cd1136b000000000400a73a0204620fed08020100020100302c300f06082b0601020101030043033409983019060a2b060106030101040100060b2b06010401bf0802030001";

    #[test]
    fn v1_and_v2c_traps_are_decoded() {
        assert_eq!(
            decode(&hex(V2C)),
            TrapPacket::Trap {
                version: SnmpVersion::V2c,
                community: b"public".to_vec()
            }
        );
        assert_eq!(
            decode(&hex(V1)),
            TrapPacket::Trap {
                version: SnmpVersion::V1,
                community: b"public".to_vec()
            }
        );
    }

    #[test]
    fn garbage_truncation_and_size_are_told_apart() {
        assert!(matches!(decode(b""), TrapPacket::Garbled(_)));
        assert!(matches!(
            decode(b"hello, trap port"),
            TrapPacket::Garbled(_)
        ));
        assert!(matches!(
            decode(&vec![0x30; MAX_TRAP_BYTES + 1]),
            TrapPacket::Oversized(n) if n == MAX_TRAP_BYTES + 1
        ));
        for whole in [hex(V1), hex(V2C)] {
            for cut in 0..whole.len() {
                assert!(
                    matches!(decode(&whole[..cut]), TrapPacket::Garbled(_)),
                    "cut at {cut}: {:?}",
                    decode(&whole[..cut])
                );
            }
        }
        // A v2c message of another PDU: a get-request (tag 0xa0).
        let mut get = hex(V2C);
        get[13] = 0xa0;
        assert!(
            matches!(decode(&get), TrapPacket::Other(_)),
            "{:?}",
            decode(&get)
        );
        // An inform (tag 0xa6): not a trap, and not answered.
        let mut inform = hex(V2C);
        inform[13] = 0xa6;
        assert!(matches!(decode(&inform), TrapPacket::Other(ref w) if w.contains("inform")));
        // Version 3: a real one, and a v2c message claiming version 3.
        assert!(
            matches!(decode(&hex(V3)), TrapPacket::Other(ref w) if w.contains("version 3")),
            "{:?}",
            decode(&hex(V3))
        );
        let mut v3 = hex(V2C);
        v3[4] = 3;
        assert!(
            matches!(decode(&v3), TrapPacket::Other(_)),
            "{:?}",
            decode(&v3)
        );
    }

    /// Random bytes and random damage to real traps (a fixed seed): always
    /// an answer, never a panic.
    #[test]
    fn mangled_traps_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [hex(V1), hex(V2C)];
        let mut traps = 0;
        for i in 0..20_000 {
            let mut p = if i % 4 == 0 {
                let n = (next() % 600) as usize;
                (0..n).map(|_| next() as u8).collect()
            } else {
                seeds[i % 2].clone()
            };
            let edits = 1 + next() % 4;
            for _ in 0..edits {
                if p.is_empty() {
                    break;
                }
                let at = (next() as usize) % p.len();
                match next() % 4 {
                    0 => p[at] = next() as u8,
                    1 => p.truncate(at),
                    2 => p.insert(at, next() as u8),
                    // Lengths are where decoders go wrong: a huge one.
                    _ => p[at] = 0x84,
                }
            }
            if let TrapPacket::Trap { .. } = decode(&p) {
                traps += 1;
            }
        }
        // Some damage leaves a valid trap (a changed community, say).
        assert!(traps > 0);
    }
}
