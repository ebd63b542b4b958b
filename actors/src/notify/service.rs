//! The alert service as a whole: the notifiers a configuration asks for and
//! the router that feeds them, started together and reconfigured together
//! when a pushed configuration changes the alert settings (a change that is
//! safe to apply online).

use std::path::{Path, PathBuf};

use actix::prelude::*;

use super::alert_log::now_rfc3339;
use super::alert_log::{AlertLogHandle, Alerter};
use super::lamp::LampNotifier;
use super::mail::{LoadPassword, MailNotifier, Secret};
use super::router::{AlertRouter, Reconfigure, Routed, RouterSettings};
use super::snmp::SnmpNotifier;
use super::syslog::SyslogNotifier;
use crate::model::catalog::Event;
use crate::model::config::{AlertsConfig, ClusterConfig};
use crate::model::routing::{Destinations, OptionalMails};

pub struct AlertService {
    pub router: Addr<AlertRouter>,
    pub lamps: Option<Addr<LampNotifier>>,
    pub mail: Option<Addr<MailNotifier>>,
    pub snmp: Option<Addr<SnmpNotifier>>,
    /// The settings in force (to tell what a new configuration changes).
    current: AlertsConfig,
    /// Raises the notifiers' own events: to the alert log only, never back
    /// into the notifiers.
    own: Alerter,
    cluster: String,
    state_dir: PathBuf,
    /// The mail notifier publishes its spool's depth there.
    metrics: crate::metrics::Metrics,
}

impl AlertService {
    /// Starts the notifiers of `config.alerts` and the router (inside a
    /// running actix system).
    pub fn start(
        config: &ClusterConfig,
        local: &str,
        state_dir: &Path,
        log: &AlertLogHandle,
        metrics: &crate::metrics::Metrics,
    ) -> Result<AlertService, String> {
        let own = Alerter {
            log: log.clone(),
            server: local.to_string(),
            router: None,
        };
        let router = AlertRouter::new(
            RouterSettings {
                cluster: config.name.clone(),
                ..Default::default()
            },
            state_dir,
        )
        .start();
        let mut service = AlertService {
            router,
            lamps: None,
            mail: None,
            snmp: None,
            current: AlertsConfig::default(),
            own,
            cluster: config.name.clone(),
            state_dir: state_dir.to_path_buf(),
            metrics: metrics.clone(),
        };
        service.apply(&config.alerts)?;
        service.own.raise(Event::AlertServiceStarted);
        Ok(service)
    }

    /// (Re)creates the notifiers for `alerts` and gives the router its new
    /// rules. A notifier replaced here stops once its queue is empty. Reads
    /// files (the mail password, the spool): at start-up only; online
    /// changes go through [`AlertService::preparer`] and
    /// [`AlertService::apply_prepared`].
    pub fn apply(&mut self, alerts: &AlertsConfig) -> Result<(), String> {
        let prepared = self.preparer().prepare(alerts)?;
        self.apply_prepared(alerts, prepared);
        Ok(())
    }

    /// What reading `alerts`' files needs, to be done off the actors'
    /// thread (the blocking pool).
    pub fn preparer(&self) -> AlertPreparer {
        AlertPreparer {
            state_dir: self.state_dir.clone(),
            own: self.own.clone(),
            mail_running: self.mail.is_some(),
            metrics: self.metrics.clone(),
        }
    }

