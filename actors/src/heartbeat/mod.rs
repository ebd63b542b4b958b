//! Heartbeats: how this server hears the others.
//!
//! One actor per heartbeat path ([`lan::LanHeartbeat`]): it sends this
//! server's advert to every peer at a fixed rate and reports what it hears
//! (or drops) as [`HeartbeatEvent`]s. Deciding from those whether a path or
//! a server is down is left to the receiver of the events.

pub mod lan;

use std::net::SocketAddr;

use actix::prelude::*;

use crate::wire::heartbeat::Beat;
use crate::wire::Rejection;

pub use lan::{LanHeartbeat, LanSettings, SendLeaving, SetAdvert};

#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub enum HeartbeatEvent {
    /// An authentic, fresh beat from a peer. `lost`: beats of the same
    /// daemon skipped since the previous one heard on this path.
    Heard { path: usize, beat: Beat, lost: u64 },
    /// A packet dropped, and why.
    Rejected {
        path: usize,
        source: SocketAddr,
        reason: Rejection,
        detail: String,
    },
    /// The local interface holding this path's address: up and running or
    /// not (sent on change, checked every interval, first report at start).
    LocalLink { path: usize, up: bool },
}
