//! What a heartbeat packet carries: JSON of a [`Beat`] in a sealed frame,
//! one per UDP datagram.
//!
//! A daemon sends `Alive` beats with its view of itself (the groups it runs,
//! whether it is stopping); `Leaving` says it goes away on purpose (or, from
//! the guardian, that it died), so the others need not wait for the
//! heartbeat timeout. `Leaving` carries `seq = u64::MAX`: accepted once, and
//! nothing of that incarnation is accepted after it.

use std::net::{SocketAddr, UdpSocket};

use serde::{Deserialize, Serialize};

use super::frame::seal_json;
use super::key::ClusterKey;

/// Sequence number of a `Leaving` beat.
pub const LEAVING_SEQ: u64 = u64::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    /// Sender's server name.
    pub from: String,
    /// Sender daemon's start time, microseconds since the UNIX epoch.
    pub incarnation: u64,
    /// Counts beats on this path from 1 (the same number to every peer).
    pub seq: u64,
    /// Heartbeat path (interconnect index) the beat was sent on.
    pub path: u8,
    /// Digest of the sender's configuration, to notice mismatched peers.
    pub config_digest: String,
    /// The sender's monotonic clock at sending, ms since its daemon
    /// started (0: an older sender that does not say): the receiver tells
    /// a beat that queued somewhere, or came out of order, from a fresh one.
    #[serde(default)]
    pub sent_ms: u64,
    pub kind: BeatKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BeatKind {
    Alive(Advert),
    /// The daemon stops (`died: false`) or its guardian saw it die.
    Leaving {
        died: bool,
    },
}

/// A server's view of itself, as the brain builds it.
pub use crate::model::advert::{Advert, GroupAdvert};

/// Sends a `Leaving` beat on every target (path, local address to bind with
/// port 0, peer's heartbeat address), twice each against loss: the copy is
/// dropped by the receiver as a replay. Blocking and runtime-free, for the
/// guardian after the daemon died. Returns one message per failure.
pub fn send_leaving(
    key: &ClusterKey,
    from: &str,
    incarnation: u64,
    config_digest: &str,
    died: bool,
    targets: &[(u8, SocketAddr, SocketAddr)],
) -> Vec<String> {
    let mut errors = Vec::new();
    for &(path, local, peer) in targets {
        let beat = Beat {
            from: from.to_string(),
            incarnation,
            seq: LEAVING_SEQ,
            path,
            config_digest: config_digest.to_string(),
            sent_ms: 0,
            kind: BeatKind::Leaving { died },
        };
        let packet = match seal_json(key, &beat) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("path {path}: {e}"));
                continue;
            }
        };
        let socket = match UdpSocket::bind(local) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("path {path}: cannot bind {local}: {e}"));
                continue;
            }
        };
        let mut sent = false;
        let mut last_error = None;
        for _ in 0..2 {
            match socket.send_to(&packet, peer) {
                Ok(_) => sent = true,
                Err(e) => last_error = Some(e),
            }
        }
        if let (false, Some(e)) = (sent, last_error) {
            errors.push(format!("path {path}: cannot send to {peer}: {e}"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::RunState;
    use crate::wire::frame::open_json;

    #[test]
    fn beat_round_trip_and_defaults() {
        let key = ClusterKey::from_bytes([9; 32]);
        let beat = Beat {
            from: "a".into(),
            incarnation: 5,
            seq: 1,
            path: 0,
            config_digest: "d".into(),
            sent_ms: 7,
            kind: BeatKind::Alive(Advert {
                groups: vec![GroupAdvert {
                    name: "web".into(),
                    state: RunState::Online,
                }],
                stopping: false,
                isolated: false,
                suspended: true,
                ..Advert::default()
            }),
        };
        let sealed = seal_json(&key, &beat).unwrap();
        assert_eq!(open_json::<Beat>(&key, &sealed).unwrap(), beat);

        // An older peer's advert without the newer fields, and an unknown one.
        let advert: Advert =
            serde_json::from_str(r#"{"groups":[],"stopping":true,"later":1}"#).unwrap();
        assert_eq!(
            advert,
            Advert {
                stopping: true,
                ..Advert::default()
            }
        );
    }

    #[test]
    fn send_leaving_reports_failures_per_target() {
        let key = ClusterKey::from_bytes([9; 32]);
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        // 192.0.2.1 (TEST-NET-1) is not an address of this host.
        let errors = send_leaving(
            &key,
            "a",
            1,
            "d",
            true,
            &[
                (0, "192.0.2.1:0".parse().unwrap(), peer),
                (1, "127.0.0.1:0".parse().unwrap(), peer),
            ],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("path 0: cannot bind 192.0.2.1:0"),
            "{errors:?}"
        );
    }
}
