//! Gates of network-partition resolution: targets outside the cluster that
//! a server must reach to stay quorate, as the product's PING NP and HTTP NP.
//! One file per kind's probe:
//!
//! - [`ping`]: ICMP echo to a list of addresses; one reply is enough;
//! - [`http`]: `HEAD` to a witness web server; a 2xx or 3xx reply counts.
//!
//! Each gate runs as one tokio task on the daemon's runtime: a round every
//! interval, bounded by the timeout, never blocking a thread. After every
//! round a [`TargetReport`]: when reached, its `until` is the instant the
//! round was *sent* (read before the first request leaves) plus the lease,
//! so a reply that arrives late never stretches the verdict past what the
//! target saw. The brain lets it lapse when no newer one comes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix::Message;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};

use crate::heartbeat::since_start;
use crate::model::config::ClusterConfig;
use crate::model::partition::Gate;

pub mod http;
pub mod ping;

/// What one round of a gate's probe found.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct TargetReport {
    /// The gate: its index in `partition.methods`.
    pub method: usize,
    /// A target answered within the timeout.
    pub reached: bool,
    /// While `reached`: the round's send instant on the daemon's clock
    /// ([`since_start`]) plus the lease. [`Duration::ZERO`] otherwise.
    pub until: Duration,
    /// Why the round failed, if it did.
    pub error: Option<String>,
}

/// One round of a probe: Ok when a target answered, else why not.
pub type RoundFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A kind of probe: makes a round's future.
pub trait TargetProbe: Send + 'static {
    fn round(&mut self, timeout: Duration) -> RoundFuture;
}

/// A running gate. Dropping it ends its task at once (its last verdict
/// lapses by itself).
pub struct GateTask {
    task: JoinHandle<()>,
}

impl Drop for GateTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the probe of gate `method` (`gate`) of `config` on the current
/// tokio runtime; `report` gets a [`TargetReport`] after every round and
/// must not block (an actix `do_send` does not). Errors: the probe cannot
/// be made (no ICMP socket: not root and no `ping_group_range`).
///
/// Panics outside a tokio runtime.
pub fn spawn<F>(
    config: &ClusterConfig,
    method: usize,
    gate: Gate<'_>,
    report: F,
) -> Result<GateTask, String>
where
    F: FnMut(TargetReport) + Send + 'static,
{
    let p = config
        .partition
        .as_ref()
        .ok_or_else(|| "no partition resolution configured".to_string())?;
    let timing = p.timing(config, gate);
    let lease = p.lease(config);
    let probe: Box<dyn TargetProbe> = match gate {
        Gate::Ping(t) => Box::new(ping::PingProbe::new(t)?),
        Gate::Http(h) => Box::new(http::HttpProbe::new(h)?),
    };
    let what = gate.describe();
    tracing::info!(
        "partition: {what}: a round every {} ms, answers within {} ms count for {} ms",
        timing.interval.as_millis(),
        timing.timeout.as_millis(),
        lease.as_millis()
    );
    let task = tokio::spawn(run(
        probe,
        method,
        timing.interval,
        timing.timeout,
        lease,
        report,
    ));
    Ok(GateTask { task })
}

async fn run<F>(
    mut probe: Box<dyn TargetProbe>,
    method: usize,
    interval: Duration,
    round_timeout: Duration,
    lease: Duration,
    mut report: F,
) where
    F: FnMut(TargetReport),
{
    let mut next = Instant::now();
    loop {
        sleep_until(next).await;
        // Fixed rate; a late wake-up (the thread was busy) does not make
        // a burst of rounds.
        next = (next + interval).max(Instant::now());
        let sent = since_start();
        let result = match timeout(round_timeout, probe.round(round_timeout)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", round_timeout.as_millis())),
        };
        report(verdict(method, sent, lease, result));
    }
}

/// The report of a round sent at `sent`.
fn verdict(
    method: usize,
    sent: Duration,
    lease: Duration,
    result: Result<(), String>,
) -> TargetReport {
    match result {
        Ok(()) => TargetReport {
            method,
            reached: true,
            until: sent + lease,
            error: None,
        },
        Err(e) => TargetReport {
            method,
            reached: false,
            until: Duration::ZERO,
            error: Some(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reached_round_counts_from_its_send_instant() {
        let r = verdict(
            2,
            Duration::from_millis(1000),
            Duration::from_millis(300),
            Ok(()),
        );
        assert_eq!(r.until, Duration::from_millis(1300));
        assert!(r.reached);
        let r = verdict(
            2,
            Duration::from_millis(1000),
            Duration::from_millis(300),
            Err("x".into()),
        );
        assert_eq!((r.reached, r.until), (false, Duration::ZERO));
    }
}
