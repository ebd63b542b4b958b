//! Heartbeats: how this server hears the others.
//!
//! One actor per heartbeat path ([`lan::LanHeartbeat`]): it sends this
//! server's advert to every peer at a fixed rate and reports what it hears
//! (or drops) as [`HeartbeatEvent`]s. Deciding from those whether a path or
//! a server is down is left to the receiver of the events.

pub mod bmc;
pub mod lan;

use std::net::SocketAddr;

use actix::prelude::*;

use crate::wire::heartbeat::Beat;
use crate::wire::Rejection;

pub use lan::{LanHeartbeat, LanSettings, SendLeaving, SetAdvert, SetConfigDigest};

/// This daemon's clock in ms since its first use (at least 1), stamped on
/// every beat it sends.
pub fn monotonic_ms() -> u64 {
    since_start().as_millis() as u64 + 1
}

/// `heartbeat.realtime`: locks the process's memory and gives the calling
/// thread (the heartbeat thread) real-time priority, SCHED_RR 10, as
/// corosync does. What cannot be done is logged; the beats go on anyway.
pub fn go_realtime() {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => tracing::info!("heartbeat.realtime: memory locked"),
        Err(e) => tracing::warn!("heartbeat.realtime: cannot lock memory: {e}"),
    }
    let param = nix::libc::sched_param { sched_priority: 10 };
    // SAFETY: plain system call on this thread (tid 0) with a valid
    // parameter; it changes nothing but this thread's scheduling.
    let rc = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_RR, &param) };
    if rc == 0 {
        tracing::info!("heartbeat.realtime: heartbeat thread at SCHED_RR 10");
    } else {
        tracing::warn!(
            "heartbeat.realtime: cannot raise the heartbeat thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// `CLOCK_BOOTTIME`: it never goes back and, unlike `CLOCK_MONOTONIC`,
/// keeps counting while the machine is suspended, so a lease measured on
/// it has run out after any pause, however it came.
pub fn boottime() -> std::time::Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(std::time::Duration::from)
        .unwrap_or_default()
}

/// The boot-time instant this daemon's clocks count from: beats' `sent_ms`,
/// their arrival, and the cluster brain's `now` are all on it.
pub fn start() -> std::time::Duration {
    static START: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *START.get_or_init(boottime)
}

/// Time since [`start`] (the brain's `now`).
pub fn since_start() -> std::time::Duration {
    let start = start();
    boottime().saturating_sub(start)
}

// One event per beat, handled at once: the advert's size costs nothing
// worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub enum HeartbeatEvent {
    /// An authentic, fresh beat from a peer. `lost`: beats of the same
    /// daemon skipped since the previous one heard on this path.
    /// `arrived_ms`: when it came off the socket ([`monotonic_ms`]), so
    /// that time spent waiting for the coordinator is not taken for time
    /// on the network.
    Heard {
        path: usize,
        beat: Beat,
        lost: u64,
        arrived_ms: u64,
    },
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

/// Tells every other server that this server's daemon (incarnation
/// `incarnation`) is gone: an authenticated `Leaving` beat on every path,
/// so they take its groups over at once instead of after the heartbeat
/// timeout. Blocking, no runtime: the guardian calls it after the daemon
/// died and the server's resources were released. `key` as loaded from the
/// configuration's key file. Returns the errors (one per path and peer).
pub fn announce_departure(
    config: &crate::model::config::ClusterConfig,
    local: &str,
    incarnation: u64,
    key: &crate::wire::key::ClusterKey,
    died: bool,
) -> Vec<String> {
    use std::net::{IpAddr, SocketAddr};
    let Some(me) = config.server(local) else {
        return vec![format!("server {local} is not in the configuration")];
    };
    let port = config.heartbeat.port;
    let mut targets = Vec::new();
    for (path, own) in me.interconnects.iter().enumerate() {
        let Ok(own) = own.parse::<IpAddr>() else {
            continue;
        };
        for peer in config.servers.iter().filter(|s| s.name != local) {
            if let Some(ip) = peer
                .interconnects
                .get(path)
                .and_then(|a| a.parse::<IpAddr>().ok())
            {
                targets.push((
                    path as u8,
                    SocketAddr::new(own, 0),
                    SocketAddr::new(ip, port),
                ));
            }
        }
    }
    crate::wire::heartbeat::send_leaving(key, local, incarnation, &config.digest(), died, &targets)
}
