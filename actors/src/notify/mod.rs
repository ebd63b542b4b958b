//! Alerts: the alert log (mail, syslog and lamp notifiers come later).

pub mod alert_log;
