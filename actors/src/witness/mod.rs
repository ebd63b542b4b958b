//! Witnesses of network-partition resolution: services outside the cluster
//! that give their vote to one server at a time. The server holding the
//! vote keeps (or takes) the groups. One file per method's driver:
//!
//! - [`etcd`]: a key in etcd attached to a lease that the driver keeps
//!   alive (`<prefix>/vote`).
//!
//! A driver reports a [`WitnessReport`] after every round; the brain gets
//! it as its verdict (holds, until) and lets it lapse when no newer one
//! comes.

use std::time::Duration;

use actix::Message;

pub mod etcd;

/// What a witness driver knows after one round of talking to its witness.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct WitnessReport {
    /// This server holds the witness's vote.
    pub holds: bool,
    /// While `holds`: the instant on the daemon's clock
    /// ([`crate::heartbeat::since_start`], CLOCK_BOOTTIME since the daemon's
    /// start) up to which that is surely still true: never later than when
    /// the witness can give the vote to another server. A failed round
    /// never moves it later. [`Duration::ZERO`] when `!holds`.
    pub until: Duration,
    /// The witness answered this round (a transport failure or a timeout
    /// makes it false; a refusal by the witness does not).
    pub reachable: bool,
    /// Why this round failed, if it did (no secrets in it).
    pub error: Option<String>,
}

impl WitnessReport {
    /// Whether this report begins an outage of the witness: it did not
    /// answer this round, and it did answer the round before (or this is
    /// the driver's first report). The coordinator raises nm 35 then, once
    /// per outage, whether the witness was down from the start or went
    /// away later.
    pub fn lost_since(&self, previous: Option<&WitnessReport>) -> bool {
        !self.reachable && previous.is_none_or(|p| p.reachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(reachable: bool) -> WitnessReport {
        WitnessReport {
            holds: false,
            until: Duration::ZERO,
            reachable,
            error: (!reachable).then(|| "connection refused".into()),
        }
    }

    #[test]
    fn an_outage_begins_at_the_first_round_without_an_answer() {
        let (up, down) = (report(true), report(false));
        // Down from the first round on: an outage from the start.
        assert!(down.lost_since(None));
        // Answering, then not: the outage begins.
        assert!(down.lost_since(Some(&up)));
        // Still down: the same outage, no second alert.
        assert!(!down.lost_since(Some(&down)));
        // Answering: no outage, whatever came before.
        assert!(!up.lost_since(None));
        assert!(!up.lost_since(Some(&up)));
        assert!(!up.lost_since(Some(&down)));
        // A refusal by a witness that answers is no outage.
        let refused = WitnessReport {
            error: Some("permission denied".into()),
            ..report(true)
        };
        assert!(!refused.lost_since(Some(&up)));
    }
}
