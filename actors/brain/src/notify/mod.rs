//! The notifiers' settings (`alerts.mail`, `alerts.syslog`, `alerts.lamps`,
//! `alerts.snmp`)
//! and their checks, one file per notifier. The notifiers themselves are in
//! the shell (`understudy-actors`, `notify/`).

pub mod lamp;
pub mod mail;
pub mod snmp;
pub mod syslog;
