//! The understudy engine.
//!
//! - [`model`]: the pure core, which lives in the `understudy-brain` crate
//!   (re-exported here): configuration schema and validation, every kind's
//!   settings, ids and states, activation plans, the failure ladder, the
//!   alert catalog. No I/O, no actix.
//! - [`resource`]: one folder per group resource kind (its driver).
//! - [`monitor`]: one file per monitor kind (its probe), the monitor actor.
//! - [`coordinator`], [`group`]: the actor shell that feeds facts to the model
//!   and carries out the actions it returns.
//! - [`notify`]: the alert log.
//! - [`control`]: the local control socket and its request/response types.
//! - [`wire`]: the cluster key and authenticated frames between servers
//!   (heartbeat packets, peer requests).
//! - [`heartbeat`]: the heartbeat actors, one per path.
//! - [`witness`]: the witnesses of partition resolution (etcd).
//! - [`metrics`]: Prometheus metrics; [`web`]: the HTTP listener they are
//!   served on.

pub mod atomic_file;
pub mod control;
pub mod coordinator;
pub mod fence;
pub mod forced_stop;
/// The fuzz targets' way in (`actors/fuzz/`); not an interface.
#[doc(hidden)]
pub mod fuzzing;
pub mod guarded;
pub mod heartbeat;
pub mod journal;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod notify;
pub mod np_target;
pub mod resource;
pub mod status_page;
pub mod web;
pub mod wire;
pub mod witness;

/// How a test skips (shared with the integration tests of both packages).
#[cfg(test)]
#[path = "../../tests/common/skip.rs"]
mod skip;
