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