    /// [`AlertService::apply`] with the files already read.
    pub fn apply_prepared(&mut self, alerts: &AlertsConfig, prepared: PreparedAlerts) {
        self.mail = match (alerts.mail.clone(), self.mail.take(), prepared.mail) {
            (Some(c), Some(addr), PreparedMail::Password(password)) => {
                addr.do_send(super::mail::Reconfigure {
                    config: c,
                    password,
                });
                Some(addr)
            }
            (Some(_), _, PreparedMail::Notifier(notifier)) => Some(notifier.start()),
            // Prepared for another state of the service: cannot happen, as
            // the coordinator applies in order; keep what runs.
            (Some(_), running, _) => running,
            (None, _, _) => None,
        };
        // A replaced notifier stops once its queue is empty (its last
        // address goes with the router's settings).
        self.snmp = match (alerts.snmp.clone(), prepared.snmp_community) {
            (Some(c), Some(community)) => match SnmpNotifier::new(c, community, self.own.clone()) {
                Ok(n) => Some(n.start()),
                Err(e) => {
                    tracing::warn!("SNMP trap notifier not started: {e}");
                    None
                }
            },
            _ => None,
        };
        let syslog = alerts
            .syslog
            .clone()
            .map(|c| SyslogNotifier::new(c, self.own.clone()).start().recipient());
        self.lamps = match (
            alerts.lamps.clone().filter(|l| l.enabled),
            self.lamps.take(),
        ) {
            (Some(c), Some(addr)) => {
                addr.do_send(super::lamp::Reconfigure(c));
                Some(addr)
            }
            (Some(c), None) => Some(LampNotifier::new(c, self.own.clone()).start()),
            (None, _) => None,
        };
        let mail_config = alerts.mail.as_ref();
        self.router.do_send(Reconfigure(RouterSettings {
            cluster: self.cluster.clone(),
            routes: alerts.routes.clone(),
            optional: OptionalMails {
                suspend_resume: mail_config.is_some_and(|m| m.on_suspend_resume),
                group_started: mail_config.is_some_and(|m| m.on_group_started),
            },
            mail: self.mail.clone().map(|a| a.recipient()),
            syslog,
            snmp: self.snmp.clone().map(|a| a.recipient()),
            resume_after_hours: mail_config.map(|m| m.auto_resume_hours).unwrap_or(12),
        }));
        // The optional "settings changed" report, about what changed.
        let changed = changed_parts(&self.current, alerts);
        let first = self.current == AlertsConfig::default();
        if !first && !changed.is_empty() && mail_config.is_some_and(|m| m.on_settings_change) {
            let alert = Event::AlertSettingsChanged {
                changed: changed.join(", "),
            }
            .to_alert(now_rfc3339(), &self.own.server);
            self.router.do_send(Routed {
                alert: alert.clone(),
                mail_allowed: true,
                force: Some(Destinations {
                    syslog: true,
                    mail: true,
                    snmp: false,
                }),
                only_mail: false,
            });
            self.own.log.record(alert);
        }
        self.current = alerts.clone();
    }
}

/// Reads the files of an alert configuration (blocking; `Send`, for the
/// blocking pool).
pub struct AlertPreparer {
    state_dir: PathBuf,
    own: Alerter,
    mail_running: bool,
    metrics: crate::metrics::Metrics,
}

/// The mail notifier's part of an alert configuration, files read.
pub enum PreparedMail {
    None,
    /// The running notifier gets its new settings and this password.
    Password(Option<Secret>),
    /// A new notifier, its password and spool read, not started yet.
    Notifier(Box<MailNotifier>),
}

pub struct PreparedAlerts {
    mail: PreparedMail,
    /// The SNMP trap notifier's community, its file read.
    snmp_community: Option<Secret>,
}

impl AlertPreparer {
    pub fn prepare(self, alerts: &AlertsConfig) -> Result<PreparedAlerts, String> {
        let mail = match alerts.mail.clone() {
            None => PreparedMail::None,
            Some(c) if self.mail_running => PreparedMail::Password(c.load_password()?),
            Some(c) => PreparedMail::Notifier(Box::new(
                MailNotifier::new(c, &self.state_dir, self.own)?.with_metrics(self.metrics),
            )),
        };
        let snmp_community = match &alerts.snmp {
            Some(c) => Some(super::snmp::load_community(c)?),
            None => None,
        };
        Ok(PreparedAlerts {
            mail,
            snmp_community,
        })
    }
}

/// Which parts of the alert settings differ.
fn changed_parts(old: &AlertsConfig, new: &AlertsConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.mail != new.mail {
        out.push("mail");
    }
    if old.syslog != new.syslog {
        out.push("syslog");
    }
    if old.lamps != new.lamps {
        out.push("warning lamps");
    }
    if old.snmp != new.snmp {
        out.push("snmp traps");
    }
    if old.routes != new.routes {
        out.push("routes");
    }
    out
}
