//! Replay protection for heartbeats.
//!
//! Every heartbeat carries the sender's incarnation (chosen when its daemon
//! starts: microseconds since the UNIX epoch, so a newer daemon has a larger
//! one) and a sequence number that grows with every beat on a path. A
//! receiver keeps, per sender and path, the newest pair it accepted and takes
//! only packets beyond it: a larger incarnation (the sender restarted and
//! counts from 1 again) or the same incarnation with a larger sequence
//! number. Anything else is a copy of a packet already seen.
//!
//! The guard lives in memory only: a receiver that restarts accepts the first
//! authentic packet it sees from each sender, whatever its numbers, and
//! guards from there. Someone who recorded traffic could thus play back, to a
//! freshly started daemon, recorded beats of a sender newer than any it has
//! heard since, making a silent server look alive for as long as the
//! recording lasts (and only until the real sender's newer beats arrive).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::frame::{Refusal, Rejection};

/// An incarnation for a daemon starting now.
pub fn incarnation_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Last {
    incarnation: u64,
    seq: u64,
}

#[derive(Debug, Default)]
pub struct ReplayGuard {
    /// Per sender, the newest accepted (incarnation, seq) of each path.
    last: HashMap<String, Vec<Option<Last>>>,
}

impl ReplayGuard {
    pub fn new() -> ReplayGuard {
        ReplayGuard::default()
    }

    /// Accepts the packet if it is newer than all accepted before from
    /// `from` on `path`, and returns how many sequence numbers were skipped
    /// (packets lost in between; 0 when the sender restarted).
    pub fn check(
        &mut self,
        from: &str,
        path: usize,
        incarnation: u64,
        seq: u64,
    ) -> Result<u64, Refusal> {
        // Looked up by &str first: no allocation per packet once known.
        let paths = match self.last.get_mut(from) {
            Some(p) => p,
            None => self.last.entry(from.to_string()).or_default(),
        };
        if paths.len() <= path {
            paths.resize(path + 1, None);
        }
        let slot = &mut paths[path];
        let lost = match *slot {
            None => 0,
            Some(last) if incarnation > last.incarnation => 0,
            Some(last) if incarnation == last.incarnation && seq > last.seq => seq - last.seq - 1,
            Some(last) => {
                let detail = if incarnation < last.incarnation {
                    format!(
                        "{from} path {path}: incarnation {incarnation} is older than {} (a daemon that has since restarted)",
                        last.incarnation
                    )
                } else {
                    format!(
                        "{from} path {path}: sequence {seq} is not after {} already accepted",
                        last.seq
                    )
                };
                return Err(Refusal::new(Rejection::Replayed, detail));
            }
        };
        *slot = Some(Last { incarnation, seq });
        Ok(lost)
    }

    /// Forgets a sender (it left the configuration).
    pub fn forget(&mut self, from: &str) {
        self.last.remove(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayed(r: Result<u64, Refusal>) -> bool {
        matches!(
            r,
            Err(Refusal {
                reason: Rejection::Replayed,
                ..
            })
        )
    }

    #[test]
    fn in_order_and_gaps() {
        let mut g = ReplayGuard::new();
        assert_eq!(g.check("b", 0, 100, 1).unwrap(), 0);
        assert_eq!(g.check("b", 0, 100, 2).unwrap(), 0);
        // 3 and 4 lost.
        assert_eq!(g.check("b", 0, 100, 5).unwrap(), 2);
    }

    #[test]
    fn duplicates_and_old_packets_are_replayed() {
        let mut g = ReplayGuard::new();
        g.check("b", 0, 100, 5).unwrap();
        assert!(replayed(g.check("b", 0, 100, 5)));
        assert!(replayed(g.check("b", 0, 100, 4)));
        // A late packet of an earlier daemon of the same server.
        let r = g.check("b", 0, 99, 1000).unwrap_err();
        assert_eq!(r.reason, Rejection::Replayed);
        assert!(r.detail.contains("older"), "{}", r.detail);
        // Refusals leave the guard as it was.
        assert_eq!(g.check("b", 0, 100, 6).unwrap(), 0);
    }

    #[test]
    fn a_restarted_sender_counts_from_one_again() {
        let mut g = ReplayGuard::new();
        g.check("b", 0, 100, 5000).unwrap();
        assert_eq!(g.check("b", 0, 200, 1).unwrap(), 0);
        assert!(replayed(g.check("b", 0, 100, 5001)));
        assert_eq!(g.check("b", 0, 200, 2).unwrap(), 0);
    }

    #[test]
    fn senders_and_paths_are_separate() {
        let mut g = ReplayGuard::new();
        g.check("b", 0, 100, 10).unwrap();
        assert_eq!(g.check("b", 1, 100, 3).unwrap(), 0);
        assert_eq!(g.check("c", 0, 100, 3).unwrap(), 0);
        assert!(replayed(g.check("b", 1, 100, 3)));
        assert_eq!(g.check("b", 0, 100, 11).unwrap(), 0);
    }

    #[test]
    fn leaving_closes_the_incarnation() {
        let mut g = ReplayGuard::new();
        g.check("b", 0, 100, 7).unwrap();
        g.check("b", 0, 100, u64::MAX).unwrap();
        assert!(replayed(g.check("b", 0, 100, u64::MAX)));
        assert!(replayed(g.check("b", 0, 100, 8)));
        // Its next daemon is heard again.
        assert_eq!(g.check("b", 0, 101, 1).unwrap(), 0);
    }

    #[test]
    fn forget_starts_over() {
        let mut g = ReplayGuard::new();
        g.check("b", 0, 100, 7).unwrap();
        g.forget("b");
        assert_eq!(g.check("b", 0, 100, 7).unwrap(), 0);
    }

    #[test]
    fn incarnations_grow() {
        let a = incarnation_now();
        assert!(a > 1_600_000_000_000_000);
        assert!(incarnation_now() >= a);
    }
}
