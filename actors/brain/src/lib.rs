//! The pure core of understudy: everything the supervisor decides, with no
//! I/O, no actix and no async runtime. The shell (`understudy-actors`) does
//! the I/O and feeds facts in.
//!
//! - schema: [`config`] (RON schema and loader), [`validate`],
//!   [`validate_monitors`], [`problems`], [`host`], [`monitoring`] (monitor
//!   common settings), [`routing`] (where alerts go);
//! - every kind's settings: [`resource`] ([`resource::ResourceKind`]),
//!   [`monitor`] ([`monitor::MonitorKind`]), [`notify`] (mail, syslog,
//!   lamps);
//! - the cluster brain: [`cluster`] (every cluster decision of one server,
//!   events in, commands out), [`advert`] (what heartbeats carry);
//! - decisions: [`plan`], [`ladder`], [`placement`], [`membership`],
//!   [`detection`], [`recovery`], [`partition`] (quorum, leases), [`forced_stop`],
//!   [`bmc`] (a server's BMC: the BMC heartbeat path, the forced stop by BMC),
//!   [`traps`] (SNMP trap endpoints of message monitors, what a packet counts as),
//!   [`metrics`] (where Prometheus metrics are served), [`web`] (where the
//!   status page is served, who may act on it), [`headline`] (the page's
//!   one-word state of the cluster);
//! - ids and states: [`state`], [`catalog`] (every alert), [`agent`] (the
//!   messages of `clp_httpmon` / `clp_smtpmon`).

pub mod advert;
pub mod agent;
pub mod bmc;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod detection;
pub mod forced_stop;
pub mod headline;
pub mod host;
pub mod journal;
pub mod ladder;
pub mod membership;
pub mod metrics;
pub mod monitor;
pub mod monitoring;
pub mod notify;
pub mod partition;
pub mod placement;
pub mod plan;
pub mod problems;
pub mod recovery;
pub mod resource;
pub mod routing;
pub mod state;
pub mod traps;
pub mod validate;
pub mod validate_monitors;
pub mod watchdog;
pub mod web;
