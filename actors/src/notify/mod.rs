//! Alerts: the alert log, and the notifiers that carry alerts further
//! (mail, syslog, network warning lamps, SNMP traps).

pub mod alert_log;
pub mod lamp;
pub mod mail;
pub mod router;
pub mod service;
pub mod snmp;
pub mod syslog;

use actix::prelude::*;

use crate::model::catalog::Alert;

/// One alert for a notifier to carry (already in the alert log). Each
/// notifier actor handles these on its own; a slow or broken one never
/// holds up another or the coordinator.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Notify {
    pub alert: Alert,
    /// The cluster's name, for subjects and structured data.
    pub cluster: String,
}
