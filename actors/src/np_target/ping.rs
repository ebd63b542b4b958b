//! `Ping(targets: [...])`: a round sends one ICMP echo request to every
//! target at once; the first reply ends it (reached). The sockets (one per
//! address family in use) are made once, at the start: a datagram ICMP
//! socket where `net.ipv4.ping_group_range` allows it, else a raw one
//! (root, or CAP_NET_RAW).

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::select_ok;
use surge_ping::{Client, Config, PingIdentifier, PingSequence, ICMP};

use super::{RoundFuture, TargetProbe};
use crate::model::host::parse_ip;
use crate::model::partition::PingTargets;

/// The echo request's payload: small, and says who sent it.
const PAYLOAD: &[u8] = b"understudy partition resolution";

pub struct PingProbe {
    targets: Vec<(IpAddr, Client)>,
    ident: u16,
    seq: u16,
}

impl PingProbe {
    pub fn new(config: &PingTargets) -> Result<PingProbe, String> {
        let mut v4 = None;
        let mut v6 = None;
        let mut targets = Vec::new();
        for t in &config.targets {
            let ip = parse_ip(t).ok_or_else(|| format!("\"{t}\" is not an IP address"))?;
            let (slot, kind) = match ip {
                IpAddr::V4(_) => (&mut v4, ICMP::V4),
                IpAddr::V6(_) => (&mut v6, ICMP::V6),
            };
            if slot.is_none() {
                let client = Client::new(&Config::builder().kind(kind).build())
                    .map_err(|e| format!("ICMP socket: {e}"))?;
                *slot = Some(client);
            }
            targets.push((ip, slot.clone().expect("made above")));
        }
        Ok(PingProbe {
            targets,
            // Tells our replies apart from other pingers' on a raw socket.
            ident: (std::process::id() & 0xffff) as u16,
            seq: 0,
        })
    }
}

impl TargetProbe for PingProbe {
    fn round(&mut self, timeout: Duration) -> RoundFuture {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let ident = self.ident;
        let targets = self.targets.clone();
        Box::pin(async move {
            let pings = targets.into_iter().map(|(ip, client)| {
                Box::pin(async move {
                    let mut pinger = client.pinger(ip, PingIdentifier(ident)).await;
                    pinger.timeout(timeout);
                    pinger
                        .ping(PingSequence(seq), PAYLOAD)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{ip}: {e}"))
                })
            });
            match select_ok(pings).await {
                Ok(_) => Ok(()),
                // select_ok returns the last error: name every target.
                Err(last) => Err(format!("no echo reply from any target (last: {last})")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback answers (this machine only): as root a raw ICMP socket,
    /// else a datagram one where `ping_group_range` allows it.
    #[tokio::test]
    async fn loopback_answers_a_round() {
        let config = PingTargets {
            targets: vec!["127.0.0.1".into()],
            interval_ms: None,
            timeout_ms: None,
        };
        let mut probe = match PingProbe::new(&config) {
            Ok(p) => p,
            Err(e) => {
                return crate::skip::missing("root", format!("no ICMP socket here: {e}")).skip();
            }
        };
        for _ in 0..2 {
            assert_eq!(probe.round(Duration::from_secs(1)).await, Ok(()));
        }
    }
}
